"""ha_suspend on the nftables backend, in a namespace lab: the checker probes a real server only while the
service's VIP is on the director, as keepalived 2.2.7's checker does (check_api.c update_checker_activity).

    client c1 -> VIP 198.51.100.100:80 on director n1 (added and removed with `ip addr`) -> r1 (203.0.113.11:8080)

The checks are counted where they arrive: an nftables counter in r1's namespace counts the SYNs the director
(203.0.113.1) sends to port 8080. While the VIP is away the service and its real server stay in the director's
table at their weight (keepalived leaves its IPVS service alone) and r1 keeps the health it had, even when it
fails; when the VIP comes back the checks run again and see the failure.
"""

from __future__ import annotations

import json
import time

import pytest

from hanode.lab.procs import wait_for
from helpers_checker import (GATEWAY, VIP, kernel_weights, lb_config, new_lab, real_server, start_director,
                             virtual_server, vs_status, wait_rs, wait_split)

pytestmark = pytest.mark.netns

DELAY_LOOP_S = 0.3
QUIET_S = 1.5          # five delay_loops with no probe: the checks are suspended, not just slow


def count_probes(lab, host) -> int:
    doc = json.loads(lab.run(host, ["nft", "-j", "list", "table", "inet", "probes"]).stdout)
    return sum(expr["counter"]["packets"] for item in doc["nftables"] if "rule" in item
               for expr in item["rule"]["expr"] if "counter" in expr)


def quiet(lab, host) -> int:
    """The probe count, after making sure it stays the same for QUIET_S."""
    before = count_probes(lab, host)
    time.sleep(QUIET_S)   # an observation window: nothing may arrive during it
    after = count_probes(lab, host)
    assert after == before, f"{after - before} checks reached {host.name} while the VIP was away"
    return after


def test_checks_follow_the_vip_and_the_service_stays(lab_factory):
    lab = new_lab(lab_factory, real_servers=1)
    n1, (r1,) = lab.nodes[0], lab.real_servers
    lab.run(r1, ["nft", "-f", "-"], input=(
        "table inet probes {\n chain input {\n  type filter hook input priority 0;\n"
        f"  ip saddr {GATEWAY} tcp dport 8080 tcp flags syn counter\n }}\n}}\n"))
    httpd = lab.start_http_server(r1)
    check = {"type": "TCP_CHECK", "connect_timeout": 1, "retry": 0}
    config = lb_config("n1", [virtual_server([real_server(r1, checks=[check])], delay_loop=DELAY_LOOP_S,
                                             ha_suspend=True)])
    agent = start_director(lab, n1, config, vip=False)
    vs = wait_for(lambda: (s := vs_status(agent))["checks_suspended"] and s, 10, what="the checks suspended")
    assert vs["in_kernel"] and kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 1}   # the service stays
    assert quiet(lab, r1) == 0

    lab.run(n1, ["ip", "addr", "add", f"{VIP}/32", "dev", "eth0"])
    wait_for(lambda: count_probes(lab, r1) >= 2, 5, what="checks reaching r1 once the VIP is on n1")
    assert not vs_status(agent)["checks_suspended"]
    wait_split(lab, {"r1"})

    lab.run(n1, ["ip", "addr", "del", f"{VIP}/32", "dev", "eth0"])
    wait_for(lambda: vs_status(agent)["checks_suspended"], 5, what="the checks suspended again")
    time.sleep(DELAY_LOOP_S)   # a check already under way when the VIP left may still arrive
    httpd.kill()               # r1 fails while nothing looks at it: it keeps its health, as in keepalived
    seen = quiet(lab, r1)
    assert wait_rs(agent, r1, health="up")["kernel_weight"] == 1
    assert kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 1}

    back_at = time.monotonic()
    lab.run(n1, ["ip", "addr", "add", f"{VIP}/32", "dev", "eth0"])
    wait_rs(agent, r1, timeout=5, health="down")
    print(f"\nMEASURE failure seen {(time.monotonic() - back_at) * 1000:.0f} ms after the VIP came back "
          f"(delay_loop {DELAY_LOOP_S * 1000:.0f} ms)")
    assert count_probes(lab, r1) > seen
    wait_for(lambda: kernel_weights(lab, n1) == {}, 5, what="r1 out of the table")
