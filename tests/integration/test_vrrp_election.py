"""Election in a namespace lab: highest priority wins, equal priorities break ties by primary address,
preempt / nopreempt / preempt_delay, and the priority-255 address owner."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, events, holders, inst, master_down_s, new_lab, single, state,
                          wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

V3 = {"version": 3, "advert_int": 0.3}  # fast adverts for the tests whose subject is not a v2 timer


def test_highest_priority_becomes_master_and_alone_holds_the_vip(lab_factory):
    lab = new_lab(lab_factory, nodes=3)
    n1, n2, n3 = lab.nodes
    sniffer = lab.sniff_vrrp()
    agents = {n1.name: lab.start_agent(n1, single("n1", 100)),
              n2.name: lab.start_agent(n2, single("n2", 150)),
              n3.name: lab.start_agent(n3, single("n3", 120))}
    master = agents[n2.name]
    wait_state(master, "MASTER", timeout=20)
    wait_sole_holder(lab.nodes, VIP4, n2)
    for name in (n1.name, n3.name):
        backup = wait_for(lambda: (e := inst(agents[name]))["master_address"] == n2.ipv4 and e, 5,
                          what=f"{name} to follow n2")
        assert (backup["state"], backup["master_priority"]) == ("BACKUP", 150)
    # The user-facing command says the same (the JSON contract, through the real CLI).
    cli = master.status()
    entry = cli["instances"]["VI_1"]
    assert cli["schema_version"] >= 1
    assert (entry["state"], entry["priority"], entry["effective_priority"], entry["virtual_router_id"]) == \
        ("MASTER", 150, 150, 51)
    assert entry["master_address"] == n2.ipv4 and entry["vips"] == [f"{VIP4}/24"] and entry["fault_reasons"] == []
    assert entry["stats"]["become_master"] == 1 and entry["stats"]["advert_sent"] >= 1
    # On the wire: after the election only n2 advertises, at its priority, once a second.
    since = time.monotonic()
    adverts = sniffer.wait_for_adverts(3, timeout=10, vrid=51, since=since)
    assert {(a.src, a.priority) for a in adverts} == {(n2.ipv4, 150)}
    gaps = [b.t - a.t for a, b in zip(adverts, adverts[1:])]
    assert all(0.9 < g < 1.3 for g in gaps), gaps
    assert holders(lab.nodes, VIP4) == [n2.name]


@pytest.mark.parametrize("priorities, winner", [((100, 100), "n2"), ((150, 100), "n1")],
                         ids=["equal-priority-higher-address-wins", "priority-beats-address"])
def test_two_masters_meeting_keep_the_right_one(lab_factory, priorities, winner):
    """Both nodes become MASTER while partitioned; when they hear each other, the RFC tie-break decides:
    higher priority, else the higher primary address (198.51.100.12 > .11)."""
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    lab.partition(n1, n2)
    a1 = lab.start_agent(n1, single("n1", priorities[0], **V3))
    a2 = lab.start_agent(n2, single("n2", priorities[1], **V3))
    wait_state(a1, "MASTER")
    wait_state(a2, "MASTER")
    assert holders(lab.nodes, VIP4) == ["n1", "n2"]
    lab.heal()
    agents = {"n1": a1, "n2": a2}
    loser = "n1" if winner == "n2" else "n2"
    backup = wait_state(agents[loser], "BACKUP", timeout=10)
    assert backup["master_address"] == lab[winner].ipv4
    assert "higher" in backup["last_transition"]["reason"]
    wait_sole_holder(lab.nodes, VIP4, lab[winner])
    assert state(agents[winner]) == "MASTER"


def test_higher_priority_node_joining_preempts(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 100, **V3))
    wait_state(a1, "MASTER")
    a2 = lab.start_agent(n2, single("n2", 150, **V3))
    wait_state(a2, "MASTER")
    wait_sole_holder(lab.nodes, VIP4, n2)
    backup = wait_state(a1, "BACKUP")
    assert backup["master_address"] == n2.ipv4
    assert [(e["from"], e["to"]) for e in events(a2, "transition")] == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]
    assert "preempting lower priority master" in inst(a2)["last_transition"]["reason"]


def test_nopreempt_node_does_not_take_over_until_the_master_goes(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 100, **V3))
    wait_state(a1, "MASTER")
    a2 = lab.start_agent(n2, single("n2", 150, nopreempt=True, **V3))
    wait_state(a2, "BACKUP")
    # Something that must NOT happen: watch for three times n2's Master_Down_Interval (a fixed window).
    window = 3 * master_down_s(150, 0.3, 3)
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        assert state(a2) == "BACKUP" and state(a1) == "MASTER"
        time.sleep(0.1)
    assert holders(lab.nodes, VIP4) == ["n1"]
    assert inst(a2)["master_address"] == n1.ipv4
    a1.stop()
    wait_state(a2, "MASTER", timeout=10)
    wait_sole_holder(lab.nodes, VIP4, n2)


def test_preempt_delay_holds_the_takeover_for_the_delay(lab_factory):
    delay_s = 2.0
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 100, **V3))
    wait_state(a1, "MASTER")
    a2 = lab.start_agent(n2, single("n2", 150, preempt_delay=delay_s, **V3))
    wait_for(lambda: inst(a2)["master_address"] == n1.ipv4, 5, what="n2 to hear n1")
    assert state(a2) == "BACKUP"  # during the delay n2 listens to the lower-priority master
    wait_state(a2, "MASTER", timeout=delay_s + 15)
    wait_sole_holder(lab.nodes, VIP4, n2)
    moves = events(a2, "transition")
    assert [(e["from"], e["to"]) for e in moves] == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]
    held_s = moves[1]["ts"] - moves[0]["ts"]
    # The delay starts with the first lower-priority advert (at most one interval after BACKUP); after it,
    # the adverts are ignored and Master_Down_Interval runs out since the last one that reset the timer.
    down_s = master_down_s(150, 0.3, 3)
    print(f"\nMEASURE preempt_delay {delay_s:g} s: took over {held_s:.3f} s after entering BACKUP "
          f"(expected {delay_s:g} .. {delay_s + 0.3 + down_s:.3f} s)")
    assert delay_s <= held_s <= delay_s + 0.3 + down_s + 0.5


def test_priority_255_owner_takes_over_at_once(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, single("n1", 100))
    wait_state(a1, "MASTER", timeout=20)
    started = time.monotonic()
    a2 = lab.start_agent(n2, single("n2", 255))
    first = sniffer.wait_for_adverts(1, timeout=10, src=n2.ipv4, since=started)[0]
    assert first.priority == 255
    # The owner goes INIT -> MASTER directly (no BACKUP stage, no Master_Down_Interval wait) ...
    moves = events(a2, "transition")
    assert [(e["from"], e["to"]) for e in moves] == [("INIT", "MASTER")]
    assert "address owner" in moves[0]["reason"]
    # ... and its first advert is on the wire right then (event time is wall clock, the sniffer's monotonic).
    wall_minus_mono = time.time() - time.monotonic()
    lag_s = first.t - (moves[0]["ts"] - wall_minus_mono)
    print(f"\nMEASURE owner: first advert {lag_s * 1000:.1f} ms after INIT -> MASTER, "
          f"{first.t - started:.3f} s after the agent was launched")
    assert -0.3 < lag_s < 0.3  # the event is published after the advert went out: slightly negative is normal
    backup = wait_state(a1, "BACKUP", timeout=5)
    assert backup["master_address"] == n2.ipv4 and backup["master_priority"] == 255
    wait_sole_holder(lab.nodes, VIP4, n2)
    entry = inst(a2)
    assert entry["priority"] == entry["effective_priority"] == 255
