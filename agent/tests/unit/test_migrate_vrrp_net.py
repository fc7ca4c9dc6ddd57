"""The importer's interface keywords (virtual MAC, multicast groups and unicast peers, routes and rules, static
entries): each carried over under its agent key, or left out with keepalived 2.2.7's reason; the agent accepts
what is carried (validate)."""

from __future__ import annotations

import pytest

from hanode.migrate.keepalived import parse_text, translate
from hanode.migrate.validate import validate

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"   # body starts on line 4
PEER = "  unicast_src_ip 198.51.100.11\n  unicast_peer {\n    198.51.100.12\n  }\n"


def tr(text):
    return translate(parse_text(text, "k.conf"))


def instance(body: str, before: str = ""):
    result = tr(before + HEAD + body + "\n  virtual_ipaddress {\n    198.51.100.100/24\n  }\n}\n")
    inst = dict(result.config["vrrp_instances"]["VI_1"])
    for key in ("interface", "virtual_router_id", "virtual_ipaddresses"):
        inst.pop(key)
    return inst, [(i.line, i.keyword, i.category) for i in result.items], result


@pytest.mark.parametrize("body, expected", [
    ("use_vmac", {"use_vmac": True}),
    ("use_vmac vrrp51 02:00:00:00:01", {"use_vmac": "vrrp51 02:00:00:00:01"}),
    ("use_vmac\n  use_vmac_addr\n  vmac_xmit_base", {"use_vmac": True, "use_vmac_addr": True, "vmac_xmit_base": True}),
    ("use_ipvlan ipv51 198.51.100.51/24 private", {"use_ipvlan": "ipv51 198.51.100.51/24 private"}),
    ("use_ipvlan", {"use_ipvlan": True}),
    ("garp_extra_if 100", {"garp_extra_if": 100}),
    ("garp_extra_if all 100", {"garp_extra_if": "all 100"}),
    ("mcast_dst_ip 224.0.0.19", {"mcast_dst_ip": "224.0.0.19"}),
    ("check_unicast_src", {"check_unicast_src": True}),
    ("unicast_fault_no_peer", {"unicast_fault_no_peer": True}),
    ("virtual_routes {\n    src 198.51.100.100 to 198.18.0.0/16 via 198.51.100.254 dev eth0\n"
     "    blackhole 198.19.7.0/24\n  }",
     {"virtual_routes": ["src 198.51.100.100 to 198.18.0.0/16 via 198.51.100.254 dev eth0", "blackhole 198.19.7.0/24"]}),
    ("virtual_rules {\n    from 198.51.100.100 table 100 preference 100\n  }",
     {"virtual_rules": ["from 198.51.100.100 table 100 preference 100"]}),
])
def test_instance_keywords_are_carried(body, expected):
    inst, items, _result = instance(body)
    assert inst == expected and items == []


def test_unicast_ttl_is_carried_with_peers_and_dropped_without():
    inst, items, _result = instance(PEER + "  unicast_ttl 64")
    assert inst["unicast_ttl"] == 64 and items == []
    inst, items, result = instance("unicast_ttl 64")
    assert "unicast_ttl" not in inst and items == [(4, "unicast_ttl", "no meaning here")]
    assert "TTL 0" in result.items[0].reason


def test_keepalived_ignores_mcast_dst_ip_with_unicast_peers_and_xmit_base_without_vmac():
    inst, items, result = instance("mcast_dst_ip 224.0.0.19\n" + PEER + "  vmac_xmit_base")
    assert "mcast_dst_ip" not in inst and "vmac_xmit_base" not in inst
    assert items == [(4, "mcast_dst_ip", "no meaning here"), (9, "vmac_xmit_base", "no meaning here")]
    assert "multicast destination specified with unicast" in result.items[0].reason


def test_the_deprecated_vmac_garp_intvl_is_carried_as_garp_extra_if():
    inst, items, result = instance("vmac_garp_intvl 60")
    assert inst == {"garp_extra_if": 60} and items == []
    assert "deprecated name of garp_extra_if" in result.notes[0].message


def test_a_vip_with_use_vmac_keeps_the_word():
    result = tr(HEAD + "  virtual_ipaddress {\n    203.0.113.5/24 dev eth1 use_vmac\n  }\n}\n")
    assert result.config["vrrp_instances"]["VI_1"]["virtual_ipaddresses"] == ["203.0.113.5/24 dev eth1 use_vmac"]
    assert result.items == []


def test_global_keywords_are_carried():
    result = tr("global_defs {\n  vrrp_mcast_group4 224.0.0.19\n  vrrp_mcast_group6 ff02::13\n"
                "  vrrp_check_unicast_src\n  vrrp_garp_extra_if all 60\n  vmac_prefix vr\n  vmac_addr_prefix va\n}\n")
    assert result.config == {"vrrp_mcast_group4": "224.0.0.19", "vrrp_mcast_group6": "ff02::13",
                             "vrrp_check_unicast_src": True, "vrrp_garp_extra_if": "all 60", "vmac_prefix": "vr",
                             "vmac_addr_prefix": "va"}
    assert result.items == []
    old = tr("global_defs {\n  vrrp_vmac_garp_intvl 30\n}\n")
    assert old.config == {"vrrp_garp_extra_if": 30} and old.items == []


def test_static_blocks_are_carried_and_an_address_gets_keepalived_default_interface():
    text = ("static_ipaddress {\n  198.51.100.250/32\n  198.51.100.251/32 dev eth1 label eth1:s\n}\n"
            "static_routes {\n  198.19.9.0/24 via 198.51.100.254 dev eth0\n}\n"
            "static_rules {\n  to 198.19.9.0/24 table 102 preference 102\n}\n")
    result = tr(text)
    assert result.config == {"static_ipaddress": ["198.51.100.250/32 dev eth0", "198.51.100.251/32 dev eth1 label eth1:s"],
                             "static_routes": ["198.19.9.0/24 via 198.51.100.254 dev eth0"],
                             "static_rules": ["to 198.19.9.0/24 table 102 preference 102"]}
    assert result.items == [] and "keepalived puts it on eth0" in result.notes[0].message
    with_default = tr("global_defs {\n  default_interface eth2\n}\n" + text)
    assert with_default.config["static_ipaddress"][0] == "198.51.100.250/32 dev eth2"


def test_a_route_the_agent_refuses_is_reported_on_its_own_line():
    parsed = parse_text(HEAD + "  virtual_routes {\n    198.18.0.0/16 via 198.51.100.254\n"
                        "    198.19.0.1/16 dev eth0\n  }\n  virtual_ipaddress {\n    198.51.100.100/24\n  }\n}\n",
                        "k.conf")
    validated = validate(parsed)
    assert validated.translation.config["vrrp_instances"]["VI_1"]["virtual_routes"] == ["198.18.0.0/16 via 198.51.100.254"]
    [item] = validated.translation.items
    assert (item.line, item.keyword) == (6, "virtual_routes 198.19.0.1/16 dev eth0")
    assert "has host bits set" in item.reason and "did you mean 198.19.0.0/16" in item.reason
