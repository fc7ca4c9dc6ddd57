"""use_ipvlan, inside a kernel that has ipvlan: the agent makes an L2 ipvlan with the given name, address and
mode on the instance's interface, sends its adverts from that address (keepalived's source for an ipvlan
instance), puts the VIP on the ipvlan, and removes the ipvlan when it stops; the backup takes over and a client
reaches the VIP through it."""

from __future__ import annotations

import json
import re

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import VIP4, agent_config, inst, instance, new_lab, wait_state

pytestmark = pytest.mark.netns


def ipvlan(lab, host, name: str) -> tuple[str, str] | None:
    """(base, kind and mode as `ip -d link` prints them) of the interface; None when it does not exist."""
    proc = lab.run(host, ["ip", "-d", "-j", "link", "show", "dev", name], check=False)
    if proc.returncode:
        return None
    base = json.loads(proc.stdout)[0].get("link")
    text = lab.run(host, ["ip", "-d", "link", "show", "dev", name]).stdout
    found = re.search(r"^\s+(ipvlan\s+mode \S+ \S+)", text, flags=re.MULTILINE)
    return base, found.group(1) if found else text


def test_ipvlan_instances_fail_over(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    # the ipvlan is the node's presence on the segment (its IPv4 address moves there, as in a container setup):
    # with the same subnet on the base too, the base's route would win and the ipvlan, which takes every packet
    # for its addresses, would swallow the base's ARP replies
    for node in (n1, n2):
        lab.run(node, ["ip", "-4", "addr", "flush", "dev", "eth0"])
    sniffer = lab.sniff_vrrp()

    def config(node, priority: int, address: str) -> dict:
        return agent_config(node.name, {"VI_1": instance(priority=priority, version=3, advert_int=0.5,
                                                         use_ipvlan=f"ipv51 {address}/24 private")})

    a1 = lab.start_agent(n1, config(n1, 150, "198.51.100.51"), timeout=60)
    a2 = lab.start_agent(n2, config(n2, 100, "198.51.100.52"), timeout=60)
    wait_state(a1, "MASTER", timeout=60)
    wait_state(a2, "BACKUP", timeout=30)
    assert ipvlan(lab, n1, "ipv51") == ("eth0", "ipvlan  mode l2 private")
    assert n1.has_address("198.51.100.51", "ipv51") and n1.has_address(VIP4, "ipv51")
    entry = inst(a1)
    assert entry["source_address"] == "198.51.100.51"
    assert entry["vmac"]["interfaces"][0] == {"interface": "ipv51", "kind": "ipvlan", "base": "eth0", "mac": None,
                                              "state": "created", "error": None}
    assert {a.src for a in sniffer.wait_for_adverts(2, timeout=20, vrid=51)} == {"198.51.100.51"}
    lab.wait_reachable(lab.clients[0], VIP4, timeout=20)

    assert a1.stop(timeout=60) == 0
    wait_state(a2, "MASTER", timeout=30)
    wait_for(lambda: n2.has_address(VIP4, "ipv51") and not n1.has_address(VIP4), 20, what="the VIP on n2's ipvlan")
    assert ipvlan(lab, n1, "ipv51") is None, "the stopped agent removed its ipvlan"
    lab.wait_reachable(lab.clients[0], VIP4, timeout=20)
