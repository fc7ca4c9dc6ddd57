"""VRRP failover benchmark: hanode and keepalived in the same run, same lab shape, alternating.

    sudo .venv/bin/python scripts/bench_failover.py [--repeat 10] [--modes v2,v3] [--impls hanode,keepalived]

One namespace lab (two nodes and a client on the `lan` bridge, the VRRP sniffer on the bridge). Each
repetition starts a fresh pair of one implementation (n1 priority 200, n2 priority 100, both `state BACKUP`,
same VRID and VIP), waits until n1 is the stable MASTER, then measures:

- master loss: n1's eth0 is set down inside its namespace (the same for both implementations: nothing
  more leaves n1, not even a priority-0 advert). Time = first advert of n2 - last advert of n1, both as
  seen by the sniffer. Theoretical: n2's Master_Down_Interval (3 x advert_int + Skew_Time(100)).
- graceful handover: after n1 is back (link up, it preempts), SIGTERM to n1. Time = first advert of n2 -
  n1's priority-0 advert. Theoretical: n2's Skew_Time.
- VIP gap: the client pings the VIP every 10 ms for the whole repetition; the gap is the longest silence
  between two replies around each event (it includes the new master's VIP add and gratuitous ARP).

Implementations alternate per repetition (hanode first on even repetitions, keepalived first on odd ones)
so that load from elsewhere on the machine hits both alike. Writes <out>/failover.json (every raw sample,
the load averages, the machine) and <out>/failover.md (the table). Needs root.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
try:
    from hanode.lab.lab import Lab
except ImportError:  # a checkout whose agent is not installed in this Python
    sys.path.insert(0, str(REPO / "agent" / "src"))
    from hanode.lab.lab import Lab
from hanode.lab.sniffer import parse_frame  # noqa: E402 - the lab sniffer's pure frame parser

SCHEMA_VERSION = 1
MASTER_PRIORITY = 200
BACKUP_PRIORITY = 100
VRID = 51
VIP = "198.51.100.100"
PING_INTERVAL_S = 0.01
LOSS_METHOD = "link down: `ip link set eth0 down` inside the MASTER's namespace (identical for both implementations)"
IMPLS = ("hanode", "keepalived")
SCENARIOS = ("master_loss", "graceful")


@dataclass(frozen=True)
class Mode:
    key: str
    label: str
    version: int
    advert_int_cs: int

    @property
    def advert_int_s(self) -> float:
        return self.advert_int_cs / 100


MODES = {
    "v2": Mode("v2", "VRRPv2, advert_int 1 s", 2, 100),
    "v3": Mode("v3", "VRRPv3, advert_int 0.1 s", 3, 10),
}


# ----- theory (RFC 3768 / RFC 5798, written out here rather than imported from the agent under test) --------

def skew_time_ms(priority: int, mode: Mode) -> float:
    """v2: (256 - priority) / 256 s.  v3: ((256 - priority) * Master_Adver_Interval) / 256."""
    if mode.version == 2:
        return (256 - priority) * 1000 / 256
    return (256 - priority) * mode.advert_int_cs * 10 / 256


def master_down_interval_ms(priority: int, mode: Mode) -> float:
    return 3 * mode.advert_int_cs * 10 + skew_time_ms(priority, mode)


def theoretical_ms(scenario: str, mode: Mode) -> float:
    if scenario == "master_loss":
        return master_down_interval_ms(BACKUP_PRIORITY, mode)
    return skew_time_ms(BACKUP_PRIORITY, mode)


# ----- statistics -----------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "median_ms": None, "p95_ms": None, "min_ms": None, "max_ms": None}
    return {"n": len(values), "median_ms": round(statistics.median(values), 3),
            "p95_ms": round(percentile(values, 0.95), 3), "min_ms": round(min(values), 3),
            "max_ms": round(max(values), 3)}


# ----- implementations ------------------------------------------------------------------------------------

KEEPALIVED_CONF = """\
global_defs {{
    router_id {router_id}
    vrrp_version {version}
    enable_script_security
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int {advert_int}
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
}}
"""


def hanode_config(router_id: str, priority: int, mode: Mode) -> dict:
    return {"router_id": router_id, "vrrp_instances": {"VI_1": {
        "interface": "eth0", "virtual_router_id": VRID, "priority": priority, "version": mode.version,
        "advert_int": mode.advert_int_s, "state": "BACKUP", "virtual_ipaddresses": [f"{VIP}/24 dev eth0"]}}}


def start_impl(lab: Lab, impl: str, host, priority: int, mode: Mode, tag: str):
    if impl == "hanode":
        return lab.start_agent(host, hanode_config(host.name, priority, mode), wait=False, name=f"hanode-{tag}")
    conf = KEEPALIVED_CONF.format(router_id=host.name, version=mode.version, vrid=VRID, priority=priority,
                                  advert_int=f"{mode.advert_int_s:g}", vip=VIP)
    return lab.start_keepalived(host, conf, name=f"keepalived-{tag}")


def impl_version(impl: str) -> str:
    if impl == "keepalived":
        proc = subprocess.run(["keepalived", "--version"], capture_output=True, text=True, check=False)
        return (proc.stdout + proc.stderr).splitlines()[0].strip() if (proc.stdout + proc.stderr) else "?"
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "agent/src"],
                           capture_output=True, text=True, check=False)
    return f"hanode {proc.stdout.strip() or '?'}" + (" (agent/src modified)" if dirty.stdout.strip() else "")


# ----- what the wire saw ----------------------------------------------------------------------------------

class Seen(NamedTuple):
    t: float  # seconds, in the clock of whoever recorded it
    src: str
    priority: int


def loss_pair(seen: list[Seen], old_src: str, new_src: str, since: float) -> tuple[Seen, Seen]:
    """(last advert of the old master, first advert of the new master) for a master loss at `since`."""
    new = next((a for a in seen if a.src == new_src and a.priority > 0 and a.t >= since), None)
    if new is None:
        raise LookupError(f"no advert from {new_src} after {since:.6f}")
    old = [a for a in seen if a.src == old_src and a.t < new.t]
    if not old:
        raise LookupError(f"no advert from {old_src} before {new.t:.6f}")
    return old[-1], new


def graceful_pair(seen: list[Seen], old_src: str, new_src: str, since: float) -> tuple[Seen, Seen]:
    """(priority-0 advert of the old master, first advert of the new master) for a SIGTERM at `since`."""
    zero = next((a for a in seen if a.src == old_src and a.priority == 0 and a.t >= since), None)
    new = next((a for a in seen if a.src == new_src and a.priority > 0 and a.t >= since), None)
    if zero is None or new is None:
        raise LookupError(f"no {'priority-0 advert' if zero is None else 'new master advert'} after {since:.6f}")
    return zero, new


PCAP_MAGIC = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}


def read_pcap(path: Path, vrid: int) -> list[Seen]:
    """VRRP adverts of one VRID from a pcap file (Ethernet), with the kernel's capture timestamps."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    for endian in ("<", ">"):
        (magic,) = struct.unpack_from(endian + "I", data, 0)
        if magic in PCAP_MAGIC:
            break
    else:
        raise ValueError(f"{path}: not a pcap file")
    scale = PCAP_MAGIC[magic]
    seen, pos = [], 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig_len = struct.unpack_from(endian + "IIII", data, pos)
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        vrrp = parse_frame(frame)
        if vrrp is not None and vrrp.vrid == vrid and vrrp.type == 1:
            seen.append(Seen(sec + frac * scale, vrrp.src, vrrp.priority))
    return seen


class KernelCapture:
    """tcpdump on the lan bridge writing a pcap: the kernel's receive timestamps, free of any user-space
    scheduling delay of the sniffer (which matters on a loaded machine)."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.path = lab.switch.dir / "vrrp.pcap"
        argv = ["tcpdump", "-i", "lan", "-n", "-U", "--immediate-mode", "-Z", "root", "-s", "256",
                "--time-stamp-precision=nano", "-w", str(self.path), "ip proto 112"]
        self.handle = lab.popen(lab.switch, argv, log_name="tcpdump-lan")
        lab.wait_for(self._listening, 15, what="tcpdump on the lan bridge")

    def _listening(self) -> bool:
        if not self.handle.running:
            raise RuntimeError(f"tcpdump exited: {self.handle.log_tail()}")
        return "listening on" in self.handle.log_text()

    def stop(self, last_wall: float | None = None) -> list[Seen]:
        """Stops the capture once it holds the adverts up to `last_wall` (what the sniffer saw last)."""
        if last_wall is not None and self.handle.running:
            try:
                self.lab.wait_for(lambda: any(a.t >= last_wall - 0.05 for a in read_pcap(self.path, VRID)[-20:]),
                                  10, interval=0.2, what="the capture to catch up with the sniffer")
            except TimeoutError:
                pass  # the repetitions without kernel times fall back to the sniffer's
        if self.handle.running:
            self.handle.send_signal(signal.SIGINT)
            try:
                self.handle.wait(10)
            except subprocess.TimeoutExpired:
                self.handle.kill()
        return read_pcap(self.path, VRID)


def clock_offset_s() -> float:
    """time.time() - time.monotonic(), from the closest of a few paired readings."""
    best = None
    for _reading in range(5):
        a = time.monotonic()
        wall = time.time()
        b = time.monotonic()
        if best is None or b - a < best[0]:
            best = (b - a, wall - (a + b) / 2)
    return best[1]


# ----- VIP reachability from the client -------------------------------------------------------------------

PING_LINE = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+)")


def ping_replies(log_text: str) -> list[float]:
    """Wall-clock times of the replies in `ping -D` output."""
    return [float(m.group(1)) for m in map(PING_LINE.match, log_text.splitlines()) if m]


def longest_gap_ms(replies: list[float], window_start: float, window_end: float) -> float | None:
    """The longest silence between consecutive replies that starts before or inside the window: from the last
    reply before it, through the replies inside it, to the first reply after it. None without a reply before."""
    before = [t for t in replies if t < window_start]
    inside = [t for t in replies if window_start <= t <= window_end]
    if not before:
        return None
    points = [before[-1], *inside]
    gaps = [b - a for a, b in zip(points, points[1:])]
    after = [t for t in replies if t > window_end]
    if after:
        gaps.append(after[0] - points[-1])
    return round(max(gaps) * 1000, 3) if gaps else 0.0


# ----- one repetition -------------------------------------------------------------------------------------

class BenchError(RuntimeError):
    pass


class Repetition:
    """One pair of one implementation through master loss and graceful handover."""

    def __init__(self, lab: Lab, sniffer, impl: str, mode: Mode, index: int, log):
        self.lab, self.sniffer, self.impl, self.mode, self.index, self.log = lab, sniffer, impl, mode, index, log
        self.n1, self.n2 = lab.nodes
        (self.client,) = lab.clients
        self.tag = f"{mode.key}-r{index}"
        self.handles: dict[str, object] = {}
        self.pinger = None
        self.adv_s = mode.advert_int_s
        self.mdi_s = master_down_interval_ms(BACKUP_PRIORITY, mode) / 1000

    # waits ---------------------------------------------------------------------------------

    def _adverts(self, host, since: float, positive: bool | None = None) -> list:
        found = self.sniffer.adverts(src=host.ipv4, vrid=VRID, since=since)
        if positive is None:
            return found
        return [a for a in found if (a.priority > 0) == positive]

    def _wait_first(self, host, since: float, timeout: float, positive: bool, what: str):
        """The first advert (priority > 0 or == 0) from host at or after `since`; waits on the sniffer only
        (no subprocess polling while a failover is in flight)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._adverts(host, since, positive)
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.impl} {self.tag}: no {what} within {timeout:.1f}s")
            try:
                self.sniffer.wait_for_adverts(len(self.sniffer.adverts(src=host.ipv4, vrid=VRID, since=since)) + 1,
                                              timeout=left, src=host.ipv4, vrid=VRID, since=since)
            except TimeoutError:
                pass

    def _wait_stable_master(self, master, other, since: float, timeout: float) -> None:
        """master has sent 3 adverts in a row after the other node's last one, and the other has been silent
        for at least 2 advert intervals."""
        def stable() -> bool:
            mine = self._adverts(master, since, True)
            theirs = self.sniffer.adverts(src=other.ipv4, vrid=VRID, since=since)
            last_other = theirs[-1].t if theirs else since
            after = [a for a in mine if a.t > last_other]
            return len(after) >= 3 and time.monotonic() - last_other >= 2 * self.adv_s
        self.lab.wait_for(stable, timeout, interval=min(0.05, self.adv_s / 4),
                          what=f"{self.impl} {self.tag}: {master.name} stable MASTER")

    def _wait_vip_through(self, owner, timeout: float) -> None:
        """The VIP answers the client from owner's MAC (gratuitous ARP processed)."""
        def reached() -> bool:
            return owner.has_address(VIP, "eth0") and self.lab.ping(self.client, VIP, timeout=0.5) \
                and self.lab.neighbour(self.client, VIP) == owner.mac
        self.lab.wait_for(reached, timeout, interval=0.05, what=f"{self.impl} {self.tag}: VIP via {owner.name}")

    # phases --------------------------------------------------------------------------------

    def start_pair(self) -> None:
        since = time.monotonic()
        self.handles["n2"] = start_impl(self.lab, self.impl, self.n2, BACKUP_PRIORITY, self.mode, self.tag)
        self.handles["n1"] = start_impl(self.lab, self.impl, self.n1, MASTER_PRIORITY, self.mode, self.tag)
        if self.impl == "hanode":
            for key in ("n2", "n1"):
                self.handles[key].wait_ready(30)
        self._wait_stable_master(self.n1, self.n2, since, timeout=30 + 6 * self.mdi_s)
        self._wait_vip_through(self.n1, timeout=15)
        self.pinger = self.lab.popen(self.client, ["ping", "-n", "-D", "-i", f"{PING_INTERVAL_S:g}", "-W", "1", VIP],
                                     log_name=f"ping-{self.impl}-{self.tag}")
        self.lab.wait_for(lambda: len(ping_replies(self.pinger.log_text())) >= 1 or self.pinger.running is False,
                          10, what="first ping reply in the log")

    def _seen(self) -> list[Seen]:
        return [Seen(a.t, a.src, a.priority) for a in self.sniffer.adverts(vrid=VRID)]

    def master_loss(self) -> dict:
        mark, mark_wall = time.monotonic(), time.time()
        self.lab.link_set(self.n1, "eth0", False)
        down, down_wall = time.monotonic(), time.time()
        self._wait_first(self.n2, mark, 3 * self.mdi_s + 10, True, f"advert from {self.n2.name} after master loss")
        last, new = loss_pair(self._seen(), self.n1.ipv4, self.n2.ipv4, mark)
        self._wait_vip_through(self.n2, timeout=15)
        sample = {"time_sniffer_ms": round((new.t - last.t) * 1000, 3),
                  "link_down_to_new_master_ms": round((new.t - down) * 1000, 3),
                  "mark_wall": mark_wall, "down_wall": down_wall, "end_wall": time.time(),
                  "sniffer": {"old": last._asdict(), "new": new._asdict()},
                  "load1": round(os.getloadavg()[0], 2)}
        # Back to the start: n1 returns and preempts.
        back = time.monotonic()
        self.lab.link_set(self.n1, "eth0", True)
        self._wait_stable_master(self.n1, self.n2, back, timeout=30 + 6 * self.mdi_s)
        self._wait_vip_through(self.n1, timeout=15)
        return sample

    def graceful(self) -> dict:
        mark, mark_wall = time.monotonic(), time.time()
        self.handles["n1"].send_signal(signal.SIGTERM)
        self._wait_first(self.n1, mark, 15, False, f"priority-0 advert from {self.n1.name}")
        self._wait_first(self.n2, mark, 15 + self.mdi_s, True, f"advert from {self.n2.name} after SIGTERM")
        zero, new = graceful_pair(self._seen(), self.n1.ipv4, self.n2.ipv4, mark)
        self._wait_vip_through(self.n2, timeout=15)
        sample = {"time_sniffer_ms": round((new.t - zero.t) * 1000, 3),
                  "sigterm_to_priority0_ms": round((zero.t - mark) * 1000, 3),
                  "mark_wall": mark_wall, "end_wall": time.time(),
                  "sniffer": {"old": zero._asdict(), "new": new._asdict()},
                  "load1": round(os.getloadavg()[0], 2)}
        try:
            self.handles["n1"].wait(15)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{self.impl} {self.tag}: {self.n1.name} did not exit 15 s after SIGTERM") from None
        return sample

    def finish(self) -> None:
        """Stops every process of this repetition and leaves no VIP behind."""
        if self.pinger is not None and self.pinger.running:
            self.pinger.send_signal(signal.SIGINT)
            try:
                self.pinger.wait(5)
            except subprocess.TimeoutExpired:
                self.pinger.kill()
        for key, handle in self.handles.items():
            if handle.running:
                try:
                    handle.stop(timeout=15)
                except TimeoutError as exc:
                    self.log(f"  warning: {exc}")
        for node in (self.n1, self.n2):
            self.lab.link_set(node, "eth0", True)
            if node.has_address(VIP, "eth0"):
                self.lab.run(node, ["ip", "addr", "del", f"{VIP}/24", "dev", "eth0"], check=False)

    def run(self, scenarios: tuple[str, ...]) -> dict:
        result: dict = {"impl": self.impl, "mode": self.mode.key, "rep": self.index, "started": time.time(),
                        "load_start": [round(x, 2) for x in os.getloadavg()]}
        try:
            self.start_pair()
            if "master_loss" in scenarios:
                result["master_loss"] = self.master_loss()
            if "graceful" in scenarios:
                result["graceful"] = self.graceful()
        except Exception as exc:  # noqa: BLE001 - one bad repetition is recorded, the run goes on
            result["error"] = f"{type(exc).__name__}: {exc}"
            self.log(f"  error: {result['error']}")
            self.log("".join(traceback.format_exc(limit=3)))
        finally:
            try:
                self.finish()
            except Exception as exc:  # noqa: BLE001
                result.setdefault("error", f"cleanup: {exc}")
        if self.pinger is not None:
            result["_replies"] = ping_replies(self.pinger.log_text())
            result["ping_replies"] = len(result["_replies"])
        return result


# ----- the run --------------------------------------------------------------------------------------------

def finalize(rep: dict, kernel: list[Seen] | None, offset_s: float, old_src: str, new_src: str) -> None:
    """Adds the kernel-timestamp times (when captured), the validity checks and the VIP gaps to a repetition."""
    replies = rep.pop("_replies", [])
    for scenario in SCENARIOS:
        sample = rep.get(scenario)
        if not sample:
            continue
        old, new = (Seen(**sample["sniffer"][k]) for k in ("old", "new"))
        new_wall = new.t + offset_s
        sample["time_ms"], sample["clock"] = sample["time_sniffer_ms"], "sniffer"
        if kernel is not None:
            pair = loss_pair if scenario == "master_loss" else graceful_pair
            # The capture must have seen the very packets the sniffer saw (same sender and priority, a
            # quarter of an advert interval apart at most), else this sample keeps the sniffer's times.
            slack_s = MODES[rep["mode"]].advert_int_s / 4
            try:
                k_old, k_new = pair(kernel, old_src, new_src, sample["mark_wall"])
                for k, u in ((k_old, old), (k_new, new)):
                    if k.priority != u.priority or abs(k.t - (u.t + offset_s)) > slack_s:
                        raise LookupError(f"capture and sniffer disagree: {k} vs {u} (offset {offset_s:.6f})")
            except LookupError as exc:
                sample["kernel_error"] = str(exc)
            else:
                old, new = k_old, k_new
                sample["kernel"] = {"old": old._asdict(), "new": new._asdict()}
                sample["time_kernel_ms"] = round((new.t - old.t) * 1000, 3)
                sample["time_ms"], sample["clock"] = sample["time_kernel_ms"], "kernel"
                new_wall = new.t
        if scenario == "master_loss" and old.priority == 0:
            sample["invalid"] = "the old master's last advert had priority 0 (not a silent loss)"
        if scenario == "graceful" and new.t < old.t:
            sample["invalid"] = "the new master advertised before the priority-0 advert"
        if replies:
            sample["vip_gap_ms"] = longest_gap_ms(replies, sample["mark_wall"], sample["end_wall"])
            back = next((t for t in replies if t >= new_wall), None)
            sample["vip_back_after_advert_ms"] = None if back is None else round((back - new_wall) * 1000, 3)


def aggregate(reps: list[dict], modes: list[Mode], impls: list[str], scenarios: tuple[str, ...]) -> list[dict]:
    rows = []
    for mode in modes:
        for scenario in scenarios:
            by_impl = {}
            for impl in impls:
                samples = [r[scenario] for r in reps if r["impl"] == impl and r["mode"] == mode.key
                           and scenario in r and "invalid" not in r[scenario]]
                by_impl[impl] = {
                    "times_ms": [s["time_ms"] for s in samples],
                    "gaps_ms": [s["vip_gap_ms"] for s in samples if s.get("vip_gap_ms") is not None],
                    "back_ms": [s["vip_back_after_advert_ms"] for s in samples
                                if s.get("vip_back_after_advert_ms") is not None],
                    "errors": sum(1 for r in reps if r["impl"] == impl and r["mode"] == mode.key and "error" in r),
                    "load1": statistics.median([s["load1"] for s in samples]) if samples else None,
                }
            theory = theoretical_ms(scenario, mode)
            ka = summary(by_impl.get("keepalived", {}).get("times_ms", []))
            for impl in impls:
                stats = summary(by_impl[impl]["times_ms"])
                med = stats["median_ms"]
                rows.append({
                    "impl": impl, "mode": mode.key, "mode_label": mode.label, "scenario": scenario,
                    "theoretical_ms": round(theory, 3), **stats,
                    "ratio_to_keepalived": round(med / ka["median_ms"], 4) if med and ka["median_ms"] else None,
                    "delta_to_keepalived_ms": round(med - ka["median_ms"], 3) if med and ka["median_ms"] else None,
                    "ratio_to_theoretical": round(med / theory, 4) if med else None,
                    "p95_ratio_to_theoretical": round(stats["p95_ms"] / theory, 4) if med else None,
                    "vip_gap": summary(by_impl[impl]["gaps_ms"]),
                    "vip_back_after_advert": summary(by_impl[impl]["back_ms"]),
                    "errors": by_impl[impl]["errors"],
                    "load1_median": by_impl[impl]["load1"],
                    "samples_ms": by_impl[impl]["times_ms"],
                })
    return rows


def verdict(rows: list[dict]) -> dict:
    """The issue's target: hanode's median no slower than keepalived's and within 5% of the theory."""
    checks = []
    for row in rows:
        if row["impl"] != "hanode" or row["median_ms"] is None:
            continue
        ka = next((r for r in rows if r["impl"] == "keepalived" and r["mode"] == row["mode"]
                   and r["scenario"] == row["scenario"]), None)
        not_slower = None if ka is None or ka["median_ms"] is None else row["median_ms"] <= ka["median_ms"]
        within = abs(row["ratio_to_theoretical"] - 1) <= 0.05
        checks.append({"mode": row["mode"], "scenario": row["scenario"], "no_slower_than_keepalived": not_slower,
                       "within_5pct_of_theoretical": within,
                       "delta_to_keepalived_ms": None if not ka or ka["median_ms"] is None
                       else round(row["median_ms"] - ka["median_ms"], 3)})
    met = bool(checks) and all(c["within_5pct_of_theoretical"] and c["no_slower_than_keepalived"] is not False
                               for c in checks)
    return {"met": met, "checks": checks}


def fmt(value, digits: int = 1, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


SCENARIO_LABEL = {"master_loss": "master loss", "graceful": "graceful (SIGTERM)"}


def markdown(doc: dict) -> str:
    load = doc["load"]
    lines = [
        "## VRRP failover: hanode vs keepalived",
        "",
        f"{doc['finished'][:19]}Z, {doc['machine']['cpus']} CPUs, load average (1/5/15 min) "
        f"{'/'.join(f'{x:.2f}' for x in load['start'])} at start, {'/'.join(f'{x:.2f}' for x in load['end'])} "
        f"at end; {doc['config']['repeat']} repetitions per cell, {doc['duration_s']:.0f} s in all. "
        f"{doc['versions']['hanode']}, {doc['versions']['keepalived']}.",
        "",
        "| implementation | mode | event | n | median ms | p95 ms | vs keepalived | vs theoretical (ms) "
        "| VIP gap median / p95 ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in doc["results"]:
        gap = row["vip_gap"]
        delta = "" if row["impl"] == "keepalived" or row["delta_to_keepalived_ms"] is None \
            else f" ({row['delta_to_keepalived_ms']:+.1f} ms)"
        lines.append(
            f"| {row['impl']} | {row['mode_label']} | {SCENARIO_LABEL[row['scenario']]} | {row['n']} | "
            f"{fmt(row['median_ms'])} | {fmt(row['p95_ms'])} | {fmt(row['ratio_to_keepalived'], 3, 'x')}{delta} | "
            f"{fmt(row['ratio_to_theoretical'], 3, 'x')} ({row['theoretical_ms']:.1f}) | "
            f"{fmt(gap['median_ms'], 0)} / {fmt(gap['p95_ms'], 0)} |")
    v = doc["verdict"]
    unmeasured = any(c["no_slower_than_keepalived"] is None for c in v["checks"])
    lines += ["", f"Target (hanode median no slower than keepalived and within 5% of theoretical): "
                  f"**{'met' if v['met'] else 'NOT met'}**"
                  + (" (keepalived was not measured in this run)." if unmeasured else ".")]
    for c in v["checks"]:
        row = next(r for r in doc["results"] if r["impl"] == "hanode" and r["mode"] == c["mode"]
                   and r["scenario"] == c["scenario"])
        parts = [f"{(row['ratio_to_theoretical'] - 1) * 100:+.1f}% vs theoretical "
                 f"({'ok' if c['within_5pct_of_theoretical'] else 'MISSED'})"]
        if c["delta_to_keepalived_ms"] is not None:
            parts.append(f"{c['delta_to_keepalived_ms']:+.1f} ms vs keepalived "
                         f"({'ok' if c['no_slower_than_keepalived'] else 'MISSED'})")
        lines.append(f"- hanode, {MODES[c['mode']].label}, {SCENARIO_LABEL[c['scenario']]}: {', '.join(parts)}")
    loads = [r[s]["load1"] for r in doc["repetitions"] for s in SCENARIOS if s in r]
    cpus = doc["machine"]["cpus"] or 1
    if loads and max(loads) > cpus / 2:
        lines += ["", f"Busy machine: the 1-minute load average reached {max(loads):.2f} on {cpus} CPUs during the "
                      f"measurements (median {statistics.median(loads):.2f}); expect noisier numbers than on a "
                      "quiet one."]
    clock = doc["timestamps"]
    diff = clock.get("sniffer_minus_kernel_ms") or {}
    lines += ["", f"Timestamps: {clock['source']}."
              + (f" {clock.get('samples_sniffer')} sample(s) fell back to the lab sniffer's user-space timestamps."
                 if clock.get("samples_sniffer") and clock.get("samples_kernel") else "")
              + (f" The lab sniffer's user-space timestamps differed from them by {diff['median_ms']:.2f} ms "
                 f"(median), {diff['p95_ms']:.2f} ms (p95)." if diff.get("n") else "")]
    errors = [r for r in doc["repetitions"] if "error" in r]
    invalid = [(r, s) for r in doc["repetitions"] for s in SCENARIOS if "invalid" in r.get(s, {})]
    if errors or invalid:
        lines += ["", f"{len(errors)} repetition(s) failed and {len(invalid)} sample(s) were discarded; "
                      "see failover.json."]
    lines += ["", "Master loss: " + doc["config"]["master_loss_method"] + "; time = first advert of the new master "
              "- last advert of the old one, on the bridge. Graceful: time = first advert of the new master - "
              "the priority-0 advert. Theoretical: the backup's (priority 100) Master_Down_Interval and Skew_Time. "
              "VIP gap: longest silence between replies of a 10 ms ping from the client to the VIP.", ""]
    return "\n".join(lines)


def timestamp_note(reps: list[dict], kernel: bool) -> dict:
    """Which clock the times use, and how far the lab sniffer's user-space timestamps were from it."""
    diffs = [r[k]["time_sniffer_ms"] - r[k]["time_kernel_ms"] for r in reps for k in SCENARIOS
             if "time_kernel_ms" in r.get(k, {})]
    clocks = [r[k].get("clock") for r in reps for k in SCENARIOS if k in r]
    return {"source": "kernel capture timestamps (tcpdump, pcap nanoseconds) on the lan bridge" if kernel
            else "hanode.lab sniffer (time.monotonic() after recvfrom) on the lan bridge",
            "samples_kernel": clocks.count("kernel"), "samples_sniffer": clocks.count("sniffer"),
            "sniffer_minus_kernel_ms": summary([abs(d) for d in diffs]) if diffs else None}


def machine_info() -> dict:
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "node": platform.node()}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("HANODE_BENCH_REPEAT", "10")),
                        help="repetitions per implementation and mode (default 10, or $HANODE_BENCH_REPEAT)")
    parser.add_argument("--modes", default="v2,v3", help="comma list of v2 (advert_int 1 s), v3 (advert_int 0.1 s)")
    parser.add_argument("--impls", default=",".join(IMPLS), help="comma list of hanode, keepalived")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of master_loss, graceful")
    parser.add_argument("--out", default=os.environ.get("HANODE_BENCH_OUT", str(REPO / "bench-results")),
                        help="output directory (default bench-results/, or $HANODE_BENCH_OUT)")
    parser.add_argument("--no-kernel-timestamps", dest="kernel_timestamps", action="store_false",
                        help="time with the lab sniffer's user-space timestamps only (no tcpdump capture)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the lab's work dir (agent and keepalived logs)")
    parser.add_argument("--render", metavar="JSON", help="only re-render failover.md (into --out) from a failover.json")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.modes = [MODES[m] for m in _split(args.modes, MODES, "--modes")]
    args.impls = _split(args.impls, IMPLS, "--impls")
    args.scenarios = tuple(_split(args.scenarios, SCENARIOS, "--scenarios"))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _split(text: str, known, option: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in known]
    if bad or not items:
        raise SystemExit(f"{option}: unknown {', '.join(bad) or 'empty list'} (known: {', '.join(known)})")
    return items


def preflight(impls: list[str], kernel_timestamps: bool) -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench_failover: needs root (network namespaces); run `sudo make bench`")
    needed = ["ip", "ping"] + (["tcpdump"] if kernel_timestamps else []) \
        + (["keepalived"] if "keepalived" in impls else [])
    missing = [t for t in needed if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"bench_failover: missing commands {', '.join(missing)} (run `make setup`)")


def render(path: Path, out: Path) -> str:
    """Recomputes the table and verdict of an earlier run from its raw samples and writes failover.md."""
    doc = json.loads(path.read_text())
    cfg = doc["config"]
    doc["results"] = aggregate(doc["repetitions"], [MODES[m] for m in cfg["modes"]], cfg["impls"],
                               tuple(cfg["scenarios"]))
    doc["verdict"] = verdict(doc["results"])
    text = markdown(doc)
    out.mkdir(parents=True, exist_ok=True)
    (out / "failover.md").write_text(text)
    return text


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.render:
        print(render(Path(args.render), Path(args.out)))
        return 0
    preflight(args.impls, args.kernel_timestamps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *_: None) if args.quiet else (lambda msg: print(msg, flush=True))
    started = time.monotonic()
    doc = {"schema_version": SCHEMA_VERSION, "benchmark": "vrrp_failover",
           "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
           "machine": machine_info(), "versions": {i: impl_version(i) for i in IMPLS},
           "load": {"start": [round(x, 2) for x in os.getloadavg()]},
           "config": {"repeat": args.repeat, "modes": [m.key for m in args.modes], "impls": args.impls,
                      "scenarios": list(args.scenarios), "master_priority": MASTER_PRIORITY,
                      "backup_priority": BACKUP_PRIORITY, "vrid": VRID, "vip": VIP,
                      "master_loss_method": LOSS_METHOD, "ping_interval_s": PING_INTERVAL_S,
                      "order": "implementations alternate per repetition"}}
    reps: list[dict] = []
    prefix = "bfo" + secrets.token_hex(3)
    with Lab(nodes=2, clients=1, prefix=prefix, keep_logs=args.keep_logs) as lab:
        doc["lab"] = {"prefix": lab.prefix, "dir": str(lab.dir) if args.keep_logs else None}
        sniffer = lab.sniff_vrrp()
        capture = KernelCapture(lab) if args.kernel_timestamps else None
        kernel = None
        try:
            for mode in args.modes:
                for index in range(args.repeat):
                    order = args.impls if index % 2 == 0 else list(reversed(args.impls))
                    for impl in order:
                        t0 = time.monotonic()
                        rep = Repetition(lab, sniffer, impl, mode, index, say).run(args.scenarios)
                        reps.append(rep)
                        say(_progress(rep, time.monotonic() - t0))
        finally:
            sniffer.stop()
            offset = clock_offset_s()
            if capture is not None:
                seen = sniffer.adverts(vrid=VRID)
                kernel = capture.stop(seen[-1].t + offset if seen else None)
        n1, n2 = lab.nodes
        for rep in reps:
            finalize(rep, kernel, offset, n1.ipv4, n2.ipv4)
    doc["timestamps"] = timestamp_note(reps, kernel is not None)
    doc["load"]["end"] = [round(x, 2) for x in os.getloadavg()]
    doc["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    doc["duration_s"] = round(time.monotonic() - started, 1)
    doc["results"] = aggregate(reps, args.modes, args.impls, args.scenarios)
    doc["verdict"] = verdict(doc["results"])
    doc["repetitions"] = reps
    (out / "failover.json").write_text(json.dumps(doc, indent=2) + "\n")
    text = markdown(doc)
    (out / "failover.md").write_text(text)
    say("\n" + text)
    say(f"wrote {out / 'failover.json'} and {out / 'failover.md'}")
    return 0 if not any("error" in r for r in reps) else 1


def _progress(rep: dict, took_s: float) -> str:
    parts = [f"{rep['mode']} rep {rep['rep']:>2} {rep['impl']:<10}"]
    if "master_loss" in rep:
        parts.append(f"loss {rep['master_loss']['time_sniffer_ms']:8.1f} ms")
    if "graceful" in rep:
        parts.append(f"graceful {rep['graceful']['time_sniffer_ms']:7.1f} ms")
    if "error" in rep:
        parts.append(f"ERROR {rep['error']}")
    parts.append(f"load {rep['load_start'][0]:.2f}, {took_s:.1f} s")
    return "  ".join(parts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
