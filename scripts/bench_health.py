"""Health-check capacity: hanode's checker against keepalived's (Debian 2.2.7), same real servers, same run.

For each check type (TCP_CHECK, HTTP_GET) and each number N of real servers, every one checked with
delay_loop 1 (so N checks a second are asked for), each checker in turn:
  - runs for a warm-up, then a measuring window: checks actually made per second (SYNs counted by nftables
    at the servers' port), the checker process's CPU (utime + stime from /proc/PID/stat) and so CPU per
    1,000 checks;
  - then F real servers fail at once (nftables answers their SYNs with a reset) and the time until the
    checker reports each one down is measured: hanode from its event stream, keepalived from its
    lvs_notify_fifo. With retry 1 / delay_before_retry 1 the bound is delay_loop x (retry + 1) = 2 s.
Capacity = the largest N whose checks all ran (>= 95 % of N per second) and whose slowest detection stayed
within the bound + 0.5 s.

keepalived's checker refuses to start on a kernel without IPVS (this machine's), so it runs with a small
LD_PRELOAD shim (compiled here with cc) that answers keepalived's IPVS socket options as an empty IPVS
would: its health checks are its own, unchanged; only the kernel table updates become no-ops.

Everything runs in one network namespace of its own (hckbench-<pid>): real servers on 127.1.x.y:8080
(one SO_REUSEPORT listener set), the checker under test, nftables for counting and failing.
Results: bench-results/health.json and health.md (HANODE_BENCH_OUT overrides the directory).

    sudo .venv/bin/python scripts/bench_health.py [--sizes 500,1000,2000,4000,8000] [--types TCP_CHECK,HTTP_GET]
        [--baseline-src DIR] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "agent" / "src"))

PORT = 8080
VIP = "198.51.100.100"
DELAY_LOOP_S = 1
RETRY = 1
DELAY_BEFORE_RETRY_S = 1
CONNECT_TIMEOUT_S = 1
BOUND_S = DELAY_LOOP_S * (RETRY + 1)
SLACK_S = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#define IP_VS_BASE_CTL (64 + 1024 + 64)
static int is_ipvs(int level, int optname, int span) {
    return level == IPPROTO_IP && optname >= IP_VS_BASE_CTL && optname <= IP_VS_BASE_CTL + span;
}
int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen) {
    static int (*real)(int, int, int, const void *, socklen_t);
    if (is_ipvs(level, optname, 15)) return 0;              /* IP_VS_SO_SET_*: accepted, no effect */
    if (!real) real = dlsym(RTLD_NEXT, "setsockopt");
    return real(fd, level, optname, optval, optlen);
}
int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen) {
    static int (*real)(int, int, int, void *, socklen_t *);
    if (is_ipvs(level, optname, 7)) {                        /* IP_VS_SO_GET_*: an empty IPVS 1.2.1 */
        memset(optval, 0, *optlen);
        if (optname == IP_VS_BASE_CTL) strncpy(optval, "IP Virtual Server version 1.2.1 (size=4096)", *optlen);
        else if (optname == IP_VS_BASE_CTL + 1 && *optlen >= 12) {
            unsigned int *info = optval; info[0] = 0x010201; info[1] = 4096;
        }
        return 0;
    }
    if (!real) real = dlsym(RTLD_NEXT, "getsockopt");
    return real(fd, level, optname, optval, optlen);
}
"""

# The NAT chain makes conntrack track every connection in the namespace for both checkers alike: hanode's
# nftables backend needs NAT (hence conntrack) and would otherwise pay it alone.
NFT_RULES = f"""
table inet hckbench {{
    counter syns {{ }}
    chain nat_out {{
        type nat hook output priority -100; policy accept;
    }}
    set failed {{ type ipv4_addr; }}
    chain input {{
        type filter hook input priority -10; policy accept;
        tcp dport {PORT} ip daddr @failed reject with tcp reset
        tcp dport {PORT} tcp flags syn counter name "syns"
    }}
}}
"""


def die_with_parent() -> None:
    """preexec_fn: the kernel kills the child when this bench dies, however it dies (no orphan agents)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def spawn(argv: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(argv, start_new_session=True, preexec_fn=die_with_parent, **kwargs)


def address(i: int) -> str:
    return f"127.1.{i // 250}.{i % 250 + 1}"


# ----- real servers (`--serve`) ------------------------------------------------------------------

def serve(mode: str) -> int:
    """One real-server process: accept, (HTTP) read the request and answer 200, close."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("0.0.0.0", PORT))
    listener.listen(4096)
    answer = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        conn, _peer = listener.accept()
        if mode == "http":
            try:
                conn.settimeout(1)
                if conn.recv(4096):
                    conn.sendall(answer)
            except OSError:
                pass
        conn.close()


# ----- the namespace -----------------------------------------------------------------------------

class Namespace:
    def __init__(self) -> None:
        self.name = f"hckbench-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run(["ip", "link", "set", "lo", "up"])
        self.run(["nft", "-f", "-"], input=NFT_RULES)

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: list[str], input: str | None = None) -> str:
        return subprocess.run(self.argv(argv), input=input, capture_output=True, text=True, check=True).stdout

    def syns(self) -> int:
        data = json.loads(self.run(["nft", "-j", "list", "counter", "inet", "hckbench", "syns"]))
        return next(item["counter"]["packets"] for item in data["nftables"] if "counter" in item)

    def fail(self, addresses: list[str]) -> None:
        self.run(["nft", "add", "element", "inet", "hckbench", "failed", "{ " + ", ".join(addresses) + " }"])

    def heal(self) -> None:
        self.run(["nft", "flush", "set", "inet", "hckbench", "failed"])

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process in seconds (fields 14, 15 of /proc/PID/stat); NaNs when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return float("nan"), float("nan")
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def wakeups(pid: int) -> int:
    """Voluntary context switches of a process's main thread (its event loop's sleeps: load does not change them)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("voluntary_ctxt_switches"))
    except (FileNotFoundError, StopIteration):
        return -1


def run_delay_s(pid: int) -> float:
    """Time the process's main thread has waited for a CPU while runnable (/proc/PID/schedstat, field 2): how
    much of a check's lateness the machine's load explains."""
    try:
        with open(f"/proc/{pid}/schedstat") as handle:
            return int(handle.read().split()[1]) / 1e9
    except (FileNotFoundError, IndexError):
        return float("nan")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")


# ----- the checkers under test ---------------------------------------------------------------------

class Downs:
    """Real servers reported down, with the time of the report."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()

    def add(self, addr: str, ts: float) -> None:
        with self.lock:
            self.seen.setdefault(addr, ts)


class Hanode:
    name = "hanode"

    def __init__(self, ns: Namespace, work: Path, kind: str, n: int, src: str | None = None):
        """`src`: run the agent from this source tree (an agent/src of another commit) instead of the installed
        one, under the name hanode-baseline: before/after numbers from the same run."""
        self.ns, self.work, self.kind, self.n, self.src = ns, work, kind, n, src
        if src:
            self.name = "hanode-baseline"
        self.socket = str(work / "agent.sock")
        check = {"type": kind, "connect_timeout": CONNECT_TIMEOUT_S, "retry": RETRY,
                 "delay_before_retry": DELAY_BEFORE_RETRY_S}
        if kind == "HTTP_GET":
            check.update(path="/", status_code=200)
        config = {"router_id": "bench", "control_socket": self.socket, "lb_backend": "nftables",
                  "lb_reconcile_interval": 3600,
                  "virtual_servers": [{"address": VIP, "port": 80, "lb_algo": "rr", "lb_kind": "NAT",
                                       "delay_loop": DELAY_LOOP_S,
                                       "real_servers": [{"address": address(i), "port": PORT, "checks": [check]}
                                                        for i in range(n)]}]}
        import yaml
        (work / "agent.yaml").write_text(yaml.safe_dump(config))
        self.downs = Downs()

    def start(self) -> None:
        from hanode.control.client import request
        hanode = str(Path(sys.executable).parent / "hanode")
        self.log = open(self.work / "agent.log", "wb")
        env = dict(os.environ, PYTHONPATH=self.src) if self.src else None
        self.proc = spawn(self.ns.argv([hanode, "run", "--config", str(self.work / "agent.yaml")]),
                          stdout=self.log, stderr=self.log, env=env)

        def ready():
            status = request(self.socket, {"cmd": "status"}, 10)["status"]
            return status.get("lvs", {}).get("checks") == self.n and status["agent"]["processes"]["checker"]["pid"]
        self.pid = wait_for(ready, 120, "hanode's checker", interval_s=1.0)   # a status of N servers is not free
        threading.Thread(target=self._events, daemon=True).start()

    def _events(self) -> None:
        from hanode.control.client import stream
        try:
            for event in stream(self.socket, {"cmd": "events", "follow": True}):
                if event.get("event") == "real_server" and event.get("up") is False:
                    self.downs.add(event["real_server"].rsplit(":", 1)[0], event["ts"])
        except Exception:  # noqa: BLE001 - the agent stopped
            pass

    def lateness(self) -> dict:
        from hanode.control.client import request
        lvs = request(self.socket, {"cmd": "status"}, 10)["status"]["lvs"]
        return {**(lvs.get("check_late_ms") or {}), "loop_lag_ms": lvs.get("loop_lag_ms")}

    def current_pid(self) -> int | None:
        from hanode.control.client import request
        return request(self.socket, {"cmd": "status"}, 10)["status"]["agent"]["processes"]["checker"]["pid"]

    def stop(self) -> None:
        if hasattr(self, "proc"):
            stop(self.proc)
            self.log.close()


class Keepalived:
    name = "keepalived"

    def __init__(self, ns: Namespace, work: Path, kind: str, n: int, shim: Path):
        self.ns, self.work, self.kind, self.n, self.shim = ns, work, kind, n, shim
        self.fifo = work / "lvs.fifo"
        if self.kind == "TCP_CHECK":
            body = (f"  TCP_CHECK {{\n   connect_timeout {CONNECT_TIMEOUT_S}\n   retry {RETRY}\n"
                    f"   delay_before_retry {DELAY_BEFORE_RETRY_S}\n  }}\n")
        else:
            body = (f"  HTTP_GET {{\n   url {{\n    path /\n    status_code 200\n   }}\n"
                    f"   connect_timeout {CONNECT_TIMEOUT_S}\n   retry {RETRY}\n"
                    f"   delay_before_retry {DELAY_BEFORE_RETRY_S}\n  }}\n")
        lines = ["global_defs {", " router_id bench", f" lvs_notify_fifo {self.fifo}", "}",
                 f"virtual_server {VIP} 80 {{", f" delay_loop {DELAY_LOOP_S}", " lb_algo rr", " lb_kind NAT",
                 " protocol TCP"]
        for i in range(n):
            lines.append(f" real_server {address(i)} {PORT} {{\n  weight 1\n{body} }}")
        lines.append("}")
        (work / "keepalived.conf").write_text("\n".join(lines) + "\n")
        self.downs = Downs()

    def start(self) -> None:
        os.mkfifo(self.fifo)
        threading.Thread(target=self._fifo, daemon=True).start()
        self.log = open(self.work / "keepalived.log", "wb")
        pid_files = [self.work / f"{name}.pid" for name in ("main", "vrrp", "checkers")]
        argv = ["env", f"LD_PRELOAD={self.shim}", "keepalived", "-n", "-l", "-C",
                "-f", str(self.work / "keepalived.conf"), "-p", str(pid_files[0]), "-r", str(pid_files[1]),
                "-c", str(pid_files[2])]
        self.proc = spawn(self.ns.argv(argv), stdout=self.log, stderr=self.log)
        self.pid = wait_for(lambda: int(pid_files[2].read_text()), 60, "keepalived's checker")
        wait_for(lambda: b"Startup complete" in (self.work / "keepalived.log").read_bytes(), 60, "keepalived start")

    def _fifo(self) -> None:
        pattern = re.compile(r"127\.1\.\d+\.\d+")
        with open(self.fifo, "r") as handle:
            for line in handle:
                now = time.time()
                if " DOWN" in line and line.startswith("RS"):
                    match = pattern.search(line)
                    if match:
                        self.downs.add(match.group(0), now)

    def lateness(self) -> None:
        return None

    def current_pid(self) -> int | None:
        try:
            return int((self.work / "checkers.pid").read_text())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if hasattr(self, "proc"):
            stop(self.proc)
            self.log.close()


# ----- one measurement -------------------------------------------------------------------------------

def steady(ns: Namespace, n: int, timeout_s: float) -> bool:
    """Waits until the checks run at >= 90 % of the asked rate over one second."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before, at = ns.syns(), time.monotonic()
        time.sleep(1.0)
        if (ns.syns() - before) / (time.monotonic() - at) >= 0.9 * n / DELAY_LOOP_S:
            return True
    return False


def profiler(checker, window_s: float, out: Path | None) -> subprocess.Popen | None:
    """py-spy on the checker process for the measuring window (`--profile DIR`): a collapsed-stack file per run
    (flamegraph input; the self time of each line is the last frame of each stack). Sampling costs the
    checker a little CPU: compare CPU numbers of runs without --profile only."""
    if out is None or checker.name == "keepalived":
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    path = out / f"{checker.name}-{checker.kind}-{checker.n}.txt"
    return subprocess.Popen([spy, "record", "--nonblocking", "-r", "250", "-d", str(int(window_s)), "-f", "raw",
                             "-o", str(path), "-p", str(checker.pid)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def measure(ns: Namespace, checker, n: int, warm_s: float, window_s: float, failures: int,
            profile: Path | None = None) -> dict:
    started = time.monotonic()
    try:
        checker.start()
        reached = steady(ns, n, 120)
        ready_s = time.monotonic() - started
        time.sleep(warm_s)
        pid = checker.pid
        spy = profiler(checker, window_s, profile)
        syn0, (user0, sys0), wake0, t0 = ns.syns(), cpu_times(checker.pid), wakeups(checker.pid), time.monotonic()
        wait0 = run_delay_s(checker.pid)
        time.sleep(window_s)
        syn1, (user1, sys1), wake1, t1 = ns.syns(), cpu_times(checker.pid), wakeups(checker.pid), time.monotonic()
        wait1 = run_delay_s(checker.pid)
        if spy is not None:
            spy.wait(30)
        checks = syn1 - syn0
        user, system = user1 - user0, sys1 - sys0
        cpu = user + system
        if math.isnan(cpu):   # the checker was restarted (hung: killed by the supervisor's watchdog)
            cpu = None
        rate = checks / (t1 - t0)
        try:
            lateness = checker.lateness()
        except Exception:  # noqa: BLE001 - no answer within the control timeout
            lateness = None
        try:
            same_process = checker.current_pid() == pid
        except Exception:  # noqa: BLE001 - no answer: count it as a failure of the run
            same_process = False
        victims = [address(i) for i in range(0, n, max(1, n // failures))][:failures]
        failed_at = time.time()
        ns.fail(victims)
        try:
            wait_for(lambda: all(v in checker.downs.seen for v in victims), BOUND_S + 10,
                     "every failed server reported down")
        except TimeoutError:
            pass
        ns.heal()
        latencies = sorted(checker.downs.seen[v] - failed_at for v in victims if v in checker.downs.seen)
    finally:
        checker.stop()
    result = {
        "checker": checker.name, "type": checker.kind, "real_servers": n, "asked_per_s": n / DELAY_LOOP_S,
        "checks_per_s": round(rate, 1), "cpu_percent": round(100 * cpu / (t1 - t0), 1) if cpu is not None else None,
        "cpu_ms_per_1000_checks": round(1000 * 1000 * cpu / checks, 1) if checks and cpu is not None else None,
        "user_ms_per_1000_checks": round(1000 * 1000 * user / checks, 1) if checks and cpu is not None else None,
        "sys_ms_per_1000_checks": round(1000 * 1000 * system / checks, 1) if checks and cpu is not None else None,
        "wakeups_per_s": round((wake1 - wake0) / (t1 - t0), 1) if min(wake0, wake1) >= 0 else None,
        "cpu_wait_ms_per_s": round(1000 * (wait1 - wait0) / (t1 - t0), 1) if wait1 >= wait0 else None,
        "detected": len(latencies), "failed": len(victims),
        "detect_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "detect_max_s": round(latencies[-1], 3) if latencies else None,
        "late_ms": lateness, "ready_s": round(ready_s, 1) if reached else None,
        "restarted": not same_process,
    }
    result["keeps_up"] = bool(rate >= 0.95 * n / DELAY_LOOP_S and len(latencies) == len(victims)
                              and latencies[-1] <= BOUND_S + SLACK_S and same_process)
    return result


def build_shim(directory: Path) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        sys.exit("bench_health: needs a C compiler (cc) for keepalived's IPVS shim: apt-get install gcc")
    source, shim = directory / "ipvs_shim.c", directory / "ipvs_shim.so"
    source.write_text(SHIM_C)
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(shim), str(source), "-ldl"], check=True)
    return shim


def markdown(results: list[dict], meta: dict) -> str:
    lines = ["## Health-check capacity (delay_loop 1, retry 1, delay_before_retry 1)", "",
             f"{meta['when']}, {meta['cpus']} CPUs, load average {meta['load_start']} at start, "
             f"{meta['load_end']} at end. Real servers: {meta['server_procs']} Python listeners on 127.1.x.y:{PORT} in "
             "one namespace; keepalived 2.2.7 runs with an IPVS shim (this kernel has no IPVS). "
             f"Detection bound: delay_loop x (retry+1) = {BOUND_S} s (+{SLACK_S} s slack).", "",
             "| check | real servers | checker | checks/s | CPU % | CPU ms / 1000 checks (user + sys) | detected "
             "| detect p50 s | detect max s | steady after s | keeps up |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r['type']} | {r['real_servers']} | {r['checker']} | {r['checks_per_s']:.0f} | "
                     f"{r['cpu_percent']} | {r['cpu_ms_per_1000_checks']} ({r['user_ms_per_1000_checks']} + "
                     f"{r['sys_ms_per_1000_checks']}) | {r['detected']}/{r['failed']} | "
                     f"{r['detect_p50_s']} | {r['detect_max_s']} | {r['ready_s']} | "
                     f"{'yes' if r['keeps_up'] else 'NO'} |")
    lines += ["", "Capacity: the largest N up to which every size kept up (and the largest that kept up at all, "
              "on a shared machine one size can miss by a few per cent and the next pass), with CPU per 1000 "
              "checks there:", ""]
    for kind in sorted({r["type"] for r in results}):
        for name in [c for c in ("hanode", "hanode-baseline", "keepalived") if any(r["checker"] == c for r in results)]:
            runs = sorted((r for r in results if r["type"] == kind and r["checker"] == name),
                          key=lambda r: r["real_servers"])
            steady = None
            for r in runs:
                if not r["keeps_up"]:
                    break
                steady = r
            best = max((r for r in runs if r["keeps_up"]), key=lambda r: r["real_servers"], default=None)
            text = (f"{steady['real_servers']} real servers/s at {steady['cpu_ms_per_1000_checks']} ms"
                    if steady else "none")
            if best is not None and best is not steady:
                text += f" (kept up at {best['real_servers']} too, {best['cpu_ms_per_1000_checks']} ms)"
            lines.append(f"- {kind} {name}: {text}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--serve", choices=("tcp", "http"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="500,1000,2000,4000,8000")
    parser.add_argument("--types", default="TCP_CHECK,HTTP_GET")
    parser.add_argument("--checkers", default="hanode,keepalived")
    parser.add_argument("--warm", type=float, default=2.0, help="seconds after the rate is steady, before the window")
    parser.add_argument("--window", type=float, default=6.0, help="seconds of measuring")
    parser.add_argument("--failures", type=int, default=20, help="real servers failed for the detection test")
    parser.add_argument("--server-procs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("HANODE_BENCH_REPEAT", "1")))
    parser.add_argument("--baseline-src", metavar="DIR",
                        help="also run the agent from this source tree (e.g. agent/src of `git archive` of an older "
                             "commit) as hanode-baseline, right after hanode at each size")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="py-spy hanode's checker over each window (collapsed stacks in DIR; py-spy from PyPI)")
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    if os.geteuid() != 0:
        sys.exit("bench_health: needs root (a network namespace, nftables)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # unwind: stop the checkers, delete the namespace
    if shutil.which("keepalived") is None and "keepalived" in args.checkers:
        sys.exit("bench_health: keepalived is not installed (apt-get install keepalived)")
    out = Path(os.environ.get("HANODE_BENCH_OUT", REPO / "bench-results"))
    out.mkdir(parents=True, exist_ok=True)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    checkers = args.checkers.split(",")
    if args.baseline_src:
        if not (Path(args.baseline_src) / "hanode" / "health").is_dir():
            sys.exit(f"bench_health: --baseline-src {args.baseline_src}: no hanode package there")
        checkers.insert(checkers.index("hanode") + 1 if "hanode" in checkers else 0, "hanode-baseline")
    work = Path(tempfile.mkdtemp(prefix="hck-bench-"))
    shim = build_shim(work) if "keepalived" in args.checkers else None
    ns = Namespace()
    results: list[dict] = []
    meta = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
            "load_start": " ".join(open("/proc/loadavg").read().split()[:3]), "server_procs": args.server_procs}
    servers: list[subprocess.Popen] = []
    try:
        for kind in args.types.split(","):
            mode = "tcp" if kind == "TCP_CHECK" else "http"
            servers = [spawn(ns.argv([sys.executable, __file__, "--serve", mode])) for _proc in range(args.server_procs)]
            time.sleep(0.5)
            for n in (int(s) for s in args.sizes.split(",")):
                for _repetition in range(args.repeat):
                    for name in checkers:
                        run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-{kind}-{n}-", dir=work))
                        if name == "keepalived":
                            checker = Keepalived(ns, run_dir, kind, n, shim)
                        else:
                            checker = Hanode(ns, run_dir, kind, n, args.baseline_src if name == "hanode-baseline" else None)
                        result = measure(ns, checker, n, args.warm, args.window, min(args.failures, max(1, n // 10)),
                                         args.profile)
                        results.append(result)
                        print(json.dumps(result), flush=True)
            for proc in servers:
                stop(proc)
            servers = []
    finally:
        for proc in servers:
            stop(proc)
        ns.close()
        shutil.rmtree(work, ignore_errors=True)
    meta["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    (out / "health.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    (out / "health.md").write_text(markdown(results, meta))
    print(markdown(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
