"""VRRP at scale: CPU and memory of hanode and keepalived 2.2.7 side by side, same run, same lab.

    sudo .venv/bin/python scripts/bench_scale.py [--cells 1:1,1:0.1,50:1,...] [--window 30] [--quick]
    sudo .venv/bin/python scripts/bench_scale.py --soak [--soak-minutes 10] [--soak-checks 8000]

One namespace lab: two nodes on the `lan` bridge. N VRRPv3 (IPv4) instances run on per-segment interfaces
(vlan101, vlan102, ...: 250 VRIDs each, as routers and OpenStack Neutron run one VRID per VLAN or tenant; each
segment is a bridge of its own, as this kernel has no 802.1Q),
one /32 VIP each; n1 has priority 200 (the MASTER), n2 priority 100 (the BACKUP), both `state BACKUP`.
For each cell (N instances, advert_int) each implementation in turn (the order alternates per cell, so that load
from elsewhere on the machine hits both alike):

- starts on both nodes and waits until n1 holds all N VIPs, n2 none, and n2 has stopped advertising;
- after a warm-up, measures over the window, per node, summed over every process in the node's namespace:
  CPU as CPU time (per-thread schedstat: robust to load from other processes, unlike wall-clock latency),
  in % of one CPU; PSS (/proc/PID/smaps_rollup, the largest of a sample at the start and at the end);
- counts false transitions in the window: state changes the implementations report (hanode's status
  counters, keepalived's "Entering ... STATE" log lines) and, on the wire, VRRP packets the BACKUP sent
  (nftables counters inside each node: with a healthy MASTER the BACKUP sends none); the MASTER's advert
  rate is checked against N / advert_int.

`--soak`: one long run of hanode alone at 1,000 instances / 0.1 s, while the BACKUP node's checker also runs
TCP_CHECK on `--soak-checks` real servers every second (real servers: a listener in a real-server namespace,
answering for a whole /18 via a local route); reports false transitions, the checks made per second, CPU and PSS.

Results: <out>/scale.json and scale.md (or scale-soak.*), out = $HANODE_BENCH_OUT or bench-results. Needs root.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    from hanode.lab.lab import Lab
except ImportError:  # a checkout whose agent is not installed in this Python
    sys.path.insert(0, str(REPO / "agent" / "src"))
    from hanode.lab.lab import Lab

SCHEMA_VERSION = 1
MASTER_PRIORITY = 200
BACKUP_PRIORITY = 100
VRIDS_PER_VLAN = 250
FIRST_VLAN = 101
IMPLS = ("hanode", "keepalived")
DEFAULT_CELLS = "1:1,1:0.1,50:1,50:0.1,50:0.02,200:1,200:0.1,1000:1,1000:0.1"
QUICK_CELLS = "1:0.1,200:0.1"
TARGET_CPU_RATIO = 1.5
TARGET_PSS_MB = 35
TARGET_PSS_CHECKER_MB = 60
# Soak: real servers answer for 198.18.64.0/18 (16,384 addresses) in the real-server namespace.
RS_NET = "198.18.64.0/18"
RS_PORT = 8080
NFT_TABLE = "scalebench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cell:
    instances: int
    advert_int_s: float

    @property
    def key(self) -> str:
        return f"{self.instances}x{self.advert_int_s:g}s"

    @property
    def adverts_per_s(self) -> float:
        return self.instances / self.advert_int_s


def parse_cells(text: str) -> list[Cell]:
    cells = []
    for item in text.split(","):
        count, _sep, interval = item.strip().partition(":")
        cell = Cell(int(count), float(interval or 1))
        if not 1 <= cell.instances <= 4 * VRIDS_PER_VLAN * 4:
            raise SystemExit(f"--cells {item}: 1..4000 instances")
        if round(cell.advert_int_s * 100) < 1 or abs(cell.advert_int_s * 100 - round(cell.advert_int_s * 100)) > 1e-9:
            raise SystemExit(f"--cells {item}: advert_int must be a whole number of centiseconds (>= 0.01)")
        cells.append(cell)
    return cells


# ----- layout: instance i -> VLAN, VRID, VIP --------------------------------------------------------------

def layout(n: int) -> list[tuple[str, int, int, str]]:
    """(instance name, VLAN id, VRID, VIP) for n instances: 250 VRIDs per VLAN, VIPs 198.19.<vlan>.<vrid>."""
    rows = []
    for i in range(n):
        k, vrid = divmod(i, VRIDS_PER_VLAN)
        rows.append((f"VI_{i + 1}", FIRST_VLAN + k, vrid + 1, f"198.19.{k + 1}.{vrid + 1}"))
    return rows


def vlans(n: int) -> list[int]:
    return sorted({vlan for _name, vlan, _vrid, _vip in layout(n)})


def node_address(vlan: int, node_index: int) -> str:
    return f"198.18.{vlan - FIRST_VLAN + 1}.{10 + node_index}"


def keepalived_conf(router_id: str, priority: int, cell: Cell) -> str:
    lines = ["global_defs {", f"    router_id {router_id}", "    vrrp_version 3", "}"]
    for name, vlan, vrid, vip in layout(cell.instances):
        lines += [f"vrrp_instance {name} {{", "    state BACKUP", f"    interface vlan{vlan}",
                  f"    virtual_router_id {vrid}", f"    priority {priority}", f"    advert_int {cell.advert_int_s:g}",
                  "    virtual_ipaddress {", f"        {vip}/32 dev vlan{vlan}", "    }", "}"]
    return "\n".join(lines) + "\n"


def hanode_config(router_id: str, priority: int, cell: Cell, checks: int = 0) -> dict:
    config: dict = {"router_id": router_id, "vrrp_instances": {
        name: {"interface": f"vlan{vlan}", "virtual_router_id": vrid, "priority": priority, "version": 3,
               "advert_int": cell.advert_int_s, "state": "BACKUP", "virtual_ipaddresses": [f"{vip}/32 dev vlan{vlan}"]}
        for name, vlan, vrid, vip in layout(cell.instances)}}
    if checks:
        check = {"type": "TCP_CHECK", "connect_timeout": 1, "retry": 1, "delay_before_retry": 1}
        config.update({"lb_backend": "nftables", "lb_reconcile_interval": 3600, "virtual_servers": [{
            "address": "198.51.100.100", "port": 80, "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 1,
            "real_servers": [{"address": rs_address(i), "port": RS_PORT, "checks": [check]} for i in range(checks)]}]})
    return config


def rs_address(i: int) -> str:
    return f"198.18.{64 + i // 250}.{i % 250 + 1}"


# ----- measuring a node -----------------------------------------------------------------------------------

def netns_pids(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of a process (ns on CPU, /proc/PID/task/TID/schedstat); 0 when it is gone."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as handle:
                total += int(handle.read().split()[0])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            pass
    return total


def wakeups(pid: int) -> int:
    """How often the process's threads went to sleep and were woken (voluntary context switches, every thread:
    /proc/PID/task/TID/status); unlike CPU time, other load on the machine does not change it."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as handle:
                for line in handle:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return total


def user_system_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, every thread (fields 14, 15 of /proc/PID/stat; tick-sampled)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def process_name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        comm = ""
    if comm.startswith("hanode-"):   # a child forked from the supervisor: its command line is the supervisor's
        return comm
    if "-m" in words:
        return words[words.index("-m") + 1]
    return " ".join(Path(w).name if i == 0 else w for i, w in enumerate(words[:3]))


def memory_kb(pid: int) -> dict[str, int]:
    """Pss, Rss, Private (clean + dirty) of a process in kB; {} when it is gone."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                key, _sep, rest = line.partition(":")
                if key in ("Pss", "Rss", "Private_Clean", "Private_Dirty"):
                    values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return {"pss_kb": values.get("Pss", 0), "rss_kb": values.get("Rss", 0),
            "private_kb": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)}


class NodeMeter:
    """CPU time and memory of every process in one namespace (optionally without some, e.g. real servers)."""

    def __init__(self, netns: str, exclude: set[int] | None = None):
        self.netns = netns
        self.exclude = exclude or set()

    def pids(self) -> list[int]:
        return [p for p in netns_pids(self.netns) if p not in self.exclude]

    def cpu(self) -> dict[int, tuple[int, float, float, int]]:
        """pid -> (ns on CPU, user s, system s, wake-ups)."""
        return {pid: (cpu_ns(pid), *user_system_s(pid), wakeups(pid)) for pid in self.pids()}

    def memory(self) -> dict:
        procs = []
        for pid in self.pids():
            mem = memory_kb(pid)
            if mem:
                procs.append({"pid": pid, "name": process_name(pid), **mem})
        return {"pss_kb": sum(p["pss_kb"] for p in procs), "processes": procs}


def cpu_percent(before: dict, after: dict, seconds: float) -> tuple[float, float]:
    """(CPU %, share of it in the kernel %). A process that started in the window counts from 0; one that ended
    loses its last sample."""
    zero = (0, 0.0, 0.0)
    used = sum(after[pid][0] - before.get(pid, zero)[0] for pid in after)
    user = sum(after[pid][1] - before.get(pid, zero)[1] for pid in after)
    system = sum(after[pid][2] - before.get(pid, zero)[2] for pid in after)
    return round(100 * used / 1e9 / seconds, 3), round(100 * system / (user + system), 1) if user + system else 0.0


def wakeups_per_s(before: dict, after: dict, seconds: float) -> tuple[float, dict[str, float]]:
    """(wake-ups a second of the whole node, of each process by name)."""
    per_process: dict[str, float] = {}
    for pid in after:
        name = process_name(pid)
        count = after[pid][3] - before.get(pid, (0, 0.0, 0.0, 0))[3]
        per_process[name] = round(per_process.get(name, 0) + count / seconds, 1)
    return round(sum(per_process.values()), 1), per_process


class WireCounters:
    """VRRP packets a node sent and received, counted by nftables inside the node."""

    def __init__(self, lab: Lab, host):
        self.lab, self.host = lab, host
        rules = (f"table inet {NFT_TABLE} {{\n"
                 "  counter vrrp_in { }\n  counter vrrp_out { }\n"
                 "  chain input { type filter hook input priority -400; policy accept; "
                 "ip protocol 112 counter name \"vrrp_in\"; }\n"
                 "  chain output { type filter hook output priority -400; policy accept; "
                 "ip protocol 112 counter name \"vrrp_out\"; }\n}\n")
        lab.run(host, ["nft", "-f", "-"], input=f"table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n" + rules)

    def read(self) -> dict[str, int]:
        data = json.loads(self.lab.run(self.host, ["nft", "-j", "list", "counters", "table", "inet", NFT_TABLE],
                                       timeout=120).stdout)
        return {item["counter"]["name"]: item["counter"]["packets"] for item in data["nftables"] if "counter" in item}


# ----- the implementations --------------------------------------------------------------------------------

class Pair:
    """One implementation on both nodes for one cell."""

    def __init__(self, lab: Lab, impl: str, cell: Cell, tag: str, checks: int = 0):
        self.lab, self.impl, self.cell, self.tag, self.checks = lab, impl, cell, tag, checks
        self.master, self.backup = lab.nodes[0], lab.nodes[1]
        self.handles: dict[str, object] = {}

    def start(self, timeout_s: float) -> None:
        """The MASTER first, until it holds every VIP; then the BACKUP, which meets a settled master (both
        started at once, keepalived's two nodes could take minutes to settle at 200 instances and more on
        this machine: GARP bursts and address events of every instance flapping at once)."""
        for host, priority in ((self.master, MASTER_PRIORITY), (self.backup, BACKUP_PRIORITY)):
            name = f"{self.impl}-{self.tag}"
            if self.impl == "hanode":
                checks = self.checks if host is self.backup else 0
                self.handles[host.name] = self.lab.start_agent(
                    host, hanode_config(host.name, priority, self.cell, checks), wait=False, name=name)
            else:
                conf = keepalived_conf(host.name, priority, self.cell)
                self.handles[host.name] = self.lab.start_keepalived(host, conf, name=name)
            if host is self.master:
                self.lab.wait_for(self._master_ready, timeout_s, interval=0.5,
                                  what=f"{self.impl} {self.cell.key}: the MASTER holding every VIP")

    def _master_ready(self) -> bool:
        if not self.running():
            dead = next(h for h in self.handles.values() if not h.running)
            raise RuntimeError(f"{self.impl} exited: {dead.log_tail()}")
        return vip_count(self.lab, self.master) == self.cell.instances

    def transitions(self, host) -> int:
        """State changes the implementation reports on this node since it started."""
        handle = self.handles[host.name]
        if self.impl == "hanode":
            status = handle.status(timeout=60)
            return sum(inst.get("transitions", 0) for inst in status.get("instances", {}).values())
        return len(re.findall(r"\) Entering (MASTER|BACKUP|FAULT) STATE", handle.log_text()))

    def vrrp_pid(self, host) -> int | None:
        if self.impl != "hanode":
            return None
        status = self.handles[host.name].status(timeout=60)
        return status["agent"]["processes"]["vrrp"]["pid"]

    def running(self) -> bool:
        return all(h.running for h in self.handles.values())

    def stop(self) -> None:
        for host in (self.backup, self.master):   # the BACKUP first: no takeover on the way out
            handle = self.handles.get(host.name)
            if handle is not None and handle.running:
                try:
                    handle.stop(timeout=60)
                except TimeoutError as exc:
                    print(f"  warning: {exc}", flush=True)
        for host in (self.master, self.backup):
            for vlan in vlans(self.cell.instances):
                self.lab.run(host, ["ip", "addr", "flush", "dev", f"vlan{vlan}", "to", "198.19.0.0/16"], check=False)


def vip_count(lab: Lab, host) -> int:
    out = lab.run(host, ["ip", "-4", "-o", "addr", "show", "to", "198.19.0.0/16"]).stdout
    return len(out.splitlines())


def wait_converged(lab: Lab, pair: Pair, wires: dict[str, WireCounters], timeout_s: float) -> float:
    """Until n1 holds every VIP, n2 none, and n2 has sent no VRRP for 2 Master_Down_Intervals (>= 1 s)."""
    n = pair.cell.instances
    quiet_s = max(1.0, 2 * (3 * pair.cell.advert_int_s + pair.cell.advert_int_s))
    started = time.monotonic()
    last_out, last_change = None, time.monotonic()
    while True:
        if not pair.running():
            dead = [h for h in pair.handles.values() if not h.running]
            raise RuntimeError(f"{pair.impl} exited: {dead[0].log_tail()}")
        out = wires[pair.backup.name].read().get("vrrp_out", 0)
        if out != last_out:
            last_out, last_change = out, time.monotonic()
        if (time.monotonic() - last_change >= quiet_s and vip_count(lab, pair.master) == n
                and vip_count(lab, pair.backup) == 0):
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{pair.impl} {pair.cell.key}: no steady state within {timeout_s:.0f} s "
                               f"(master VIPs {vip_count(lab, pair.master)}/{n}, backup VIPs "
                               f"{vip_count(lab, pair.backup)})")
        time.sleep(0.5)


def profiler(pair: Pair, host, window_s: float, out: Path | None) -> subprocess.Popen | None:
    """py-spy on hanode's VRRP process over the window (`--profile DIR`): raw collapsed stacks per node."""
    if out is None or pair.impl != "hanode":
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    path = out / f"scale-{pair.cell.key}-{'master' if host is pair.master else 'backup'}.txt"
    return subprocess.Popen([spy, "record", "--nonblocking", "-r", "200", "-d", str(int(window_s)), "-f", "raw",
                             "-o", str(path), "-p", str(pair.vrrp_pid(host))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(lab: Lab, pair: Pair, wires: dict[str, WireCounters], warm_s: float, window_s: float,
            profile: Path | None = None, exclude: set[int] | None = None, progress=None) -> dict:
    """One implementation in one cell, started and stopped here."""
    cell = pair.cell
    result: dict = {"impl": pair.impl, "instances": cell.instances, "advert_int_s": cell.advert_int_s}
    try:
        started = time.monotonic()
        pair.start(timeout_s=180 + 0.3 * cell.instances)
        converge_s = time.monotonic() - started + wait_converged(lab, pair, wires, timeout_s=180 + 0.3 * cell.instances)
        result["converged_after_s"] = round(converge_s, 1)
        time.sleep(warm_s)
        roles = {"master": pair.master, "backup": pair.backup}
        meters = {role: NodeMeter(host.netns, exclude) for role, host in roles.items()}
        trans0 = {role: pair.transitions(host) for role, host in roles.items()}
        spies = [s for s in (profiler(pair, host, window_s, profile) for host in roles.values()) if s]
        mem0 = {role: meter.memory() for role, meter in meters.items()}
        wire0 = {role: wires[host.name].read() for role, host in roles.items()}
        cpu0 = {role: meter.cpu() for role, meter in meters.items()}
        t0 = time.monotonic()
        end = t0 + window_s
        while time.monotonic() < end:
            time.sleep(min(10.0, end - time.monotonic()))
            if progress:
                progress(time.monotonic() - t0)
            if not pair.running():
                raise RuntimeError(f"{pair.impl} exited during the window")
        cpu1 = {role: meter.cpu() for role, meter in meters.items()}
        t1 = time.monotonic()
        wire1 = {role: wires[host.name].read() for role, host in roles.items()}
        mem1 = {role: meter.memory() for role, meter in meters.items()}
        for spy in spies:
            spy.wait(60)
        trans1 = {role: pair.transitions(host) for role, host in roles.items()}
        seconds = t1 - t0
        result["window_s"] = round(seconds, 1)
        for role in roles:
            mem = max(mem0[role], mem1[role], key=lambda m: m["pss_kb"])
            cpu, system_share = cpu_percent(cpu0[role], cpu1[role], seconds)
            wakes, wakes_by_process = wakeups_per_s(cpu0[role], cpu1[role], seconds)
            result[role] = {
                "cpu_percent": cpu, "system_share_percent": system_share,
                "wakeups_per_s": wakes, "wakeups_per_s_by_process": wakes_by_process,
                "pss_mb": round(mem["pss_kb"] / 1024, 1),
                "processes": mem["processes"],
                "transitions": trans1[role] - trans0[role],
                "vrrp_sent": wire1[role].get("vrrp_out", 0) - wire0[role].get("vrrp_out", 0),
                "vrrp_received": wire1[role].get("vrrp_in", 0) - wire0[role].get("vrrp_in", 0),
            }
        result["false_transitions"] = result["master"]["transitions"] + result["backup"]["transitions"]
        result["backup_adverts"] = result["backup"]["vrrp_sent"]
        result["master_advert_rate_ratio"] = round(result["master"]["vrrp_sent"] / seconds / cell.adverts_per_s, 4)
    except Exception as exc:  # noqa: BLE001 - one bad cell is recorded, the run goes on
        result["error"] = f"{type(exc).__name__}: {exc}"
        print(f"  error: {result['error']}", flush=True)
    finally:
        pair.stop()
    return result


# ----- the lab --------------------------------------------------------------------------------------------

def prepare_segments(lab: Lab, count: int) -> None:
    """Segments 1..count: a bridge each in the switch namespace (vrseg<k>) and a port `vlan<100+k>` on each node
    with its own /24 (198.18.<k>.0/24). This kernel has no 802.1Q module: one bridge per segment stands in
    for one VLAN (a VRID is per broadcast domain and interface, as with VLANs)."""
    commands = []
    for k in range(1, count + 1):
        commands += [f"link add vrseg{k} type bridge", f"link set vrseg{k} up"]
        for index, host in enumerate(lab.nodes, start=1):
            commands += [f"link add n{index}-vl{k} type veth peer name vlan{FIRST_VLAN + k - 1} netns {host.netns}",
                         f"link set n{index}-vl{k} master vrseg{k}", f"link set n{index}-vl{k} up"]
    lab.run(lab.switch, ["ip", "-batch", "-"], input="".join(c + "\n" for c in commands))
    for index, host in enumerate(lab.nodes, start=1):
        commands = []
        for k in range(1, count + 1):
            vlan = FIRST_VLAN + k - 1
            commands += [f"addr add {node_address(vlan, index)}/24 dev vlan{vlan}", f"link set vlan{vlan} up"]
        lab.run(host, ["ip", "-batch", "-"], input="".join(c + "\n" for c in commands))


def machine() -> dict:
    ka = subprocess.run(["keepalived", "--version"], capture_output=True, text=True, check=False)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "agent/src"], capture_output=True,
                           text=True, check=False).stdout.strip()
    return {"cpus": os.cpu_count(), "kernel": os.uname().release,
            "keepalived": ((ka.stdout + ka.stderr).splitlines() or ["?"])[0].strip(),
            "hanode": f"hanode {head or '?'}" + (" (agent/src modified)" if dirty else "")}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----- report ---------------------------------------------------------------------------------------------

def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 2)


def rows_by_cell(results: list[dict]) -> list[dict]:
    """One row per cell: both implementations' numbers and hanode's ratios to keepalived."""
    rows = []
    for cell_key in dict.fromkeys(f"{r['instances']}x{r['advert_int_s']:g}s" for r in results):
        cell_results = {r["impl"]: r for r in results if f"{r['instances']}x{r['advert_int_s']:g}s" == cell_key}
        hanode, ka = cell_results.get("hanode", {}), cell_results.get("keepalived", {})
        row = {"cell": cell_key, "instances": (hanode or ka)["instances"], "advert_int_s": (hanode or ka)["advert_int_s"]}
        for role in ("master", "backup"):
            h, k = hanode.get(role, {}), ka.get(role, {})
            row[role] = {"hanode_cpu": h.get("cpu_percent"), "keepalived_cpu": k.get("cpu_percent"),
                         "cpu_ratio": ratio(h.get("cpu_percent"), k.get("cpu_percent")),
                         "hanode_pss_mb": h.get("pss_mb"), "keepalived_pss_mb": k.get("pss_mb"),
                         "hanode_wakeups_per_s": h.get("wakeups_per_s"),
                         "keepalived_wakeups_per_s": k.get("wakeups_per_s")}
        row["false_transitions"] = {impl: r.get("false_transitions") for impl, r in cell_results.items()}
        row["backup_adverts"] = {impl: r.get("backup_adverts") for impl, r in cell_results.items()}
        row["errors"] = {impl: r["error"] for impl, r in cell_results.items() if "error" in r}
        rows.append(row)
    return rows


def verdict(rows: list[dict]) -> dict:
    cpu_ok = all(r[role]["cpu_ratio"] is not None and r[role]["cpu_ratio"] <= TARGET_CPU_RATIO
                 for r in rows for role in ("master", "backup"))
    pss = [r[role]["hanode_pss_mb"] for r in rows for role in ("master", "backup") if r[role]["hanode_pss_mb"]]
    # the target is hanode's (keepalived's count is shown beside it in the table)
    clean = all(not r["errors"] and not r["false_transitions"].get("hanode") and not r["backup_adverts"].get("hanode")
                for r in rows)
    return {"cpu_within_1_5x": cpu_ok, "max_hanode_pss_mb": max(pss) if pss else None,
            "pss_within_target": bool(pss) and max(pss) <= TARGET_PSS_MB, "no_false_transitions": clean}


def fmt(value, digits: int = 2, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def markdown(doc: dict) -> str:
    m, v = doc["machine"], doc["verdict"]
    lines = ["## VRRP at scale: CPU and memory per node, hanode vs keepalived", "",
             f"{doc['finished'][:19]}Z, {m['cpus']} CPUs, load average {'/'.join(map(str, doc['load']['start']))} at "
             f"start, {'/'.join(map(str, doc['load']['end']))} at end, {doc['duration_s']:.0f} s. {m['hanode']}, "
             f"{m['keepalived']}. VRRPv3/IPv4, one /32 VIP per instance, 250 VRIDs per VLAN; MASTER priority 200, "
             f"BACKUP 100; {doc['config']['window_s']:g} s windows after {doc['config']['warm_s']:g} s of warm-up. "
             "CPU: CPU time of every process in the node's namespace, in % of one CPU. Wake-ups: voluntary context "
             "switches of every thread, a second. PSS: summed the same way.", "",
             "| instances | advert_int | MASTER CPU % hanode / keepalived (ratio) | BACKUP CPU % hanode / keepalived "
             "(ratio) | wake-ups/s MASTER hanode / keepalived | wake-ups/s BACKUP hanode / keepalived "
             "| PSS MB hanode / keepalived | false transitions hanode / keepalived |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        cells = []
        for role in ("master", "backup"):
            x = r[role]
            cells.append(f"{fmt(x['hanode_cpu'])} / {fmt(x['keepalived_cpu'])} ({fmt(x['cpu_ratio'], 2, 'x')})")
        for role in ("master", "backup"):
            x = r[role]
            cells.append(f"{fmt(x.get('hanode_wakeups_per_s'), 1)} / {fmt(x.get('keepalived_wakeups_per_s'), 1)}")
        pss_h = max((r[role]["hanode_pss_mb"] or 0 for role in ("master", "backup")), default=0) or None
        pss_k = max((r[role]["keepalived_pss_mb"] or 0 for role in ("master", "backup")), default=0) or None
        ft = r["false_transitions"]
        wire = r["backup_adverts"]
        trans = f"{ft.get('hanode', '–')} / {ft.get('keepalived', '–')}"
        if any(wire.values()):
            trans += f" (BACKUP sent {wire.get('hanode', '–')} / {wire.get('keepalived', '–')} packets)"
        errors = "; ".join(f"{impl}: {e}" for impl, e in r["errors"].items())
        lines.append(f"| {r['instances']} | {r['advert_int_s']:g} s | {' | '.join(cells)} | {fmt(pss_h, 1)} / "
                     f"{fmt(pss_k, 1)} | {trans}{' ERROR ' + errors if errors else ''} |")
    lines += ["", f"Targets: CPU at most {TARGET_CPU_RATIO}x keepalived's in every cell: "
                  f"**{'met' if v['cpu_within_1_5x'] else 'NOT met'}**; PSS at most {TARGET_PSS_MB} MB per node: "
                  f"**{'met' if v['pss_within_target'] else 'NOT met'}** (largest {fmt(v['max_hanode_pss_mb'], 1)} MB); "
                  f"no false transition of hanode's: **{'met' if v['no_false_transitions'] else 'NOT met'}**."]
    procs = next((r.get("backup", {}).get("processes") for r in reversed(doc["results"])
                  if r["impl"] == "hanode" and "backup" in r), None)
    if procs:
        lines += ["", "hanode's processes (BACKUP, largest cell): " + ", ".join(
            f"{p['name']} {p['pss_kb'] / 1024:.1f} MB" for p in procs) + "."]
    return "\n".join(lines) + "\n"


def soak_markdown(doc: dict) -> str:
    r, m = doc["result"], doc["machine"]
    lines = ["## VRRP soak: 1,000 instances at 0.1 s with the checker under load", "",
             f"{doc['finished'][:19]}Z, {m['cpus']} CPUs, load average {'/'.join(map(str, doc['load']['start']))} at "
             f"start, {'/'.join(map(str, doc['load']['end']))} at end. {m['hanode']}. {r['instances']} VRRPv3 instances "
             f"at advert_int {r['advert_int_s']:g} s; the BACKUP node's checker runs TCP_CHECK on "
             f"{doc['config']['checks']} real servers every second.", ""]
    if "error" in r:
        lines.append(f"ERROR: {r['error']}")
        return "\n".join(lines) + "\n"
    lines += [
        "| window | false transitions | BACKUP VRRP sent | MASTER advert rate | checks/s | MASTER CPU % | "
        "BACKUP CPU % | MASTER PSS MB | BACKUP PSS MB (with checker) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['window_s'] / 60:.1f} min | {r['false_transitions']} | {r['backup_adverts']} | "
        f"{r['master_advert_rate_ratio']:.3f}x | {r.get('checks_per_s', '–')} | {r['master']['cpu_percent']:.2f} | "
        f"{r['backup']['cpu_percent']:.2f} | {r['master']['pss_mb']:.1f} | {r['backup']['pss_mb']:.1f} |", "",
        "BACKUP processes: " + ", ".join(f"{p['name']} {p['pss_kb'] / 1024:.1f} MB" for p in r["backup"]["processes"])
        + "."]
    return "\n".join(lines) + "\n"


# ----- soak -----------------------------------------------------------------------------------------------

def serve(port: int) -> int:
    """A real-server listener (`--serve`): accept and close, for TCP_CHECK."""
    import socket
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(4096)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        conn, _peer = listener.accept()
        conn.close()


def prepare_real_servers(lab: Lab, procs: int) -> list:
    """The real-server namespace answers for RS_NET (a local route), the BACKUP node routes it there."""
    rs, backup = lab.real_servers[0], lab.nodes[1]
    lab.run(rs, ["ip", "route", "add", "local", RS_NET, "dev", "lo"])
    lab.run(rs, ["nft", "-f", "-"], input=(
        f"table inet {NFT_TABLE} {{\n  counter syns {{ }}\n  chain input {{ type filter hook input priority -400; "
        f"policy accept; tcp dport {RS_PORT} tcp flags syn counter name \"syns\"; }}\n}}\n"))
    lab.run(backup, ["ip", "route", "add", RS_NET, "via", rs.ipv4])
    return [lab.popen(rs, [sys.executable, __file__, "--serve"], log_name=f"rs-{i}") for i in range(procs)]


def syns(lab: Lab) -> int:
    data = json.loads(lab.run(lab.real_servers[0], ["nft", "-j", "list", "counter", "inet", NFT_TABLE, "syns"]).stdout)
    return next(item["counter"]["packets"] for item in data["nftables"] if "counter" in item)


def run_soak(args, out: Path) -> int:
    cell = Cell(args.soak_instances, args.soak_advert_int)
    started = time.time()
    doc: dict = {"schema_version": SCHEMA_VERSION, "kind": "soak", "machine": machine(),
                 "started": datetime.datetime.utcfromtimestamp(started).isoformat(), "load": {"start": load()},
                 "config": {"checks": args.soak_checks, "minutes": args.soak_minutes}}
    with Lab(nodes=2, clients=0, real_servers=1, keep_logs=args.keep_logs) as lab:
        prepare_segments(lab, len(vlans(cell.instances)))
        wires = {h.name: WireCounters(lab, h) for h in lab.nodes}
        prepare_real_servers(lab, args.server_procs)
        pair = Pair(lab, "hanode", cell, "soak", checks=args.soak_checks)
        rate: dict = {}

        def progress(elapsed: float) -> None:
            if "t0" in rate:
                rate["last"] = (syns(lab), time.monotonic())
                per_s = (rate["last"][0] - rate["syns0"]) / (rate["last"][1] - rate["t0"])
                print(f"  {elapsed / 60:.1f} min: {per_s:.0f} checks/s", flush=True)

        original_transitions = pair.transitions

        def transitions_and_syns(host) -> int:
            if host is pair.master and "t0" not in rate:
                rate.update(syns0=syns(lab), t0=time.monotonic())
            return original_transitions(host)

        pair.transitions = transitions_and_syns   # the check rate is counted over the same window
        result = measure(lab, pair, wires, args.warm, args.soak_minutes * 60, args.profile, progress=progress)
        if "last" in rate and "error" not in result:
            result["checks_per_s"] = round((rate["last"][0] - rate["syns0"]) / (rate["last"][1] - rate["t0"]))
        doc["result"] = result
    doc.update(finished=datetime.datetime.utcnow().isoformat(), duration_s=round(time.time() - started, 1))
    doc["load"]["end"] = load()
    (out / "scale-soak.json").write_text(json.dumps(doc, indent=1))
    (out / "scale-soak.md").write_text(soak_markdown(doc))
    print(soak_markdown(doc))
    return 0 if "error" not in result and result["false_transitions"] == 0 and result["backup_adverts"] == 0 else 1


# ----- main -----------------------------------------------------------------------------------------------

def run_cells(args, out: Path) -> int:
    cells = parse_cells(QUICK_CELLS if args.quick and not args.cells else args.cells or DEFAULT_CELLS)
    impls = args.impls.split(",")
    started = time.time()
    doc: dict = {"schema_version": SCHEMA_VERSION, "kind": "cells", "machine": machine(),
                 "started": datetime.datetime.utcfromtimestamp(started).isoformat(), "load": {"start": load()},
                 "config": {"cells": [c.key for c in cells], "window_s": args.window, "warm_s": args.warm,
                            "impls": impls}, "results": []}
    with Lab(nodes=2, clients=0, keep_logs=args.keep_logs) as lab:
        prepare_segments(lab, max(len(vlans(c.instances)) for c in cells))
        wires = {h.name: WireCounters(lab, h) for h in lab.nodes}
        for index, cell in enumerate(cells):
            order = impls if index % 2 == 0 else list(reversed(impls))
            for impl in order:
                print(f"=== {impl} {cell.key} (load {load()[0]})", flush=True)
                result = measure(lab, Pair(lab, impl, cell, f"{cell.key}-{index}"), wires, args.warm, args.window,
                                 args.profile)
                result["load1"] = load()[0]
                doc["results"].append(result)
                print("  " + json.dumps({k: v for k, v in result.items() if k not in ("master", "backup")}), flush=True)
                for role in ("master", "backup"):
                    if role in result:
                        summary = {k: v for k, v in result[role].items() if k != "processes"}
                        print(f"  {role}: {json.dumps(summary)}", flush=True)
    doc.update(finished=datetime.datetime.utcnow().isoformat(), duration_s=round(time.time() - started, 1))
    doc["load"]["end"] = load()
    doc["rows"] = rows_by_cell(doc["results"])
    doc["verdict"] = verdict(doc["rows"])
    (out / "scale.json").write_text(json.dumps(doc, indent=1))
    (out / "scale.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0 if not any(r["errors"] for r in doc["rows"]) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cells", help=f"instances:advert_int,... (default {DEFAULT_CELLS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"a small run: cells {QUICK_CELLS} (unless --cells), 10 s windows (unless --window)")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--window", type=float, help="seconds of measuring per cell (default 30, --quick 10)")
    parser.add_argument("--warm", type=float, default=5.0, help="seconds after steady state, before the window")
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)  # bench.sh passes it to all
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="py-spy hanode's VRRP process on both nodes over each window (raw stacks in DIR)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the lab's directory (agent logs, configs)")
    parser.add_argument("--soak", action="store_true", help="the long run with the checker instead of the cells")
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--soak-instances", type=int, default=1000)
    parser.add_argument("--soak-advert-int", type=float, default=0.1)
    parser.add_argument("--soak-checks", type=int, default=8000, help="real servers checked every second")
    parser.add_argument("--server-procs", type=int, default=2, help="real-server listener processes (soak)")
    args = parser.parse_args()
    if args.serve:
        return serve(RS_PORT)
    if os.geteuid() != 0:
        sys.exit("bench_scale: needs root (network namespaces, nftables)")
    if shutil.which("keepalived") is None and "keepalived" in args.impls and not args.soak:
        sys.exit("bench_scale: keepalived is not installed (make setup)")
    if args.window is None:
        args.window = 10.0 if args.quick else 30.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # unwind: stop the agents, delete the lab
    out = Path(os.environ.get("HANODE_BENCH_OUT", REPO / "bench-results"))
    out.mkdir(parents=True, exist_ok=True)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    return run_soak(args, out) if args.soak else run_cells(args, out)


if __name__ == "__main__":
    sys.exit(main())
