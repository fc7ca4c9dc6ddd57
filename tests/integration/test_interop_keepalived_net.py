"""Interop with Debian's keepalived 2.2.7 on the wire for the interface features: a virtual MAC (hanode master,
keepalived takes over, hanode takes back: a client's neighbour entry for the VIP stays the virtual MAC
throughout), a non-default multicast group both ways, and check_unicast_src on both sides against a third
router that is nobody's peer."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, agent_config, holders, inst, instance, keepalived_complaints, keepalived_conf,
                          new_lab, single, wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

MAC = "00:00:5e:00:01:33"
GROUP = "224.0.0.19"
ERRORS = ("packet_len_err", "advert_interval_err", "ip_ttl_err", "addr_list_err", "vers_err", "chk_err")


def _no_errors(handle) -> None:
    stats = inst(handle)["stats"]
    assert {k: stats[k] for k in ERRORS} == dict.fromkeys(ERRORS, 0)


def _keepalived_holds(lab, node, ifname: str = "eth0") -> None:
    """The VIP on `node`'s interface, and on no other node at all."""
    wait_for(lambda: node.has_address(VIP4, ifname) and holders(lab.nodes, VIP4, None) == [node.name], 20,
             what=f"{VIP4} on {node.name} {ifname} only")


def test_vmac_with_keepalived_both_ways(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    client = lab.clients[0]
    # keepalived does not set arp_announce on the VMAC's base: without it, its first ARP for the client names
    # the VIP with the base's MAC and the client's entry moves (hanode sets it; see vrrp/vmac_plan.py)
    lab.run(n2, ["sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=2"])
    hanode_config = single("n1", 150, version=3, advert_int=0.3, use_vmac=True)
    conf = keepalived_conf("n2", 100, version=3, advert_int=0.3, extra=("use_vmac",))
    a1 = lab.start_agent(n1, hanode_config)
    keepalived = lab.start_keepalived(n2, conf)
    wait_state(a1, "MASTER", timeout=20)
    _keepalived_holds(lab, n1, "vrrp.51")
    lab.wait_reachable(client, VIP4, timeout=10)
    assert lab.neighbour(client, VIP4) == MAC

    # hanode -> keepalived
    assert a1.stop() == 0
    _keepalived_holds(lab, n2, "vrrp.51")
    assert lab.neighbour(client, VIP4) == MAC, "the failover left the client's entry alone"
    lab.wait_reachable(client, VIP4, timeout=10)
    assert lab.neighbour(client, VIP4) == MAC, "and keepalived answers it under the virtual MAC"

    # keepalived -> hanode (hanode preempts)
    a1 = lab.start_agent(n1, hanode_config)
    wait_state(a1, "MASTER", timeout=20)
    _keepalived_holds(lab, n1, "vrrp.51")
    assert lab.neighbour(client, VIP4) == MAC
    lab.wait_reachable(client, VIP4, timeout=10)
    assert lab.neighbour(client, VIP4) == MAC
    _no_errors(a1)
    assert keepalived_complaints(keepalived.log_text()) == []


def test_a_non_default_multicast_group_with_keepalived_both_ways(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    sniffer = lab.sniff_vrrp()
    hanode_config = agent_config("n1", {"VI_1": instance(priority=150, version=3, advert_int=0.3)},
                                 vrrp_mcast_group4=GROUP)
    conf = keepalived_conf("n2", 100, version=3, advert_int=0.3, global_extra=(f"vrrp_mcast_group4 {GROUP}",))
    keepalived = lab.start_keepalived(n2, conf)
    _keepalived_holds(lab, n2)
    a1 = lab.start_agent(n1, hanode_config)
    wait_state(a1, "MASTER", timeout=20)              # keepalived -> hanode: hanode heard it and preempted
    wait_sole_holder(lab.nodes, VIP4, n1)
    assert inst(a1)["peers"][n2.ipv4]["priority"] == 100
    a1.stop()
    _keepalived_holds(lab, n2)                        # hanode -> keepalived: the priority-0 advert was heard
    stopped = time.monotonic()
    a1 = lab.start_agent(n1, hanode_config)
    wait_state(a1, "MASTER", timeout=20)
    wait_sole_holder(lab.nodes, VIP4, n1)
    assert {f["dst"] for f in sniffer.frames} == {GROUP}, "both sides sent to the configured group only"
    assert {f["src"] for f in sniffer.frames if f["t"] >= stopped} >= {n1.ipv4, n2.ipv4}
    _no_errors(a1)
    assert keepalived_complaints(keepalived.log_text()) == []


def test_check_unicast_src_with_keepalived(lab_factory):
    lab = new_lab(lab_factory, nodes=3, clients=0)
    n1, n2, n3 = lab.nodes
    hanode_config = single("n1", 150, version=3, advert_int=0.3, unicast_src_ip=n1.ipv4,
                           unicast_peers=[n2.ipv4], check_unicast_src=True)
    conf = keepalived_conf("n2", 100, version=3, advert_int=0.3, unicast_src=n2.ipv4, unicast_peers=(n1.ipv4,),
                           extra=("check_unicast_src",))
    # n3 sends the same VRID at priority 200 to both, but is nobody's peer. Once a second: keepalived 2.2.7 re-arms
    # an instance's timer on every packet it reads, even one it drops (vrrp_scheduler.c vrrp_dispatcher_read), so
    # a stranger at its own rate would silence a keepalived master and hold a keepalived backup (hanode: no timer
    # moves for a dropped advert, see test_vrrp_peers)
    rogue = single("n3", 200, version=3, advert_int=1, unicast_src_ip=n3.ipv4, unicast_peers=[n1.ipv4, n2.ipv4])
    a1 = lab.start_agent(n1, hanode_config)
    keepalived = lab.start_keepalived(n2, conf)
    a3 = lab.start_agent(n3, rogue)
    wait_state(a1, "MASTER", timeout=20)
    wait_state(a3, "MASTER", timeout=20)
    wait_for(lambda: "not a unicast peer" in keepalived.log_text(), 10, what="keepalived to drop n3's adverts")
    wait_for(lambda: inst(a1)["stats"]["addr_list_err"] >= 2, 10, what="hanode to count n3's adverts")
    assert set(inst(a1)["peers"]) == {n2.ipv4} or inst(a1)["peers"] == {}, "only the peer is heard"
    assert not n2.has_address(VIP4), "keepalived follows hanode, not the stranger"

    # hanode stops: keepalived takes over from its peer's priority 0, still deaf to the stranger
    a1.stop()
    wait_for(lambda: n2.has_address(VIP4), 10, what="keepalived to take over")
    wait_for(lambda: "Entering MASTER STATE" in keepalived.log_text(), 5, what="keepalived MASTER")
    a1 = lab.start_agent(n1, hanode_config)
    wait_state(a1, "MASTER", timeout=20)              # and hands back: hanode heard keepalived, keepalived hanode
    wait_for(lambda: not n2.has_address(VIP4), 10, what="keepalived to step down")
    assert inst(a1)["peers"].keys() == {n2.ipv4}
    assert "advert_rcvd" in inst(a1)["stats"] and inst(a1)["stats"]["advert_rcvd"] > 0
