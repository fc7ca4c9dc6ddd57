"""rtnetlink requests for routes and rules, bytes out (pure; beside hanode.vrrp.rtnl's links and addresses): RTM_NEWROUTE / RTM_DELROUTE from a Route,
RTM_NEWRULE / RTM_DELRULE from a Rule, with the flags and attributes keepalived 2.2.7 sends (vrrp_iproute.c
netlink_route, vrrp_iprule.c netlink_rule). Interface names become indexes through `ifindex`; the sequence number
is 0 (the sender sets it). Written by hand rather than with pyroute2's message classes because they lack some
attributes keepalived sends (RTAX_FASTOPEN_NO_COOKIE) and hide the request flags (prepend is NLM_F_CREATE alone)."""

from __future__ import annotations

import ipaddress
import struct
from typing import Callable

from hanode.config.ipnames import ROUTE_TYPES
from hanode.config.iproute import NextHop, Route
from hanode.config.iprule import Rule
from hanode.vrrp.rtnl import _attr as attr, _message

RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWRULE, RTM_DELRULE = 24, 25, 32, 33
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 1, 4, 0x100, 0x200, 0x400, 0x800
RT_TABLE_UNSPEC, RT_SCOPE_NOWHERE = 0, 255
RTA = {"dst": 1, "src": 2, "oif": 4, "gateway": 5, "priority": 6, "prefsrc": 7, "metrics": 8, "multipath": 9,
       "flow": 11, "table": 15, "via": 18, "pref": 20, "expires": 23}
RTAX = {"lock": 1, "mtu": 2, "window": 3, "rtt": 4, "rttvar": 5, "ssthresh": 6, "cwnd": 7, "advmss": 8,
        "reordering": 9, "hoplimit": 10, "initcwnd": 11, "features": 12, "rto_min": 13, "initrwnd": 14,
        "quickack": 15, "congctl": 16, "fastopen_no_cookie": 17}
RTNH_F_ONLINK = 4
FRA = {"dst": 1, "src": 2, "iifname": 3, "goto": 4, "priority": 6, "fwmark": 10, "flow": 11, "tun_id": 12,
       "suppress_ifgroup": 13, "suppress_prefixlength": 14, "table": 15, "fwmask": 16, "oifname": 17,
       "l3mdev": 19, "uid_range": 20, "protocol": 21, "ip_proto": 22, "sport_range": 23, "dport_range": 24}
FR_ACT = {"table": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}
FIB_RULE_INVERT = 2
MODE_FLAGS = {"prepend": 0, "add": NLM_F_EXCL, "append": NLM_F_APPEND}
RTMSG = struct.Struct("=BBBBBBBBI")     # family, dst_len, src_len, tos, table, protocol, scope, type, flags
FIBMSG = struct.Struct("=BBBBBBBBI")    # family, dst_len, src_len, tos, table, res1, res2, action, flags
RTNH = struct.Struct("=HBBi")           # len, flags, hops, ifindex

AF_INET, AF_INET6 = 2, 10
IfIndex = Callable[[str], int]


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def _network(text: str) -> tuple[bytes, int]:
    network = ipaddress.ip_network(text)
    return network.network_address.packed, network.prefixlen


def _gateway(via: str | None, via_family: int | None) -> bytes:
    if via is None:
        return b""
    if via_family is None:
        return attr(RTA["gateway"], _packed(via))
    family = AF_INET if via_family == 4 else AF_INET6
    return attr(RTA["via"], struct.pack("=H", family) + _packed(via))


def _metrics(route: Route) -> bytes:
    inner = b"".join(attr(RTAX[name], u32(value)) for name, value in route.metrics)
    if route.congctl:
        inner += attr(RTAX["congctl"], route.congctl.encode() + b"\0")
    if not inner:
        return b""
    locks = 0
    for name in route.locked:
        locks |= 1 << RTAX[name]
    if locks:
        inner += attr(RTAX["lock"], u32(locks))
    return attr(RTA["metrics"], inner)


def _nexthop(hop: NextHop, ifindex: IfIndex) -> bytes:
    attrs = _gateway(hop.via, hop.via_family)
    if hop.realms is not None:
        attrs += attr(RTA["flow"], u32(hop.realms))
    flags = RTNH_F_ONLINK if hop.onlink else 0
    index = ifindex(hop.dev) if hop.dev else 0
    return RTNH.pack(RTNH.size + len(attrs), flags, hop.weight - 1, index) + attrs


def route_message(route: Route, add: bool, ifindex: IfIndex) -> bytearray:
    """keepalived's netlink_route: a delete names the scope `nowhere` (any) and the type only when written."""
    dst, dst_len = _network(route.dst)
    table = route.table if route.table < 256 else RT_TABLE_UNSPEC
    rtype = ROUTE_TYPES[route.type] if add or route.type != "unicast" else 0
    scope = route.scope if add or route.scope else RT_SCOPE_NOWHERE
    flags = RTNH_F_ONLINK if route.onlink else 0
    src_len = 0
    attrs = attr(RTA["dst"], dst)
    if route.table >= 256:
        attrs += attr(RTA["table"], u32(route.table))
    if route.source_prefix:
        src, src_len = _network(route.source_prefix)
        attrs += attr(RTA["src"], src)
    if route.src:
        attrs += attr(RTA["prefsrc"], _packed(route.src))
    attrs += _gateway(route.via, route.via_family)
    if route.dev:
        attrs += attr(RTA["oif"], u32(ifindex(route.dev)))
    if route.metric is not None:
        attrs += attr(RTA["priority"], u32(route.metric))
    if route.realms is not None:
        attrs += attr(RTA["flow"], u32(route.realms))
    if route.expires is not None:
        attrs += attr(RTA["expires"], u32(route.expires))
    if route.pref is not None:
        attrs += attr(RTA["pref"], bytes([route.pref]))
    attrs += _metrics(route)
    if route.nexthops:
        attrs += attr(RTA["multipath"], b"".join(_nexthop(h, ifindex) for h in route.nexthops))
    family = AF_INET if route.family == 4 else AF_INET6
    header = RTMSG.pack(family, dst_len, src_len, route.tos, table, route.protocol, scope, rtype, flags)
    request = NLM_F_CREATE | MODE_FLAGS[route.mode] if add else 0
    return _message(RTM_NEWROUTE if add else RTM_DELROUTE, request | NLM_F_REQUEST | NLM_F_ACK, 0, header + attrs)


def rule_message(rule: Rule, priority: int, add: bool) -> bytearray:
    """keepalived's netlink_rule (a new rule: NLM_F_CREATE | NLM_F_EXCL); `priority` is the rule's own or the
    number given it at start."""
    attrs, src_len, dst_len = b"", 0, 0
    if rule.source:
        src, src_len = _network(rule.source)
        attrs += attr(FRA["src"], src)
    if rule.destination:
        dst, dst_len = _network(rule.destination)
        attrs += attr(FRA["dst"], dst)
    attrs += attr(FRA["priority"], u32(priority))
    table = 0
    if rule.action == "table" and not rule.l3mdev:
        table = (rule.table or 254) if (rule.table or 254) < 256 else RT_TABLE_UNSPEC
        if rule.table and rule.table >= 256:
            attrs += attr(FRA["table"], u32(rule.table))
    for key, value in (("fwmark", rule.fwmark), ("fwmask", rule.fwmask), ("flow", rule.realms),
                       ("suppress_prefixlength", rule.suppress_prefixlength),
                       ("suppress_ifgroup", rule.suppress_ifgroup), ("goto", rule.goto)):
        if value is not None:
            attrs += attr(FRA[key], u32(value))
    for key, name in (("iifname", rule.iif), ("oifname", rule.oif)):
        if name:
            attrs += attr(FRA[key], name.encode() + b"\0")
    if rule.tunnel_id is not None:
        attrs += attr(FRA["tun_id"], struct.pack("!Q", rule.tunnel_id))
    if rule.uidrange is not None:
        attrs += attr(FRA["uid_range"], struct.pack("=II", *rule.uidrange))
    if rule.l3mdev:
        attrs += attr(FRA["l3mdev"], b"\1")
    attrs += attr(FRA["protocol"], bytes([rule.protocol]))
    if rule.ipproto is not None:
        attrs += attr(FRA["ip_proto"], bytes([rule.ipproto]))
    for key, ports in (("sport_range", rule.sport), ("dport_range", rule.dport)):
        if ports is not None:
            attrs += attr(FRA[key], struct.pack("=HH", *ports))
    family = AF_INET if rule.family == 4 else AF_INET6
    header = FIBMSG.pack(family, dst_len, src_len, rule.tos, table, 0, 0, FR_ACT[rule.action],
                         FIB_RULE_INVERT if rule.invert else 0)
    flags = (NLM_F_CREATE | NLM_F_EXCL if add else 0) | NLM_F_REQUEST | NLM_F_ACK
    return _message(RTM_NEWRULE if add else RTM_DELRULE, flags, 0, header + attrs)
