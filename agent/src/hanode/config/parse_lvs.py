"""lb_backend, lb_keep_on_stop, lb_reconcile_interval and virtual_servers: keepalived's virtual_server
keywords in YAML, every problem with its field path, and the backend's limits (lvs/validate.py).

Durations are seconds in the file (keepalived's units) and milliseconds in the model. Checker timing
options (connect_timeout, retry, delay_before_retry, warmup) may also sit on a real server or a virtual
server, as in keepalived: a check inherits them from its real server, which inherits them from its
virtual server.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

from hanode.config import parse_lvs_options as options
from hanode.config.host import HostCaps
from hanode.config.model import AgentConfig
from hanode.config.parse_lvs_group import members_of, parse_groups
from hanode.config.problems import Problems, Reader, join
from hanode.lvs.desired import service_keys
from hanode.config.parse_checks import (check_extras, file_fields, link_local_problems, resolve_track_files, ssl_config,
                                        url_extras)
from hanode.lvs.model import (BACKENDS, CHECK_TYPES, HTTP_PROTOCOLS, LB_ALGOS, LB_KINDS, PROTOCOLS, Check, LvsConfig,
                              RealServer, SorryServer, UrlCheck, VirtualServer)
from hanode.lvs.validate import backend_problems

SECTION = "lvs"
WEIGHT_MAX = 65535
URL_TYPES = ("HTTP_GET", "SSL_GET")
DNS_TYPES = ("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA")
SCTP_PORTLESS_CHECKS = ("PING_CHECK", "MISC_CHECK", "FILE_CHECK")

# Check keys that belong to some check types only.
_TYPE_KEYS = {
    "path": URL_TYPES, "status_code": URL_TYPES, "digest": URL_TYPES, "urls": URL_TYPES,
    "virtualhost": URL_TYPES, "sni": ("SSL_GET",), "enable_sni": ("SSL_GET",), "http_protocol": URL_TYPES,
    "regex": URL_TYPES, "regex_no_match": URL_TYPES, "regex_min_offset": URL_TYPES, "regex_max_offset": URL_TYPES,
    "regex_options": URL_TYPES,
    "misc_path": ("MISC_CHECK",), "misc_timeout": ("MISC_CHECK",), "misc_dynamic": ("MISC_CHECK",),
    "user": ("MISC_CHECK",),
    "payload": ("UDP_CHECK",), "require_reply": ("UDP_CHECK",), "min_reply_length": ("UDP_CHECK",),
    "max_reply_length": ("UDP_CHECK",),
    "dns_type": ("DNS_CHECK",), "dns_name": ("DNS_CHECK",),
    "helo_name": ("SMTP_CHECK",),
    "track_file": ("FILE_CHECK",), "weight": ("FILE_CHECK",), "weight_reverse": ("FILE_CHECK",),
}


def _ms(seconds: Any) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def parse(reader: Reader, problems: Problems, config: AgentConfig, host: HostCaps | None = None) -> LvsConfig:
    backend = reader.string("lb_backend", "auto", BACKENDS)
    keep = reader.boolean("lb_keep_on_stop", False)
    interval_s = reader.number("lb_reconcile_interval", 10, 0.1, 86400)
    explicit: dict[int, set[str]] = {}
    scripts: list[tuple[str, str, str | None]] = []
    groups = parse_groups(reader.mapping("virtual_server_groups"), "virtual_server_groups", problems)
    shared: dict = {}   # one object per distinct check (and tuple of checks): 8,000 real servers' one check is one
    servers = reader.items("virtual_servers",
                           lambda v, p: _virtual_server(v, p, problems, explicit, scripts, groups, shared))
    lvs = LvsConfig(backend=backend, keep_on_stop=keep, reconcile_interval_ms=_ms(interval_s),
                    ssl=ssl_config(reader), log_all_failures=reader.boolean("checker_log_all_failures", False),
                    virtual_servers=servers, lvs_timeouts=options.lvs_timeouts(reader))
    lvs = resolve_track_files(lvs, config.track_files, problems)
    _check_unique_services(lvs, problems)
    if servers and not problems.errors:
        _check_backend(lvs, explicit, problems, host)
    if scripts:
        config.sections.setdefault("scripts", []).extend(scripts)
    return lvs


def _check_backend(lvs: LvsConfig, explicit: dict[int, set[str]], problems: Problems,
                   host: HostCaps | None) -> None:
    """The virtual servers against the backend that will run them; `auto` as the host's kernel decides."""
    chosen, why = lvs.backend, None
    if chosen == "auto":
        if host is None:
            problems.warn("lb_backend", "auto is not checked against a kernel: this host's capabilities are "
                                        "unknown here (the agent checks them on the host when it starts)")
            return
        chosen, why = host.auto_backend()
    for problem in backend_problems(lvs, chosen, why, explicit):
        problems.error(problem.path, problem.message)


def _check_unique_services(lvs: LvsConfig, problems: Problems) -> None:
    seen: dict[Any, int] = {}
    for i, vs in enumerate(lvs.virtual_servers):
        for key in service_keys(vs):
            if key in seen:
                field = "group" if vs.group is not None else "fwmark" if vs.fwmark is not None else "address"
                which = f" ({key})" if vs.members else ""
                problems.error(f"virtual_servers[{i}].{field}", f"{vs.name} is the same kernel service{which} "
                               f"as virtual_servers[{seen[key]}]")
                break
            seen[key] = i


# ----- virtual servers -----------------------------------------------------------------------------

def _virtual_server(value: Any, path: str, problems: Problems, explicit: dict[int, set[str]],
                    scripts: list[tuple[str, str, str | None]], groups: dict, shared: dict) -> VirtualServer | None:
    reader = Reader(value, path, problems)
    if not reader.ok:
        return None
    index = int(path.rsplit("[", 1)[1].rstrip("]"))
    explicit[index] = set(reader.data)
    fwmark = reader.integer("fwmark", None, 1, 0xFFFFFFFF)
    group = reader.string("group", None)
    address = _ip(reader, "address", fwmark is None and group is None,
                  hint=" (or give fwmark instead of address and port, or group)")
    port = reader.integer("port", None, 0, 65535)
    family = ipaddress.ip_address(address).version if address else _real_servers_family(reader.data)
    members = _group_members(reader, group, groups, family)
    if members:
        family = members[0].family if len({m.family for m in members}) == 1 else None
    defaults = _inherited(reader, {})
    defaults["lb_kind"] = str(reader.data.get("lb_kind", "NAT")).upper()
    fields = dict(
        address=address, port=port, fwmark=fwmark,
        protocol=reader.string("protocol", "TCP", PROTOCOLS, upper=True),
        lb_algo=reader.string("lb_algo", "wlc", LB_ALGOS),
        lb_kind=reader.string("lb_kind", "NAT", LB_KINDS, upper=True),
        persistence_timeout_s=reader.integer("persistence_timeout", None, 1, 2**31 // 1000),
        persistence_granularity=_granularity(reader, family),
        delay_loop_ms=_ms(reader.number("delay_loop", 60, 0.001, 86400)),
        quorum=reader.integer("quorum", 1, 1, 2**31 - 1),
        hysteresis=reader.integer("hysteresis", 0, 0, 2**31 - 1),
        quorum_up=_script(reader, "quorum_up", scripts),
        quorum_down=_script(reader, "quorum_down", scripts),
        inhibit_on_failure=reader.boolean("inhibit_on_failure", False),
        alpha=reader.boolean("alpha", False),
        omega=reader.boolean("omega", False),
        ops=reader.boolean("ops", False),
        virtualhost=reader.string("virtualhost", None),
        smtp_alert=reader.boolean("smtp_alert", None),
        group=group, members=members,
    )
    fields.update(options.virtual_server_options(reader, fields["lb_algo"]))
    fields["tunnel"] = options.tunnel(reader, fields["lb_kind"])
    fields["sorry_server"] = _sorry_server(reader, family, problems)
    fields["real_servers"] = reader.items(
        "real_servers",
        lambda v, p: _real_server(v, p, problems, family, defaults, scripts, fields["virtualhost"], shared))
    reader.finish()
    if address is None and fwmark is None and not members:
        return None
    vs = VirtualServer(**fields)
    _check_virtual_server(vs, reader, problems)
    return vs


def _group_members(reader: Reader, group: str | None, groups: dict, family: int | None) -> tuple:
    if group is None:
        return ()
    if reader.has("address") or reader.has("fwmark") or reader.has("port"):
        reader.problems.error(reader.at("group"), "give either group or address/port/fwmark, not both")
    if group not in groups:
        known = ", ".join(sorted(groups)) or "none"
        reader.problems.error(reader.at("group"), f"no virtual_server_groups entry {group!r} (defined: {known})")
        return ()
    return members_of(groups[group], family or 4)


def _real_servers_family(data: Any) -> int | None:
    """A fwmark service has no address: its family is its real servers' (keepalived: `-6` with IPv6 ones)."""
    servers = data.get("real_servers") if isinstance(data, Mapping) else None
    first = servers[0] if isinstance(servers, list) and servers else None
    try:
        return ipaddress.ip_address(str(first.get("address"))).version if isinstance(first, Mapping) else None
    except ValueError:
        return None


def _ip(reader: Reader, key: str, required: bool, family: int | None = None, hint: str = "") -> str | None:
    text = reader.string(key, None)
    if text is None:
        if required:
            reader.problems.error(reader.at(key), "is required" + hint)
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        reader.problems.error(reader.at(key), f"{text!r} is not an IP address")
        return None
    if family is not None and address.version != family:
        reader.problems.error(reader.at(key), f"{text} is IPv{address.version} but the virtual server is IPv{family}")
        return None
    return str(address)


def _inherited(reader: Reader, parent: dict) -> dict:
    """connect_timeout, retry, delay_before_retry and warmup given here, over those of the parent level."""
    values = dict(parent)
    readers = {"connect_timeout": lambda k: reader.number(k, None, 0.001, 3600),
               "retry": lambda k: reader.integer(k, None, 0, 1000),
               "delay_before_retry": lambda k: reader.number(k, None, 0, 3600),
               "warmup": lambda k: reader.number(k, None, 0, 3600)}
    for key, read in readers.items():
        value = read(key)
        if value is not None:
            values[key] = value
    return values


def _granularity(reader: Reader, family: int | None) -> str | None:
    text = reader.string("persistence_granularity", None)
    if text is None:
        return None
    path = reader.at("persistence_granularity")
    if text.lstrip("/").isdigit():
        length = int(text.lstrip("/"))
        if not 1 <= length <= (128 if family == 6 else 32):
            reader.problems.error(path, f"prefix length {length} is out of range for IPv{family or 4}")
            return None
        return str(length)
    if family == 6:
        reader.problems.error(path, f"must be a prefix length for IPv6 (e.g. 64), got {text!r}")
        return None
    try:
        net = ipaddress.IPv4Network(f"0.0.0.0/{text}")
    except ValueError:
        reader.problems.error(path, f"{text!r} is not a netmask (e.g. 255.255.255.0 or 24)")
        return None
    return str(net.prefixlen)


def _script(reader: Reader, key: str, scripts: list[tuple[str, str, str | None]]) -> str | None:
    command = reader.string(key, None)
    if command is not None:
        scripts.append((reader.at(key), command, None))
    return command


def _sorry_server(reader: Reader, family: int | None, problems: Problems) -> SorryServer | None:
    if not reader.has("sorry_server"):
        reader.used.add("sorry_server")
        return None
    sub = Reader(reader.mapping("sorry_server"), reader.at("sorry_server"), problems)
    address = _ip(sub, "address", True, family)
    port = sub.integer("port", None, 1, 65535)
    inhibit = sub.boolean("inhibit", False)
    method = options.method(sub)
    tunnel = options.tunnel(sub, method or str(reader.data.get("lb_kind", "NAT")).upper())
    sub.finish()
    return SorryServer(address, port, inhibit, method, tunnel) if address else None


def _check_virtual_server(vs: VirtualServer, reader: Reader, problems: Problems) -> None:
    if vs.fwmark is not None and vs.address is not None and vs.group is None:
        problems.error(reader.at("fwmark"), "give either fwmark or address and port, not both")
    if vs.address is not None and vs.port is None and vs.group is None:
        problems.error(reader.at("port"), "is required with address")
    if vs.port == 0 and not vs.persistence_timeout_s:
        problems.error(reader.at("port"), "0 (all ports) needs persistence_timeout, as in IPVS")
    if vs.persistence_granularity is not None and not vs.persistence_timeout_s:
        problems.warn(reader.at("persistence_granularity"), "has no effect without persistence_timeout")
    if any(m.fwmark is None and m.port == 0 for m in vs.members) and not vs.persistence_timeout_s:
        problems.error(reader.at("group"), f"group {vs.group} has a port 0 (all ports) entry: that needs "
                                           "persistence_timeout, as in IPVS")
    if vs.ha_suspend and (vs.fwmark is not None or any(m.fwmark is not None for m in vs.members)):
        problems.error(reader.at("ha_suspend"), "cannot be used with a fwmark service (it has no address to watch; "
                                                "keepalived clears it then)")
    if vs.ops and vs.protocol != "UDP":
        problems.error(reader.at("ops"), "one-packet scheduling works with protocol UDP only")
    if not vs.real_servers and vs.sorry_server is None:
        problems.warn(reader.at("real_servers"), "is empty: the service will have no destination")
    families = {m.family for m in vs.members} or {vs.family}
    seen: dict[tuple, int] = {}
    for i, rs in enumerate(vs.real_servers):
        rpath = join(reader.at("real_servers"), i)
        other = sorted(families - {rs.family})
        if other and (rs.lvs_method or vs.lb_kind) != "TUN":
            problems.error(join(rpath, "address"), f"{rs.address} is IPv{rs.family} but the virtual server is "
                           f"IPv{other[0]} (mixing families needs lvs_method TUN)")
        if rs.port is None and vs.fwmark is None:
            pass  # the virtual server's port, as keepalived does
        elif (rs.lvs_method or vs.lb_kind) != "NAT" and vs.port and rs.port is not None and rs.port != vs.port:
            problems.warn(join(rpath, "port"), f"{rs.lvs_method or vs.lb_kind} forwarding does not change ports: "
                          f"the real server must listen on {vs.port}")
        if vs.protocol == "SCTP":
            _check_sctp_checks(rs.checks, join(rpath, "checks"), problems)
        if vs.group is not None and rs.port is None:
            for j, check in enumerate(rs.checks):
                if check.type not in SCTP_PORTLESS_CHECKS and check.connect_port is None:
                    problems.error(join(join(rpath, "checks"), j), f"{check.type} of a group's real server without a "
                                   "port needs connect_port (the group's services have no one port)")
        key = (rs.address, rs.port if rs.port is not None else vs.port)
        if key in seen:
            problems.error(rpath, f"{rs.address}:{key[1]} is already real_servers[{seen[key]}]")
        else:
            seen[key] = i


def _check_sctp_checks(checks, path: str, problems: Problems) -> None:
    """keepalived runs any check against an SCTP service, but its TCP and UDP checks probe the real server's
    port over TCP or UDP, never over SCTP: without a connect_port of their own they would test a port the
    server does not serve that way. PING_CHECK and MISC_CHECK need no port."""
    for i, check in enumerate(checks):
        if check.type in SCTP_PORTLESS_CHECKS or check.connect_port is not None:
            continue
        over = "UDP" if check.type in ("UDP_CHECK", "DNS_CHECK") else "TCP"
        problems.error(join(join(path, i), "connect_port"),
                       f"{check.type} probes over {over}, not SCTP: on an SCTP service give connect_port (a {over} "
                       "port the real server answers on), or use PING_CHECK or MISC_CHECK")


# ----- real servers and checks -----------------------------------------------------------------------

def _real_server(value: Any, path: str, problems: Problems, family: int | None, vs_defaults: dict,
                 scripts: list[tuple[str, str, str | None]], virtualhost: str | None,
                 shared: dict) -> RealServer | None:
    reader = Reader(value, path, problems)
    if not reader.ok:
        return None
    address = _ip(reader, "address", True)
    defaults = _inherited(reader, vs_defaults)
    method = options.method(reader)
    fields = dict(
        port=reader.integer("port", None, 1, 65535),
        lvs_method=method, tunnel=options.tunnel(reader, method or vs_defaults.get("lb_kind")),
        **options.thresholds(reader),
        weight=reader.integer("weight", 1, 0, WEIGHT_MAX),
        inhibit_on_failure=reader.boolean("inhibit_on_failure", None),
        notify_up=_script(reader, "notify_up", scripts),
        notify_down=_script(reader, "notify_down", scripts),
        delay_loop_ms=_ms(reader.number("delay_loop", None, 0.001, 86400)),
        alpha=reader.boolean("alpha", None),
    )
    checks = reader.items("checks", lambda v, p: _shared(shared, _check(v, p, problems, defaults, scripts, virtualhost)))
    fields["checks"] = _shared(shared, checks)
    reader.finish()
    if address:
        link_local_problems(address, fields["checks"], path, problems)
    return RealServer(address=address, **fields) if address else None


def _shared(shared: dict, value: Any) -> Any:
    """The object equal to `value` met before in this parse, else `value` (frozen, so one may stand for all)."""
    return value if value is None else shared.setdefault(value, value)


def _check(value: Any, path: str, problems: Problems, defaults: dict, scripts: list[tuple[str, str, str | None]],
           virtualhost: str | None) -> Check | None:
    if isinstance(value, str):
        value = {"type": value}
    reader = Reader(value, path, problems)
    if not reader.ok:
        return None
    kind = reader.string("type", choices=CHECK_TYPES, upper=True)
    if kind is None:
        for key in reader.data:
            reader.used.add(key)
        return None
    for key, types in _TYPE_KEYS.items():
        if reader.has(key) and kind not in types:
            reader.used.add(key)
            problems.error(reader.at(key), f"applies to {' and '.join(types)} only, not {kind}")
    fields = dict(
        type=kind,
        connect_ip=_ip(reader, "connect_ip", False),
        connect_port=reader.integer("connect_port", None, 1, 65535),
        bindto=_ip(reader, "bindto", False),
        bind_port=reader.integer("bind_port", None, 1, 65535),
        connect_timeout_ms=_ms(reader.number("connect_timeout", defaults.get("connect_timeout", 5), 0.001, 3600)),
        retry=reader.integer("retry", defaults.get("retry", 1), 0, 1000),
        delay_before_retry_ms=_ms(reader.number("delay_before_retry", defaults.get("delay_before_retry", 1), 0, 3600)),
        warmup_ms=_ms(reader.number("warmup", defaults.get("warmup"), 0, 3600)),
        delay_loop_ms=_ms(reader.number("delay_loop", None, 0.001, 86400)),
    )
    fields.update(check_extras(reader, kind))
    if kind in URL_TYPES:
        fields.update(_url_fields(reader, problems, virtualhost))
        fields.update(http_protocol=reader.string("http_protocol", "1.0", HTTP_PROTOCOLS, upper=True))
        if kind == "SSL_GET":
            fields.update(enable_sni=reader.boolean("enable_sni", False))
    elif kind == "FILE_CHECK":
        fields.update(file_fields(reader))
    elif kind == "MISC_CHECK":
        fields.update(_misc_fields(reader, scripts))
    elif kind == "UDP_CHECK":
        fields.update(_udp_fields(reader))
    elif kind == "DNS_CHECK":
        fields.update(dns_type=reader.string("dns_type", "SOA", DNS_TYPES, upper=True),
                      dns_name=reader.string("dns_name", "."))
    elif kind == "SMTP_CHECK":
        fields.update(helo_name=reader.string("helo_name", None))
    reader.finish()
    return Check(**fields)


def _url_fields(reader: Reader, problems: Problems, virtualhost: str | None) -> dict:
    urls = reader.items("urls", lambda v, p: _url(Reader(v, p, problems)))
    inline = ("path", "status_code", "digest", "regex", "regex_no_match", "regex_min_offset", "regex_max_offset",
              "regex_options")
    if any(reader.has(key) for key in inline):
        if urls:
            problems.error(reader.at("urls"), "give either urls or path/status_code/digest, not both")
        urls = (_url(reader, finish=False),)
    return dict(urls=tuple(u for u in urls if u) or (UrlCheck(),),
                virtualhost=reader.string("virtualhost", virtualhost),
                sni=reader.string("sni", None))


def _url(reader: Reader, finish: bool = True) -> UrlCheck | None:
    if not reader.ok:
        return None
    path = reader.string("path", "/")
    codes = _status_codes(reader)
    digest = reader.string("digest", None)
    if digest is not None and (len(digest) != 32 or any(c not in "0123456789abcdefABCDEF" for c in digest)):
        reader.problems.error(reader.at("digest"), f"must be an MD5 digest (32 hex digits, as genhash prints), got {digest!r}")
        digest = None
    if path and not path.startswith("/"):
        reader.problems.error(reader.at("path"), f"must start with /, got {path!r}")
    extras = url_extras(reader, finish)
    if finish:
        reader.finish()
    return UrlCheck(path=path, status_codes=codes, digest=digest.lower() if digest else None, **extras)


def _status_codes(reader: Reader) -> tuple[tuple[int, int], ...]:
    value = reader.raw("status_code")
    if value is None:
        return ((200, 299),)
    items = value if isinstance(value, list) else [value]
    ranges = []
    for i, item in enumerate(items):
        path = join(reader.at("status_code"), i) if isinstance(value, list) else reader.at("status_code")
        text = str(item).strip()
        lo_text, _dash, hi_text = text.partition("-")
        try:
            lo, hi = int(lo_text), int(hi_text or lo_text)
        except ValueError:
            reader.problems.error(path, f"must be a status code or a range like 200-299, got {item!r}")
            continue
        if isinstance(item, bool) or not (100 <= lo <= hi <= 599):
            reader.problems.error(path, f"must be within 100..599 with low <= high, got {item!r}")
            continue
        ranges.append((lo, hi))
    return tuple(ranges) or ((200, 299),)


def _misc_fields(reader: Reader, scripts: list[tuple[str, str, str | None]]) -> dict:
    path = reader.string("misc_path")
    user = reader.string("user", None)
    if path is not None:
        scripts.append((reader.at("misc_path"), path, user))   # the script security check runs it as `user`
    return dict(misc_path=path, misc_timeout_ms=_ms(reader.number("misc_timeout", None, 0.001, 3600)),
                misc_dynamic=reader.boolean("misc_dynamic", False), user=user)


def _udp_fields(reader: Reader) -> dict:
    """payload; require_reply: true, or the expected reply (its first bytes must match, keepalived's
    require_reply <hex>), with min_reply_length/max_reply_length bounding the reply's length."""
    fields = {"payload": _bytes(reader, "payload")}
    expected = reader.raw("require_reply")
    if isinstance(expected, str):
        fields["require_reply"] = True
        fields["reply_data"], fields["reply_mask"] = _masked_bytes(reader, "require_reply")
    else:
        fields["require_reply"] = reader.boolean("require_reply", False)
    fields["min_reply_length"] = reader.integer("min_reply_length", 0, 0, 65535)
    fields["max_reply_length"] = reader.integer("max_reply_length", 255, 0, 65535)
    if fields["min_reply_length"] > fields["max_reply_length"]:
        reader.problems.error(reader.at("min_reply_length"), f"{fields['min_reply_length']} is above max_reply_length "
                                                             f"{fields['max_reply_length']}: every reply would fail")
    return fields


def _masked_bytes(reader: Reader, key: str) -> tuple[bytes | None, bytes | None]:
    """'0x' and hex digits where x or X is a nibble any value matches (keepalived's wildcards), or text.
    Returns the data (wildcard nibbles 0) and the mask (bits set: not compared; None without wildcards)."""
    value = reader.raw(key)
    if not isinstance(value, str) or not value.startswith("0x") or "x" not in value[2:].lower():
        return _bytes(reader, key), None
    digits = value[2:]
    if len(digits) % 2 or any(c not in "0123456789abcdefABCDEFxX" for c in digits):
        reader.problems.error(reader.at(key), f"0x... must be pairs of hex digits or x wildcards, got {value!r}")
        return None, None
    data = bytes.fromhex("".join("0" if c in "xX" else c for c in digits))
    mask = bytes.fromhex("".join("f" if c in "xX" else "0" for c in digits))
    return data, mask


def _bytes(reader: Reader, key: str) -> bytes | None:
    """'0x' and hex digits, or text (sent as UTF-8)."""
    value = reader.raw(key)
    if value is None:
        return None
    if not isinstance(value, str):
        reader.problems.error(reader.at(key), f"must be a string, got {value!r}")
        return None
    if value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            reader.problems.error(reader.at(key), f"0x... must be hex digits, got {value!r}")
            return None
    return value.encode()
