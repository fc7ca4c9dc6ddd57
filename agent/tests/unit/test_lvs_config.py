"""The lvs config section: keepalived keywords, field paths in every error, and per-backend validation."""

from __future__ import annotations

import copy

import pytest

from hanode.config.host import HostCaps
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.lvs import caps
from hanode.lvs.model import Check, UrlCheck

BASE = {
    "lb_backend": "nftables",
    "virtual_servers": [{
        "address": "198.51.100.100", "port": 80, "protocol": "tcp", "lb_algo": "wrr", "lb_kind": "NAT",
        "delay_loop": 2, "quorum": 1, "hysteresis": 0,
        "sorry_server": {"address": "203.0.113.50", "port": 8080},
        "real_servers": [
            {"address": "203.0.113.11", "port": 8080, "weight": 3,
             "checks": [{"type": "HTTP_GET", "path": "/health", "status_code": 200, "connect_timeout": 2,
                         "retry": 2, "delay_before_retry": 1},
                        {"type": "TCP_CHECK", "connect_timeout": 1}]},
            {"address": "203.0.113.12", "port": 8080},
        ],
    }],
}


def parse(raw: dict, host: HostCaps | None = None):
    config, problems = parse_config(raw, host=host)
    return config.sections["lvs"], problems


def errors(raw: dict, host: HostCaps | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, host=host)
    return [str(p) for p in info.value.problems]


def with_vs(**changes) -> dict:
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            raw["virtual_servers"][0].pop(key, None)
        else:
            raw["virtual_servers"][0][key] = value
    return raw


WITH_IPVS = HostCaps(ipvs=True, ipvs_why="ip_vs.ko is in modules.dep of kernel 6.1.0-18-amd64")
WITHOUT_IPVS = HostCaps(ipvs=False, ipvs_why="kernel 6.18 has no IPVS (test)")


def test_the_issue_example_parses_with_units_in_ms():
    lvs, _problems = parse(BASE)
    (vs,) = lvs.virtual_servers
    assert (lvs.backend, vs.protocol, vs.delay_loop_ms, vs.name) == ("nftables", "TCP", 2000, "198.51.100.100:80/TCP")
    rs = vs.real_servers[0]
    assert rs.weight == 3 and vs.real_servers[1].weight == 1
    http, tcp = rs.checks
    assert http == Check(type="HTTP_GET", connect_timeout_ms=2000, retry=2, delay_before_retry_ms=1000,
                         urls=(UrlCheck("/health", ((200, 200),)),))
    assert tcp.connect_timeout_ms == 1000 and tcp.retry == 1
    assert vs.sorry_server.address == "203.0.113.50"


def test_no_section_means_no_virtual_servers():
    lvs, _problems = parse({})
    assert lvs.virtual_servers == () and lvs.backend == "auto" and not lvs.keep_on_stop


def test_top_level_keys():
    raw = dict(BASE, lb_keep_on_stop=True, lb_reconcile_interval=2.5)
    lvs, _problems = parse(raw)
    assert lvs.keep_on_stop and lvs.reconcile_interval_ms == 2500
    assert errors(dict(BASE, lb_backend="lvs")) == ["lb_backend: must be one of auto, ipvs, nftables, got 'lvs'"]


def test_check_options_inherit_from_real_and_virtual_server():
    raw = with_vs(connect_timeout=3, retry=4)
    raw["virtual_servers"][0]["real_servers"][1].update(retry=5, delay_before_retry=0.5,
                                                        checks=[{"type": "TCP_CHECK"}, {"type": "PING_CHECK", "retry": 0}])
    lvs, _problems = parse(raw)
    a, b = lvs.virtual_servers[0].real_servers[1].checks
    assert (a.connect_timeout_ms, a.retry, a.delay_before_retry_ms) == (3000, 5, 500)
    assert (b.retry, b.connect_timeout_ms) == (0, 3000)
    http = lvs.virtual_servers[0].real_servers[0].checks[0]
    assert (http.connect_timeout_ms, http.retry) == (2000, 2)      # its own values win


def test_status_code_ranges_urls_and_digest():
    raw = copy.deepcopy(BASE)
    raw["virtual_servers"][0]["real_servers"][1]["checks"] = [
        {"type": "SSL_GET", "sni": "www.example.org", "virtualhost": "www.example.org",
         "urls": [{"path": "/a", "status_code": ["200-204", 301]},
                  {"path": "/b", "digest": "9B3A0C85A887A256D6939DA88AABD8CD"}]}]
    check = parse(raw)[0].virtual_servers[0].real_servers[1].checks[0]
    assert check.urls == (UrlCheck("/a", ((200, 204), (301, 301))),
                          UrlCheck("/b", ((200, 299),), "9b3a0c85a887a256d6939da88aabd8cd"))
    assert check.sni == "www.example.org"


def test_check_errors_name_the_field():
    raw = copy.deepcopy(BASE)
    raw["virtual_servers"][0]["real_servers"][1]["checks"] = [
        {"type": "TCP_CHECK", "path": "/x"},
        {"type": "HTTP_GET", "status_code": "2xx", "digest": "abc"},
        {"type": "MISC_CHECK"},
        {"type": "FTP_CHECK"},
        {"type": "DNS_CHECK", "dns_type": "PTR", "conect_timeout": 1},
    ]
    p = "virtual_servers[0].real_servers[1].checks"
    assert errors(raw) == [
        f"{p}[0].path: applies to HTTP_GET and SSL_GET only, not TCP_CHECK",
        f"{p}[1].status_code: must be a status code or a range like 200-299, got '2xx'",
        f"{p}[1].digest: must be an MD5 digest (32 hex digits, as genhash prints), got 'abc'",
        f"{p}[2].misc_path: is required",
        f"{p}[3].type: must be one of TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, PING_CHECK, UDP_CHECK, DNS_CHECK, "
        "SMTP_CHECK, FILE_CHECK, got 'FTP_CHECK'",
        f"{p}[4].dns_type: must be one of A, NS, CNAME, SOA, MX, TXT, AAAA, got 'PTR'",
        f"{p}[4].conect_timeout: unknown key (did you mean 'connect_timeout'?)",
    ]


def test_udp_check_expected_reply_and_lengths():
    raw = copy.deepcopy(BASE)
    raw["virtual_servers"][0]["real_servers"][1]["checks"] = [
        {"type": "UDP_CHECK", "payload": "0x01", "require_reply": "0x4f4b", "min_reply_length": 2,
         "max_reply_length": 64},
        {"type": "UDP_CHECK", "require_reply": True}]
    lvs = parse(raw)[0]
    expected, plain = lvs.virtual_servers[0].real_servers[1].checks
    assert (expected.require_reply, expected.reply_data, expected.min_reply_length, expected.max_reply_length) == \
        (True, b"OK", 2, 64)
    assert (plain.require_reply, plain.reply_data, plain.max_reply_length) == (True, None, 255)
    raw["virtual_servers"][0]["real_servers"][1]["checks"] = [
        {"type": "UDP_CHECK", "require_reply": "0xzz", "min_reply_length": 9, "max_reply_length": 8},
        {"type": "TCP_CHECK", "max_reply_length": 8}]
    p = "virtual_servers[0].real_servers[1].checks"
    assert errors(raw) == [
        f"{p}[0].require_reply: 0x... must be hex digits, got '0xzz'",
        f"{p}[0].min_reply_length: 9 is above max_reply_length 8: every reply would fail",
        f"{p}[1].max_reply_length: applies to UDP_CHECK only, not TCP_CHECK",
    ]


def test_virtual_server_errors_name_the_field():
    raw = with_vs(address="198.51.100.300", lb_kind="NAT", quorum=0, weight=2)
    raw["virtual_servers"][0]["real_servers"].append({"address": "203.0.113.11", "port": 8080})
    raw["virtual_servers"].append({"port": 80, "real_servers": [{"port": 80}]})
    assert errors(raw) == [
        "virtual_servers[0].address: '198.51.100.300' is not an IP address",
        "virtual_servers[0].quorum: must be 1..2147483647, got 0",
        "virtual_servers[0].weight: unknown key",
        "virtual_servers[1].address: is required (or give fwmark instead of address and port, or group)",
        "virtual_servers[1].real_servers[0].address: is required",
    ]


def test_family_port_and_duplicate_checks():
    raw = with_vs()
    raw["virtual_servers"][0]["real_servers"] += [{"address": "2001:db8:203::11", "port": 80},
                                                  {"address": "203.0.113.12", "port": 8080}]
    raw["virtual_servers"].append(dict(copy.deepcopy(BASE["virtual_servers"][0]), protocol="TCP"))
    raw["virtual_servers"].append({"address": "198.51.100.101", "real_servers": []})
    assert errors(raw) == [
        "virtual_servers[0].real_servers[2].address: 2001:db8:203::11 is IPv6 but the virtual server is IPv4 "
        "(mixing families needs lvs_method TUN)",
        "virtual_servers[0].real_servers[3]: 203.0.113.12:8080 is already real_servers[1]",
        "virtual_servers[2].port: is required with address",
        "virtual_servers[1].address: 198.51.100.100:80/TCP is the same kernel service as virtual_servers[0]",
    ]


def test_sorry_server_family_and_unknown_keys():
    raw = with_vs(sorry_server={"address": "2001:db8:203::50", "prot": 80})
    assert errors(raw) == [
        "virtual_servers[0].sorry_server.address: 2001:db8:203::50 is IPv6 but the virtual server is IPv4",
        "virtual_servers[0].sorry_server.prot: unknown key (did you mean 'port'?)",
    ]


def test_nftables_refuses_what_it_cannot_express_naming_field_and_backend():
    raw = with_vs(lb_algo="wlc", lb_kind="DR", persistence_timeout=300)
    raw["virtual_servers"].append({"fwmark": 7, "lb_algo": "rr", "real_servers": [{"address": "203.0.113.11"}]})
    assert errors(raw) == [
        "virtual_servers[0].lb_algo: wlc needs lb_backend: ipvs (nftables implements rr, wrr, sh, dh with lb_kind NAT)",
        "virtual_servers[0].lb_kind: DR forwarding needs lb_backend: ipvs (nftables implements rr, wrr, sh, dh with "
        "lb_kind NAT)",
        "virtual_servers[0].persistence_timeout: persistence needs lb_backend: ipvs (nftables implements rr, wrr, sh, "
        "dh with lb_kind NAT)",
        "virtual_servers[1].fwmark: a fwmark service needs lb_backend: ipvs (nftables implements rr, wrr, sh, dh with "
        "lb_kind NAT)",
    ]


def test_nftables_names_a_defaulted_scheduler():
    assert errors(with_vs(lb_algo=None)) == [
        "virtual_servers[0].lb_algo: the default lb_algo wlc (keepalived's) needs lb_backend: ipvs "
        "(nftables implements rr, wrr, sh, dh with lb_kind NAT)"]


@pytest.mark.parametrize("algo", ["rr", "wrr", "sh", "dh"])
def test_nftables_accepts_its_schedulers(algo):
    lvs, _problems = parse(with_vs(lb_algo=algo))
    assert lvs.virtual_servers[0].lb_algo == algo


def test_ipvs_takes_everything():
    raw = dict(with_vs(lb_algo="lblcr", lb_kind="TUN", persistence_timeout=60, persistence_granularity="255.255.255.0"),
               lb_backend="ipvs")
    raw["virtual_servers"].append({"fwmark": 7, "protocol": "UDP", "ops": True, "lb_algo": "mh",
                                   "real_servers": [{"address": "203.0.113.11"}]})
    lvs, _problems = parse(raw)
    assert lvs.virtual_servers[0].persistence_granularity == "24"
    assert lvs.virtual_servers[1].ops


def test_auto_validates_for_the_host_kernel_without_ipvs():
    raw = dict(with_vs(lb_algo="lc"), lb_backend="auto")
    assert errors(raw, WITHOUT_IPVS) == [
        "virtual_servers[0].lb_algo: lc needs lb_backend: ipvs (nftables implements rr, wrr, sh, dh with lb_kind "
        "NAT); lb_backend auto uses nftables here because kernel 6.18 has no IPVS (test)"]


def test_auto_accepts_ipvs_configs_for_a_host_kernel_with_ipvs():
    lvs, problems = parse(dict(with_vs(lb_algo="lc"), lb_backend="auto"), WITH_IPVS)
    assert lvs.virtual_servers[0].lb_algo == "lc" and problems.items == []


def test_auto_without_the_host_capabilities_is_not_judged_and_says_so():
    """The parser never looks at the machine it runs on: no host capabilities, no verdict on `auto`, a warning."""
    lvs, problems = parse(dict(with_vs(lb_algo="lc"), lb_backend="auto"))
    assert lvs.backend == "auto"
    assert [str(p) for p in problems.warnings] == [
        "warning: lb_backend: auto is not checked against a kernel: this host's capabilities are unknown here (the "
        "agent checks them on the host when it starts)"]
    assert parse(dict(with_vs(lb_algo="rr"), lb_backend="nftables"))[1].items == []  # explicit: nothing to know


@pytest.mark.parametrize("controller_has_ipvs", [False, True])
def test_each_host_is_judged_by_its_own_capabilities_never_the_machine_parsing(monkeypatch, controller_has_ipvs):
    """ha_plan parses every host's config on the controller: whatever the controller's kernel would say, nobody
    asks it; the host's gathered capabilities decide."""
    def asked(*args, **kwargs):
        raise AssertionError(f"the parsing machine's kernel was asked (it {'has' if controller_has_ipvs else 'lacks'} "
                             f"ip_vs): {args} {kwargs}")
    monkeypatch.setattr(caps, "ipvs_available", asked)
    monkeypatch.setattr(caps, "gather", asked)
    raw = dict(with_vs(lb_algo="lc"), lb_backend="auto")
    assert parse(raw, WITH_IPVS)[1].items == []
    assert errors(raw, WITHOUT_IPVS) == [
        "virtual_servers[0].lb_algo: lc needs lb_backend: ipvs (nftables implements rr, wrr, sh, dh with lb_kind "
        "NAT); lb_backend auto uses nftables here because kernel 6.18 has no IPVS (test)"]
    assert parse(raw)[1].warnings


@pytest.mark.parametrize("facts, error", [
    ({"ipvs": {"available": True, "why": "x"}, "kernel": "6.1"}, None),
    ({"ipvs": {"available": False}}, None),
    ("ipvs", "host_caps: must be the mapping hanode.lvs.caps prints, got str"),
    ({"ipvs": {"available": "yes"}}, "host_caps.ipvs.available: must be true or false, got {'available': 'yes'}"),
    ({}, "host_caps.ipvs.available: must be true or false, got None"),
    ({"ipvs": {"available": True, "why": 3}}, "host_caps: ipvs.why and kernel must be strings"),
])
def test_host_capabilities_from_the_probe_json(facts, error):
    if error is None:
        caps = HostCaps.from_facts(facts)
        assert caps.auto_backend()[0] == ("ipvs" if facts["ipvs"]["available"] else "nftables")
    else:
        with pytest.raises(ValueError) as info:
            HostCaps.from_facts(facts)
        assert str(info.value) == error


def test_scripts_are_registered_for_the_security_check():
    raw = with_vs(quorum_up="/usr/local/bin/vs_up")
    raw["virtual_servers"][0]["real_servers"][1].update(
        notify_down="/usr/local/bin/rs_down", checks=[{"type": "MISC_CHECK", "misc_path": "/usr/local/bin/probe",
                                                       "misc_dynamic": True, "misc_timeout": 3}])
    config, _problems = parse_config(raw)
    assert config.sections["scripts"] == [
        ("virtual_servers[0].quorum_up", "/usr/local/bin/vs_up", None),
        ("virtual_servers[0].real_servers[1].notify_down", "/usr/local/bin/rs_down", None),
        ("virtual_servers[0].real_servers[1].checks[0].misc_path", "/usr/local/bin/probe", None),
    ]
    misc = config.sections["lvs"].virtual_servers[0].real_servers[1].checks[0]
    assert misc.misc_dynamic and misc.misc_timeout_ms == 3000


def test_ops_needs_udp_and_port_zero_needs_persistence():
    raw = dict(with_vs(ops=True, port=0), lb_backend="ipvs")
    assert errors(raw) == [
        "virtual_servers[0].port: 0 (all ports) needs persistence_timeout, as in IPVS",
        "virtual_servers[0].ops: one-packet scheduling works with protocol UDP only",
    ]


def test_fwmark_service_takes_its_family_from_its_real_servers_for_persistence_granularity():
    # keepalived programs `-A -f 9 -6 -p 60 -M 64` for a fwmark service with IPv6 real servers
    from hanode.config.parse import parse_config
    from hanode.config.problems import ConfigError

    def fwmark_service(granularity):
        return {"lb_backend": "ipvs", "virtual_servers": [{
            "fwmark": 9, "protocol": "TCP", "lb_kind": "DR", "persistence_timeout": 60,
            "persistence_granularity": granularity, "real_servers": [{"address": "2001:db8:203::11"}]}]}

    config, _problems = parse_config(fwmark_service(64))
    vs = config.sections["lvs"].virtual_servers[0]
    assert (vs.family, vs.persistence_granularity) == (6, "64")
    with pytest.raises(ConfigError, match=r"virtual_servers\[0\]\.persistence_granularity: must be a prefix length for IPv6"):
        parse_config(fwmark_service("255.255.255.0"))


def test_equal_checks_are_one_object_and_different_ones_stay_apart():
    """8,000 real servers with the same check hold one Check (and one tuple of checks), not 8,000 copies."""
    raw = copy.deepcopy(BASE)
    tcp = {"type": "TCP_CHECK", "connect_timeout": 1}
    raw["virtual_servers"][0]["real_servers"] = [
        {"address": f"203.0.113.{i}", "port": 8080, "checks": [dict(tcp)]} for i in range(11, 14)]
    raw["virtual_servers"][0]["real_servers"].append(
        {"address": "203.0.113.20", "port": 8080, "checks": [dict(tcp, connect_timeout=2)]})
    lvs, _problems = parse(raw)
    servers = lvs.virtual_servers[0].real_servers
    assert servers[0].checks is servers[1].checks is servers[2].checks
    assert servers[3].checks[0].connect_timeout_ms == 2000 and servers[0].checks[0].connect_timeout_ms == 1000
    assert [s.address for s in servers] == ["203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.20"]
