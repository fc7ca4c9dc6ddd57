"""Multicast groups and unicast peers: vrrp_mcast_group4 and mcast_dst_ip are where adverts go and the only
groups heard (a router on the default group, same VRID, higher priority, is not heard); check_unicast_src drops
adverts from sources that are not peers (counted as addr_list_err); unicast_ttl sets the TTL of unicast adverts;
unicast_fault_no_peer puts a unicast instance without peers in FAULT."""

from __future__ import annotations

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import agent_config, inst, instance, new_lab, wait_state

pytestmark = pytest.mark.netns

GROUP, GROUP2 = "224.0.0.19", "224.0.0.20"


def test_groups_and_unicast_peer_checks(lab_factory):
    lab = new_lab(lab_factory, nodes=3, clients=0)
    n1, n2, n3 = lab.nodes
    sniffer = lab.sniff_vrrp()

    def config(node, priority: int, peers) -> dict:
        unicast = dict(unicast_src_ip=node.ipv4, unicast_peers=[p.ipv4 for p in peers], check_unicast_src=True,
                       unicast_ttl=64)
        return agent_config(node.name, {
            "VI_1": instance(vrid=51, priority=priority, version=3, advert_int=0.3),
            "VI_2": instance(vrid=52, priority=priority, version=3, advert_int=0.3, vips=("198.51.100.102",),
                             mcast_dst_ip=GROUP2),
            "VI_3": instance(vrid=53, priority=priority, version=3, advert_int=0.3, vips=("198.51.100.103",),
                             **unicast),
        }, vrrp_mcast_group4=GROUP)

    a1 = lab.start_agent(n1, config(n1, 150, [n2]))
    cfg2 = config(n2, 100, [n1])
    cfg2["vrrp_instances"]["VI_4"] = instance(vrid=54, version=3, advert_int=0.3, vips=("198.51.100.104",),
                                              unicast_fault_no_peer=True)
    a2 = lab.start_agent(n2, cfg2)
    # n3 speaks the same VRIDs at a higher priority: on the default group, and unicast to n1 and n2 (not their peer)
    rogue = agent_config("n3", {
        "VI_1": instance(vrid=51, priority=200, version=3, advert_int=0.3),
        "VI_3": instance(vrid=53, priority=200, version=3, advert_int=0.3, vips=("198.51.100.103",),
                         unicast_src_ip=n3.ipv4, unicast_peers=[n1.ipv4, n2.ipv4])})
    a3 = lab.start_agent(n3, rogue)
    for name in ("VI_1", "VI_2", "VI_3"):
        wait_state(a1, "MASTER", name, timeout=20)
        wait_state(a2, "BACKUP", name)
    wait_state(a3, "MASTER", "VI_1")

    vi4 = wait_state(a2, "FAULT", "VI_4")
    assert vi4["fault_reasons"] == ["unicast without any peers (unicast_fault_no_peer)"]

    # where each instance's adverts went, and with which TTL
    sniffer.wait_for_adverts(3, timeout=10, src=n1.ipv4, vrid=53)
    sent = {(f["vrid"], f["dst"], f["ttl"]) for f in sniffer.frames if f["src"] == n1.ipv4}
    assert sent == {(51, GROUP, 255), (52, GROUP2, 255), (53, n2.ipv4, 64)}
    assert {f["dst"] for f in sniffer.frames if f["src"] == n3.ipv4 and f["vrid"] == 51} == {"224.0.0.18"}
    assert inst(a1, "VI_1")["multicast_group"] == GROUP and inst(a1, "VI_2")["multicast_group"] == GROUP2

    # n3's adverts: not heard on the other group; dropped as a stranger's in unicast, and counted
    sniffer.wait_for_adverts(10, timeout=10, src=n3.ipv4, vrid=53)
    for handle in (a1, a2):
        assert inst(handle, "VI_1")["peers"].keys() <= {n1.ipv4, n2.ipv4}
        wait_for(lambda h=handle: inst(h, "VI_3")["stats"]["addr_list_err"] >= 5, 5,
                 what="n3's unicast adverts counted")
        entry = inst(handle, "VI_3")
        assert n3.ipv4 not in entry["peers"] and entry["conflicts"]["count"] == 0
    assert inst(a2, "VI_3")["master_address"] == n1.ipv4
    assert inst(a2, "VI_3")["stats"]["advert_rcvd"] > 0   # n1's, with TTL 64: unicast takes any TTL

    # n1 goes: n2 takes over although n3 keeps sending at the same rate (a dropped advert moves no timer;
    # keepalived 2.2.7 re-arms its down timer on every packet it reads, dropped or not, and would wait forever)
    a1.kill()
    entry = wait_state(a2, "MASTER", "VI_3", timeout=5)
    assert entry["last_transition"]["reason"] == "master down timer expired"
