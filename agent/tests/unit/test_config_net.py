"""The agent config's interface keys: use_vmac (names, MACs, the VIPs that go on it), use_vmac_addr,
vmac_xmit_base, use_ipvlan (refused on a host without ipvlan), garp_extra_if, multicast groups, unicast peer
options, routes and rules, static entries; every problem names its field."""

from __future__ import annotations

import copy

import pytest

from pure_helpers import VIP4, VIP6, config_raw, instance_raw
from hanode.config.host import HostCaps
from hanode.config.model import Vmac
from hanode.config.parse import parse_config
from hanode.config.parse_vrrp_net import vmac_name
from hanode.config.problems import ConfigError
from hanode.vrrp.track import evaluate

HOST = HostCaps(ipvs=False, macvlan=True, ipvlan=True, iproute2={"table": {"vips": 200}})
NO_IPVLAN = HostCaps(ipvs=False, macvlan=True, ipvlan=False, ipvlan_why="kernel 6.1 is built without ipvlan")


def parse(raw, host=HOST):
    return parse_config(copy.deepcopy(raw), host=host)


def one(host=HOST, **kw):
    config, problems = parse(config_raw({"VI_1": instance_raw(**kw)}), host)
    return config.vrrp_instances["VI_1"], [str(p) for p in problems.warnings]


def errors(raw, host=HOST) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(raw, host)
    return str(info.value).splitlines()


def instance_errors(host=HOST, **kw) -> list[str]:
    return errors(config_raw({"VI_1": instance_raw(**kw)}), host)


# ----- use_vmac -------------------------------------------------------------------------------------------------

def test_use_vmac_makes_keepalived_s_vmac_and_puts_the_vips_on_it():
    vi, warnings = one(use_vmac=True, virtual_ipaddresses=[f"{VIP4}/24", "203.0.113.9/24 dev eth1"])
    assert vi.vmac == Vmac(ifname="vrrp.51", mac="00:00:5e:00:01:33", base="eth0", family=4)
    assert [v.dev for v in vi.vips] == ["vrrp.51", "eth1"], "an address on another dev stays there"
    assert vi.wire_interface == "vrrp.51" and warnings == []


def test_names_and_macs_as_keepalived_gives_them():
    v6, _found = one(use_vmac="vip6", version=3, virtual_ipaddresses=[f"{VIP6}/64"])
    assert (v6.vmac.ifname, v6.vmac.mac) == ("vip6", "00:00:5e:00:02:33")
    given, _found = one(use_vmac="vrrp51 02:00:00:00:01")
    assert (given.vmac.ifname, given.vmac.mac) == ("vrrp51", "02:00:00:00:01:33"), "five octets: the VRID is sixth"
    assert one(use_vmac={"mac": "02:11:22:33:44:55"})[0].vmac.mac == "02:11:22:33:44:55"
    # the same VRID in both families: IPv6 takes vrrp6.VRID, as keepalived's create_vmac_name does
    raw = config_raw({"A": instance_raw(use_vmac=True),
                      "B": instance_raw(use_vmac=True, version=3, virtual_ipaddresses=[f"{VIP6}/64"])},
                     vmac_prefix="vr")
    config, _problems = parse(raw)
    assert [i.vmac.ifname for i in config.vrrp_instances.values()] == ["vr.51", "vr6.51"]
    assert vmac_name("a-very-long-prefix", 51, 4, set()) == "a-very-long-.51"   # 15 characters, as keepalived cuts


def test_use_vmac_addr_and_the_use_vmac_word_give_addresses_vmacs_of_their_own():
    vi, _found = one(use_vmac=True, use_vmac_addr=True, virtual_ipaddresses=[f"{VIP4}/24"],
                     virtual_ipaddress_excluded=["203.0.113.9/24 dev eth1", "203.0.113.10/24 dev eth1"])
    assert [(v.ifname, v.base, v.mac) for v in vi.address_vmacs] == [("vrrp1.51", "eth1", "00:00:5e:00:01:33")]
    assert {v.dev for v in vi.excluded_vips} == {"vrrp1.51"}
    word, _found = one(virtual_ipaddresses=[f"{VIP4}/24", "203.0.113.9/24 dev eth1 use_vmac"])
    assert word.vmac is None and [v.ifname for v in word.address_vmacs] == ["vrrp.51"]
    assert word.vips[1].dev == "vrrp.51" and word.vips[0].dev is None


def test_unicast_with_a_vmac_sends_from_the_base_as_keepalived_requires():
    vi, warnings = one(use_vmac=True, unicast_src_ip="198.51.100.2", unicast_peers=["198.51.100.3"])
    assert vi.vmac_xmit_base and vi.wire_interface == "eth0"
    assert warnings == ["warning: vrrp_instances.VI_1.use_vmac: with unicast_peers, adverts go from the base "
                        "interface (vmac_xmit_base), as keepalived requires"]


@pytest.mark.parametrize("overrides, line", [
    ({"use_vmac": "a:b"}, "use_vmac: 'a:b' is not a MAC address"),
    ({"use_vmac": "vr 01:00:5e:00:00"}, "use_vmac: 01:00:5e:00:00 is a multicast MAC address"),
    ({"use_vmac": "00:00:5e:00:01:07"}, "use_vmac: 00:00:5e:00:01:07 is an RFC 5798 VRRP MAC"),
    ({"use_vmac": "a b"}, "use_vmac: must be [NAME] [MAC], got 'a b'"),
    ({"use_vmac": "sixteen-chars-xx"}, "use_vmac: 'sixteen-chars-xx' is not a valid interface name"),
    ({"use_vmac": 5}, "use_vmac: must be true, a name and/or MAC"),
    ({"vmac_xmit_base": True}, "vmac_xmit_base: needs use_vmac"),
    ({"use_vmac": True, "virtual_ipaddresses": [f"{VIP4}/24 label eth0:1"]},
     "virtual_ipaddresses[0]: label 'eth0:1' must start with the interface name 'vrrp.51'"),
    ({"use_vmac": True, "use_ipvlan": "ipv 198.51.100.9/24"}, "use_ipvlan: and use_vmac exclude each other"),
])
def test_vmac_errors_name_their_field(overrides, line):
    assert any(e.startswith("vrrp_instances.VI_1." + line) for e in instance_errors(**overrides)), \
        instance_errors(**overrides)


def test_two_instances_cannot_share_a_vmac():
    raw = config_raw({"A": instance_raw(use_vmac="vm"), "B": instance_raw(virtual_router_id=52, use_vmac="vm")})
    assert "vrrp_instances.B.use_vmac: vm is already the VMAC of A" in errors(raw)


def test_a_host_without_macvlan_or_ipvlan_refuses_them_and_none_means_not_checked():
    no_macvlan = HostCaps(ipvs=False, macvlan=False, macvlan_why="no macvlan here")
    assert instance_errors(no_macvlan, use_vmac=True) == [
        "vrrp_instances.VI_1.use_vmac: needs macvlan interfaces, which this host cannot create: no macvlan here"]
    assert instance_errors(NO_IPVLAN, use_ipvlan="ipv51 198.51.100.51/24") == [
        "vrrp_instances.VI_1.use_ipvlan: needs ipvlan interfaces, which this host cannot create: kernel 6.1 is built "
        "without ipvlan"]
    vi, warnings = one(None, use_ipvlan="ipv51 198.51.100.51/24 private")
    assert (vi.ipvlan.ifname, vi.ipvlan.address, vi.ipvlan.mode, vi.ipvlan.base) == (
        "ipv51", "198.51.100.51/24", "private", "eth0")
    assert vi.vips[0].dev == "ipv51" and vi.wire_interface == "ipv51"
    assert "not checked against a kernel here" in warnings[0]
    assert "an IPv4 instance needs an address for its ipvlan" in instance_errors(use_ipvlan=True)[0]


# ----- multicast groups, unicast peers --------------------------------------------------------------------------

def test_multicast_groups():
    config, _found = parse(config_raw({"A": instance_raw(), "B": instance_raw(virtual_router_id=52, mcast_dst_ip="224.0.0.20"),
                                       "C": instance_raw(virtual_router_id=53, version=3,
                                                         virtual_ipaddresses=[f"{VIP6}/64"])},
                                      vrrp_mcast_group4="224.0.0.19", vrrp_mcast_group6="ff02::13"))
    assert [i.multicast_group for i in config.vrrp_instances.values()] == ["224.0.0.19", "224.0.0.20", "ff02::13"]
    assert one()[0].multicast_group == "224.0.0.18"


@pytest.mark.parametrize("top, instance, line", [
    ({"vrrp_mcast_group4": "198.51.100.1"}, {}, "vrrp_mcast_group4: 198.51.100.1 is not a multicast address"),
    ({"vrrp_mcast_group4": "ff02::12"}, {}, "vrrp_mcast_group4: ff02::12 is IPv6, expected an IPv4 multicast group"),
    ({"vrrp_mcast_group6": "ff05::12"}, {}, "vrrp_mcast_group6: ff05::12 is not a link-local multicast address"),
    ({}, {"mcast_dst_ip": "224.0.0.19", "unicast_peers": ["198.51.100.3"]},
     "vrrp_instances.VI_1.mcast_dst_ip: is for multicast adverts, but this instance has unicast_peers"),
    ({}, {"unicast_ttl": 0}, "vrrp_instances.VI_1.unicast_ttl: must be 1..255, got 0"),
    ({}, {"garp_extra_if": "some 5"}, "vrrp_instances.VI_1.garp_extra_if: must be seconds 0..86400"),
    ({"vmac_prefix": "a/b"}, {}, "vmac_prefix: 'a/b' cannot start an interface name"),
])
def test_group_and_peer_errors_name_their_field(top, instance, line):
    found = errors(config_raw({"VI_1": instance_raw(**instance)}, **top))
    assert any(e.startswith(line) for e in found), found


def test_unicast_options():
    vi, warnings = one(unicast_src_ip="198.51.100.2", unicast_peers=["198.51.100.3"], unicast_ttl=64,
                       check_unicast_src=True, garp_extra_if="all 30")
    assert (vi.unicast_ttl, vi.check_unicast_src, vi.garp_extra_if_ms, vi.garp_extra_if_all) == (64, True, 30000, True)
    assert vi.multicast_group == "224.0.0.18" and warnings == []
    lone, warnings = one(unicast_ttl=5)
    assert lone.unicast_ttl is None and "has no effect without unicast_peers" in warnings[0]
    config, _found = parse(config_raw({"VI_1": instance_raw(unicast_peers=["198.51.100.3"])}, vrrp_check_unicast_src=True,
                                      vrrp_garp_extra_if=60))
    vi = config.vrrp_instances["VI_1"]
    assert vi.check_unicast_src and (vi.garp_extra_if_ms, vi.garp_extra_if_all) == (60000, False)


def test_unicast_fault_no_peer_and_the_vmac_are_tracked():
    alone, _found = one(unicast_fault_no_peer=True)
    assert evaluate(alone, {"eth0": True}, {}, {}).fault_reasons == ("unicast without any peers (unicast_fault_no_peer)",)
    vmac, _found = one(use_vmac=True)
    assert evaluate(vmac, {"eth0": True}, {}, {}).fault_reasons == ("VMAC vrrp.51 missing",)
    assert evaluate(vmac, {"eth0": True, "vrrp.51": False}, {}, {}).fault_reasons == ("VMAC vrrp.51 down",)
    assert evaluate(vmac, {"eth0": True, "vrrp.51": True}, {}, {}).fault_reasons == ()


# ----- routes, rules, static ------------------------------------------------------------------------------------

def test_routes_and_rules_use_the_host_s_names():
    vi, _found = one(virtual_routes=["198.18.0.0/16 via 198.51.100.254 table vips"],
                     virtual_rules=["from 198.51.100.100 lookup vips preference 10"])
    assert vi.virtual_routes[0].table == 200 and vi.virtual_rules[0].table == 200
    assert instance_errors(None, virtual_routes=["198.18.0.0/16 dev eth0 table vips"])[0].startswith(
        "vrrp_instances.VI_1.virtual_routes[0]: table 'vips' is neither a number nor a name")
    assert instance_errors(virtual_rules=["from all table 5 preference 5", "from all table 5 preference 5"]) == [
        "vrrp_instances.VI_1.virtual_rules[1]: is the same rule as vrrp_instances.VI_1.virtual_rules[0]"]


def test_static_entries():
    config, _found = parse(config_raw(static_ipaddress=["198.51.100.250/32 dev eth0"],
                                      static_routes=["198.19.9.0/24 via 198.51.100.254 dev eth0"],
                                      static_rules="to 198.19.9.0/24 table 102 preference 102"))
    static = config.sections["static"]
    assert [a.text() for a in static.addresses] == ["198.51.100.250/32 dev eth0"]
    assert static.routes[0].dst == "198.19.9.0/24" and static.rules[0].priority == 102
    assert errors(config_raw(static_ipaddress=["198.51.100.250/32"])) == [
        "static_ipaddress[0]: needs dev: a static address names its interface (keepalived's default_interface, eth0 "
        "unless set, is not assumed)"]
    assert errors(config_raw(static_routes=["bogus"])) == [
        "static_routes[0]: destination 'bogus' is not an address or prefix in 'bogus'"]
