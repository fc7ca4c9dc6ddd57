"""Timers, elections, failover plans and rollout order (pure)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ansible_collections.hanode.fleet.plugins.module_utils import _plan

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "agent" / "src"))
from hanode.vrrp import timers as agent_timers  # noqa: E402  (the agent's own RFC timers, for cross-checking)


@pytest.mark.parametrize("version,adv_cs", [(2, 100), (2, 300), (3, 100), (3, 10), (3, 1), (3, 4095)])
@pytest.mark.parametrize("priority", [1, 50, 100, 150, 200, 254, 255])
def test_timers_match_the_agents(version, adv_cs, priority):
    assert _plan.skew_time_us(priority, adv_cs, version) == agent_timers.skew_time_us(priority, adv_cs, version)
    assert _plan.master_down_interval_us(priority, adv_cs, version) == agent_timers.master_down_interval_us(priority, adv_cs, version)


def test_worked_numbers_from_the_rfcs():
    assert _plan.master_down_interval_us(100, 100, 2) == 3_609_375   # v2, priority 100, 1 s: 3.609 s
    assert _plan.master_down_interval_us(200, 10, 3) == 321_875      # v3, priority 200, 10 cs: ~321.9 ms


@pytest.mark.parametrize("priority,weights,expected", [
    (100, [], 100), (100, [20, -30], 120), (250, [20], 254), (5, [-50], 5), (255, [20], 255), (100, [0], 100)])
def test_effective_priority_while_healthy(priority, weights, expected):
    assert _plan.effective_priority(priority, weights) == expected


@pytest.mark.parametrize("members,master", [
    ([("a", 100, "198.51.100.1"), ("b", 200, "198.51.100.2")], "b"),
    ([("a", 100, "198.51.100.9"), ("b", 100, "198.51.100.10")], "b"),   # tie: higher address (numerically) wins
    ([("a", 100, "2001:db8::2"), ("b", 100, "2001:db8::10")], "b"),
    ([], None),
])
def test_election(members, master):
    assert _plan.elect([{"host": h, "priority": p, "address": a} for h, p, a in members]) == master


def test_instance_plan_names_the_new_master_after_each_failure():
    rows = [{"host": h, "configured_priority": p, "priority": p, "address": a, "nopreempt": False}
            for h, p, a in (("n1", 150, "198.51.100.11"), ("n2", 120, "198.51.100.12"), ("n3", 100, "198.51.100.13"))]
    plan = _plan.instance_plan("VI_1", 2, 100, rows)
    assert plan["master"] == "n1"
    assert plan["after_failure_of"]["n1"] == {"new_master": "n2", "takeover_ms": 3531.25, "graceful_takeover_ms": 531.25}
    assert plan["after_failure_of"]["n3"] == {"new_master": "n1", "takeover_ms": None}
    text = "\n".join(_plan.plan_lines([plan]))
    assert "n1" in text and "-> n2 takes over within 3531.25 ms" in text


def test_a_lone_master_has_nobody_to_take_over():
    plan = _plan.instance_plan("VI_1", 3, 100, [{"host": "n1", "configured_priority": 100, "priority": 100, "address": "198.51.100.11"}])
    assert plan["after_failure_of"]["n1"]["new_master"] is None
    assert "nobody left" in "\n".join(_plan.plan_lines([plan]))


def _status(*states):
    return {"instances": {f"VI_{i}": {"state": s} for i, s in enumerate(states)}}


@pytest.mark.parametrize("statuses,order", [
    ({"n1": _status("MASTER"), "n2": _status("BACKUP"), "n3": _status("BACKUP")}, ["n2", "n3", "n1"]),
    ({"n1": _status("BACKUP"), "n2": _status("MASTER", "MASTER"), "n3": _status("MASTER", "BACKUP")}, ["n1", "n3", "n2"]),
    ({"n1": None, "n2": None, "n3": None}, ["n1", "n2", "n3"]),
    ({"n1": _status("FAULT"), "n2": None, "n3": _status("MASTER")}, ["n1", "n2", "n3"]),
])
def test_rollout_order_backups_first_masters_last(statuses, order):
    assert _plan.rollout_order(["n1", "n2", "n3"], statuses) == order


def _running(vips, vrid=51, version=3, advert_int=0.2):
    return {"instances": {"VI_1": {"vips": vips, "virtual_router_id": vrid, "version": version, "advert_int": advert_int}}}


def _new(vips, vrid=51, version=3, advert_int=0.2, excluded=()):
    return {"vrrp_instances": {"VI_1": {"virtual_ipaddresses": vips, "virtual_router_id": vrid, "version": version,
                                        "advert_int": advert_int, "virtual_ipaddress_excluded": list(excluded)}}}


@pytest.mark.parametrize("running,new,expected", [
    (_running(["198.51.100.100/24 dev eth0"]), _new(["198.51.100.100/24"]), []),
    (_running(["198.51.100.100/24 dev eth0"]), _new(["198.51.100.100/24"], excluded=["198.51.100.101/24"]), []),
    (_running(["198.51.100.100/24 dev eth0"]), _new(["198.51.100.100/24", "198.51.100.101/24"]),
     ["n1: ha_node_instances.VI_1.virtual_ipaddresses: advertised addresses change from 198.51.100.100 to 198.51.100.100, 198.51.100.101"]),
    (_running(["198.51.100.100/24"]), _new(["198.51.100.100/24"], vrid=52),
     ["n1: ha_node_instances.VI_1.virtual_router_id: changes from 51 to 52"]),
    (_running(["198.51.100.100/24"], version=2, advert_int=1), _new(["198.51.100.100/24"], version=2, advert_int=2),
     ["n1: ha_node_instances.VI_1.advert_int: VRRPv2 interval changes from 1 to 2 s"]),
    (_running(["198.51.100.100/24"]), _new(["198.51.100.100/24"], advert_int=0.5), []),   # v3 adopts the master's interval
    (None, _new(["198.51.100.100/24", "198.51.100.101/24"]), []),                           # a new node
])
def test_advert_changes_a_rolling_update_cannot_make(running, new, expected):
    assert _plan.advert_changes({"n1": new}, {"n1": running}) == expected
