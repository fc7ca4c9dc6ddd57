"""The pure parts of what the VRRP process puts into the kernel besides VIPs: route and rule messages (decoded by
pyroute2, an independent reader), macvlan / ipvlan link messages, the VMAC decisions and sysctl plans, rule
numbering, the receive-side source check, and how status shows them."""

from __future__ import annotations

import struct

import pytest
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from pure_helpers import VIP4, config_raw, instance_raw
from hanode.config.iproute import parse_route
from hanode.config.iprule import parse_rule
from hanode.config.model import Ipvlan, Vmac
from hanode.config.parse import parse_config
from hanode.control.render import render_status
from hanode.lab.sniffer import frame_extras
from hanode.vrrp import rtnl, rtnl_link, rtnl_route, vmac_plan
from hanode.vrrp.accept import check_source
from hanode.vrrp.routes_plan import numbered_rules
from hanode.vrrp.vmac_plan import LinkInfo

INDEX = {"eth0": 2, "eth1": 3, "vrrp.51": 9}


def decoded(cls, message: bytearray):
    msg = cls(bytes(message))
    msg.decode()
    return msg


def route_msg(text: str, add: bool = True):
    return decoded(rtmsg, rtnl_route.route_message(parse_route(text)[0], add, INDEX.__getitem__))


# ----- routes and rules on the wire --------------------------------------------------------------------------

def test_a_route_is_keepalived_s_message():
    msg = route_msg("198.19.8.0/24 via 198.51.100.254 dev eth0 metric 7 table 300 mtu lock 1400 rtt 10ms "
                    "src 198.51.100.100 realms 2/3")
    assert msg["header"]["type"] == rtnl_route.RTM_NEWROUTE
    assert msg["header"]["flags"] == rtnl_route.NLM_F_REQUEST | rtnl_route.NLM_F_ACK | rtnl_route.NLM_F_CREATE
    assert (msg["family"], msg["dst_len"], msg["table"], msg["proto"], msg["scope"], msg["type"]) == (2, 24, 0, 18, 0, 1)
    assert dict(msg["attrs"][:-1]) == {"RTA_DST": "198.19.8.0", "RTA_TABLE": 300, "RTA_PREFSRC": "198.51.100.100",
                                       "RTA_GATEWAY": "198.51.100.254", "RTA_OIF": 2, "RTA_PRIORITY": 7,
                                       "RTA_FLOW": 2 << 16 | 3}
    assert [tuple(a[:2]) for a in msg.get_attr("RTA_METRICS")["attrs"]] == [
        ("RTAX_MTU", 1400), ("RTAX_RTT", 80), ("RTAX_LOCK", 1 << 2)]


def test_route_modes_types_and_deletes():
    assert route_msg("198.19.8.0/24 dev eth0 add")["header"]["flags"] & rtnl_route.NLM_F_EXCL
    assert route_msg("198.19.8.0/24 dev eth0 append")["header"]["flags"] & rtnl_route.NLM_F_APPEND
    blackhole = route_msg("blackhole 198.19.7.0/24")
    assert (blackhole["type"], blackhole["table"]) == (6, 254)
    gone = route_msg("198.19.8.0/24 dev eth0", add=False)   # keepalived's delete: scope nowhere, any type
    assert (gone["header"]["type"], gone["scope"], gone["type"], gone["proto"]) == (rtnl_route.RTM_DELROUTE, 255, 0, 18)
    assert route_msg("blackhole 198.19.7.0/24", add=False)["type"] == 6


def test_multipath_and_ipv6():
    msg = route_msg("198.19.0.0/16 nexthop via 198.51.100.1 dev eth0 weight 2 onlink nexthop via 203.0.113.1 dev eth1")
    hops = msg.get_attr("RTA_MULTIPATH")
    assert [(h["oif"], h["hops"], h["flags"], h.get_attr("RTA_GATEWAY")) for h in hops] == [
        (2, 1, 4, "198.51.100.1"), (3, 0, 0, "203.0.113.1")]
    v6 = route_msg("2001:db8:5::/64 from 2001:db8:6::/64 via 2001:db8:100::1 pref high expires 30")
    expires = int.from_bytes(bytes.fromhex(v6.get_attr("RTA_EXPIRES").replace(":", "")), "little")  # pyroute2: hex
    assert (v6["family"], v6["src_len"], v6.get_attr("RTA_SRC"), v6.get_attr("RTA_PREF"), expires) == (
        10, 64, "2001:db8:6::", 1, 30)


def test_a_rule_is_keepalived_s_message():
    rule = parse_rule("from 198.51.100.0/24 to 198.19.0.0/16 table 300 iif eth0 fwmark 0x10/0xff not tos 8 "
                      "uidrange 100-200 ipproto tcp dport 80-90")[0]
    msg = decoded(fibmsg, rtnl_route.rule_message(rule, 100, True))
    assert msg["header"]["flags"] & rtnl_route.NLM_F_EXCL
    assert (msg["family"], msg["src_len"], msg["dst_len"], msg["tos"], msg["table"], msg["action"], msg["flags"]) == (
        2, 24, 16, 8, 0, 1, 2)
    attrs = dict(msg["attrs"])
    assert {k: attrs[k] for k in ("FRA_SRC", "FRA_DST", "FRA_PRIORITY", "FRA_TABLE", "FRA_FWMARK", "FRA_FWMASK",
                                  "FRA_IIFNAME", "FRA_PROTOCOL", "FRA_IP_PROTO")} == {
        "FRA_SRC": "198.51.100.0", "FRA_DST": "198.19.0.0", "FRA_PRIORITY": 100, "FRA_TABLE": 300, "FRA_FWMARK": 16,
        "FRA_FWMASK": 255, "FRA_IIFNAME": "eth0", "FRA_PROTOCOL": 18, "FRA_IP_PROTO": 6}
    goto = decoded(fibmsg, rtnl_route.rule_message(parse_rule("from all preference 5 goto 9")[0], 5, False))
    assert (goto["header"]["type"], goto["action"], goto.get_attr("FRA_GOTO")) == (rtnl_route.RTM_DELRULE, 2, 9)


def test_rules_without_a_preference_are_numbered_as_keepalived_numbers_them():
    config, _found = parse_config(config_raw({"A": instance_raw(virtual_rules=["from 198.51.100.100 table 5",
                                                                               "from 2001:db8::/64 table 5",
                                                                               "fwmark 3 table 6 preference 50"]),
                                              "B": instance_raw(virtual_router_id=52, virtual_rules="to 198.19.0.0/16 table 7")},
                                             static_rules=["from 198.51.100.9 table 8"]))
    numbered = numbered_rules(config)
    assert [p for _rule, p in numbered["static"]] == [16384]
    assert [p for _rule, p in numbered["A"]] == [16383, 16384, 50]
    assert [p for _rule, p in numbered["B"]] == [16382]


# ----- links -----------------------------------------------------------------------------------------------------

def test_macvlan_and_ipvlan_messages_and_the_link_dump_reader():
    vmac = Vmac(ifname="vrrp.51", mac="00:00:5e:00:01:33", base="eth0", family=4)
    msg = decoded(ifinfmsg, rtnl_link.new_vmac(vmac, 2))
    info = msg.get_attr("IFLA_LINKINFO")
    assert (msg.get_attr("IFLA_IFNAME"), msg.get_attr("IFLA_LINK"), msg.get_attr("IFLA_ADDRESS")) == (
        "vrrp.51", 2, "00:00:5e:00:01:33")
    assert info.get_attr("IFLA_INFO_KIND") == "macvlan"
    assert info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_MACVLAN_MODE") == "private"
    ipvlan = decoded(ifinfmsg, rtnl_link.new_ipvlan(Ipvlan("ipv51", "eth0", "198.51.100.5/24", "vepa"), 2))
    assert ipvlan.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA").get_attr("IFLA_IPVLAN_MODE") == 0
    info = rtnl.attributes(rtnl.attributes(bytes(rtnl_link.new_ipvlan(Ipvlan("i", "eth0", None, "vepa"), 2))[32:], 0)[
        rtnl_link.IFLA_LINKINFO], 0)   # IFLA_IPVLAN_FLAGS, which pyroute2 does not know
    assert rtnl.attributes(info[rtnl_link.IFLA_INFO_DATA], 0)[rtnl_link.IFLA_IPVLAN_FLAGS] == struct.pack("=H", 2)
    up = decoded(ifinfmsg, rtnl_link.link_up(9))
    assert (up["index"], up["flags"], up["change"]) == (9, 1, 1)
    # a dump part is the same layout as the request: read our own message back
    payload = bytes(rtnl_link.new_vmac(vmac, 2))[16:]
    payload = payload[:4] + struct.pack("=i", 9) + payload[8:]
    assert rtnl_link.parse_link_info(payload) == LinkInfo("vrrp.51", 9, "macvlan", "private", 2, "00:00:5e:00:01:33")


VMAC = Vmac(ifname="vrrp.51", mac="00:00:5e:00:01:33", base="eth0", family=4)
ETH0 = LinkInfo("eth0", 2, "veth", None, 5, "02:00:00:00:00:01")


@pytest.mark.parametrize("links, owned, action, removed", [
    ({"eth0": ETH0}, set(), vmac_plan.CREATE, ()),
    ({}, set(), vmac_plan.WAIT, ()),
    ({"eth0": ETH0, "vrrp.51": LinkInfo("vrrp.51", 9, "macvlan", "private", 2, VMAC.mac)}, set(), vmac_plan.ADOPT, ()),
    ({"eth0": ETH0, "vrrp.51": LinkInfo("vrrp.51", 9, "macvlan", "bridge", 2, VMAC.mac)}, set(), vmac_plan.REPLACE, ()),
    ({"eth0": ETH0, "vrrp.51": LinkInfo("vrrp.51", 9, "veth", None, 2, "02:00:00:00:00:09")}, set(),
     vmac_plan.CONFLICT, ()),
    ({"eth0": ETH0, "old.51": LinkInfo("old.51", 8, "macvlan", "private", 2, VMAC.mac)}, {"old.51"}, vmac_plan.CREATE,
     ("old.51",)),
    ({"eth0": ETH0, "ka.51": LinkInfo("ka.51", 8, "macvlan", "private", 2, VMAC.mac)}, set(), vmac_plan.CONFLICT, ()),
])
def test_vmac_decisions(links, owned, action, removed):
    decision = vmac_plan.decide_vmac(VMAC, links, owned)
    assert (decision.action, decision.remove) == (action, removed)


def test_sysctl_plans():
    assert vmac_plan.vmac_sysctls(VMAC) == {"ipv4/conf/vrrp.51/arp_ignore": 1, "ipv4/conf/vrrp.51/accept_local": 1,
                                            "ipv4/conf/vrrp.51/rp_filter": 0,
                                            "ipv4/conf/vrrp.51/promote_secondaries": 1,
                                            "ipv6/conf/vrrp.51/disable_ipv6": 1}
    v6 = Vmac(ifname="vrrp.52", mac="00:00:5e:00:02:34", base="eth0", family=6)
    assert vmac_plan.vmac_sysctls(v6) == {"ipv6/conf/vrrp.52/disable_ipv6": 0, "ipv6/conf/vrrp.52/addr_gen_mode": 1}
    assert vmac_plan.base_sysctls(v6) == {}
    assert vmac_plan.rp_filter_plan(0, 0, {"eth0": 1}) == {}
    assert vmac_plan.rp_filter_plan(2, 1, {"eth0": 1, "eth1": 2, "lo": 0}) == {
        "ipv4/conf/eth0/rp_filter": 2, "ipv4/conf/lo/rp_filter": 2, "ipv4/conf/default/rp_filter": 2,
        "ipv4/conf/all/rp_filter": 0}


# ----- receiving, the sniffer, status ----------------------------------------------------------------------------

def test_source_checks():
    config, _found = parse_config(config_raw({"U": instance_raw(unicast_peers=["198.51.100.3"], check_unicast_src=True),
                                              "M": instance_raw(virtual_router_id=52, mcast_dst_ip="224.0.0.19")}))
    unicast, multicast = config.vrrp_instances["U"], config.vrrp_instances["M"]
    stranger = check_source(unicast, "198.51.100.9", "198.51.100.2")
    assert (stranger.counter, stranger.from_stranger, stranger.message) == (
        "addr_list_err", True, "unicast source address 198.51.100.9 not a unicast peer")
    assert check_source(unicast, "198.51.100.3", "198.51.100.2") is None
    assert check_source(multicast, "198.51.100.9", "224.0.0.19") is None
    other = check_source(multicast, "198.51.100.9", "224.0.0.18")
    assert other.counter == "addr_list_err" and "listens on 224.0.0.19" in other.message


def test_the_sniffer_reads_source_mac_and_ttl():
    ip = bytes([0x45, 0xC0, 0, 40, 0, 0, 0, 0, 64, 112]) + bytes(10)
    frame = bytes.fromhex("01005e000012 00005e000133 0800") + ip
    assert frame_extras(frame) == {"src_mac": "00:00:5e:00:01:33", "ttl": 64}


def test_status_text_names_the_vmac_and_what_failed():
    instance = {"state": "MASTER", "priority": 150, "effective_priority": 150, "virtual_router_id": 51,
                "interface": "eth0", "master_address": "198.51.100.2", "vips": [f"{VIP4}/24 dev vrrp.51"],
                "vmac": {"interfaces": [
                    {"interface": "vrrp.51", "kind": "macvlan", "base": "eth0", "mac": "00:00:5e:00:01:33",
                     "state": "created", "error": None}]},
                "virtual_routes": [{"entry": "198.18.0.0/16 via 198.51.100.254", "state": "added", "error": None},
                                   {"entry": "198.19.0.0/16 dev eth9", "state": "error", "error": "No such device"}],
                "virtual_rules": []}
    text = render_status({"agent": {}, "instances": {"VI_1": instance},
                          "vrrp": {"static": {"routes": [{"entry": "198.20.0.0/16 dev eth0", "state": "added",
                                                          "error": None}]}}})
    assert "VI_1: macvlan vrrp.51 00:00:5e:00:01:33 on eth0 created" in text
    assert "VI_1: virtual routes and rules: 1 of 2 added; 198.19.0.0/16 dev eth9: error (No such device)" in text
    assert "static: addresses, routes and rules: 1 of 1 added" in text
