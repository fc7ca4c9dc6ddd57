"""Helpers of the real-hosts tests: site.yml against a host lab, who holds the VIP, client probes, what a host
still has of hanode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hanode.lab.hosts.fleet import HostLab
from hanode.lab.procs import wait_for

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration" / "targets"))
from ansible_run import env as ansible_env  # noqa: E402

INVENTORY = REPO / "inventories" / "hosts"
SITE = REPO / "site.yml"
VIP = "198.51.100.100"
URL = f"http://{VIP}/"
NODES = ("n1", "n2", "n3")
SECRET = "hn-S3cr"  # the VRRP auth_pass of inventories/hosts (HANODE_LAB_VRRP_PASS)
PROBE = REPO / "extensions" / "molecule" / "_shared" / "probe.py"


def playbook(lab: HostLab, book: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """ansible-playbook -i inventories/hosts BOOK against this lab, output kept in the lab's directory."""
    run_env = dict(ansible_env(), HANODE_LAB=lab.prefix, HANODE_LAB_VRRP_PASS=SECRET,
                   ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY), str(book), *args],
                          env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    took = time.monotonic() - started
    name = f"{book.stem}-{int(time.time() * 1000)}.log"
    (lab.dir / name).write_text(f"# {' '.join(args)}\n# {took:.1f} s, exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    proc.took_s = took  # type: ignore[attr-defined]
    return proc


def site(lab: HostLab, *args: str) -> subprocess.CompletedProcess:
    return playbook(lab, SITE, *args)


def tail(proc: subprocess.CompletedProcess, chars: int = 4000) -> str:
    return (proc.stdout + proc.stderr)[-chars:]


def holders(lab: HostLab, address: str = VIP) -> list[str]:
    """The hosts whose eth0 holds address (read from their namespaces, not over SSH: fast while polling)."""
    return [name for name in NODES if lab.hosts[name].netns and _has(lab, name, address)]


def _has(lab: HostLab, name: str, address: str) -> bool:
    try:
        return lab.hosts[name].has_address(address, "eth0")
    except Exception:  # a powered-off host has no namespace
        return False


def wait_holder(lab: HostLab, want: str, timeout: float) -> float:
    """Waits until exactly `want` holds the VIP; returns the seconds it took."""
    started = time.monotonic()
    wait_for(lambda: holders(lab) == [want], timeout, interval=0.05, what=f"{want} alone to hold {VIP} (now {holders(lab)})")
    return time.monotonic() - started


class Probe:
    """GET the VIP every 50 ms from the client's namespace (extensions/molecule/_shared/probe.py)."""

    def __init__(self, lab: HostLab, name: str):
        self.lab = lab
        self.log = lab.dir / "c1" / f"probe-{name}.rows"
        self.stop_file = lab.dir / "c1" / f"probe-{name}.stop"
        self.handle = lab.popen("c1", ["/usr/bin/python3", str(PROBE), URL, str(self.log), str(self.stop_file)],
                                log_name=f"probe-{name}")
        wait_for(lambda: " ok " in self.text(), 20, what="the first probe answered")

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> dict:
        self.stop_file.write_text("stop\n")
        wait_for(lambda: not self.handle.running, 20, what="the probe to stop")
        rows = [line.split(" ") for line in self.text().splitlines()]
        oks = [r for r in rows if r[1] == "ok"]
        return {"probes": len(rows), "failed": [r for r in rows if r[1] != "ok"],
                "answered_by": sorted({r[2] for r in oks}),
                "max_latency_s": max((float(r[3]) for r in oks), default=0.0)}


def changed_agent(lab: HostLab, tag: str) -> Path:
    """A copy of the agent source with one comment added: a new agent build (new digest) to roll out."""
    target = lab.dir / f"agent-{tag}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    shutil.copy(REPO / "agent" / "pyproject.toml", target)
    shutil.copytree(REPO / "agent" / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    with open(target / "src" / "hanode" / "__init__.py", "a") as handle:
        handle.write(f"# build {tag}\n")
    return target


def running_build(lab: HostLab, name: str) -> str:
    """The venv the running agent's main process executes from (its /proc cmdline), e.g. .../venvs/<digest>-cp313."""
    pid = lab.ssh(name, ["systemctl", "show", "-p", "MainPID", "--value", "hanode"]).stdout.strip()
    cmdline = lab.ssh(name, ["cat", f"/proc/{pid}/cmdline"]).stdout.split("\0")
    return os.path.dirname(os.path.dirname(cmdline[0]))


LEFTOVER_SCRIPT = r"""
: hostlab-leftover-check
find / -xdev \( -path /proc -o -path /sys -o -path /var/log/journal \) -prune -o -iname '*hanode*' -print
systemctl list-unit-files --no-legend 'hanode*' | sed 's/^/unit file: /'
systemctl list-units --all --no-legend 'hanode*' | sed 's/^/unit: /'
ip -o addr show | grep -E ' (198\.51\.100\.100|203\.0\.113\.254)/' | sed 's/^/address: /'
nft list ruleset | grep -i hanode | sed 's/^/nft: /'
ps -eo pid=,args= | grep -i '[h]anode' | grep -v hostlab-leftover-check | sed 's/^/process: /'
true
"""


def leftovers(lab: HostLab, name: str) -> list[str]:
    """Everything of hanode's still on a host: files, units, VIPs, nft rules, processes."""
    out = lab.ssh(name, ["/bin/sh", "-c", LEFTOVER_SCRIPT]).stdout
    return [line for line in out.splitlines() if line.strip()]
