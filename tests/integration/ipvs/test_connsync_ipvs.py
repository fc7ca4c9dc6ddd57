"""Connections that survive a failover on the IPVS backend (inside UML, real IPVS): two hanode directors, each
its own network namespace with its own IPVS table and sync daemons, lvs_sync_daemon following VI_1. The
kernel's daemons are read back with ipvsadm (not hanode's codec): n1 runs the master daemon, n2 the backup
one; long-lived TCP and SCTP connections (real SCTP sockets) through the VIP go on after n1 is killed
(SIGKILL, links down), and n2 then runs the master daemon. Scenario and topology: hanode.lab.connsync.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from hanode.lab.connsync import BACKEND_VIP, VRID, Scenario
from hanode.lab.lab import Lab
from hanode.lab.procs import wait_for

TCP_CONNECTIONS = 40
SCTP_CONNECTIONS = 10


@pytest.fixture
def lab():
    for module in ("ipv6", "bridge", "sctp"):      # UML modules the lab and the SCTP sockets need
        subprocess.run(["modprobe", module], check=False)
    with Lab(nodes=2, clients=1, real_servers=2, real_server_gateway=BACKEND_VIP, prefix="ipvssync",
             workdir_root="/tmp/hanode-lab") as built:      # the checkout is read-only in the guest
        yield built


def daemons(lab, host) -> str:
    return lab.run(host, ["ipvsadm", "-L", "--daemon"], check=False).stdout


def test_sync_daemon_follows_the_master_and_tcp_and_sctp_connections_survive(lab):
    scenario = Scenario(lab, "hanode-ipvs", sctp=True, start_timeout_s=120)
    scenario.start()
    n1, n2 = scenario.n1, scenario.n2
    wait_for(lambda: "master sync daemon" in daemons(lab, n1), 60, what="n1's master sync daemon")
    assert re.search(rf"master sync daemon \(mcast=eth1, syncid={VRID},", daemons(lab, n1)), daemons(lab, n1)
    assert "backup sync daemon" not in daemons(lab, n1)
    assert re.search(rf"backup sync daemon \(mcast=eth1, syncid={VRID},", daemons(lab, n2)), daemons(lab, n2)
    assert "master sync daemon" not in daemons(lab, n2)

    results = scenario.hold_through_kill({"tcp": TCP_CONNECTIONS, "sctp": SCTP_CONNECTIONS})
    for proto, result in results.items():
        print(f"\nMEASURE hanode IPVS {proto}: {result['survived']}/{result['connections']} survived (synced before "
              f"the kill: {result['synced_before_kill']}); takeover {result['takeover_ms']} ms, longest stall "
              f"{result['longest_stall_ms']:.0f} ms")
        assert result["established"] == result["connections"] and result["servers"] == ["r1", "r2"], result
        assert result["survived"] == result["connections"], result["lost"]
    wait_for(lambda: "master sync daemon" in daemons(lab, n2), 60, what="n2's master sync daemon after the takeover")
    assert "backup sync daemon" not in daemons(lab, n2)
