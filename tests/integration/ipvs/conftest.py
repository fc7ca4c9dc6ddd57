"""Real-IPVS tests. They run inside Debian's User-Mode Linux kernel (scripts/uml_run.py), started by
tests/integration/test_ipvs_uml.py; on a host they are not collected (the host kernel has no IPVS and the
tests change the namespace's IPVS table), HANODE_IN_UML=1 turns them on.

Topology, built inside the guest (the guest's root namespace is the director, where IPVS lives):

    ipvs-c1  198.51.100.201/24 --- vc1 198.51.100.1/24 + VIP 198.51.100.100      (director = guest root ns)
    ipvs-c2  198.51.100.202/24 --- vc2 (second client, own link, same subnet via /32 routes)
    ipvs-rN  203.0.113.(4N+2)/30 --- vrN 203.0.113.(4N+1)/30, default route via the director
    each real server runs `hanode.lab.httpd` on :8080, answering with its name (r1, r2, ...)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

if not os.environ.get("HANODE_IN_UML"):
    collect_ignore_glob = ["test_*.py"]

REPO = Path(__file__).resolve().parents[3]
VIP = "198.51.100.100"
REAL_SERVERS = 4
SORRY = 4            # r4 plays the sorry server


def rs_addr(i: int) -> str:
    return f"203.0.113.{4 * i + 2}"


def sh(*cmds: str) -> None:
    for cmd in cmds:
        subprocess.run(cmd, shell=True, check=True, timeout=30)


def ns(name: str, argv: list[str], check: bool = False, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=True, text=True, timeout=30, check=check,
                          **kw)


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {what}")
        time.sleep(0.05)


class Topology:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.namespaces: list[str] = []

    def up(self) -> None:
        sh("sysctl -qw net.ipv4.ip_forward=1")
        for c in (1, 2):
            self._link(f"ipvs-c{c}", f"vc{c}", f"198.51.100.{200 + c}/24", None)
            ns(f"ipvs-c{c}", ["ip", "route", "add", "default", "dev", "eth0"])
        sh("ip addr add 198.51.100.1/24 dev vc1", f"ip addr add {VIP}/32 dev vc1",
           "ip route add 198.51.100.202/32 dev vc2")
        for i in range(1, REAL_SERVERS + 1):
            self._link(f"ipvs-r{i}", f"vr{i}", f"{rs_addr(i)}/30", f"203.0.113.{4 * i + 1}/30")
            ns(f"ipvs-r{i}", ["ip", "route", "add", "default", "via", f"203.0.113.{4 * i + 1}"])
        env = dict(os.environ, PYTHONPATH=str(REPO / "agent" / "src"))
        for i in range(1, REAL_SERVERS + 1):
            ready = Path(f"/tmp/ipvs-httpd-r{i}.ready")
            ready.unlink(missing_ok=True)
            self.procs.append(subprocess.Popen(
                ["ip", "netns", "exec", f"ipvs-r{i}", sys.executable, "-m", "hanode.lab.httpd", "--name", f"r{i}",
                 "--port", "8080", "--ready-file", str(ready)], env=env, stderr=subprocess.DEVNULL))
        for i in range(1, REAL_SERVERS + 1):
            wait_for(Path(f"/tmp/ipvs-httpd-r{i}.ready").exists, 60, f"http server r{i}")

    def _link(self, name: str, outer: str, inner_addr: str, outer_addr: str | None) -> None:
        sh(f"ip netns add {name}", f"ip link add {outer} type veth peer name eth0 netns {name}",
           f"ip link set {outer} up")
        self.namespaces.append(name)
        ns(name, ["ip", "link", "set", "lo", "up"])
        ns(name, ["ip", "link", "set", "eth0", "up"])
        ns(name, ["ip", "addr", "add", inner_addr, "dev", "eth0"])
        if outer_addr:
            sh(f"ip addr add {outer_addr} dev {outer}")

    def down(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        subprocess.run(["ipvsadm", "-C"], check=False)
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "del", name], check=False)

    def get(self, client: int = 1, timeout_s: float = 5) -> str:
        proc = ns(f"ipvs-c{client}", ["curl", "-sS", "-m", str(timeout_s), f"http://{VIP}/"])
        assert proc.returncode == 0, f"curl through the VIP failed: {proc.stderr}"
        return proc.stdout.strip()

    def names(self, count: int, client: int = 1) -> list[str]:
        return [self.get(client) for _request in range(count)]


@pytest.fixture(scope="session")
def topology():
    topo = Topology()
    try:
        topo.up()
        yield topo
    finally:
        topo.down()


@pytest.fixture
def run():
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture
def clean_ipvs(topology):
    subprocess.run(["ipvsadm", "-C"], check=True)
    yield topology
    subprocess.run(["ipvsadm", "-C"], check=True)


def ipvsadm_rules() -> list[str]:
    """The kernel's table as ipvsadm saves it (read independently of hanode's codec)."""
    out = subprocess.run(["ipvsadm", "-Sn"], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def connections() -> list[tuple[str, str, str]]:
    """(client ip:port, destination ip:port, state) from /proc/net/ip_vs_conn."""
    rows = []
    with open("/proc/net/ip_vs_conn") as handle:
        next(handle)
        for line in handle:
            f = line.split()
            client = f"{int(f[1], 16) >> 24 & 255}.{int(f[1], 16) >> 16 & 255}.{int(f[1], 16) >> 8 & 255}.{int(f[1], 16) & 255}:{int(f[2], 16)}"
            dest = f"{int(f[5], 16) >> 24 & 255}.{int(f[5], 16) >> 16 & 255}.{int(f[5], 16) >> 8 & 255}.{int(f[5], 16) & 255}:{int(f[6], 16)}"
            rows.append((client, dest, f[7]))
    return rows
