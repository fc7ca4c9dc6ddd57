"""keepalived's route and rule grammar (virtual_routes, virtual_rules, static_*): every attribute keepalived 2.2.7
accepts is read into the model with keepalived's defaults; what it refuses, or what hanode refuses where
keepalived goes on wrongly, names the word."""

from __future__ import annotations

import pytest

from hanode.config.ipnames import WordError, realms
from hanode.config.iproute import NextHop, parse_route
from hanode.config.iprule import parse_rule


def route(text, names=None):
    found, _warnings = parse_route(text, names)
    return found


def rule(text, names=None):
    found, _warnings = parse_rule(text, names)
    return found


# routes ---------------------------------------------------------------------------------------------------------

def test_a_plain_route_gets_keepalived_defaults():
    r = route("198.51.100.0/24 via 203.0.113.254 dev eth1")
    assert (r.family, r.dst, r.via, r.dev, r.type) == (4, "198.51.100.0/24", "203.0.113.254", "eth1", "unicast")
    assert (r.table, r.protocol, r.scope, r.mode, r.metric, r.no_track) == (254, 18, 0, "prepend", None, False)


def test_the_manual_examples_read_as_written():
    r = route("src 192.168.100.1 to 192.168.109.0/24 via 192.168.200.254 dev eth1")
    assert (r.src, r.dst, r.via, r.dev) == ("192.168.100.1", "192.168.109.0/24", "192.168.200.254", "eth1")
    assert route("192.168.111.0/24 dev eth2 no_track").no_track
    assert route("blackhole 192.168.114.0/24").type == "blackhole"
    assert route("to unreachable 192.168.115.0/24").type == "unreachable"
    gw, warnings = parse_route("0.0.0.0/0 gw 192.168.0.1 table 100")
    assert (gw.dst, gw.via, gw.table) == ("0.0.0.0/0", "192.168.0.1", 100)
    assert warnings == ["'gw' is deprecated in keepalived: write 'via'"]


def test_every_metric_and_flag_of_the_manual_example():
    r = route("192.168.200.0/24 dev p33p1.2 table 6909 tos 0x04 protocol bird scope link priority 12 mtu 1000 "
              "hoplimit 100 advmss 101 rtt 102 rttvar 103 reordering 104 window 105 cwnd 106 ssthresh lock 107 "
              "realms 3/20 rto_min 108 initcwnd 109 initrwnd 110 features ecn quickack 1 congctl lock cubic add")
    assert (r.tos, r.table, r.scope, r.metric, r.mode, r.realms) == (4, 6909, 253, 12, "add", 3 << 16 | 20)
    assert dict(r.metrics) == {"mtu": 1000, "hoplimit": 100, "advmss": 101, "rtt": 102, "rttvar": 103,
                               "reordering": 104, "window": 105, "cwnd": 106, "ssthresh": 107, "rto_min": 108,
                               "initcwnd": 109, "initrwnd": 110, "features": 1, "quickack": 1}
    assert set(r.locked) == {"ssthresh", "congctl"} and r.congctl == "cubic"
    assert r.protocol == 18, "a tracked route is keepalived's (18) whatever protocol is written, as in keepalived"


def test_times_convert_to_kernel_units_as_get_time_rtt_does():
    assert dict(route("198.51.100.0/24 dev eth0 rtt 10ms rttvar 1s rto_min 200ms").metrics) == {
        "rtt": 80, "rttvar": 4000, "rto_min": 200}
    assert dict(route("198.51.100.0/24 dev eth0 rtt 3").metrics) == {"rtt": 3}   # raw: kernel units


def test_ipv6_only_words():
    r = route("2001:db8:5::/64 from 2001:db8:6::/64 via 2001:db8:100::1 expires 300 pref high fastopen_no_cookie 1")
    assert (r.family, r.source_prefix, r.expires, r.pref) == (6, "2001:db8:6::/64", 300, 1)
    assert dict(r.metrics) == {"fastopen_no_cookie": 1}
    assert route("inet6 default dev eth0").dst == "::/0"
    assert route("default6 dev eth0").dst == "::/0"


def test_no_track_keeps_the_protocol_written():
    assert route("198.51.100.0/24 dev eth0 protocol bird no_track").protocol == 12
    assert route("198.51.100.0/24 dev eth0 protocol 99 no_track").protocol == 99


def test_multipath_nexthops_and_the_deprecated_or():
    r = route("192.168.100.0/24 table 6909 nexthop via 192.168.101.1 dev eth1 onlink weight 1 "
              "nexthop via 192.168.101.2 dev eth2 weight 256")
    assert r.nexthops == (NextHop(via="192.168.101.1", dev="eth1", weight=1, onlink=True),
                          NextHop(via="192.168.101.2", dev="eth2", weight=256))
    old = route("192.168.113.0/24 via 192.168.200.254 or 192.168.100.254 dev eth1")
    assert old.dev is None and [(h.via, h.dev) for h in old.nexthops] == [("192.168.200.254", "eth1"),
                                                                          ("192.168.100.254", "eth1")]


def test_a_gateway_of_the_other_family_is_kept_as_such():
    r = route("198.51.100.0/24 via inet6 fe80::1 dev eth0")
    assert (r.family, r.via, r.via_family) == (4, "fe80::1", 6)


def test_names_from_the_host_and_the_builtin_ones():
    host = {"table": {"vips": 200, "other": 16}}
    assert route("198.51.100.0/24 dev eth0 table vips", host).table == 200
    assert route("198.51.100.0/24 dev eth0 table other", host).table == 16
    assert route("198.51.100.0/24 dev eth0 table local proto static scope host tos AF11").table == 255
    assert realms("cosmos/7") == 7


@pytest.mark.parametrize("text, message", [
    ("198.51.100.1/24 dev eth0", "has host bits set (the kernel refuses it): did you mean 198.51.100.0/24?"),
    ("dev eth0", "a route needs a destination"),
    ("198.51.100.0/24 via 2001:db8::1", "via 2001:db8::1 is IPv6 but the route is IPv4"),
    ("198.51.100.0/24 table vips", "table 'vips' is neither a number nor a name in /etc/iproute2/rt_tables"),
    ("198.51.100.0/24 encap mpls 100 dev eth0", "encap (lightweight tunnel) routes are not supported"),
    ("198.51.100.0/24 vrf blue", "VRF is not supported by hanode"),
    ("198.51.100.0/24 dev eth0 as to 10.0.0.1", "'as [to]' is for MPLS routes"),
    ("198.51.100.0/24 dev eth0 track_group G", "track_group is not supported"),
    ("198.51.100.0/24 dev eth0 features fancy", "feature 'fancy' is not supported"),
    ("198.51.100.0/24 dev", "'dev' needs an interface"),
    ("198.51.100.0/24 from 198.51.101.0/24 dev eth0", "from (a source prefix) is IPv6 only"),
    ("198.51.100.0/24 dev eth0 mtu many", "mtu 'many' is not a whole number"),
    ("198.51.100.0/24 dev eth0 rtt 1e3ms", "time '1e3ms' is not N, Nms or Ns"),
    ("198.51.100.0/24 nexthop via 198.51.100.1 weight 0", "nexthop weight 0 is invalid"),
    ("198.51.100.0/24 198.51.101.0/24", "'198.51.101.0/24' is not a route keyword"),
    ("2001:db8::/64 dev eth0 realms 3", "realms is IPv4 but the route is IPv6"),
])
def test_bad_routes_name_the_word(text, message):
    with pytest.raises(WordError) as info:
        parse_route(text)
    assert message in str(info.value)


# rules ----------------------------------------------------------------------------------------------------------

def test_the_manual_rules():
    r = rule("from 192.168.28.0/24 to 192.168.29.0/26 table 100 iif p33p1 oif wlan0 tos 22 fwmark 24/12 "
             "preference 39 realms 30/20")
    assert (r.source, r.destination, r.table, r.action, r.iif, r.oif, r.tos) == (
        "192.168.28.0/24", "192.168.29.0/26", 100, "table", "p33p1", "wlan0", 22)
    assert (r.fwmark, r.fwmask, r.priority, r.realms, r.protocol) == (24, 12, 39, 30 << 16 | 20, 18)
    v6 = rule("to 2001:db8:1::/112 from 2001:db8:2::/96 table 6908 uidrange 10000-19999 ipproto udp sport 10-20 "
              "dport 20 priority 5 not")
    assert (v6.family, v6.uidrange, v6.ipproto, v6.sport, v6.dport, v6.invert) == (
        6, (10000, 19999), 17, (10, 20), (20, 20), True)


def test_rule_actions_and_their_checks():
    assert rule("from all preference 39 goto 40").goto == 40
    assert rule("fwmark 0x10/0xff lookup main priority 7").fwmark == 16
    assert rule("from 198.51.100.0/24 prohibit priority 9").action == "prohibit"
    assert rule("to 198.51.100.0/24 type blackhole priority 9").action == "blackhole"
    assert rule("l3mdev priority 1000").l3mdev
    assert rule("from all nop priority 3 protocol bird no_track").protocol == 12
    numbered, warnings = parse_rule("from 198.51.100.0/24 table 10")
    assert numbered.priority is None and "numbers it from 16384 down" in warnings[0]


@pytest.mark.parametrize("text, message", [
    ("from 198.51.100.0/24", "no action"),
    ("from all table 10 goto 20 preference 5", "a rule has one action"),
    ("from all goto 20", "goto 20 needs a preference below it"),
    ("from all goto 20 preference 30", "goto 20 needs a preference below it"),
    ("from all prohibit realms 3 preference 2", "realms and suppress_* need a table action"),
    ("from all table 0", "table 0 is not valid"),
    ("from 2001:db8::/64 to 198.51.100.0/24 table 5", "is IPv4 but the rule is IPv6"),
    ("from all table 5 sport 20-10", "the end is below the start"),
    ("from all table 5 fancy", "unknown rule word 'fancy'"),
])
def test_bad_rules_name_the_word(text, message):
    with pytest.raises(WordError) as info:
        parse_rule(text)
    assert message in str(info.value)
