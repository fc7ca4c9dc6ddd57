"""Connections that survive a failover on the nftables backend (host kernel): two directors, each with
conntrackd configured and switched by its agent (conntrack_sync), long-lived TCP connections through the VIP,
the master killed (SIGKILL of the whole agent and its links down). Every connection goes on, on the same real
server. Before the kill the backup's conntrackd is killed: the agent starts a fresh one, whose resync
request refills it with the master's connections. The control case, without conntrack_sync, loses connections: the new master schedules their next
packets afresh. Scenario and topology: hanode.lab.connsync.
"""

from __future__ import annotations

import os
import secrets
import signal

import pytest

from hanode.lab.connsync import BACKEND_VIP, Scenario
from hanode.lab.procs import wait_for
from helpers_checker import status, wait_event
from helpers_ops import assert_status_schema

pytestmark = pytest.mark.netns

CONNECTIONS = 40


def sync_status(handle) -> dict:
    return status(handle).get("connection_sync") or {}


def restart_backups_conntrackd(agent) -> None:
    """conntrackd killed on the backup, which holds the master's connections: the agent starts a fresh one
    (its external cache empty), switches it to BACKUP, whose resync request (-n) refills the cache."""
    ctd = sync_status(agent)["conntrackd"]
    os.kill(ctd["pid"], signal.SIGKILL)
    wait_for(lambda: (sync_status(agent).get("conntrackd") or {}).get("restarts") == 1
             and sync_status(agent)["conntrackd"]["applied_state"] == "BACKUP"
             and sync_status(agent)["conntrackd"]["pid"] not in (None, ctd["pid"]), 30,
             what="conntrackd restarted on n2 and switched to BACKUP")
    restarted = wait_event(agent, event="connection_sync", action="restart")
    assert restarted["ok"] is False and restarted["exit_status"] is not None, restarted


@pytest.mark.parametrize("sync", [True, False], ids=["conntrack_sync", "control-without-sync"])
def test_established_connections_survive_a_master_kill_with_conntrackd(lab_factory, sync):
    lab = lab_factory(nodes=2, clients=1, real_servers=2, real_server_gateway=BACKEND_VIP,
                      prefix=f"hcs{secrets.token_hex(3)}")
    scenario = Scenario(lab, "hanode-nft", sync=sync)
    scenario.start()
    a1, a2 = scenario.directors
    if sync:
        wait_for(lambda: (sync_status(a1).get("conntrackd") or {}).get("applied_state") == "MASTER", 30,
                 what="conntrackd switched to MASTER on n1")
        assert sync_status(a1)["conntrackd"]["running"] and sync_status(a2)["conntrackd"]["running"]
        switched = wait_event(a1, event="connection_sync", vrrp_state="MASTER")
        assert [a.split(" (")[0] for a in switched["actions"]] == ["conntrackd -c", "conntrackd -f", "conntrackd -R",
                                                                   "conntrackd -B"], switched
    result = scenario.hold_through_kill({"tcp": CONNECTIONS},
                                        before_kill=(lambda: restart_backups_conntrackd(a2)) if sync else None)["tcp"]
    print(f"\nMEASURE {'conntrackd' if sync else 'no sync'}: {result['survived']}/{CONNECTIONS} connections "
          f"survived (synced before the kill: {result['synced_before_kill']}); takeover {result['takeover_ms']} ms, "
          f"longest stall {result['longest_stall_ms']:.0f} ms, median {result['median_stall_ms']:.0f} ms")
    assert result["established"] == CONNECTIONS and result["servers"] == ["r1", "r2"]
    if sync:
        assert result["synced_before_kill"] >= CONNECTIONS
        took_over = wait_event(a2, event="connection_sync", vrrp_state="MASTER")
        assert took_over["ok"] and took_over["actions"][0].startswith("conntrackd -c"), took_over
        document = status(a2)
        assert_status_schema(document)
        assert document["connection_sync"]["conntrackd"]["applied_state"] == "MASTER"
        assert result["survived"] == CONNECTIONS, result["lost"]
    else:
        assert result["lost"] and all(c["error"] for c in result["lost"]), result["lost"]
