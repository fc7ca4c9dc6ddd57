"""Check options keepalived 2.2.7 has beyond the common ones: a checker's own alpha and log_all_failures,
bind_if and fwmark on its traffic, FILE_CHECK's tracked file, a url's virtualhost and regex, and the SSL block
of SSL_GET (parse_lvs.py reads the rest)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Mapping

from hanode.config.model import TrackFile
from hanode.config.problems import Problems, Reader, join
from hanode.health.regex import RegexError, compile_regex
from hanode.lvs.model import LvsConfig, SslConfig

IFNAMSIZ = 16
WEIGHT_LIMIT = 2 ** 31 - 1                  # keepalived's IPVS_WEIGHT_LIMIT for FILE_CHECK's weight
# keys a check without a network connection does not have (keepalived installs them for network checkers only)
CONNECTION_KEYS = ("connect_ip", "connect_port", "bindto", "bind_port", "connect_timeout", "bind_if", "fwmark")
FILE_CHECK_FOREIGN = CONNECTION_KEYS + ("retry", "delay_before_retry", "warmup", "delay_loop", "alpha",
                                        "log_all_failures")


def check_extras(reader: Reader, kind: str) -> dict:
    """bind_if, fwmark, alpha and log_all_failures of one check; FILE_CHECK and MISC_CHECK refuse what they
    lack, naming the key."""
    foreign = FILE_CHECK_FOREIGN if kind == "FILE_CHECK" else CONNECTION_KEYS if kind == "MISC_CHECK" else ()
    for key in foreign:
        if reader.has(key) and (kind == "FILE_CHECK" or key in ("bind_if", "fwmark")):
            reader.used.add(key)
            reader.problems.error(reader.at(key), f"{kind} has no {key} (keepalived does not accept it there)")
    if kind == "FILE_CHECK":
        return {}
    bind_if = None
    if kind != "MISC_CHECK":
        bind_if = reader.string("bind_if", None)
        if bind_if is not None and (not bind_if or len(bind_if) >= IFNAMSIZ or "/" in bind_if or " " in bind_if):
            reader.problems.error(reader.at("bind_if"), f"must be an interface name (1 to {IFNAMSIZ - 1} characters), "
                                                        f"got {bind_if!r}")
    fwmark = reader.integer("fwmark", None, 0, 0xFFFFFFFF) if kind != "MISC_CHECK" else None
    return dict(bind_if=bind_if, fwmark=fwmark or None, alpha=reader.boolean("alpha", None),
                log_all_failures=reader.boolean("log_all_failures", None))


def link_local_problems(address: str, checks, path: str, problems: Problems) -> None:
    """keepalived's check_conn_opts: a check connecting to an IPv6 link-local address needs bind_if (the
    interface is the address's scope)."""
    for k, check in enumerate(checks):
        if check is None or check.type in ("MISC_CHECK", "FILE_CHECK") or check.bind_if:
            continue
        target = check.connect_ip or address
        try:
            link_local = ipaddress.ip_address(target).is_link_local and ":" in target
        except ValueError:
            continue
        if link_local:
            problems.error(join(path, f"checks[{k}]"), f"{check.type} to the link-local address {target} needs "
                                                       "bind_if (its interface; keepalived refuses it too)")


def file_fields(reader: Reader) -> dict:
    """FILE_CHECK: `track_file` (a name of the top-level track_files, resolved by resolve_track_files), `weight`
    (default: the track_file's) and `weight_reverse`."""
    name = reader.string("track_file")
    return dict(track_file=TrackFile(name=name, file="") if name else None,
                file_weight=reader.integer("weight", None, -WEIGHT_LIMIT, WEIGHT_LIMIT),
                file_reverse=reader.boolean("weight_reverse", False))


def resolve_track_files(lvs: LvsConfig, track_files: Mapping[str, TrackFile], problems: Problems) -> LvsConfig:
    """Each FILE_CHECK with the track_files entry it names (its file, weight and init_file); an unknown name is
    refused with its field path."""
    if not any(check.type == "FILE_CHECK" for vs in lvs.virtual_servers for rs in vs.real_servers
               for check in rs.checks):
        return lvs
    services = []
    for i, vs in enumerate(lvs.virtual_servers):
        servers = []
        for j, rs in enumerate(vs.real_servers):
            checks = []
            for k, check in enumerate(rs.checks):
                if check.type == "FILE_CHECK" and check.track_file is not None:
                    found = track_files.get(check.track_file.name)
                    if found is None:
                        problems.error(f"virtual_servers[{i}].real_servers[{j}].checks[{k}].track_file",
                                       f"no track_file named {check.track_file.name!r} (known: "
                                       f"{', '.join(sorted(track_files)) or 'none'})")
                    check = replace(check, track_file=found)
                checks.append(check)
            servers.append(replace(rs, checks=tuple(checks)))
        services.append(replace(vs, real_servers=tuple(servers)))
    return replace(lvs, virtual_servers=tuple(services))


def url_extras(reader: Reader, own_block: bool) -> dict:
    """A url's virtualhost (own_block: the url is a mapping of its own, not the check's keys) and regex
    options, the regex compiled now so that a bad one is refused by name."""
    fields = dict(virtualhost=reader.string("virtualhost", None) if own_block else None,
                  regex=reader.string("regex", None), regex_no_match=reader.boolean("regex_no_match", False),
                  regex_min_offset=reader.integer("regex_min_offset", 0, 0, 2 ** 31),
                  regex_max_offset=reader.integer("regex_max_offset", None, 0, 2 ** 31))
    options = reader.raw("regex_options")
    if options is None:
        options = []
    elif isinstance(options, str):
        options = options.split()
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        reader.problems.error(reader.at("regex_options"), f"must be a list of option names, got {options!r}")
        options = []
    fields["regex_options"] = tuple(options)
    if fields["regex"] is None:
        for key in ("regex_no_match", "regex_min_offset", "regex_max_offset", "regex_options"):
            if reader.has(key):
                reader.problems.error(reader.at(key), "has no meaning without regex")
        return fields
    try:
        compile_regex(fields["regex"], fields["regex_options"], fields["regex_no_match"], fields["regex_min_offset"],
                      fields["regex_max_offset"])
    except RegexError as exc:
        key = "regex_options" if "option" in str(exc) else "regex_min_offset" if "offset" in str(exc) else "regex"
        reader.problems.error(reader.at(key), str(exc))
    return fields


def ssl_config(reader: Reader) -> SslConfig | None:
    """The top-level `ssl` mapping: keepalived's SSL block (certificate, key, ca, password)."""
    if not reader.has("ssl"):
        return None
    inner = Reader(reader.mapping("ssl"), reader.at("ssl"), reader.problems)
    config = SslConfig(certificate=inner.string("certificate", None), key=inner.string("key", None),
                       ca=inner.string("ca", None), password=inner.string("password", None))
    inner.finish()
    if config.key and not config.certificate:
        reader.problems.error(join(reader.at("ssl"), "key"), "a key needs its certificate")
    for key in ("certificate", "key", "ca"):
        path = getattr(config, key)
        if path is not None and not path.startswith("/"):
            reader.problems.error(join(reader.at("ssl"), key), f"must be an absolute path, got {path!r}")
    return config
