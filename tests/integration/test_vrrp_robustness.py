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


def test_vips_carry_their_label_scope_and_broadcast_and_leave_on_stop(lab_factory):
    lab = new_lab(lab_factory, nodes=1)
    (n1,) = lab.nodes
    vips = ("198.51.100.100/24 dev eth0 label eth0:vip brd 198.51.100.255 scope global",
            "198.51.100.101/32 dev eth0 scope link")
    config = single("n1", 150, version=3, advert_int=0.3)
    config["vrrp_instances"]["VI_1"]["virtual_ipaddresses"] = list(vips)
    agent = lab.start_agent(n1, config)
    wait_state(agent, "MASTER", timeout=15)
    shown = lab.run(n1, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
    first = next(line for line in shown.splitlines() if " 198.51.100.100/24 " in line)
    assert "brd 198.51.100.255" in first and "scope global" in first and " eth0:vip" in first, first
    second = next(line for line in shown.splitlines() if " 198.51.100.101/32 " in line)
    assert "scope link" in second, second
    agent.stop()
    left = lab.run(n1, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
    assert "198.51.100.100" not in left and "198.51.100.101" not in left, left


def test_a_garp_burst_with_an_interval_never_holds_back_adverts(lab_factory):
    """garp_master_repeat 5 with garp_interval 1 s spreads the burst over 4 s; a fast advert_int (0.1 s) must
    keep going meanwhile, or the backup (Master_Down_Interval 0.36 s) would take over."""
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    sniffer = lab.sniff_vrrp()
    garp = {"garp_master_repeat": 5, "garp_interval": 1}
    a2 = lab.start_agent(n2, single("n2", 100, version=3, advert_int=0.1, **garp))
    wait_state(a2, "MASTER", timeout=15)
    a1 = lab.start_agent(n1, single("n1", 150, version=3, advert_int=0.1, **garp))
    wait_state(a1, "MASTER", timeout=15)           # n1 preempts: its own burst starts now
    took_over = sniffer.wait_for_adverts(1, timeout=5, src=n1.ipv4)[0].t
    time.sleep(4.5)                                 # the whole burst
    times = [a.t for a in sniffer.adverts(src=n1.ipv4, since=took_over)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 35 and max(gaps) < 0.3, f"{len(times)} adverts, longest gap {max(gaps):.3f} s"
    assert inst(a1)["state"] == "MASTER" and inst(a2)["state"] == "BACKUP"
    assert inst(a1)["stats"]["become_master"] == 1
    assert holders(lab.nodes, VIP4) == ["n1"]
