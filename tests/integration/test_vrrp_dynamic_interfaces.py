"""Interfaces that come and go: keepalived's dynamic_interfaces is how hanode always works (an instance whose
interface does not exist yet is in FAULT, not refused, runs as soon as the interface appears, goes back to FAULT
when it is deleted and comes back when it is made again, its socket following the new interface index); and
interface_up_down_delays hides a bounce shorter than the delay and delays FAULT and recovery by it."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import add_track_link, agent_config, events, inst, instance, new_lab, wait_state

pytestmark = pytest.mark.netns
VIP = "203.0.113.100"
DOWN_DELAY_S, UP_DELAY_S = 1.0, 0.5


def _make(lab, host) -> None:
    lab.run(host, ["ip", "link", "add", "dyn0", "type", "veth", "peer", "name", "dyn0p"])
    lab.run(host, ["ip", "address", "add", "203.0.113.1/24", "dev", "dyn0"])
    lab.link_set(host, "dyn0p", True)
    lab.link_set(host, "dyn0", True)


def test_an_instance_waits_for_its_interface_and_follows_it_being_deleted_and_made_again(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    n1 = lab.nodes[0]
    agent = lab.start_agent(n1, agent_config("n1", {"VI_1": instance(51, 150, interface="dyn0", vips=(VIP,),
                                                                     version=3, advert_int=0.3)}))
    entry = wait_state(agent, "FAULT", timeout=10)
    assert "interface dyn0 down" in entry["fault_reasons"]
    _make(lab, n1)
    wait_state(agent, "MASTER", timeout=10)
    assert VIP in " ".join(n1.addresses("dyn0"))
    lab.run(n1, ["ip", "link", "del", "dyn0"])
    wait_state(agent, "FAULT", timeout=10)
    _make(lab, n1)
    wait_state(agent, "MASTER", timeout=10)
    assert inst(agent)["stats"]["become_master"] == 2


def test_interface_up_down_delays_hide_a_bounce_and_delay_fault_and_recovery(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    n1 = lab.nodes[0]
    add_track_link(lab, n1)
    agent = lab.start_agent(n1, agent_config("n1", {"VI_1": instance(51, 150, track_interfaces=["trk0"], version=3,
                                                                     advert_int=1)},
                                             interface_up_down_delays={"trk0": [DOWN_DELAY_S, UP_DELAY_S]}))
    wait_state(agent, "MASTER", timeout=10)
    lab.link_set(n1, "trk0", False)
    lab.link_set(n1, "trk0", True)       # a bounce well inside the down delay: never seen
    down_at = time.time()
    lab.link_set(n1, "trk0", False)
    fault = wait_for(lambda: next((e for e in events(agent, "transition") if e["to"] == "FAULT"), None), 10,
                     what="FAULT")
    assert DOWN_DELAY_S <= fault["ts"] - down_at < DOWN_DELAY_S + 0.5
    assert [e["to"] for e in events(agent, "transition")] == ["BACKUP", "MASTER", "FAULT"]
    up_at = time.time()
    lab.link_set(n1, "trk0", True)
    back = wait_for(lambda: next((e for e in events(agent, "transition") if e["from"] == "FAULT"), None), 10,
                    what="FAULT left")
    assert UP_DELAY_S <= back["ts"] - up_at < UP_DELAY_S + 0.5
