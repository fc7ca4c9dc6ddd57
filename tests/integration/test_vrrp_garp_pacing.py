"""keepalived's GARP / NA pacing on an interface: eth0's garp_group (not the global vrrp_garp_interval /
vrrp_gna_interval) spaces the ARPs and the NAs a takeover sends on it (all VIPs and rounds on one timeline per
family), seen with timestamps on a client."""

from __future__ import annotations

import subprocess
import threading

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import VIP4, VIP4_B, agent_config, instance, new_lab, wait_state

pytestmark = pytest.mark.netns
GARP_S, GNA_S, REPEAT = 0.1, 0.05, 4
EVIP6 = "2001:db8:100::151"


def test_garp_and_gna_intervals_space_the_takeover_s_announcements(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=1)
    (n1,), client = lab.nodes, lab.clients[0]
    capture = lab.popen(client, ["tcpdump", "-l", "-n", "-e", "-tt", "-i", "eth0", "arp or (icmp6 and ip6[40] == 136)"],
                        log_name="tcpdump-garp", stdout=subprocess.PIPE)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(capture.popen.stdout), daemon=True).start()
    config = agent_config("n1", {"VI_1": instance(51, 150, vips=(VIP4, VIP4_B), version=3, advert_int=0.3,
                                                  garp_master_repeat=REPEAT, garp_master_delay=60,
                                                  virtual_ipaddress_excluded=[f"{EVIP6}/64"])},
                          vrrp_garp_interval=0.5, vrrp_gna_interval=0.5,      # eth0 is in a group: not these
                          garp_groups=[{"interface": "eth0", "garp_interval": GARP_S, "gna_interval": GNA_S}])
    agent = lab.start_agent(n1, config)
    wait_state(agent, "MASTER", timeout=20)

    def sent(kind: str) -> list[float]:
        return [float(line.split()[0]) for line in list(lines) if n1.mac in line.split()[1] and kind in line]

    wait_for(lambda: len(sent("ARP")) >= 2 * REPEAT and len(sent("neighbor advertisement")) >= REPEAT, 15,
             what="the takeover's ARPs and NAs")
    capture.kill()
    for kind, interval_s, count in (("ARP", GARP_S, 2 * REPEAT), ("neighbor advertisement", GNA_S, REPEAT)):
        times = sent(kind)[:count]
        gaps = [b - a for a, b in zip(times, times[1:])]
        print(f"{kind}: gaps {[round(g * 1000, 1) for g in gaps]} ms")
        assert min(gaps) >= interval_s * 0.95, (kind, gaps)
        assert times[-1] - times[0] < interval_s * (count - 1) + 0.4     # not the global 0.5 s


def test_a_master_hearing_a_lower_priority_sends_garp_lower_prio_repeat_and_again_after_the_delay(lab_factory):
    """n1's VI_1 hears n2's lower-priority master after a partition heals: it re-announces VIP4 (2 GARPs, again
    after 1 s), and so does VI_2, its sync group's other MASTER, for VIP4_B with its own count and delay (3, 0.5 s),
    though VI_2 itself heard nothing (n2 runs no VI_2): keepalived 2.2.7's vrrp_state_master_rx."""
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    client = lab.clients[0]
    capture = lab.popen(client, ["tcpdump", "-l", "-n", "-e", "-tt", "-i", "eth0", "arp"],
                        log_name="tcpdump-garp-lower", stdout=subprocess.PIPE)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(capture.popen.stdout), daemon=True).start()
    quiet = {"version": 3, "advert_int": 0.3, "garp_master_repeat": 1, "garp_master_delay": 0}
    a1 = lab.start_agent(n1, agent_config("n1", {
        "VI_1": instance(51, 150, garp_lower_prio_repeat=2, garp_lower_prio_delay=1, **quiet),
        "VI_2": instance(52, 150, vips=(VIP4_B,), garp_lower_prio_repeat=3, garp_lower_prio_delay=0.5, **quiet)},
        vrrp_sync_groups={"G": {"group": ["VI_1", "VI_2"]}}))
    a2 = lab.start_agent(n2, agent_config("n2", {"VI_1": instance(51, 100, **quiet)}))
    wait_state(a1, "MASTER", timeout=20)
    wait_state(a2, "BACKUP")
    lab.partition(n1, n2)
    wait_state(a2, "MASTER", timeout=10)

    def from_n1(vip: str) -> list[float]:
        return [float(line.split()[0]) for line in list(lines) if n1.mac in line.split()[1] and f"{vip} " in line]

    before = {vip: len(from_n1(vip)) for vip in (VIP4, VIP4_B)}
    lab.heal()
    wait_state(a2, "BACKUP", timeout=10)
    wait_for(lambda: len(from_n1(VIP4)) >= before[VIP4] + 4 and len(from_n1(VIP4_B)) >= before[VIP4_B] + 6, 10,
             what="n1's two bursts of garp_lower_prio_repeat for each member")
    times = from_n1(VIP4)[before[VIP4]:]
    group = from_n1(VIP4_B)[before[VIP4_B]:]
    capture.kill()
    print(f"GARPs after the heal: VI_1 at +{[round(t - times[0], 3) for t in times]} s, "
          f"VI_2 at +{[round(t - times[0], 3) for t in group]} s")
    assert times[1] - times[0] < 0.1 and 0.9 <= times[2] - times[0] < 1.5 and times[3] - times[2] < 0.1
    assert len(times) == 4
    assert abs(group[0] - times[0]) < 0.1 and group[2] - group[0] < 0.1 and 0.4 <= group[3] - group[0] < 0.9
    assert len(group) == 6
