"""Split brain and VRID collisions (issues 5 and 10).

- An ordinary preemption is no split brain: the preempted master's last advert reaches the new master within
  the take-over exchange; no conflict is counted, no event emitted, nothing logged, on either node.
- Two hanode masters made by a partition (nftables in the lab's switch), then healed: the winner reports the
  split brain (status, counter, event, log), a single MASTER remains within one advert interval, and the client,
  which followed the loser during the partition, follows the winner again (its neighbour entry for the VIP).
- A foreign cluster (real keepalived) on the segment with our VRID but another VIP set is reported as a
  VRID collision (status, one event), not as bogus-packet noise; one with another VRID only shows up in
  vrrp.foreign_vrids."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_ops import assert_status_schema, new_lab
from helpers_vrrp import (VIP4, VIP4_B, events, inst, last_transition_event, single, status, transitions, vip_text,
                          wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

ADVERT_INT = 1
SLACK_S = 0.35  # scheduling on a loaded 2-core machine


def test_ordinary_preemption_is_not_a_split_brain(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    sniffer = lab.sniff_vrrp()
    a2 = lab.start_agent(n2, single("n2", 100, advert_int=ADVERT_INT))
    wait_state(a2, "MASTER", timeout=20)
    a1 = lab.start_agent(n1, single("n1", 150, advert_int=ADVERT_INT))
    took_over = wait_state(a1, "MASTER", timeout=20)
    wait_state(a2, "BACKUP", timeout=5)
    # Steady state: two more adverts from the new master, none from the old one after its last.
    first = sniffer.wait_for_adverts(1, src=n1.ipv4)[0]
    sniffer.wait_for_adverts(3, timeout=10, src=n1.ipv4)
    # What used to be counted as a split brain did happen on the wire: n2's last advert at its own priority,
    # sent as it gave way, after n1's first advert as MASTER.
    last_of_n2 = sniffer.adverts(src=n2.ipv4)[-1]
    assert last_of_n2.t >= first.t and last_of_n2.priority == 100
    assert last_of_n2.t - first.t < ADVERT_INT
    assert "preempting lower priority master" in took_over["last_transition"]["reason"]
    for handle in (a1, a2):
        entry = inst(handle)
        assert entry["conflicts"] == {"count": 0, "last": None}
        assert events(handle, "conflict") == []
        assert not [line for line in handle.log_text().splitlines() if "split_brain" in line]
    assert transitions(a1) == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]
    assert transitions(a2) == [("INIT", "BACKUP"), ("BACKUP", "MASTER"), ("MASTER", "BACKUP")]
    assert n1.ipv4 in last_transition_event(a2, "BACKUP")["reason"]
    wait_sole_holder(lab.nodes, VIP4, n1)


def test_partition_then_heal_single_master_within_one_advert_interval_and_client_follows(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, single("n1", 150, advert_int=ADVERT_INT))
    a2 = lab.start_agent(n2, single("n2", 100, advert_int=ADVERT_INT))
    wait_state(a1, "MASTER", timeout=20)
    wait_state(a2, "BACKUP")
    assert lab.wait_reachable(c1, VIP4)
    assert lab.neighbour(c1, VIP4) == n1.mac

    # Partition the two nodes (the client still reaches both): n2 becomes a second MASTER and its
    # gratuitous ARP moves the client over to it.
    lab.partition(n1, n2)
    wait_state(a2, "MASTER", timeout=10)
    assert wait_state(a1, "MASTER")["conflicts"]["count"] == 0
    assert lab.wait_reachable(c1, VIP4)
    wait_for(lambda: lab.neighbour(c1, VIP4) == n2.mac, 5, what="the client to follow n2 during the partition")
    assert lab.ping(c1, VIP4)
    assert lab.neighbour(c1, VIP4) == n2.mac

    healed_at = time.monotonic()
    lab.heal()
    backup = wait_state(a2, "BACKUP", timeout=5)
    wait_for(lambda: lab.neighbour(c1, VIP4) == n1.mac, 5, interval=0.01, what="the client's entry to return to n1")
    client_s = time.monotonic() - healed_at
    # On the wire: n2's last advert is the one it sends when it yields; none after it.
    quiet_from = time.monotonic()
    sniffer.wait_for_adverts(2, timeout=5, src=n1.ipv4, since=quiet_from)
    n2_after = sniffer.adverts(src=n2.ipv4, since=healed_at)
    assert n2_after and all(a.t < quiet_from for a in n2_after), "n2 still advertising after it yielded"
    single_s = n2_after[-1].t - healed_at
    print(f"\nMEASURE partition healed: single MASTER after {single_s * 1000:.0f} ms (advert_int {ADVERT_INT} s), "
          f"client's neighbour entry back on the winner after {client_s * 1000:.0f} ms")
    assert single_s <= ADVERT_INT + SLACK_S
    assert backup["master_address"] == n1.ipv4

    # The winner, MASTER all along, detected the two-master situation and re-asserted: counted, one event, one
    # log line. The loser cannot tell a heal from an ordinary preemption: its transition names the winner.
    for handle in (a1, a2):
        assert_status_schema(status(handle))
    winner, loser = inst(a1), inst(a2)
    assert winner["state"] == "MASTER" and winner["conflicts"]["count"] >= 1
    assert winner["conflicts"]["last"]["peer"] == n2.ipv4 and winner["conflicts"]["last"]["kind"] == "split_brain"
    assert winner["conflicts"]["last"]["priority"] == 100
    (won,) = events(a1, "conflict")
    assert (won["instance"], won["peer"], won["peer_priority"], won["kind"]) == ("VI_1", n2.ipv4, 100, "split_brain")
    assert sum("split_brain" in line for line in a1.log_text().splitlines()) == 1
    assert loser["conflicts"]["count"] == 0 and events(a2, "conflict") == []
    assert n1.ipv4 in last_transition_event(a2, "BACKUP")["reason"]
    assert transitions(a2) == [("INIT", "BACKUP"), ("BACKUP", "MASTER"), ("MASTER", "BACKUP")]
    assert transitions(a1) == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]
    wait_sole_holder(lab.nodes, VIP4, n1)
    assert lab.ping(c1, VIP4) and lab.neighbour(c1, VIP4) == n1.mac


def _foreign_keepalived(instances: dict[int, tuple[str, int, float]]) -> str:
    """A keepalived cluster of its own: per VRID (VIP, VRRP version, advert_int), priority 200."""
    lines = ["global_defs {", "    router_id foreign", "}"]
    for vrid, (vip, version, advert_int) in instances.items():
        lines += [f"vrrp_instance FOREIGN_{vrid} {{", "    state BACKUP", "    interface eth0",
                  f"    virtual_router_id {vrid}", "    priority 200", f"    version {version}",
                  f"    advert_int {advert_int:g}", "    virtual_ipaddress {", f"        {vip_text(vip)}", "    }", "}"]
    return "\n".join(lines) + "\n"


def test_foreign_cluster_same_vrid_is_a_collision_other_vrid_is_only_listed(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 100, version=3, advert_int=ADVERT_INT))
    # keepalived on n2: VRID 51 (ours) with another address and its own timing, and VRID 77 (not ours).
    # (A keepalived MASTER restarts its advert timer on every advert it hears: with the same advert_int as
    # ours it may go quiet for good; at 0.3 s it keeps talking.)
    keepalived = lab.start_keepalived(n2, _foreign_keepalived({51: (VIP4_B, 3, 0.3), 77: ("198.51.100.102", 2, 1)}))
    wait_state(a1, "MASTER", timeout=20)  # keepalived's adverts carry another address list: not our master
    entry = wait_for(lambda: (e := inst(a1))["conflicts"]["count"] >= 3 and e, 15,
                     what="three collisions counted on n1")
    last = entry["conflicts"]["last"]
    assert (last["peer"], last["priority"], last["kind"]) == (n2.ipv4, 200, "vrid_collision")
    assert "VRID 51 advertised by 198.51.100.12 with another address list" in last["detail"]
    assert entry["state"] == "MASTER" and entry["stats"]["addr_list_err"] >= 3
    # One event (and one log line) for the collision, however many adverts: reported, not noise.
    collisions = events(a1, "conflict")
    assert [(e["kind"], e["peer"], e["vrid"]) for e in collisions] == [("vrid_collision", n2.ipv4, 51)]
    log = a1.log_text()
    assert sum("vrid_collision" in line for line in log.splitlines()) == 1
    assert not [line for line in log.splitlines() if "bogus" in line.lower() or "invalid" in line.lower()]
    # The other VRID: listed once under vrrp.foreign_vrids, counted, nothing per instance.
    vrrp = wait_for(lambda: (v := status(a1)["vrrp"])["foreign_vrids"] and v["foreign_vrids"][0]["count"] >= 3 and v,
                    10, what="three adverts of the foreign VRID")
    (foreign,) = vrrp["foreign_vrids"]
    assert (foreign["vrid"], foreign["src"], foreign["interface"], foreign["family"]) == (77, n2.ipv4, "eth0", 4)
    assert foreign["seconds_ago"] < 2.5
    assert vrrp["stats"]["unknown_vrid"] == foreign["count"]
    assert "77" not in str(inst(a1)["conflicts"])
    assert_status_schema(status(a1))
    assert keepalived.running
    wait_sole_holder(lab.nodes, VIP4, n1)
