"""What the molecule verifiers check in the namespace lab, through testinfra netns hosts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from netns_testinfra import lab_host

PREFIX = os.environ.get("HANODE_LAB", "hnmol")
REGISTRY = Path(os.environ.get("HANODE_LAB_REGISTRY") or "/run/hanode-lab")
# The lab's work directory, from its registry record (as inventories/lab does).
LAB_DIR = Path(json.loads((REGISTRY / f"{PREFIX}.json").read_text())["workdir"])
NODES = ("n1", "n2", "n3")
VIP = "198.51.100.100"


def node(name):
    return lab_host(f"{PREFIX}-{name}")


def client():
    return lab_host(f"{PREFIX}-c1")


def holders(address=VIP):
    """Nodes that carry the address on any interface."""
    out = []
    for name in NODES:
        links = json.loads(node(name).check_output("ip -j addr show"))
        if any(a.get("local") == address for link in links for a in link.get("addr_info", [])):
            out.append(name)
    return out


def get(url, timeout_s=3):
    """(ok, body) of one HTTP GET from the client."""
    result = client().run(f"curl -sS --noproxy '*' -m {timeout_s} {url}")
    return result.rc == 0, result.stdout.strip()


def answer(url, timeout_s=3):
    """The body of a successful GET from the client, else None."""
    ok, body = get(url, timeout_s)
    return body if ok else None


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def service(name, action):
    """The role's lab service manager (what the role runs for start/stop)."""
    root = LAB_DIR / name / "hanode"
    cmd = ["/usr/bin/python3", str(root / "opt" / "bin" / "hanode-service"), "--pidfile", str(root / "run" / "agent.pid"),
           "--log", str(root / "log" / "agent.log"), action]
    if action == "start":
        cmd += ["--socket", str(root / "run" / "agent.sock"), "--", str(root / "opt" / "current" / "bin" / "hanode"), "run",
                "--config", str(root / "etc" / "agent.yaml")]
    return node(name).run(" ".join(cmd))


def status(name):
    root = LAB_DIR / name / "hanode"
    out = node(name).check_output(f"{root}/opt/current/bin/hanode status --json --socket {root}/run/agent.sock")
    return json.loads(out)
