"""The connection-survival scenario, shared by the integration tests and `scripts/bench_connsync.py`.

    c1 --- lan --- n1 (MASTER) | n2 (BACKUP) --- backend --- r1, r2 (default route via 203.0.113.254, a VIP)
                   connection sync between n1 and n2 over eth1 (backend)

Directors (`kind`): "hanode-ipvs" (lvs_sync_daemon), "hanode-nft" (conntrack_sync: conntrackd), "keepalived-ipvs"
(keepalived 2.2.7 with `lvs_sync_daemon eth1 VI_1`); the IPVS kinds need a kernel with IPVS (User-Mode Linux
here). run() measures the sync link's cost under new connections, then holds long-lived connections through
the VIP, kills the master (SIGKILL of every process of it, then its links down) and reports how many
connections went on without a reset or a stall longer than `stall_ms`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hanode.lab import netns
from hanode.lab.host import Host
from hanode.lab.lab import Lab
from hanode.lab.procs import ProcessHandle, python_env, python_module_argv, wait_for

VIP = "198.51.100.100"
BACKEND_VIP = "203.0.113.254"
PORT = 9000
SCTP_PORT = 3868
VRID = 63
SYNC_PORTS = {"hanode-ipvs": 8848, "keepalived-ipvs": 8848, "hanode-nft": 3780}
COUNT_TABLE = "hanode_synccount"
KINDS = tuple(SYNC_PORTS)


def agent_config(kind: str, name: str, priority: int, servers: list[Host], sctp: bool = False,
                 sync: bool = True) -> dict:
    instance = {"interface": "eth0", "virtual_router_id": VRID, "priority": priority, "advert_int": 0.2,
                "version": 3, "state": "BACKUP", "virtual_ipaddresses": [f"{VIP}/24", f"{BACKEND_VIP}/24 dev eth1"]}
    services = [_service("TCP", PORT, servers, [{"type": "TCP_CHECK", "connect_timeout": 1}])]
    if sctp:
        services.append(_service("SCTP", SCTP_PORT, servers, [{"type": "PING_CHECK"}]))
    config = {"router_id": name, "lb_backend": "ipvs" if kind == "hanode-ipvs" else "nftables",
              "lb_reconcile_interval": 2, "virtual_servers": services, "vrrp_instances": {"VI_1": instance},
              "watchdog_timeout": 30}
    if sync and kind == "hanode-ipvs":
        config["lvs_sync_daemon"] = {"interface": "eth1", "instance": "VI_1"}
    elif sync:
        config["conntrack_sync"] = {"interface": "eth1", "instance": "VI_1"}
    return config


def _service(protocol: str, port: int, servers: list[Host], checks: list[dict]) -> dict:
    return {"address": VIP, "port": port, "protocol": protocol, "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 1,
            "real_servers": [{"address": r.ipv4, "port": port, "checks": checks} for r in servers]}


def keepalived_conf(name: str, priority: int, servers: list[Host]) -> str:
    real = "\n".join(f"  real_server {r.ipv4} {PORT} {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout 1\n"
                     "    }\n  }" for r in servers)
    return f"""global_defs {{
  router_id {name}
  vrrp_version 3
  lvs_sync_daemon eth1 VI_1
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id {VRID}
  priority {priority}
  advert_int 0.2
  virtual_ipaddress {{
    {VIP}/24 dev eth0
    {BACKEND_VIP}/24 dev eth1
  }}
}}
virtual_server {VIP} {PORT} {{
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
{real}
}}
"""


class Scenario:
    """One lab, two directors of one kind, echo servers, a client."""

    def __init__(self, lab: Lab, kind: str, sctp: bool = False, sync: bool = True, start_timeout_s: float = 60):
        self.lab, self.kind, self.sctp, self.sync = lab, kind, sctp, sync
        self.n1, self.n2 = lab.nodes[:2]
        self.client = lab.clients[0]
        self.timeout_s = start_timeout_s
        self.directors: list[ProcessHandle] = []

    # setting up ---------------------------------------------------------------------------------

    def start(self) -> None:
        for r in self.lab.real_servers:
            self._echo(r, "tcp", PORT)
            if self.sctp:
                self._echo(r, "sctp", SCTP_PORT)
        self.directors.append(self._director(self.n1, 150))
        wait_for(lambda: self.n1.has_address(VIP), self.timeout_s, what="n1 holding the VIP (MASTER)")
        self.directors.append(self._director(self.n2, 100))
        wait_for(self._backup_ready, self.timeout_s, what="n2 BACKUP with its sync running")

    def _echo(self, host: Host, proto: str, port: int) -> None:
        ready = host.dir / f"echo-{proto}.ready"
        handle = self.lab.popen(host, python_module_argv("hanode.lab.connhold", "server", "--name", host.name,
                                                         "--port", str(port), "--proto", proto, "--ready-file",
                                                         str(ready)), log_name=f"echo-{proto}", env=python_env())
        wait_for(lambda: ready.exists() or _exited(handle), self.timeout_s, what=f"echo server on {host.name}")
        if not ready.exists():
            raise handle.failure(f"echo server on {host.name} exited")

    def _director(self, host: Host, priority: int) -> ProcessHandle:
        if self.kind == "keepalived-ipvs":
            return self.lab.start_keepalived(host, keepalived_conf(host.name, priority, self.lab.real_servers))
        return self.lab.start_agent(host, agent_config(self.kind, host.name, priority, self.lab.real_servers,
                                                       self.sctp, self.sync), timeout=self.timeout_s)

    def _backup_ready(self) -> bool:
        if self.kind.endswith("ipvs"):
            daemons = self.lab.run(self.n2, ["ipvsadm", "-L", "--daemon"], check=False).stdout
            return "backup sync daemon" in daemons or not self.sync
        handle = self.directors[1]
        from hanode.control.client import request
        reply = request(str(handle.socket_path), {"cmd": "status"}, timeout_s=10)
        sync = reply.get("status", {}).get("connection_sync") or {}
        return (sync.get("conntrackd") or {}).get("applied_state") == "BACKUP" or not self.sync

    # the sync link's cost -----------------------------------------------------------------------

    def count_sync(self) -> None:
        """Counts the sync protocol's packets on the backend bridge, both ways at n2's port."""
        port = self.n2.port("eth1").switch_ifname
        udp = SYNC_PORTS[self.kind]
        netns.nft(self.lab.topology.switch_netns, f"""add table bridge {COUNT_TABLE}
delete table bridge {COUNT_TABLE}
table bridge {COUNT_TABLE} {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    oifname "{port}" udp dport {udp} counter
    iifname "{port}" udp dport {udp} counter
  }}
}}
""")

    def sync_counters(self) -> tuple[int, int]:
        """(packets, bytes) the counters saw so far."""
        out = netns.ns_exec(self.lab.topology.switch_netns, ["nft", "-j", "list", "table", "bridge", COUNT_TABLE]).stdout
        packets = octets = 0
        for item in json.loads(out)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    packets += expr["counter"]["packets"]
                    octets += expr["counter"]["bytes"]
        return packets, octets

    def churn(self, rate: float, duration_s: float) -> dict:
        """New connections at `rate`/s for duration_s: the sync link's packets and bytes per second, and the
        same per 1,000 new connections/s (scaled from the rate reached)."""
        self.count_sync()
        out = self.client.dir / "churn.json"
        before = self.sync_counters()
        self.lab.run(self.client, python_module_argv("hanode.lab.connhold", "churn", "--target", f"{VIP}:{PORT}",
                                                     "--rate", str(rate), "--duration-s", str(duration_s), "--out",
                                                     str(out)), timeout=duration_s + 120)
        time.sleep(1.0)             # the last connections' closing states reach the backup
        after = self.sync_counters()
        done = json.loads(out.read_text())
        reached = done["completed"] / done["elapsed_s"]
        pps, bps = ((a - b) / done["elapsed_s"] for a, b in zip(after, before))
        scale = 1000 / reached if reached else 0.0
        return {"rate_asked": rate, "rate_reached": round(reached, 1), "failed": done["failed"],
                "sync_packets_per_s": round(pps, 1), "sync_bytes_per_s": round(bps, 1),
                "per_1000_conn_s": {"packets_per_s": round(pps * scale), "bytes_per_s": round(bps * scale)}}

    # the failover ---------------------------------------------------------------------------------

    def hold_through_kill(self, holds: dict[str, int], after_kill_s: float = 3.0, interval_ms: int = 100,
                          before_kill=None) -> dict:
        """Long-lived connections ({"tcp": N, "sctp": M}) through the VIP while the master is killed: per
        protocol, how many went on without a reset or a long stall. `before_kill()` runs once the backup
        holds every connection; the backup must hold them again afterwards."""
        clients = {proto: self._hold(proto, count, interval_ms) for proto, count in holds.items() if count}
        established = {}
        for proto, (client, out, ready, stop) in clients.items():
            wait_for(lambda r=ready, c=client: r.exists() or _exited(c), self.timeout_s,
                     what=f"every {proto} connection answered once")
            established[proto] = json.loads(ready.read_text())["established"] if ready.exists() else 0
        synced = {proto: self._wait_synced(holds[proto], proto) if self.sync else None for proto in clients}
        if before_kill is not None:
            before_kill()
            synced = {proto: self._wait_synced(holds[proto], proto) if self.sync else None for proto in clients}
        time.sleep(1.0)         # the baseline: traffic flowing with everything in place
        killed = time.monotonic()
        self.kill_master()
        wait_for(lambda: self.n2.has_address(VIP), 30, interval=0.01, what="n2 holding the VIP")
        takeover_ms = (time.monotonic() - killed) * 1000
        wait_for(lambda: time.monotonic() - killed >= after_kill_s, after_kill_s + 5)
        results = {}
        for proto, (client, out, ready, stop) in clients.items():
            stop.write_text("stop\n")
        for proto, (client, out, ready, stop) in clients.items():
            wait_for(lambda o=out, c=client: o.exists() or _exited(c), 60, what=f"the {proto} client's result")
            client.wait(30)
            result = json.loads(out.read_text())
            gaps = sorted(c["max_gap_ms"] for c in result["per_connection"])
            results[proto] = {
                "kind": self.kind, "proto": proto, "connections": holds[proto], "established": established[proto],
                "synced_before_kill": synced[proto], "survived": result["survived"], "errors": result["errors"],
                "takeover_ms": round(takeover_ms), "longest_stall_ms": gaps[-1] if gaps else None,
                "median_stall_ms": gaps[len(gaps) // 2] if gaps else None,
                "servers": sorted({c["server"] for c in result["per_connection"] if c["server"]}),
                "lost": [c for c in result["per_connection"] if not c["survived"]][:10]}
        return results

    def _hold(self, proto: str, connections: int, interval_ms: int):
        d = self.client.dir
        out, ready, stop = d / f"hold-{proto}.json", d / f"hold-{proto}.ready", d / f"hold-{proto}.stop"
        port = SCTP_PORT if proto == "sctp" else PORT
        client = self.lab.popen(self.client, python_module_argv(
            "hanode.lab.connhold", "client", "--target", f"{VIP}:{port}", "--proto", proto, "--connections",
            str(connections), "--interval-ms", str(interval_ms), "--out", str(out), "--ready-file", str(ready),
            "--stop-file", str(stop)), log_name=f"hold-{proto}", env=python_env())
        return client, out, ready, stop

    def _wait_synced(self, connections: int, proto: str) -> int:
        """How many of the client's connections the backup holds (waits up to 20 s for all of them)."""
        port = SCTP_PORT if proto == "sctp" else PORT

        def count() -> int:
            if self.kind.endswith("ipvs"):
                out = self.lab.run(self.n2, ["ipvsadm", "-Lnc"], check=False).stdout
                return sum(1 for line in out.splitlines() if f"{VIP}:{port}" in line and "ESTABLISHED" in line)
            conf = str(self.directors[1].host.dir / "agent.conntrackd.conf")
            out = self.lab.run(self.n2, ["conntrackd", "-C", conf, "-e", "ct"], check=False).stdout
            return sum(1 for line in out.splitlines() if "ESTABLISHED" in line and f"dport={port} " in line)
        try:
            return wait_for(lambda: (n := count()) >= connections and n, 20, what="connections synced to n2")
        except TimeoutError:
            return count()

    def kill_master(self) -> None:
        self.directors[0].kill()
        self.lab.link_set(self.n1, "eth0", False)
        self.lab.link_set(self.n1, "eth1", False)


def _exited(handle: ProcessHandle) -> bool:
    return not handle.running


def run(kind: str, connections: int, churn_rate: float = 0.0, churn_s: float = 5.0, sctp_connections: int = 0,
        workdir: Path | None = None, prefix: str | None = None) -> dict:
    """One whole scenario in a lab of its own (the benchmark's entry point)."""
    with Lab(nodes=2, clients=1, real_servers=2, real_server_gateway=BACKEND_VIP, prefix=prefix,
             workdir_root=workdir) as lab:
        scenario = Scenario(lab, kind, sctp=sctp_connections > 0)
        scenario.start()
        result: dict = {"kind": kind}
        if churn_rate:
            result["sync_cost"] = scenario.churn(churn_rate, churn_s)
        result.update(scenario.hold_through_kill({"tcp": connections, "sctp": sctp_connections}))
        return result
