"""The Lab: a switch namespace with bridges, one namespace per host, their processes and teardown.

    with Lab(nodes=2, clients=1) as lab:
        n1, n2 = lab.nodes
        lab.run(n1, ["ping", "-c1", n2.ipv4])

Every lab is registered under /run/hanode-lab/ before it creates anything. It is torn down by
close() / the context manager, by a weakref finalizer (garbage collection, interpreter exit) and,
when the creating process is killed outright, by a reaper process watching a pipe (see reaper.py);
`hanode lab clean` catches anything else whose creator is gone.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import yaml

from hanode.lab import netns, registry
from hanode.lab import topology as topo
from hanode.lab.host import Host, plug_host
from hanode.lab.partition import Partitions
from hanode.lab.procs import (
    SRC_DIR,
    AgentHandle,
    KeepalivedHandle,
    ProcessHandle,
    VrrpSniffer,
    hanode_argv,
    python_env,
    python_module_argv,
    wait_for,
)

_CREATED_PREFIXES: set[str] = set()


def created_prefixes() -> set[str]:
    """Prefixes of every lab this process created (for leak checks)."""
    return set(_CREATED_PREFIXES)


def default_workdir_root() -> Path:
    """$HANODE_LAB_DIR, else <repo>/.lab when running from a checkout, else /tmp/hanode-lab."""
    if os.environ.get("HANODE_LAB_DIR"):
        return Path(os.environ["HANODE_LAB_DIR"])
    repo = SRC_DIR.parents[1]
    if (repo / ".git").exists():
        return repo / ".lab"
    return Path("/tmp/hanode-lab")


class LabHttpError(RuntimeError):
    """An HTTP request from a lab host failed below HTTP (no connection, timeout)."""


class _Resources:
    """What teardown needs, kept apart from the Lab so the finalizer does not keep the Lab alive."""

    def __init__(self, prefix: str, namespaces: Sequence[str], workdir: Path, record_path: Path):
        self.prefix = prefix
        self.record_path = record_path
        self.namespaces = list(namespaces)
        self.workdir = workdir
        self.popens: list[subprocess.Popen] = []
        self.lock = threading.Lock()
        self.claimed = False
        self.reaper: subprocess.Popen | None = None
        self.reaper_fd: int | None = None
        self.machines: dict[str, str] = {}  # host lab: name -> machine dir (hanode.lab.hosts)
        self.done = False

    def teardown(self, keep_logs: bool) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            popens = list(self.popens)
        for p in popens:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    p.kill()
        for p in popens:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        error = None
        if self.claimed:
            try:
                registry.release_machines(self.machines)
                registry.destroy_namespaces(self.namespaces)
            except Exception as exc:  # keep the record: `hanode lab clean` or the reaper retries
                error = exc
            if not keep_logs:
                shutil.rmtree(self.workdir, ignore_errors=True)
            if error is None:
                self.record_path.unlink(missing_ok=True)
        if self.reaper_fd is not None:
            os.close(self.reaper_fd)
            self.reaper_fd = None
            try:
                self.reaper.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if error is not None:
            raise error


class Lab:
    """A namespace lab; see the module docstring and topology.py for names and addresses."""

    def __init__(self, nodes: int = 2, clients: int = 1, real_servers: int = 0, *, prefix: str | None = None,
                 workdir_root: str | Path | None = None, real_server_gateway: str | None = None,
                 real_server_gateway6: str | None = None, keep_logs: bool = False, reaper: bool = True,
                 persistent: bool = False):
        self.counts = (nodes, clients, real_servers)
        topo.build(prefix or "hn000000", nodes, clients, real_servers)  # validate early
        self._wanted_prefix = topo.validate_prefix(prefix) if prefix else None
        self.workdir_root = Path(workdir_root) if workdir_root else default_workdir_root()
        self.real_server_gateway = real_server_gateway
        self.real_server_gateway6 = real_server_gateway6
        self.keep_logs = keep_logs
        self.use_reaper = reaper and not persistent
        self.persistent = persistent
        self.topology: topo.Topology | None = None
        self.hosts: dict[str, Host] = {}
        self.switch: Host | None = None
        self.timings: dict[str, float] = {}
        self._res: _Resources | None = None
        self._finalizer: weakref.finalize | None = None
        self.partitions: Partitions | None = None   # once the lab has its topology

    # ----- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lab {self.prefix} nodes={self.counts[0]} clients={self.counts[1]} real_servers={self.counts[2]}>"

    @property
    def prefix(self) -> str | None:
        return self.topology.prefix if self.topology else None

    @property
    def dir(self) -> Path:
        return self.workdir_root / self.prefix

    @property
    def namespaces(self) -> tuple[str, ...]:
        return self.topology.namespaces if self.topology else ()

    def up(self) -> Lab:
        if self._res is not None:
            return self
        started = time.monotonic()
        self._claim()
        try:
            if self.use_reaper:
                self._start_reaper()
            self._build()
        except BaseException:
            self.close()
            raise
        self.timings["up_s"] = time.monotonic() - started
        return self

    def close(self, keep_logs: bool | None = None) -> None:
        """Kills every process, deletes the namespaces, removes the work dir unless logs are kept."""
        if self._res is None:
            return
        started = time.monotonic()
        if self._finalizer is not None:
            self._finalizer.detach()
        self._res.teardown(self.keep_logs if keep_logs is None else keep_logs)
        self.timings["down_s"] = time.monotonic() - started

    def _claim(self) -> None:
        for _attempt in range(50):
            prefix = self._wanted_prefix or topo.generated_prefix(secrets.token_hex(3))
            t = topo.build(prefix, *self.counts)
            workdir = self.workdir_root / prefix
            record = registry.new_record(prefix, list(t.namespaces), str(workdir), persistent=self.persistent,
                                         hosts=_hosts_summary(t))
            if registry.claim(record):
                break
            if self._wanted_prefix:
                raise RuntimeError(f"lab prefix {prefix} is taken (see {record.path} or `ip netns list`)")
        else:
            raise RuntimeError("could not find a free lab prefix")
        _CREATED_PREFIXES.add(prefix)
        self.topology = t
        self.partitions = Partitions(t.switch_netns)
        self._res = _Resources(prefix, t.namespaces, workdir, record.path)
        self._res.claimed = True
        if not self.persistent:
            self._finalizer = weakref.finalize(self, self._res.teardown, self.keep_logs)
        self.switch = Host(self, topo.SWITCH_HOST, t.switch_netns, workdir / topo.SWITCH_HOST, None)
        self.hosts = {h.name: Host(self, h.name, h.netns, workdir / h.name, h) for h in t.hosts}

    def _start_reaper(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self._res.reaper = subprocess.Popen(
                python_module_argv("hanode.lab.reaper", self.prefix), stdin=read_fd, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, env=python_env())
        finally:
            os.close(read_fd)
        self._res.reaper_fd = write_fd

    def _build(self) -> None:
        t = self.topology
        for host in [self.switch, *self.hosts.values()]:
            host.dir.mkdir(parents=True, exist_ok=True)
        netns.add(t.switch_netns)
        # The switch forwards frames and nothing else: no IPv6 of its own (no RS, no MLD noise).
        netns.sysctl(t.switch_netns, {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1})
        switch_cmds = ["link set lo up"]
        for seg in topo.SEGMENTS:
            switch_cmds += [f"link add {seg.bridge} type bridge stp_state 0 mcast_snooping 0",
                            f"link set {seg.bridge} promisc on up"]
        netns.ip_batch(t.switch_netns, switch_cmds)
        for h in t.hosts:
            if self._plugs(h):
                plug_host(t.switch_netns, h, (self.real_server_gateway, self.real_server_gateway6))

    def _plugs(self, _host: topo.HostSpec) -> bool:
        """Whether the lab plugs this host's namespace itself (the host lab's machines plug their own at boot)."""
        return True

    # ----- hosts ----------------------------------------------------------------------------

    @property
    def nodes(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.role == topo.NODE]

    @property
    def clients(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.role == topo.CLIENT]

    @property
    def real_servers(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.role == topo.REAL_SERVER]

    def host(self, host: Host | str) -> Host:
        if isinstance(host, Host):
            return host
        if self.switch is not None and host in (self.switch.name, self.switch.netns):
            return self.switch
        for h in self.hosts.values():
            if host in (h.name, h.netns):
                return h
        raise KeyError(f"lab {self.prefix} has no host {host!r}")

    __getitem__ = host

    # ----- commands and processes -------------------------------------------------------------

    def run(self, host: Host | str, argv: Sequence[str], check: bool = True, timeout: float | None = 30.0,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Runs argv inside the host's namespace (`ip netns exec`), output captured as text."""
        return netns.ns_exec(self.host(host).netns, [str(a) for a in argv], check=check, timeout=timeout, input=input)

    def popen(self, host: Host | str, argv: Sequence[str], log_name: str | None = None,
              env: dict[str, str] | None = None, stdout: int | None = None) -> ProcessHandle:
        return self._spawn(ProcessHandle, host, argv, log_name, env=env, stdout=stdout)

    def _spawn(self, cls: type, host: Host | str, argv: Sequence[str], log_name: str | None,
               env: dict[str, str] | None = None, stdout: int | None = None, **extra) -> ProcessHandle:
        if self._res is None or self._res.done:
            raise RuntimeError("lab is not up")
        h = self.host(host)
        argv = [str(a) for a in argv]
        name = log_name or Path(argv[0]).name
        log_path = h.dir / f"{name}.log"
        with open(log_path, "ab") as log:
            log.write(f"# {time.strftime('%H:%M:%S')} {h.netns}: {' '.join(argv)}\n".encode())
            log.flush()
            popen = subprocess.Popen(netns.exec_argv(h.netns, argv), stdin=subprocess.DEVNULL,
                                     stdout=log if stdout is None else stdout, stderr=log,
                                     cwd=h.dir, env=env, start_new_session=True,
                                     text=stdout is not None)
        with self._res.lock:
            self._res.popens.append(popen)
        return cls(h, name, argv, popen, log_path, **extra)

    def wait_for(self, predicate, timeout: float, interval: float = 0.05, what: str | None = None):
        return wait_for(predicate, timeout, interval=interval, what=what)

    # ----- links, addresses, neighbours, routes -------------------------------------------------

    def link_set(self, host: Host | str, ifname: str, up: bool) -> None:
        """Sets a host interface up or down (inside the host)."""
        netns.ip(self.host(host).netns, "link", "set", ifname, "up" if up else "down")

    def port_set(self, host: Host | str, ifname: str, up: bool) -> None:
        """Sets the switch side of a host's port up or down: the host sees carrier loss."""
        port = self.host(host).port(ifname)
        netns.ip(self.topology.switch_netns, "link", "set", port.switch_ifname, "up" if up else "down")

    def neighbour(self, host: Host | str, ip: str) -> str | None:
        """The MAC the host's neighbour table holds for ip (None if absent, incomplete or failed)."""
        for entry in netns.ip_json(self.host(host).netns, "neigh", "show", "to", ip):
            if entry.get("lladdr") and not {"FAILED", "INCOMPLETE"} & set(entry.get("state", [])):
                return entry["lladdr"].lower()
        return None

    def add_route(self, host: Host | str, dst: str, via: str) -> None:
        family = "-6" if ":" in via else "-4"
        netns.ip(self.host(host).netns, family, "route", "replace", dst, "via", via)

    def set_default_route(self, host: Host | str, via: str) -> None:
        self.add_route(host, "default", via)

    def ping(self, src: Host | str, dst_ip: str, count: int = 1, timeout: float = 2.0) -> bool:
        """One ping (or `count`) from src; True when answered. `timeout` is the wait per reply, seconds."""
        proc = self.run(src, ["ping", "-n", "-q", "-c", str(count), "-W", f"{timeout:g}", dst_ip],
                        check=False, timeout=timeout * count + 5)
        return proc.returncode == 0

    def wait_reachable(self, src: Host | str, dst_ip: str, timeout: float = 5.0) -> bool:
        """Pings until dst_ip answers (neighbour discovery may be retrying after a partition or link down)."""
        return self.wait_for(lambda: self.ping(src, dst_ip, timeout=0.5), timeout,
                             what=f"{dst_ip} to answer ping from {self.host(src).name}")

    # ----- partitions (nftables, bridge family, in the switch namespace: hanode.lab.partition) --------

    def partition(self, a, b) -> None:
        """Drops every frame between the hosts of side a and those of side b (a host or a list each)."""
        self.partitions.block(self._ports(a), self._ports(b))

    def heal(self, a=None, b=None) -> None:
        """Undoes partition(a, b); with no arguments undoes every partition."""
        if self.partitions is None:
            return
        if a is None and b is None:
            self.partitions.clear()
        else:
            self.partitions.unblock(self._ports(a), self._ports(b))

    def _ports(self, side) -> list[str]:
        """The switch-side interface names of a host or a list of hosts."""
        hosts = [side] if isinstance(side, (str, Host)) else list(side)
        return [p.switch_ifname for h in hosts for p in self.host(h).ports]

    # ----- agents, keepalived, traffic ---------------------------------------------------------

    def start_agent(self, host: Host | str, config: dict, wait: bool = True, timeout: float = 10.0,
                    name: str = "agent") -> AgentHandle:
        """Writes <host dir>/agent.yaml and runs `hanode run --config` in the namespace.

        With wait=True returns once `hanode status` answers (fails with the log if the agent exits)."""
        h = self.host(host)
        config = dict(config)
        config.setdefault("control_socket", str(h.dir / f"{name}.sock"))
        if len(os.fsencode(config["control_socket"])) > 107:
            raise ValueError(f"control socket path too long for AF_UNIX: {config['control_socket']} "
                             "(set HANODE_LAB_DIR to a shorter directory)")
        config_path = h.dir / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        handle = self._spawn(AgentHandle, h, hanode_argv() + ["run", "--config", str(config_path)], name,
                             env=python_env(), config_path=config_path, socket_path=Path(config["control_socket"]))
        if wait:
            handle.wait_ready(timeout)
        return handle

    def start_keepalived(self, host: Host | str, conf_text: str, name: str = "keepalived",
                         extra_args: Sequence[str] = ()) -> KeepalivedHandle:
        """Runs Debian's keepalived in the foreground, every file of it in the host dir."""
        h = self.host(host)
        conf = h.dir / f"{name}.conf"
        conf.write_text(conf_text)
        pid, vrrp_pid, checkers_pid = (h.dir / f"{name}{s}.pid" for s in ("", "-vrrp", "-checkers"))
        argv = ["keepalived", "-n", "-l", "-D", "-f", conf, "-p", pid, "-r", vrrp_pid, "-c", checkers_pid, *extra_args]
        return self._spawn(KeepalivedHandle, h, argv, name, conf_path=conf, pid_path=pid)

    def start_http_server(self, host: Host | str, port: int = 8080, name: str | None = None,
                          timeout: float = 10.0, options: Sequence[str] = ()) -> ProcessHandle:
        """Serves GET with the body "<host name>\\n" on every address of the host; returns once listening.
        `options`: more of hanode.lab.httpd's arguments (--body-file, --request-log, --tls-*)."""
        h = self.host(host)
        ready = h.dir / f"httpd-{port}.ready"
        ready.unlink(missing_ok=True)
        argv = python_module_argv("hanode.lab.httpd", "--name", name or h.name, "--port", str(port),
                                  "--ready-file", str(ready), *options)
        handle = self.popen(h, argv, log_name=f"httpd-{port}", env=python_env())

        def listening() -> bool:
            if not handle.running:
                raise handle.failure(f"http server on {h.name}:{port} exited with {handle.returncode}")
            return ready.exists()
        wait_for(listening, timeout, what=f"http server on {h.name}:{port}")
        return handle

    def http_get(self, client: Host | str, url: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET url with curl from inside the client's namespace -> (status, body); LabHttpError if no answer."""
        argv = ["curl", "-sS", "-g", "--noproxy", "*", "-m", f"{timeout:g}", "-w", "\n%{http_code}", url]
        proc = self.run(client, argv, check=False, timeout=timeout + 5)
        if proc.returncode != 0:
            raise LabHttpError(f"GET {url} from {self.host(client).name}: curl exit {proc.returncode}: {proc.stderr.strip()}")
        body, _newline, code = proc.stdout.rpartition("\n")
        return int(code), body

    def sniff_vrrp(self, bridge: str = "lan", timeout: float = 10.0) -> VrrpSniffer:
        """Starts recording every VRRP packet crossing a bridge; returns once the socket is bound."""
        handle = self.popen(self.switch, python_module_argv("hanode.lab.sniffer", bridge),
                            log_name=f"vrrp-sniffer-{bridge}", env=python_env(), stdout=subprocess.PIPE)
        sniffer = VrrpSniffer(handle)
        sniffer.wait_ready(timeout)
        return sniffer

    # ----- description -------------------------------------------------------------------------

    def describe(self) -> str:
        t = self.topology
        lines = [f"lab {t.prefix}  work dir {self.dir}",
                 f"  sw   switch       {t.switch_netns:<16} bridges: " + ", ".join(s.bridge for s in topo.SEGMENTS)]
        for h in t.hosts:
            for i, p in enumerate(h.ports):
                head = f"  {h.name:<4} {h.role:<12} {h.netns:<16}" if i == 0 else " " * 36
                lines.append(f"{head} {p.ifname} {p.ipv4_cidr:<18} {p.ipv6_cidr:<22} {p.mac}  ({p.segment.bridge})")
        return "\n".join(lines)


def _hosts_summary(t: topo.Topology) -> dict:
    return {h.name: {"role": h.role, "netns": h.netns,
                     "ports": {p.ifname: {"bridge": p.segment.bridge, "ipv4": p.ipv4_cidr, "ipv6": p.ipv6_cidr,
                                          "mac": p.mac} for p in h.ports}}
            for h in t.hosts}
