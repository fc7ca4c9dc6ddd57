"""Connections that survive a failover on the nftables backend: two directors, each with conntrackd configured
and switched by its agent (conntrack_sync), long-lived TCP connections through the VIP, the master killed
(SIGKILL of the whole agent and its links down). Every connection goes on, on the same real server. The
control case, without conntrack_sync, loses connections: the new master schedules their next packets afresh.

    c1 --- lan --- n1 (MASTER) | n2 (BACKUP) --- backend --- r1, r2 (default route via 203.0.113.254, a VIP)
                   conntrackd FT-FW multicast between n1 and n2 over eth1 (backend)
"""

from __future__ import annotations

import json
import time

import pytest

from hanode.lab.procs import python_env, python_module_argv, wait_for
from helpers_checker import VIP, new_lab, status, wait_event

pytestmark = pytest.mark.netns

BACKEND_VIP = "203.0.113.254"
PORT = 9000
CONNECTIONS = 40


def director_config(name: str, priority: int, servers: list, sync: bool = True) -> dict:
    instance = {"interface": "eth0", "virtual_router_id": 63, "priority": priority, "advert_int": 0.2, "version": 3,
                "state": "BACKUP", "virtual_ipaddresses": [f"{VIP}/24", f"{BACKEND_VIP}/24 dev eth1"]}
    vs = {"address": VIP, "port": PORT, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 1,
          "real_servers": [{"address": r.ipv4, "port": PORT, "checks": [{"type": "TCP_CHECK", "connect_timeout": 1}]}
                           for r in servers]}
    config = {"router_id": name, "lb_backend": "nftables", "lb_reconcile_interval": 2, "virtual_servers": [vs],
              "vrrp_instances": {"VI_1": instance}}
    if sync:
        config["conntrack_sync"] = {"interface": "eth1", "instance": "VI_1"}
    return config


def start_echo(lab, host):
    ready = host.dir / f"echo-{PORT}.ready"
    handle = lab.popen(host, python_module_argv("hanode.lab.connhold", "server", "--name", host.name, "--port",
                                                str(PORT), "--ready-file", str(ready)), log_name="echo", env=python_env())
    wait_for(ready.exists, 20, what=f"echo server on {host.name}")
    return handle


def sync_status(handle) -> dict:
    return status(handle).get("connection_sync") or {}


def vrrp_state(handle) -> str:
    return status(handle)["instances"]["VI_1"]["state"]


@pytest.mark.parametrize("sync", [True, False], ids=["conntrack_sync", "control-without-sync"])
def test_established_connections_survive_a_master_kill_with_conntrackd(lab_factory, sync):
    lab = new_lab(lab_factory, nodes=2, real_servers=2, real_server_gateway=BACKEND_VIP)
    n1, n2 = lab.nodes
    c1 = lab.clients[0]
    for r in lab.real_servers:
        start_echo(lab, r)
    a1 = lab.start_agent(n1, director_config("n1", 150, lab.real_servers, sync), timeout=20)
    wait_for(lambda: vrrp_state(a1) == "MASTER", 20, what="n1 MASTER")
    a2 = lab.start_agent(n2, director_config("n2", 100, lab.real_servers, sync), timeout=20)
    wait_for(lambda: vrrp_state(a2) == "BACKUP", 20, what="n2 BACKUP")
    if sync:
        check_switched(a1, a2)
    result = hold_through_a_kill(lab, a1, a2, sync)
    lost = [c for c in result["per_connection"] if not c["survived"]]
    gaps = sorted(c["max_gap_ms"] for c in result["per_connection"])
    print(f"\nMEASURE {'conntrackd' if sync else 'no sync'}: {result['survived']}/{CONNECTIONS} connections "
          f"survived; longest stall {gaps[-1]:.0f} ms, median {gaps[len(gaps) // 2]:.0f} ms")
    assert {c["server"] for c in result["per_connection"]} == {"r1", "r2"}
    if sync:
        assert not lost, lost[:5]
    else:
        assert lost and all(c["error"] for c in lost), lost[:5]


def check_switched(a1, a2) -> None:
    for handle, state in ((a1, "MASTER"), (a2, "BACKUP")):
        wait_for(lambda h=handle, s=state: (sync_status(h).get("conntrackd") or {}).get("applied_state") == s, 30,
                 what=f"conntrackd switched to {state} on {handle.host.name}")
    assert sync_status(a1)["conntrackd"]["running"] and sync_status(a2)["conntrackd"]["running"]
    switched = wait_event(a1, event="connection_sync", vrrp_state="MASTER")
    assert [a.split(" (")[0] for a in switched["actions"]] == ["conntrackd -c", "conntrackd -f", "conntrackd -R",
                                                               "conntrackd -B"], switched


def hold_through_a_kill(lab, a1, a2, sync: bool) -> dict:
    """Long-lived connections through the VIP; n1 killed (agent SIGKILL, links down); n2 takes over."""
    n1, n2 = lab.nodes
    c1 = lab.clients[0]
    out, ready, stop = (c1.dir / name for name in ("hold.json", "hold.ready", "hold.stop"))
    client = lab.popen(c1, python_module_argv("hanode.lab.connhold", "client", "--target", f"{VIP}:{PORT}",
                                              "--connections", str(CONNECTIONS), "--interval-ms", "100", "--out",
                                              str(out), "--ready-file", str(ready), "--stop-file", str(stop)),
                       log_name="hold", env=python_env())
    wait_for(ready.exists, 30, what="every connection answered once")
    assert json.loads(ready.read_text())["established"] == CONNECTIONS

    def synced() -> bool:      # the backup's external cache holds the client's connections
        proc = lab.run(n2, ["conntrackd", "-C", str(n2.dir / "agent.conntrackd.conf"), "-e", "ct"], check=False)
        return proc.stdout.count(f"dport={PORT}") >= CONNECTIONS
    if sync:
        wait_for(synced, 20, what="the client's connections in n2's external cache")

    time.sleep(0.5)   # traffic flows a little while with everything in place (the baseline of the gaps)
    a1.kill()
    lab.link_set(n1, "eth0", False)
    lab.link_set(n1, "eth1", False)
    killed = time.monotonic()
    wait_for(lambda: vrrp_state(a2) == "MASTER", 20, what="n2 MASTER")
    if sync:
        took_over = wait_event(a2, event="connection_sync", vrrp_state="MASTER")
        assert took_over["ok"], took_over
    assert wait_for(lambda: time.monotonic() - killed > 3.0, 10, what="3 s of traffic after the kill")
    stop.write_text("stop\n")
    wait_for(out.exists, 30, what="the client's result")
    client.wait(10)
    return json.loads(out.read_text())
