"""The importer on issue 13's load-balancer keywords: virtual_server_group (ranges, networks, fwmarks) and
`virtual_server group NAME`, tunnel options, per-real-server lvs_method, thresholds, scheduler flags,
persistence_engine, sorry_server_lvs_method and lvs_timeouts; each carried config is accepted by the agent."""

from __future__ import annotations

import pytest

from hanode.config.parse import parse_config
from hanode.lvs.desired import desired_state
from hanode.migrate.keepalived import parse_text, translate
from hanode.migrate.validate import validate

GROUP = """virtual_server_group web {
  198.51.100.10-12 80
  198.51.100.64/30 443
  2001:db8::a-c 80
  198.51.100.20 0
  fwmark 7
  fwmark 8 inet6
}
"""


def imported(text: str):
    """(the agent config's lvs section, the report as (line, keyword, category, reason)) after the validation
    pass, which drops what the agent refuses."""
    validated = validate(parse_text(text, "k.conf"))
    config, _problems = parse_config(validated.translation.config)
    items = [(i.line, i.keyword, i.category, i.reason) for i in validated.translation.items]
    return validated.translation.config, config.sections["lvs"], items


def service(body: str, rs: str = "  real_server 203.0.113.11 8080 {\n  }\n", head="198.51.100.100 8080") -> str:
    return "virtual_server %s {\n  protocol TCP\n%s\n%s}\n" % (head, body, rs)


def test_a_group_and_the_service_that_names_it_are_carried():
    ipv4 = GROUP.replace("  2001:db8::a-c 80\n", "").replace("  fwmark 8 inet6\n", "")
    raw, lvs, items = imported(ipv4 + service("  lb_algo rr\n  persistence_timeout 60", head="group web"))
    assert raw["virtual_server_groups"] == {"web": [
        {"address": "198.51.100.10-12", "port": 80}, {"address": "198.51.100.64/30", "port": 443},
        {"address": "198.51.100.20", "port": 0}, {"fwmark": 7}]}
    assert raw["virtual_servers"][0]["group"] == "web" and items == []
    assert raw["lb_backend"] == "ipvs"
    assert len(desired_state(lvs, {})[0]) == 3 + 4 + 1 + 1


def test_a_mixed_family_group_needs_tunnelled_real_servers_as_in_keepalived():
    # keepalived adds every real server to every member: IPv4 ones into IPv6 services need TUN
    _raw, lvs, items = imported(GROUP + service("  lb_algo rr\n  persistence_timeout 60\n  lb_kind TUN",
                                                head="group web"))
    state, _quorum = desired_state(lvs, {})
    assert len(state) == 3 + 4 + 3 + 1 + 2 and items == []
    assert {d.fwd_method for e in state.values() for d in e.dests.values()} == {"TUN"}


def test_group_entries_keepalived_skips_are_reported_and_an_unknown_group_drops_the_service():
    text = ("virtual_server_group web {\n  198.51.100.10-5 80\n  198.51.100.30 80\n  fwmark x\n}\n"
            + service("", head="group web") + service("", head="group nope"))
    raw, lvs, items = imported(text)
    assert raw["virtual_server_groups"] == {"web": [{"address": "198.51.100.30", "port": 80}]}
    assert [(line, kw, cat) for line, kw, cat, _why in items] == [
        (2, "198.51.100.10-5", "unsupported"), (4, "fwmark", "invalid"), (12, "virtual_server group nope", "invalid")]
    assert "the range end is not greater than its start" in items[0][3]
    assert len(lvs.virtual_servers) == 1


@pytest.mark.parametrize("line, expected", [
    ("lb_kind TUN type gue port 6080 csum", {"lb_kind": "TUN", "tunnel_type": "gue", "tunnel_port": 6080,
                                             "tunnel_csum": "csum"}),
    ("lvs_method TUN type gre remcsum", None),                 # gre has no remote checksum: keepalived ignores it
    ("lvs_method TUN type gue", None),                         # gue needs its port
    ("lvs_method TUN type ipip nocsum", {"lb_kind": "TUN", "tunnel_type": "ipip"}),
    ("lvs_method DR", {"lb_kind": "DR"}),
])
def test_forwarding_with_tunnel_options(line, expected):
    raw, _lvs, items = imported(service("  " + line, rs="  real_server 203.0.113.11 8080 {\n  }\n"))
    vs = raw["virtual_servers"][0]
    got = {k: v for k, v in vs.items() if k == "lb_kind" or k.startswith("tunnel_")}
    if expected is None:
        assert got == {} and [(line_, cat) for line_, _kw, cat, _why in items] == [(3, "invalid")]
    else:
        assert got == expected and items == []


def test_real_server_forwarding_and_thresholds():
    rs = ("  real_server 203.0.113.11 8080 {\n    uthreshold 100\n    lthreshold 50\n  }\n"
          "  real_server 203.0.113.12 9000 {\n    lvs_method DR\n  }\n"
          "  real_server 203.0.113.13 {\n    lvs_method TUN type gue port 6080\n  }\n")
    raw, lvs, items = imported(service("  lb_algo rr", rs=rs))
    servers = raw["virtual_servers"][0]["real_servers"]
    assert servers[0] == {"address": "203.0.113.11", "port": 8080, "uthreshold": 100, "lthreshold": 50}
    assert servers[1] == {"address": "203.0.113.12", "port": 8080, "lvs_method": "DR"}     # DR: the service's port
    assert servers[2] == {"address": "203.0.113.13", "lvs_method": "TUN", "tunnel_type": "gue", "tunnel_port": 6080}
    assert [(line, cat) for line, _kw, cat, _why in items] == []
    dests = {d.key.address: d for d in desired_state(lvs, {})[0][next(iter(desired_state(lvs, {})[0]))].dests.values()}
    assert (dests["203.0.113.11"].u_thresh, dests["203.0.113.12"].fwd_method, dests["203.0.113.13"].tun_port) == \
        (100, "DR", 6080)


def test_scheduler_flags_as_keepalived_reads_them_in_order():
    body = "  sh-port\n  lb_algo sh\n  sh-port\n  sh-fallback\n  mh-port\n  flag-3\n  hashed"
    raw, lvs, items = imported(service(body))
    vs = raw["virtual_servers"][0]
    assert {k for k in vs if k.startswith(("sh-", "mh-", "flag-"))} == {"sh-port", "sh-fallback", "flag-3"}
    assert [(line, kw, cat) for line, kw, cat, _why in items] == [
        (3, "sh-port", "no meaning here"), (7, "mh-port", "no meaning here"), (9, "hashed", "no meaning here")]
    assert lvs.virtual_servers[0].sched_flags == ("flag-3", "sh-fallback", "sh-port")


def test_persistence_engine_sorry_server_method_and_lvs_timeouts():
    text = ("global_defs {\n  lvs_timeouts tcp 7200 tcpfin 0 udp 300\n}\n"
            + service("  persistence_timeout 60\n  persistence_engine sip\n  sorry_server_lvs_method DR\n"
                      "  sorry_server 203.0.113.50 9090\n  ha_suspend"))
    raw, lvs, items = imported(text)
    vs = raw["virtual_servers"][0]
    assert raw["lvs_timeouts"] == {"tcp": 7200, "udp": 300}
    assert lvs.lvs_timeouts == (7200, None, 300)
    assert vs["persistence_engine"] == "sip"
    assert vs["sorry_server"] == {"address": "203.0.113.50", "port": 8080, "lvs_method": "DR"}  # DR: service's port
    assert vs["ha_suspend"] is True and lvs.virtual_servers[0].ha_suspend
    assert items == []


def test_ha_suspend_is_set_whatever_follows_it_and_dropped_with_fwmarks_as_keepalived():
    raw, lvs, items = imported(service("  ha_suspend off"))
    assert raw["virtual_servers"][0]["ha_suspend"] is True and lvs.virtual_servers[0].ha_suspend
    assert items == []
    marks = "virtual_server_group marks {\n  198.51.100.10 80\n  fwmark 7\n}\n"
    _raw, lvs, items = imported(marks + service("  ha_suspend", head="group marks")
                                + service("  ha_suspend", head="fwmark 9"))
    assert [vs.ha_suspend for vs in lvs.virtual_servers] == [False, False]
    assert [(line, kw, cat) for line, kw, cat, _why in items] == [(7, "ha_suspend", "no meaning here"),
                                                                  (13, "ha_suspend", "no meaning here")]
    assert all("clearing ha_suspend" in why for _line, kw, _cat, why in items)


def test_sorry_server_lvs_method_without_a_sorry_server_means_nothing():
    _raw, _lvs, items = imported(service("  sorry_server_lvs_method DR"))
    assert [(kw, cat) for _line, kw, cat, _why in items] == [("sorry_server_lvs_method", "no meaning here")]
    assert translate(parse_text(service("  sorry_server_lvs_method DR"), "k.conf")).config["virtual_servers"]
