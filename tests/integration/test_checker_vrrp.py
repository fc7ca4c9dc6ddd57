"""Load balancing paired with VRRP on two directors (nftables backend): the VIPs (client side and the real
servers' gateway) move with the master and traffic keeps flowing through the new master.

    c1 -> VIP 198.51.100.100:80 (VRRP, lan) -> n1 | n2 -> r1, r2 (default route via 203.0.113.254, VRRP, backend)
"""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_checker import (VIP, Traffic, kernel_weights, lb_config, new_lab, real_server, rs_status, status,
                             virtual_server, wait_rs, wait_split)

pytestmark = pytest.mark.netns

BACKEND_VIP = "203.0.113.254"


def director_config(name: str, priority: int, servers: list[dict]) -> dict:
    instance = {"interface": "eth0", "virtual_router_id": 62, "priority": priority, "advert_int": 1,
                "state": "BACKUP", "virtual_ipaddresses": [f"{VIP}/24", f"{BACKEND_VIP}/24 dev eth1"]}
    return lb_config(name, [virtual_server(servers)], vrrp_instances={"VI_1": instance})


def vrrp_state(handle) -> str:
    return status(handle)["instances"]["VI_1"]["state"]


@pytest.mark.parametrize("lose", ["sigterm", "links-down"])
def test_vip_moves_with_the_master_and_traffic_keeps_flowing(lab_factory, lose):
    lab = new_lab(lab_factory, nodes=2, real_servers=2, real_server_gateway=BACKEND_VIP)
    n1, n2 = lab.nodes
    r1, r2 = lab.real_servers
    for r in (r1, r2):
        lab.start_http_server(r)
    servers = [real_server(r1), real_server(r2)]
    a1 = lab.start_agent(n1, director_config("n1", 150, servers), timeout=20)
    wait_for(lambda: vrrp_state(a1) == "MASTER", 20, what="n1 MASTER")
    a2 = lab.start_agent(n2, director_config("n2", 100, servers), timeout=20)
    wait_for(lambda: vrrp_state(a2) == "BACKUP", 20, what="n2 BACKUP")
    for handle in (a1, a2):
        for r in (r1, r2):
            wait_rs(handle, r, health="up", kernel_weight=1)
    assert kernel_weights(lab, n2) == kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 1, f"{r2.ipv4}:8080": 1}
    wait_split(lab, {"r1", "r2"})

    with Traffic(lab) as traffic:
        wait_for(lambda: len(traffic.results) >= 5, 10, what="traffic through n1")
        lost_at = time.monotonic()
        if lose == "sigterm":
            assert a1.stop() == 0
        else:
            lab.link_set(n1, "eth0", False)
            lab.link_set(n1, "eth1", False)
        wait_for(lambda: vrrp_state(a2) == "MASTER", 20, what="n2 MASTER")
        assert n2.has_address(VIP) and n2.has_address(BACKEND_VIP)
        taken_over = time.monotonic()   # requests sent from now on go through n2
        wait_for(lambda: sum(1 for r in traffic.sent_after(taken_over) if r in ("r1", "r2")) >= 10, 20,
                 what="10 answers through n2")
        failover_s = time.monotonic() - lost_at
    errors = [r for r in traffic.results if r.startswith("error")]
    print(f"\nMEASURE {lose}: {len(traffic.results)} requests, {len(errors)} failed during a {failover_s:.1f} s window")
    after = traffic.sent_after(taken_over)
    assert {"r1", "r2"} <= set(after), after
    assert not [r for r in after if r.startswith("error")], after
    if lose == "sigterm":
        assert not [r for r in traffic.results if r.startswith("error")], traffic.results
        assert kernel_weights(lab, n1) == {}, "a stopped agent removes its rules"
    assert rs_status(a2, r1)["health"] == "up" and rs_status(a2, r2)["health"] == "up"
