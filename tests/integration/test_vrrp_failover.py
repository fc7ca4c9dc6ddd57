"""Failover timing on the wire: graceful handover (SIGTERM: priority-0 advert, backup takes over after
Skew_Time) and master loss (kill -9 or link down: backup takes over Master_Down_Interval after the last
advert), with a client that keeps reaching the VIP and whose neighbour entry follows the new master."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, holders, inst, master_down_s, new_lab, single, skew_s, transitions,
                          wait_sole_holder, wait_state, wait_vip_seen)

pytestmark = pytest.mark.netns

# Timing slack on a loaded 2-core machine; the lower bounds are the RFC numbers themselves. The sniffer's
# stamps are the kernel's receive times on the bridge (what tcpdump records), so nothing of its own scheduling
# is in them: the backup's timer starts no earlier than the first packet crossed the bridge and its advert
# crosses it after the timer ran out. EARLY_S only absorbs the agent's microsecond rounding of the RFC times.
EARLY_S = 0.002
LATE_S = 0.35
# The new master adds the VIP before it sends its first advert, so the wire bound above covers it; the time
# the VIP is *seen* is this test's own 2 ms poll, which a loaded machine delays (seen: 484 ms late).
VIP_LATE_S = 1.0


@pytest.mark.parametrize("version, advert_int", [(2, 1), (3, 0.3)], ids=["v2-1s", "v3-300ms"])
def test_sigterm_master_hands_over_after_skew_time(lab_factory, version, advert_int):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, single("n1", 150, version=version, advert_int=advert_int))
    a2 = lab.start_agent(n2, single("n2", 100, version=version, advert_int=advert_int))
    wait_state(a1, "MASTER", timeout=20)
    wait_state(a2, "BACKUP")
    wait_sole_holder(lab.nodes, VIP4, n1)
    stopped_at = time.monotonic()
    assert a1.stop() == 0
    # (a regular advert may still go out between our clock reading and the agent handling SIGTERM)
    zero = wait_for(lambda: [a for a in sniffer.adverts(src=n1.ipv4, since=stopped_at) if a.priority == 0], 5,
                    what="the priority-0 advert")
    assert len(zero) == 1, "one priority-0 advert on shutdown"
    takeover = sniffer.wait_for_adverts(1, timeout=10, src=n2.ipv4, since=zero[0].t)[0]
    handover_s = takeover.t - zero[0].t
    skew = skew_s(100, advert_int, version)
    print(f"\nMEASURE graceful handover v{version} advert_int {advert_int:g}: {handover_s * 1000:.1f} ms "
          f"(Skew_Time {skew * 1000:.1f} ms)")
    assert skew - EARLY_S <= handover_s <= skew + LATE_S
    assert takeover.priority == 100
    wait_state(a2, "MASTER", timeout=5)
    assert inst(a2)["stats"]["pri_zero_rcvd"] == 1
    assert "priority 0 advert from 198.51.100.11" in inst(a2)["last_transition"]["reason"]
    assert holders(lab.nodes, VIP4) == [n2.name], "the old master removed its VIP, the new one added it"
    # The old master sent exactly one priority-0 advert and nothing after it.
    sent = [a.priority for a in sniffer.adverts(src=n1.ipv4, since=stopped_at)]
    assert sent[-1] == 0 and sent.count(0) == 1 and set(sent[:-1]) <= {150}, sent


def _kill9(lab, node, handle):
    handle.kill(group=True)  # the agent and its VRRP child: nothing sends a priority-0 advert


def _link_down(lab, node, handle):
    lab.link_set(node, "eth0", False)


@pytest.mark.parametrize("lose", [_kill9, _link_down], ids=["kill-9", "link-down"])
def test_master_loss_backup_takes_over_within_master_down_interval(lab_factory, lose):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    for node in (n1, n2):
        lab.start_http_server(node, port=8080)
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, single("n1", 150))
    a2 = lab.start_agent(n2, single("n2", 100))
    wait_state(a1, "MASTER", timeout=20)
    wait_state(a2, "BACKUP")
    wait_sole_holder(lab.nodes, VIP4, n1)
    # The client talks to the VIP through n1: its neighbour entry names n1's MAC.
    assert lab.http_get(c1, f"http://{VIP4}:8080/") == (200, "n1\n")
    assert lab.neighbour(c1, VIP4) == n1.mac
    sniffer.wait_for_adverts(1, timeout=5, src=n1.ipv4, since=time.monotonic())  # lose it just after an advert
    lose(lab, n1, a1)
    seen_at = wait_vip_seen(n2, VIP4, timeout=15, pid=a2.pid)
    last = [a for a in sniffer.adverts(src=n1.ipv4) if a.t < seen_at][-1]
    assert last.priority == 150, "no priority-0 advert: the master was lost, not stopped"
    takeover = sniffer.wait_for_adverts(1, timeout=5, src=n2.ipv4, since=last.t)[0]
    down_s = master_down_s(100, 1, 2)
    wire_s, vip_s = takeover.t - last.t, seen_at - last.t
    print(f"\nMEASURE master loss ({lose.__name__.strip('_')}) v2 advert_int 1: first advert of the new master "
          f"{wire_s * 1000:.1f} ms, VIP seen {vip_s * 1000:.1f} ms after the last advert "
          f"(Master_Down_Interval {down_s * 1000:.1f} ms)")
    assert down_s - EARLY_S <= wire_s <= down_s + LATE_S
    assert vip_s <= down_s + VIP_LATE_S
    assert wait_state(a2, "MASTER", timeout=5)["stats"]["become_master"] == 1
    assert transitions(a2) == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]
    # The client reaches the VIP through n2, its neighbour entry now pointing at n2 (gratuitous ARP).
    wait_for(lambda: lab.neighbour(c1, VIP4) == n2.mac, 5, what="the client's neighbour entry for the VIP")
    assert lab.http_get(c1, f"http://{VIP4}:8080/") == (200, "n2\n")
    assert lab.neighbour(c1, VIP4) == n2.mac
    if lose is _link_down:
        # The old master is in FAULT (its interface is down) and dropped the VIP.
        entry = wait_state(a1, "FAULT", timeout=5)
        assert entry["fault_reasons"] == ["interface eth0 down"]
        assert not n1.has_address(VIP4)
