"""Shared pieces of the checker namespace tests (labs prefixed `hck`): config builders for virtual
servers, status / event readers, the director's nftables view, root-owned notify scripts.

    client c1 -> VIP 198.51.100.100:80 on the director(s) -> real servers r1.. (203.0.113.11..:8080)

Real servers route back through the director (NAT), through 203.0.113.1 (one director) or through a
VRRP-managed backend VIP (two directors). Waits are on conditions with deadlines.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import yaml

from hanode.control.client import request, stream
from hanode.lab.lab import Host, Lab, LabHttpError
from hanode.lab.procs import AgentHandle, wait_for

VIP = "198.51.100.100"
VS_NAME = f"{VIP}:80/TCP"
GATEWAY = "203.0.113.1"
LAB_PREFIX = "hck"


def new_lab(lab_factory, nodes: int = 1, clients: int = 1, real_servers: int = 2, **kwargs) -> Lab:
    kwargs.setdefault("real_server_gateway", GATEWAY)
    return lab_factory(nodes=nodes, clients=clients, real_servers=real_servers,
                       prefix=f"{LAB_PREFIX}{secrets.token_hex(3)}", **kwargs)


def http_check(**extra) -> dict:
    check = {"type": "HTTP_GET", "path": "/", "status_code": 200, "connect_timeout": 1, "retry": 1,
             "delay_before_retry": 1}
    check.update(extra)
    return check


def real_server(host: Host, weight: int = 1, checks: list[dict] | None = None, **extra) -> dict:
    body = {"address": host.ipv4, "port": 8080, "weight": weight,
            "checks": [http_check()] if checks is None else checks}
    body.update(extra)
    return body


def virtual_server(servers: list[dict], **extra) -> dict:
    body = {"address": VIP, "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 1,
            "real_servers": servers}
    body.update(extra)
    return body


def lb_config(router_id: str, services: list[dict], **top) -> dict:
    """script_user root: the notify and MISC_CHECK scripts of these tests run as root, which hanode does only
    when the config says so."""
    config = {"router_id": router_id, "script_user": "root", "lb_backend": "nftables", "lb_reconcile_interval": 2,
              "virtual_servers": services}
    config.update(top)
    return config


def start_director(lab: Lab, node: Host, config: dict, vip: bool = True) -> AgentHandle:
    """The agent on a director that holds the VIP itself (no VRRP)."""
    if vip and not node.has_address(VIP):
        lab.run(node, ["ip", "addr", "add", f"{VIP}/32", "dev", "eth0"])
    handle = lab.start_agent(node, config, timeout=20)
    wait_for(lambda: status(handle).get("virtual_servers"), 20, what="the checker to report")
    return handle


def rewrite_config(handle: AgentHandle, config: dict) -> None:
    config = dict(config)
    config.setdefault("control_socket", str(handle.socket_path))
    tmp = handle.config_path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, handle.config_path)


def reload(handle: AgentHandle) -> dict:
    reply = request(str(handle.socket_path), {"cmd": "reload"}, timeout_s=60)
    assert reply.get("ok"), reply
    return reply


def control(handle: AgentHandle, cmd: str, **args) -> dict:
    return request(str(handle.socket_path), {"cmd": cmd, **args}, timeout_s=10)


# ----- status, events ------------------------------------------------------------------------------

def status(handle: AgentHandle) -> dict:
    if not handle.running:
        raise handle.failure(f"agent on {handle.host.name} exited with {handle.returncode}")
    reply = request(str(handle.socket_path), {"cmd": "status"}, timeout_s=10.0)
    if not reply.get("ok"):
        raise RuntimeError(f"status from {handle.host.name}: {reply}")
    return reply["status"]


def vs_status(handle: AgentHandle, name: str = VS_NAME) -> dict:
    for vs in status(handle).get("virtual_servers", []):
        if vs["name"] == name:
            return vs
    raise KeyError(f"no virtual server {name} in the status of {handle.host.name}")


def rs_status(handle: AgentHandle, host: Host, port: int = 8080) -> dict:
    for rs in vs_status(handle)["real_servers"]:
        if rs["name"] == f"{host.ipv4}:{port}":
            return rs
    raise KeyError(f"no real server {host.ipv4}:{port}")


def wait_rs(handle: AgentHandle, host: Host, timeout: float = 15.0, **want) -> dict:
    def match() -> dict | None:
        rs = rs_status(handle, host)
        return rs if all(rs.get(k) == v for k, v in want.items()) else None
    return wait_for(match, timeout, interval=0.05, what=f"{host.name} to have {want} on {handle.host.name}")


def events(handle: AgentHandle, kind: str | None = None) -> list[dict]:
    items = list(stream(str(handle.socket_path), {"cmd": "events", "follow": False}, timeout_s=5.0))
    return [e for e in items if kind is None or e.get("event") == kind]


def wait_event(handle: AgentHandle, timeout: float = 15.0, **want) -> dict:
    def found() -> dict | None:
        for event in events(handle):
            if all(event.get(k) == v for k, v in want.items()):
                return event
        return None
    return wait_for(found, timeout, interval=0.05, what=f"event {want} on {handle.host.name}")


# ----- the kernel, as the director's nftables holds it ---------------------------------------------

def kernel_weights(lab: Lab, node: Host) -> dict[str, int]:
    """{'203.0.113.11:8080': weight} for the VIP's service, read with the backend's own dump."""
    import asyncio

    from hanode.lvs.nft import NftBackend

    state = asyncio.run(NftBackend(netns=node.netns).dump())
    out = {}
    for key, entry in state.items():
        if key.address == VIP and key.port == 80:
            out = {str(dk): dest.weight for dk, dest in entry.dests.items()}
    return out


# ----- traffic -------------------------------------------------------------------------------------

def answers(lab: Lab, count: int, client: Host | None = None, timeout: float = 3.0) -> list[str]:
    client = client or lab.clients[0]
    out = []
    for _request in range(count):
        code, body = lab.http_get(client, f"http://{VIP}/", timeout=timeout)
        assert code == 200
        out.append(body.strip())
    return out


def wait_split(lab: Lab, names: set[str], count: int = 6, timeout: float = 15.0) -> collections.Counter:
    """Waits until `count` requests through the VIP are answered by exactly the set `names`."""
    def split() -> collections.Counter | None:
        try:
            seen = collections.Counter(answers(lab, count))
        except (LabHttpError, AssertionError):
            return None
        return seen if set(seen) == names else None
    return wait_for(split, timeout, interval=0.1, what=f"traffic split over {sorted(names)}")


class Traffic:
    """Requests through the VIP in a thread, every 100 ms: proof that service never stopped.
    `results` holds each answer (the real server's name, or "error: ..."); `started` when each was sent."""

    def __init__(self, lab, timeout_s: float = 2.0):
        self.lab, self.results, self.started, self.timeout_s = lab, [], [], timeout_s
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_event.is_set():
            sent = time.monotonic()
            try:
                answer = answers(self.lab, 1, timeout=self.timeout_s)[0]
            except (LabHttpError, AssertionError) as exc:
                answer = f"error: {exc}"
            self.started.append(sent)
            self.results.append(answer)
            self.stop_event.wait(0.1)

    def sent_after(self, moment: float) -> list[str]:
        """Answers to the requests sent after `moment` (time.monotonic())."""
        return [r for t, r in zip(self.started, self.results) if t >= moment]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(10)


# ----- scripts -------------------------------------------------------------------------------------

@contextlib.contextmanager
def script_dir() -> Iterator[Path]:
    """Root-owned 0755 directory for notify scripts (enable_script_security refuses anything else)."""
    path = Path(tempfile.mkdtemp(prefix="hck-scripts-"))
    try:
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def recorder(directory: Path, name: str, log: Path) -> str:
    """A script that appends its name (and arguments) to log, one line per run."""
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
    path.chmod(0o755)
    return str(path)


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().split("\n")[:-1]
    except FileNotFoundError:
        return []


def now() -> float:
    return time.time()
