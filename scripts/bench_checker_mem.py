"""Memory of a node that runs the checker: `hanode run` with bench_health's config (one virtual server of N real
servers, TCP_CHECK, delay_loop 1 s, nftables backend) in a network namespace of its own, PSS and USS of each of
its processes (supervisor and children, from /proc/PID/smaps_rollup) once the checks run at the asked rate, then
after one status request, then after four more. Load-insensitive: what it measures is memory, not time; the
machine's load only changes how long it takes.

    sudo .venv/bin/python scripts/bench_checker_mem.py [--n 8000] [--src DIR ...] [--repeat 2]

`--src DIR` (repeatable): run the agent from that source tree (an agent/src of another commit) too; the trees
take turns in each repetition (A/B interleaved). One JSON line per run on stdout, a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_health as bh  # noqa: E402  (its namespace, real servers and config)

SETTLE_S = 3.0


def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, USS) of a process in kB."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":"):
                fields[parts[0][:-1]] = int(parts[1])
    return fields["Pss"], fields["Private_Clean"] + fields["Private_Dirty"]


def titled_children(pid: int) -> dict[str, int]:
    """The agent's children by their process title (hanode-vrrp, hanode-checker)."""
    found = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
            for child in handle.read().split():
                with open(f"/proc/{child}/comm", encoding="ascii") as comm:
                    found[comm.read().strip().removeprefix("hanode-")] = int(child)
    return found


def snapshot(pid: int) -> dict[str, list[float]]:
    procs = {"supervisor": pid, **titled_children(pid)}
    out = {name: [round(v / 1024, 1) for v in memory_kb(p)] for name, p in sorted(procs.items())}
    out["node_pss"] = round(sum(v[0] for v in out.values()), 1)
    return out


def run_once(ns: bh.Namespace, work: Path, n: int, src: str | None, reconcile_s: float | None = None) -> dict:
    """reconcile_s: the config's lb_reconcile_interval instead of bench_health's 3600 s (the first measure is
    then taken after one refresh from the kernel has run)."""
    from hanode.control.client import request
    import yaml
    checker = bh.Hanode(ns, work, "TCP_CHECK", n, src)
    if reconcile_s is not None:
        config = yaml.safe_load((work / "agent.yaml").read_text())
        config["lb_reconcile_interval"] = reconcile_s
        (work / "agent.yaml").write_text(yaml.safe_dump(config))
    hanode = str(Path(sys.executable).parent / "hanode")
    env = dict(os.environ, PYTHONPATH=src) if src else None
    log = open(work / "agent.log", "wb")
    proc = bh.spawn(ns.argv([hanode, "run", "--config", str(work / "agent.yaml")]), stdout=log, stderr=log, env=env)
    try:
        bh.wait_for(lambda: "checker" in titled_children(proc.pid), 120, "the checker process")
        if not bh.steady(ns, n, 120):
            raise RuntimeError("checks never reached 90 % of the asked rate")
        time.sleep(SETTLE_S if reconcile_s is None else reconcile_s + SETTLE_S)
        result = {"src": src or "worktree", "n": n, "load": open("/proc/loadavg").read().split()[0],
                  "lb_reconcile_interval": reconcile_s or 3600,
                  "after_start": snapshot(proc.pid)}
        request(checker.socket, {"cmd": "status"}, 60)
        time.sleep(SETTLE_S)
        result["after_status"] = snapshot(proc.pid)
        for _request in range(4):
            request(checker.socket, {"cmd": "status"}, 60)
        time.sleep(SETTLE_S)
        result["after_5_status"] = snapshot(proc.pid)
        return result
    finally:
        bh.stop(proc)
        log.close()


def markdown(results: list[dict]) -> str:
    rows = ["| source | after start: node PSS (supervisor / vrrp / checker PSS) | after 1 status | after 5 status |",
            "|---|---|---|---|"]
    for src in dict.fromkeys(r["src"] for r in results):
        cells = []
        for when in ("after_start", "after_status", "after_5_status"):
            runs = [r[when] for r in results if r["src"] == src]
            parts = " / ".join(f"{statistics.median(r.get(p, [0])[0] for r in runs):.1f}"
                               for p in ("supervisor", "vrrp", "checker"))
            cells.append(f"{statistics.median(r['node_pss'] for r in runs):.1f} ({parts})")
        rows.append(f"| {src} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--src", action="append", default=[], help="another agent/src to run too (A/B)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--server-procs", type=int, default=2)
    parser.add_argument("--reconcile-interval", type=float, help="lb_reconcile_interval (s) instead of 3600")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_checker_mem: needs root (a network namespace, nftables)")
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    ns = bh.Namespace()
    servers = [bh.spawn(ns.argv([sys.executable, bh.__file__, "--serve", "tcp"])) for _proc in range(args.server_procs)]
    results = []
    try:
        for _repetition in range(args.repeat):
            for src in [None, *args.src]:
                with tempfile.TemporaryDirectory(prefix="hck-mem-") as work:
                    result = run_once(ns, Path(work), args.n, src, args.reconcile_interval)
                results.append(result)
                print(json.dumps(result), flush=True)
    finally:
        for proc in servers:
            bh.stop(proc)
        ns.close()
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
