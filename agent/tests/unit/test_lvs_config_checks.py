"""Check options of keepalived 2.2.7 in the agent config: FILE_CHECK, the SSL block, url regex and virtualhost,
http_protocol, enable_sni, require_reply wildcards, a checker's alpha, bind_if, fwmark, log_all_failures."""

from __future__ import annotations

import copy
import os
import subprocess

import pytest
import yaml

from hanode.config.host import HostCaps
from hanode.config.load import load_config
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.health.spec import check_specs
from hanode.lvs.model import SslConfig

BASE = {"lb_backend": "nftables", "virtual_servers": [{
    "address": "198.51.100.100", "port": 80, "protocol": "tcp", "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 2,
    "real_servers": [{"address": "203.0.113.11", "port": 8080, "weight": 5, "checks": []}]}]}


def config_with(checks: list, **top) -> dict:
    raw = copy.deepcopy(BASE)
    raw["virtual_servers"][0]["real_servers"][0]["checks"] = checks
    raw.update(top)
    return raw


def lvs_of(raw: dict):
    config, _problems = parse_config(raw)
    return config.sections["lvs"]


def checks_of(*checks, **top):
    return lvs_of(config_with(list(checks), **top)).virtual_servers[0].real_servers[0].checks


def errors(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return [str(p) for p in info.value.problems]


TRACKED = {"maint": {"file": "/run/lb/maint", "weight": 4}}


def test_file_check_names_a_track_file_and_takes_its_weight_unless_it_has_one():
    own, inherited = checks_of({"type": "FILE_CHECK", "track_file": "maint", "weight": -10, "weight_reverse": True},
                               {"type": "FILE_CHECK", "track_file": "maint"}, track_files=TRACKED)
    assert (own.type, own.track_file.file, own.file_weight, own.file_reverse) == ("FILE_CHECK", "/run/lb/maint", -10,
                                                                                  True)
    assert (inherited.track_file.name, inherited.track_file.weight, inherited.file_weight) == ("maint", 4, None)


def test_file_check_refuses_network_keys_and_unknown_track_files():
    problems = errors(config_with([{"type": "FILE_CHECK", "track_file": "nope", "connect_port": 80, "retry": 3}],
                                  track_files=TRACKED))
    text = "\n".join(problems)
    assert "checks[0].track_file: no track_file named 'nope' (known: maint)" in text
    assert "checks[0].connect_port: FILE_CHECK has no connect_port" in text
    assert "checks[0].retry: FILE_CHECK has no retry" in text
    assert any("checks[0].track_file: is required" in p for p in errors(config_with([{"type": "FILE_CHECK"}])))


def test_file_check_spec_has_no_retry_no_warmup_and_no_alpha():
    raw = config_with([{"type": "FILE_CHECK", "track_file": "maint"}], track_files=TRACKED)
    raw["virtual_servers"][0]["alpha"] = True
    (spec,) = check_specs(lvs_of(raw))
    assert (spec.timing.retry, spec.timing.warmup_ms, spec.alpha, spec.probe.rs_weight) == (0, 0, False, 5)
    assert spec.timing.delay_loop_ms == 2000


def test_ssl_block_reaches_ssl_get_probes_only():
    lvs = lvs_of(config_with([{"type": "SSL_GET"}, {"type": "HTTP_GET"}],
                             ssl={"certificate": "/etc/lb/client.pem", "key": "/etc/lb/client.key",
                                  "ca": "/etc/lb/ca.pem", "password": "s3cret"}))
    assert lvs.ssl == SslConfig("/etc/lb/client.pem", "/etc/lb/client.key", "/etc/lb/ca.pem", "s3cret")
    ssl_spec, http_spec = check_specs(lvs)
    assert ssl_spec.probe.ssl == lvs.ssl and http_spec.probe.ssl is None


def test_ssl_block_problems_name_the_field():
    text = "\n".join(errors(config_with([], ssl={"key": "client.key", "pasword": "x"})))
    assert "ssl.key: a key needs its certificate" in text
    assert "ssl.key: must be an absolute path" in text
    assert "ssl.pasword" in text


def test_url_regex_virtualhost_and_offsets():
    (check,) = checks_of({"type": "HTTP_GET", "http_protocol": 1.1, "urls": [
        {"path": "/a", "virtualhost": "a.example", "regex": "ready: (yes|ok)", "regex_options": ["caseless"],
         "regex_min_offset": 2, "regex_max_offset": 40},
        {"path": "/b", "regex": "maintenance", "regex_no_match": True}]})
    first, second = check.urls
    assert (check.http_protocol, first.virtualhost, first.regex, first.regex_options) == \
        ("1.1", "a.example", "ready: (yes|ok)", ("caseless",))
    assert (first.regex_min_offset, first.regex_max_offset, second.regex_no_match) == (2, 40, True)


def test_regex_at_check_level_goes_with_path():
    (check,) = checks_of({"type": "HTTP_GET", "path": "/h", "regex": "ok", "virtualhost": "site.example"})
    assert (check.urls[0].regex, check.urls[0].virtualhost, check.virtualhost) == ("ok", None, "site.example")


@pytest.mark.parametrize("url, field, words", [
    ({"regex": "("}, "regex", "cannot compile regex"),
    ({"regex": "a", "regex_options": ["ungreedy"]}, "regex_options", "ungreedy is not supported"),
    ({"regex": "a", "regex_options": ["sideways"]}, "regex_options", "unknown regex option 'sideways'"),
    ({"regex": "a", "regex_min_offset": 9, "regex_max_offset": 3}, "regex_min_offset", "above regex_max_offset"),
    ({"regex_no_match": True}, "regex_no_match", "has no meaning without regex"),
])
def test_bad_regex_settings_are_refused_by_name(url, field, words):
    text = "\n".join(errors(config_with([{"type": "HTTP_GET", "urls": [dict(path="/", **url)]}])))
    assert f"urls[0].{field}: " in text and words in text


def test_http_protocol_values_and_enable_sni():
    (a, b) = checks_of({"type": "SSL_GET", "http_protocol": "1.0c", "enable_sni": True}, {"type": "HTTP_GET"})
    assert (a.http_protocol, a.enable_sni, b.http_protocol) == ("1.0C", True, "1.0")
    assert any("http_protocol" in p for p in errors(config_with([{"type": "HTTP_GET", "http_protocol": "2"}])))
    assert any("enable_sni: applies to SSL_GET only" in p
               for p in errors(config_with([{"type": "HTTP_GET", "enable_sni": True}])))


def test_require_reply_wildcard_nibbles_make_a_mask():
    (check,) = checks_of({"type": "UDP_CHECK", "payload": "0x0102", "require_reply": "0x1xX2"})
    assert (check.reply_data, check.reply_mask) == (bytes([0x10, 0x02]), bytes([0x0F, 0xF0]))
    (plain,) = checks_of({"type": "UDP_CHECK", "require_reply": "0xab"})
    assert (plain.reply_data, plain.reply_mask) == (b"\xab", None)
    assert any("require_reply: 0x... must be pairs of hex digits or x wildcards" in p
               for p in errors(config_with([{"type": "UDP_CHECK", "require_reply": "0x1xz"}])))


def test_check_alpha_bind_if_fwmark_and_log_all_failures():
    raw = config_with([{"type": "TCP_CHECK", "alpha": True, "bind_if": "eth1", "fwmark": 7, "log_all_failures": True},
                       {"type": "TCP_CHECK"}], checker_log_all_failures=False)
    raw["virtual_servers"][0]["real_servers"][0]["alpha"] = False
    own, inherited = check_specs(lvs_of(raw))
    assert (own.alpha, own.probe.bind_if, own.probe.fwmark, own.log_all_failures) == (True, "eth1", 7, True)
    assert (inherited.alpha, inherited.probe.bind_if, inherited.probe.fwmark, inherited.log_all_failures) == \
        (False, None, None, False)
    (global_on,) = check_specs(lvs_of(config_with([{"type": "TCP_CHECK"}], checker_log_all_failures=True)))
    assert global_on.log_all_failures is True


def test_misc_check_has_no_bind_if_or_fwmark():
    text = "\n".join(errors(config_with([{"type": "MISC_CHECK", "misc_path": "/bin/true", "fwmark": 3,
                                          "bind_if": "eth0"}])))
    assert "checks[0].fwmark: MISC_CHECK has no fwmark" in text and "checks[0].bind_if: MISC_CHECK has no bind_if" in text


def test_bind_if_must_be_an_interface_name():
    assert any("bind_if: must be an interface name" in p
               for p in errors(config_with([{"type": "TCP_CHECK", "bind_if": "x" * 16}])))


def test_a_link_local_target_needs_bind_if_as_keepalived_requires():
    raw = config_with([{"type": "TCP_CHECK", "connect_ip": "fe80::1"},
                       {"type": "TCP_CHECK", "connect_ip": "fe80::1", "bind_if": "eth1"},
                       {"type": "PING_CHECK"}])
    text = "\n".join(errors(raw))
    assert "real_servers[0].checks[0]: TCP_CHECK to the link-local address fe80::1 needs bind_if" in text
    assert "checks[1]" not in text and "checks[2]" not in text


def ssl_config_file(tmp_path, ssl: dict):
    raw = config_with([{"type": "SSL_GET"}], ssl=ssl, control_socket=str(tmp_path / "agent.sock"))
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(raw))
    os.chmod(path, 0o600)
    return str(path)


def make_client_certificate(directory, password: str) -> tuple[str, str]:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    cert, key = str(directory / "client.pem"), str(directory / "client.key")
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=c",
                    "-passout", f"pass:{password}"], check=True, capture_output=True, timeout=30)
    return cert, key


def test_check_config_loads_the_ssl_block_as_ssl_get_will(tmp_path):
    cert, key = make_client_certificate(tmp_path, "right")
    host = HostCaps(ipvs=False, ipvs_why="test")
    loaded = load_config(ssl_config_file(tmp_path, {"certificate": cert, "key": key, "password": "right"}), host=host)
    assert loaded.config.sections["lvs"].ssl.certificate == cert
    with pytest.raises(ConfigError) as wrong:
        load_config(ssl_config_file(tmp_path, {"certificate": cert, "key": key, "password": "wrong"}), host=host)
    assert any(p.path == "ssl" and "cannot load the SSL block's files" in p.message for p in wrong.value.problems)
    with pytest.raises(ConfigError) as missing:
        load_config(ssl_config_file(tmp_path, {"certificate": str(tmp_path / "nope.pem")}), host=host)
    assert any(p.path == "ssl" and "nope.pem" in p.message for p in missing.value.problems)
