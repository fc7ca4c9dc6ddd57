"""IPv6 with VRRPv3: one node holds the VIP, the backup takes over within Master_Down_Interval when the
master's link goes, and the client's IPv6 neighbour entry follows the VIP both ways (unsolicited NAs)."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP6, holders, inst, link_local, master_down_s, new_lab, single, wait_sole_holder,
                          wait_state, wait_vip_seen)

pytestmark = pytest.mark.netns

ADVERT_INT = 0.3
EARLY_S = 0.002  # the sniffer's stamps are the kernel's receive times: see test_vrrp_failover.py
LATE_S = 0.35
VIP_LATE_S = 1.0  # the VIP is on n2 before its first advert; seeing it is this test's poll: see test_vrrp_failover.py


def test_ipv6_vrrpv3_election_failover_and_neighbour_entry(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    for node in (n1, n2):
        lab.start_http_server(node, port=8080)
    sniffer = lab.sniff_vrrp()
    ll1, ll2 = link_local(n1), link_local(n2)
    a1 = lab.start_agent(n1, single("n1", 150, version=3, advert_int=ADVERT_INT, vips=(VIP6,)))
    a2 = lab.start_agent(n2, single("n2", 100, version=3, advert_int=ADVERT_INT, vips=(VIP6,)))
    wait_state(a1, "MASTER", timeout=15)
    wait_sole_holder(lab.nodes, VIP6, n1)
    wait_for(lambda: inst(a2)["master_address"] == ll1, 5, what="n2 to follow n1's link-local address")
    assert inst(a2)["state"] == "BACKUP" and inst(a1)["family"] == "ipv6"
    frames = [f for f in sniffer.frames if f["src"] == ll1]
    assert frames and {(f["dst"], f["version"], f["type"], f["priority"]) for f in frames} == {("ff02::12", 3, 1, 150)}
    url = f"http://[{VIP6}]:8080/"
    assert lab.http_get(c1, url) == (200, "n1\n")
    assert lab.neighbour(c1, VIP6) == n1.mac

    sniffer.wait_for_adverts(1, timeout=5, src=ll1, since=time.monotonic())
    lab.link_set(n1, "eth0", False)
    seen_at = wait_vip_seen(n2, VIP6, timeout=10, pid=a2.pid)
    last = [a for a in sniffer.adverts(src=ll1) if a.t < seen_at][-1]
    takeover = sniffer.wait_for_adverts(1, timeout=5, src=ll2, since=last.t)[0]
    down_s = master_down_s(100, ADVERT_INT, 3)
    print(f"\nMEASURE IPv6 v3 master loss (link down) advert_int {ADVERT_INT}: first advert of the new master "
          f"{(takeover.t - last.t) * 1000:.1f} ms, VIP seen {(seen_at - last.t) * 1000:.1f} ms after the last advert "
          f"(Master_Down_Interval {down_s * 1000:.1f} ms)")
    assert down_s - EARLY_S <= takeover.t - last.t <= down_s + LATE_S
    assert seen_at - last.t <= down_s + VIP_LATE_S
    wait_state(a2, "MASTER", timeout=5)
    # (the link-local source address goes with the link: the agent names both reasons)
    assert "interface eth0 down" in wait_state(a1, "FAULT", timeout=5)["fault_reasons"]
    assert holders(lab.nodes, VIP6) == ["n2"]
    wait_for(lambda: lab.neighbour(c1, VIP6) == n2.mac, 5, what="the client's IPv6 neighbour entry to name n2")
    assert lab.http_get(c1, url) == (200, "n2\n")

    # n1 comes back and preempts; the client's entry follows it back.
    lab.link_set(n1, "eth0", True)
    wait_state(a1, "MASTER", timeout=10)
    wait_state(a2, "BACKUP", timeout=5)
    wait_sole_holder(lab.nodes, VIP6, n1)
    wait_for(lambda: lab.neighbour(c1, VIP6) == n1.mac, 5, what="the client's IPv6 neighbour entry to name n1")
    assert lab.http_get(c1, url) == (200, "n1\n")
