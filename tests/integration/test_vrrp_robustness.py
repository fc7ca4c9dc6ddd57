"""No stale VIP after a crash (a BACKUP removes this config's VIPs at start), and a killed VRRP process is
restarted by the supervisor without the MASTER losing its state or its VIP."""

from __future__ import annotations

import os
import signal
import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, AddressSampler, events, holders, inst, master_down_s, new_lab, single, status,
                          vrrp_child_pid, wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns


def test_a_backup_removes_a_stale_vip_at_start(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 150, version=3, advert_int=0.3))
    wait_state(a1, "MASTER", timeout=15)
    # n2 crashed as MASTER earlier: its interface still carries the VIP (with keepalived-style label).
    lab.run(n2, ["ip", "addr", "add", f"{VIP4}/24", "dev", "eth0", "label", "eth0:vip"])
    assert holders(lab.nodes, VIP4) == ["n1", "n2"]
    a2 = lab.start_agent(n2, single("n2", 100, version=3, advert_int=0.3))
    wait_for(lambda: not n2.has_address(VIP4), 10, what="the stale VIP to go from n2")
    entry = wait_state(a2, "BACKUP")
    assert entry["stats"]["become_master"] == 0
    wait_for(lambda: inst(a2)["master_address"] == n1.ipv4, 5, what="n2 to follow n1")
    assert holders(lab.nodes, VIP4) == ["n1"]
    assert "removed stale VIP 198.51.100.100" in a2.log_text()


def test_killed_vrrp_process_is_restarted_and_the_master_keeps_its_vip(lab_factory):
    advert_int = 2  # n2's Master_Down_Interval (6.6 s) exceeds the restart delay (1 s) plus start-up
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, single("n1", 150, advert_int=advert_int))
    a2 = lab.start_agent(n2, single("n2", 100, advert_int=advert_int))
    wait_state(a1, "MASTER", timeout=25)
    wait_state(a2, "BACKUP")
    wait_sole_holder(lab.nodes, VIP4, n1)
    old_pid = vrrp_child_pid(a1)
    with AddressSampler(n1, VIP4, pid=a1.pid) as sampler:
        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)  # our own lab's VRRP process, found through its agent's status

        def restarted() -> dict | None:
            st = status(a1)
            proc = st["agent"]["processes"]["vrrp"]
            return st if proc["pid"] != old_pid and proc["running"] and proc["restarts"] == 1 else None
        wait_for(restarted, 15, what="the supervisor to restart the VRRP process")
        entry = wait_state(a1, "MASTER", timeout=10)
        resumed = sniffer.wait_for_adverts(1, timeout=10, src=n1.ipv4, since=killed_at)[0]
        sniffer.wait_for_adverts(2, timeout=10, src=n1.ipv4, since=killed_at)
    assert len(sampler.samples) > 20 and not sampler.errors
    assert sampler.missing == [], "the VIP left n1 while its VRRP process restarted"
    before = [a for a in sniffer.adverts(src=n1.ipv4) if a.t < killed_at][-1]
    gap_s = resumed.t - before.t
    down_s = master_down_s(100, advert_int, 2)
    print(f"\nMEASURE VRRP process restart: adverts of the master paused {gap_s:.3f} s "
          f"(backup's Master_Down_Interval {down_s:.3f} s)")
    assert gap_s < down_s and resumed.priority == 150
    assert entry["last_transition"]["reason"] == "resumed as MASTER after an agent restart"
    restart = events(a1, "process_restart")
    assert len(restart) == 1 and restart[0]["process"] == "vrrp" and restart[0]["resume"] == {"VI_1": "MASTER"}
    # The backup never noticed.
    peer = inst(a2)
    assert (peer["state"], peer["transitions"], peer["stats"]["become_master"]) == ("BACKUP", 1, 0)
    assert holders(lab.nodes, VIP4) == ["n1"]
