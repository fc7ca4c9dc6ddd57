"""Shared pieces of the VRRP namespace tests: config builders, status/event readers, VIP sampling,
root-owned script directories, keepalived configs and the RFC timer numbers the tests assert.

Every lab made here carries the `vrt` prefix (VRRP tests) so its namespaces are recognisable.
Waits are on conditions with deadlines; the deadlines are generous (a loaded 2-core machine), the
asserted numbers are the RFC ones.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import yaml

from hanode.control.client import request, stream
from hanode.lab.lab import Host, Lab
from hanode.lab.procs import AgentHandle, wait_for

HERE = Path(__file__).resolve().parent
SCAPY_SENDER = HERE / "scapy_packets.py"

VIP4 = "198.51.100.100"
VIP4_B = "198.51.100.101"
VIP6 = "2001:db8:100::100"
VIP6_B = "2001:db8:100::101"
PASSWORD = "s3cret"
LAB_PREFIX = "vrt"


# ----- labs ------------------------------------------------------------------------------------

def new_lab(lab_factory, nodes: int = 2, clients: int = 1, **kwargs) -> Lab:
    """A lab whose namespaces are named vrt<6 hex>-<host>."""
    return lab_factory(nodes=nodes, clients=clients, prefix=f"{LAB_PREFIX}{secrets.token_hex(3)}", **kwargs)


# ----- RFC timers (seconds, floats: test side only) ----------------------------------------------

def skew_s(priority: int, advert_int: float, version: int) -> float:
    """RFC 3768 / RFC 5798 Skew_Time."""
    if version == 2:
        return (256 - priority) / 256
    return (256 - priority) * advert_int / 256


def master_down_s(priority: int, advert_int: float, version: int) -> float:
    """3 * Master_Adver_Interval + Skew_Time."""
    return 3 * advert_int + skew_s(priority, advert_int, version)


# ----- config builders ---------------------------------------------------------------------------

def vip_text(address: str) -> str:
    return f"{address}/64" if ":" in address else f"{address}/24"


def instance(vrid: int = 51, priority: int = 100, *, version: int = 2, advert_int: float = 1,
             vips: tuple[str, ...] = (VIP4,), interface: str = "eth0", **extra) -> dict:
    """One vrrp_instances entry in the agent's YAML form (keepalived keywords)."""
    body = {"interface": interface, "virtual_router_id": vrid, "priority": priority, "advert_int": advert_int,
            "version": version, "state": "BACKUP", "virtual_ipaddresses": [vip_text(v) for v in vips]}
    body.update(extra)
    return body


def agent_config(router_id: str, instances: dict[str, dict] | None = None, **top) -> dict:
    """The lab's scripts write the tests' files as root: `script_user: root`, the opt-in hanode needs to run
    them as root (without it they would run as keepalived_script, or be refused where it does not exist)."""
    config = {"router_id": router_id, "script_user": "root", "vrrp_instances": instances or {}}
    config.update(top)
    return config


def single(router_id: str, priority: int, **kwargs) -> dict:
    """A config with one instance VI_1 (see instance())."""
    return agent_config(router_id, {"VI_1": instance(priority=priority, **kwargs)})


def rewrite_config(handle: AgentHandle, config: dict) -> None:
    """Replaces the agent's config file (keeps its control socket), atomically, for a reload."""
    config = dict(config)
    config.setdefault("control_socket", str(handle.socket_path))
    tmp = handle.config_path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, handle.config_path)


# ----- status and events (straight to the control socket: cheap enough to poll) ---------------------

def status(handle: AgentHandle) -> dict:
    reply = request(str(handle.socket_path), {"cmd": "status"}, timeout_s=5.0)
    if not reply.get("ok"):
        raise RuntimeError(f"status from {handle.host.name}: {reply}")
    return reply["status"]


def inst(handle: AgentHandle, name: str = "VI_1") -> dict:
    return status(handle)["instances"][name]


def state(handle: AgentHandle, name: str = "VI_1") -> str:
    return inst(handle, name)["state"]


def wait_state(handle: AgentHandle, want: str, name: str = "VI_1", timeout: float = 15.0) -> dict:
    """Waits until the instance is in `want`; returns its status. Fails at once if the agent died."""
    def check() -> dict | None:
        if not handle.running:
            raise handle.failure(f"agent on {handle.host.name} exited with {handle.returncode}")
        entry = inst(handle, name)
        return entry if entry["state"] == want else None
    return wait_for(check, timeout, interval=0.05, what=f"{name} on {handle.host.name} to be {want}")


def events(handle: AgentHandle, kind: str | None = None) -> list[dict]:
    items = list(stream(str(handle.socket_path), {"cmd": "events", "follow": False}, timeout_s=5.0))
    return [e for e in items if kind is None or e.get("event") == kind]


def transitions(handle: AgentHandle, name: str = "VI_1") -> list[tuple[str, str]]:
    return [(e["from"], e["to"]) for e in events(handle, "transition") if e.get("instance") == name]


def last_transition_event(handle: AgentHandle, to: str, name: str = "VI_1") -> dict:
    found = [e for e in events(handle, "transition") if e.get("instance") == name and e["to"] == to]
    assert found, f"no transition of {name} to {to} on {handle.host.name}"
    return found[-1]


# ----- addresses ---------------------------------------------------------------------------------

def holders(hosts: list[Host], address: str, ifname: str = "eth0") -> list[str]:
    """Names of the hosts whose interface carries the address."""
    return [h.name for h in hosts if h.has_address(address, ifname)]


def wait_sole_holder(hosts: list[Host], address: str, owner: Host, timeout: float = 15.0) -> None:
    wait_for(lambda: holders(hosts, address) == [owner.name], timeout, interval=0.05,
             what=f"{address} on {owner.name} only")


def proc_has_address(pid: int, address: str) -> bool:
    """Whether the network namespace of process `pid` has the local address: read from /proc/<pid>/net
    (IPv6: if_inet6; IPv4: a /32 host LOCAL route in fib_trie). No subprocess, so it can be polled fast."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        text = Path(f"/proc/{pid}/net/if_inet6").read_text()
        return any(line.split()[0] == ip.exploded.replace(":", "") for line in text.splitlines() if line.strip())
    lines = Path(f"/proc/{pid}/net/fib_trie").read_text().splitlines()
    return any(prev.strip() == f"|-- {address}" and "/32 host LOCAL" in line for prev, line in zip(lines, lines[1:]))


def wait_vip_seen(host: Host, address: str, timeout: float, pid: int | None = None) -> float:
    """Polls until the address is on the host; returns time.monotonic() of the first sighting. With the pid
    of a process inside the host (its agent), polls /proc every 2 ms instead of running `ip`."""
    def seen() -> float | None:
        present = proc_has_address(pid, address) if pid else host.has_address(address)
        return time.monotonic() if present else None
    return wait_for(seen, timeout, interval=0.002 if pid else 0.01, what=f"{address} on {host.name}")


class AddressSampler:
    """Samples, in a thread, whether a host carries an address: proof that it never went away."""

    def __init__(self, host: Host, address: str, interval: float = 0.02, pid: int | None = None):
        """With the pid of a process inside the host, samples /proc every 2 ms instead of running `ip`."""
        self.host, self.address, self.pid = host, address, pid
        self.interval = 0.002 if pid else interval
        self.samples: list[tuple[float, bool]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{host.name}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                present = proc_has_address(self.pid, self.address) if self.pid else self.host.has_address(self.address)
                self.samples.append((time.monotonic(), present))
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))
            self._stop.wait(self.interval)

    def __enter__(self) -> AddressSampler:
        self._thread.start()
        wait_for(lambda: len(self.samples) >= 2, 10, what="the address sampler to start")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def missing(self) -> list[float]:
        return [t for t, present in self.samples if not present]


# ----- scripts (root-owned, 0755: enable_script_security refuses anything else) --------------------

@contextlib.contextmanager
def script_dir() -> Iterator[Path]:
    """A fresh root-owned directory (0755) for vrrp_scripts and notify scripts, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="vrt-scripts-"))
    try:
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body.lstrip("\n"))
    path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----- interfaces --------------------------------------------------------------------------------

def add_track_link(lab: Lab, host: Host, name: str = "trk0") -> None:
    """An interface inside the host, up with carrier, for track_interfaces: a veth pair whose both ends
    stay in the host (this kernel has no dummy driver). lab.link_set(host, name, False) takes it down."""
    lab.run(host, ["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"])
    lab.link_set(host, f"{name}p", True)
    lab.link_set(host, name, True)


def link_local(host: Host, ifname: str = "eth0") -> str:
    for a in host.addresses(ifname, family=6):
        ip = ipaddress.ip_interface(a).ip
        if ip.is_link_local:
            return str(ip)
    raise AssertionError(f"{host.name} has no link-local address on {ifname}")


# ----- processes ---------------------------------------------------------------------------------

def vrrp_child_pid(handle: AgentHandle) -> int:
    return status(handle)["agent"]["processes"]["vrrp"]["pid"]


def send_packets(lab: Lab, host: Host, cases: list[str], *, vrid: int, vips: list[str], src: str,
                 password: str | None = None, count: int = 1, advert_int: int = 1, family: int = 4) -> str:
    """Runs scapy_packets.py inside the host's namespace; returns its output (one line per frame)."""
    argv = [sys.executable, str(SCAPY_SENDER), "--iface", "eth0", "--src", src, "--mac", host.mac,
            "--vrid", str(vrid), "--advert-int", str(advert_int), "--count", str(count),
            "--vips", ",".join(vips), "--family", str(family)]
    if password:
        argv += ["--password", password]
    proc = lab.run(host, argv + cases, timeout=60)
    return proc.stdout


# ----- keepalived --------------------------------------------------------------------------------

def keepalived_conf(router_id: str, priority: int, *, version: int = 2, advert_int: float = 1,
                    vips: tuple[str, ...] = (VIP4,), vrid: int = 51, unicast_src: str | None = None,
                    unicast_peers: tuple[str, ...] = (), password: str | None = None, extra: tuple[str, ...] = (),
                    global_extra: tuple[str, ...] = ()) -> str:
    """A keepalived.conf with one vrrp_instance VI_1 (Debian's keepalived 2.2.7); `extra` and `global_extra`:
    more keyword lines for the instance and for global_defs."""
    lines = ["global_defs {", f"    router_id {router_id}", *(f"    {line}" for line in global_extra), "}",
             "vrrp_instance VI_1 {", *(f"    {line}" for line in extra),
             "    state BACKUP", "    interface eth0", f"    virtual_router_id {vrid}",
             f"    priority {priority}", f"    advert_int {advert_int:g}", f"    version {version}"]
    if unicast_src:
        lines.append(f"    unicast_src_ip {unicast_src}")
    if unicast_peers:
        lines += ["    unicast_peer {", *(f"        {p}" for p in unicast_peers), "    }"]
    if password:
        lines += ["    authentication {", "        auth_type PASS", f"        auth_pass {password}", "    }"]
    lines += ["    virtual_ipaddress {", *(f"        {vip_text(v)}" for v in vips), "    }", "}"]
    return "\n".join(lines) + "\n"


# What keepalived 2.2 logs about a packet it rejects: "bogus VRRP packet received", "invalid ttl",
# "Invalid VRRPv3 checksum", "advertisement interval mismatch", "received a 0 auth, expecting 1!",
# "received an invalid passwd!", "ip address associated with VRID 51 not present in MASTER advert".
COMPLAINT_WORDS = ("invalid", "mismatch", "bogus", "not present", "expecting", "passwd", "checksum", "ttl",
                   "error", "wrong")  # not "discarding": a preempting BACKUP discards lower-priority adverts


def keepalived_complaints(log_text: str) -> list[str]:
    """keepalived log lines that complain about received packets or the peer's config."""
    return [line for line in log_text.splitlines() if any(w in line.lower() for w in COMPLAINT_WORDS)]
