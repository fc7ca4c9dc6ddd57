"""ha_suspend on the IPVS backend (inside UML, real IPVS), as keepalived 2.2.7's checker does it
(check_api.c update_checker_activity): while the service's VIP is not on the director its checks probe
nothing, its real server keeps the health it had, and the kernel's IPVS service is left as it is.

    client c1 -> VIP 198.51.100.100:80 on director n1 (added and removed with `ip addr`) -> r1 (203.0.113.x:8080)

The checks are HTTP_GETs, counted where they arrive: r1's web server logs one line per request. The kernel's
table is read with ipvsadm in n1's namespace, not with hanode's codec. The nftables twin of this test is
tests/integration/test_lvs_ha_suspend.py.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from hanode.control.client import request
from hanode.lab.lab import Lab
from hanode.lab.procs import wait_for

VIP = "198.51.100.100"
GATEWAY = "203.0.113.1"
DELAY_LOOP_S = 0.5
QUIET_S = 2.5          # five delay_loops with no probe: the checks are suspended, not just slow


@pytest.fixture
def lab():
    for module in ("ipv6", "bridge"):      # UML modules the lab needs
        subprocess.run(["modprobe", module], check=False)
    with Lab(nodes=1, clients=1, real_servers=1, real_server_gateway=GATEWAY, prefix="ipvshas",
             workdir_root="/tmp/hanode-lab") as built:      # the checkout is read-only in the guest
        yield built


def vs_status(agent) -> dict:
    reply = request(str(agent.socket_path), {"cmd": "status"}, timeout_s=30)
    assert reply.get("ok"), reply
    (vs,) = reply["status"]["virtual_servers"]
    return vs


def ipvs_table(lab, node) -> dict[str, int]:
    """{'203.0.113.x:8080': weight} of the VIP's service, from `ipvsadm -Ln` in the director's namespace."""
    out = lab.run(node, ["ipvsadm", "-Ln"]).stdout
    service = re.search(rf"^TCP\s+{re.escape(VIP)}:80 [^\n]*\n((?:[ \t]+->[^\n]*\n?)*)", out, re.M)
    assert service, f"no IPVS service {VIP}:80 on {node.name}:\n{out}"
    return {m[0]: int(m[1]) for m in re.findall(r"->\s+(\S+)\s+\w+\s+(\d+)", service[1])}


def probes(log) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def quiet(log) -> int:
    """The probe count, after making sure it stays the same for QUIET_S."""
    before = probes(log)
    time.sleep(QUIET_S)    # an observation window: nothing may arrive during it
    after = probes(log)
    assert after == before, f"{after - before} checks reached the real server while the VIP was away"
    return after


def test_ipvs_checks_follow_the_vip_and_the_service_stays(lab):
    n1, r1 = lab.nodes[0], lab.real_servers[0]
    log = r1.dir / "requests.log"
    httpd = lab.start_http_server(r1, timeout=60, options=["--request-log", str(log)])
    check = {"type": "HTTP_GET", "path": "/", "status_code": 200, "connect_timeout": 2, "retry": 0}
    config = {"router_id": "n1", "script_user": "root", "lb_backend": "ipvs", "lb_reconcile_interval": 2,
              "virtual_servers": [{"address": VIP, "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT",
                                   "delay_loop": DELAY_LOOP_S, "ha_suspend": True,
                                   "real_servers": [{"address": r1.ipv4, "port": 8080, "weight": 1,
                                                     "checks": [check]}]}]}
    agent = lab.start_agent(n1, config, timeout=120)
    wait_for(lambda: vs_status(agent)["checks_suspended"], 60, what="the checks suspended")
    rs_key = f"{r1.ipv4}:8080"
    assert ipvs_table(lab, n1) == {rs_key: 1}      # the service is in the kernel although no check ran
    assert quiet(log) == 0

    lab.run(n1, ["ip", "addr", "add", f"{VIP}/32", "dev", "eth0"])
    wait_for(lambda: probes(log) >= 2, 30, what="checks reaching r1 once the VIP is on n1")
    assert not vs_status(agent)["checks_suspended"]

    lab.run(n1, ["ip", "addr", "del", f"{VIP}/32", "dev", "eth0"])
    wait_for(lambda: vs_status(agent)["checks_suspended"], 30, what="the checks suspended again")
    time.sleep(DELAY_LOOP_S * 2)   # a check already under way when the VIP left may still arrive
    httpd.kill()                   # r1 fails while nothing looks at it: it keeps its health, as in keepalived
    seen = quiet(log)
    (rs,) = vs_status(agent)["real_servers"]
    assert (rs["health"], rs["kernel_weight"]) == ("up", 1)
    assert ipvs_table(lab, n1) == {rs_key: 1}

    lab.run(n1, ["ip", "addr", "add", f"{VIP}/32", "dev", "eth0"])
    wait_for(lambda: vs_status(agent)["real_servers"][0]["health"] == "down", 30,
             what="r1's failure seen once the VIP is back")
    assert probes(log) == seen          # the server is gone: the checks failed to connect, nothing logged
    wait_for(lambda: ipvs_table(lab, n1) == {}, 30, what="r1 out of the IPVS table")
