"""keepalived's per-interface GARP / NA pacing (hanode.vrrp.garp_pace) and its config keys (vrrp_garp_interval,
vrrp_gna_interval, garp_groups)."""

from __future__ import annotations

import copy

import pytest

from hanode.config.parse import parse_config
from hanode.config.parse_garp import GarpGroup, GarpPacing
from hanode.config.problems import ConfigError
from hanode.vrrp.garp_pace import GarpPacer

MS = 1000


def send_all(pacer: GarpPacer, ifname: str, family: int, count: int, at_us: int = 0, late_us: int = 0) -> list[int]:
    """When each of `count` messages submitted at at_us goes, the shell waking late_us after each due time."""
    sent, now = [], at_us
    for i in range(count):
        key, now_send = pacer.submit(ifname, family, "VI_1", i, now)
        if now_send:
            sent.append(now)
    while pacer.waiting(key):
        now = max(now, pacer.next_free_us[key]) + late_us
        if pacer.due(key, now) is not None:
            sent.append(now)
    return sent


def test_messages_on_one_interface_are_spaced_by_their_family_s_interval():
    pacer = GarpPacer(GarpPacing(garp_interval_us=10 * MS, gna_interval_us=3 * MS))
    assert send_all(pacer, "eth0", 4, 3) == [0, 10 * MS, 20 * MS]
    assert send_all(pacer, "eth0", 6, 3) == [0, 3 * MS, 6 * MS]        # NA has a timeline of its own
    assert send_all(pacer, "eth1", 4, 1) == [0]                        # and every interface too
    assert send_all(pacer, "eth0", 4, 1, at_us=100 * MS) == [100 * MS]  # a quiet interface sends at once


def test_a_late_wake_up_never_brings_two_messages_closer_than_the_interval():
    pacer = GarpPacer(GarpPacing(garp_interval_us=10 * MS))
    sent = send_all(pacer, "eth0", 4, 4, late_us=3 * MS)
    assert [b - a for a, b in zip(sent, sent[1:])] == [13 * MS, 13 * MS, 13 * MS]


def test_a_group_with_interfaces_shares_one_timeline_and_overrides_the_default():
    pacer = GarpPacer(GarpPacing(garp_interval_us=1 * MS, groups=(
        GarpGroup(("eth1", "eth2"), garp_interval_us=5 * MS, shared=True), GarpGroup(("eth3",), gna_interval_us=2 * MS))))
    first = [pacer.submit(n, 4, "VI_1", n, 0) for n in ("eth1", "eth2", "eth1")]
    assert [now for _key, now in first] == [True, False, False] and len({key for key, _now in first}) == 1
    assert pacer.due(first[0][0], 5 * MS) == "eth2" and pacer.due(first[0][0], 9 * MS) is None
    assert send_all(pacer, "eth3", 4, 2) == [0, 0]                  # its group sets no garp_interval
    assert send_all(pacer, "eth3", 6, 2) == [0, 2 * MS]
    assert send_all(pacer, "eth0", 4, 2) == [0, 1 * MS]


def test_an_instance_s_waiting_messages_go_with_its_vips():
    pacer = GarpPacer(GarpPacing(garp_interval_us=10 * MS))
    key, _now = pacer.submit("eth0", 4, "VI_1", "a", 0)
    pacer.submit("eth0", 4, "VI_1", "b", 0)
    pacer.submit("eth0", 4, "VI_2", "c", 0)
    pacer.drop("VI_1")
    assert pacer.due(key, 10 * MS) == "c" and not pacer.waiting(key)


def parse(raw):
    return parse_config(copy.deepcopy({"router_id": "a", **raw}))[0]


def test_config_keys():
    pacing = parse({"vrrp_garp_interval": 0.001, "vrrp_gna_interval": 0.000001, "garp_groups": [
        {"garp_interval": 0.01, "interfaces": ["eth1", "eth2"]}, {"gna_interval": 0.5, "interface": "eth3"}]}
    ).sections["garp_pacing"]
    assert pacing == GarpPacing(1000, 1, (GarpGroup(("eth1", "eth2"), 10_000, 0, True),
                                          GarpGroup(("eth3",), 0, 500_000, False)))


@pytest.mark.parametrize("groups, where", [
    ([{"garp_interval": 0.1}], "garp_groups[0]"),
    ([{"garp_interval": 0.1, "interface": "eth1", "interfaces": ["eth2"]}], "garp_groups[0]"),
    ([{"interface": "eth1"}], "garp_groups[0]"),
    ([{"garp_interval": 2, "interface": "eth1"}], "garp_groups[0].garp_interval"),
    ([{"garp_interval": 0.1, "interface": "eth1"}, {"gna_interval": 0.1, "interfaces": ["eth1"]}], "garp_groups[1]"),
])
def test_bad_groups_are_refused_naming_the_field(groups, where):
    with pytest.raises(ConfigError) as err:
        parse({"garp_groups": groups})
    assert where in [p.path for p in err.value.problems]
