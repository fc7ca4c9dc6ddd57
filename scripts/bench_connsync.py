"""Connection survival benchmark: long-lived TCP connections through the VIP while the master director is killed.

    python3 scripts/bench_connsync.py [--connections 200] [--churn-rate 200] [--churn-s 5] [--no-uml]

Side by side in one run (scenario: hanode.lab.connsync; two directors, a client, two echo servers):
- keepalived 2.2.7 with `lvs_sync_daemon eth1 VI_1` (IPVS, inside Debian's User-Mode Linux kernel),
- hanode on IPVS with lvs_sync_daemon (UML),
- hanode on nftables with conntrack_sync, i.e. conntrackd (host kernel).
Each: first the sync link's cost (new connections at --churn-rate for --churn-s; the sync protocol's packets
and bytes at the backup's port of the bridge, scaled to 1,000 new connections/s), then --connections
connections each exchanging a message every 100 ms, the master killed (SIGKILL of all its processes and its
links down) and, over the 3 s after, the connections that went on without a reset or a stall over 2 s.
Target: 100% on both hanode backends. Results: bench-results/connsync.json and connsync.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "agent" / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from hanode.lab import connsync  # noqa: E402

MARKER = "BENCH_CONNSYNC_JSON "
UML_KINDS = ("keepalived-ipvs", "hanode-ipvs")


def run_kind(kind: str, args: argparse.Namespace, workdir: Path | None) -> dict:
    started = time.monotonic()
    try:
        result = connsync.run(kind, args.connections, churn_rate=args.churn_rate, churn_s=args.churn_s,
                              workdir=workdir, prefix=f"bcs{os.getpid() % 100000}")
    except Exception as exc:  # noqa: BLE001 - one failed cell is reported, the others still run
        result = {"kind": kind, "error": repr(exc)}
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def inside_uml(args: argparse.Namespace) -> list[dict]:
    import subprocess
    for module in ("ipv6", "bridge"):
        subprocess.run(["modprobe", module], check=False)
    return [run_kind(kind, args, Path("/tmp/hanode-lab")) for kind in UML_KINDS]


def run_uml(args: argparse.Namespace) -> list[dict]:
    import uml_run
    cmd = [str(REPO / ".venv" / "bin" / "python"), str(Path(__file__).resolve()), "--inside-uml",
           "--connections", str(args.connections), "--churn-rate", str(args.churn_rate), "--churn-s", str(args.churn_s)]
    rc, output = uml_run.run(" ".join(cmd), timeout_s=1800, mem="2G", echo=False)
    for line in output.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    return [{"kind": kind, "error": f"UML run failed (exit {rc}): {output[-3000:]}"} for kind in UML_KINDS]


NAMES = {"keepalived-ipvs": "keepalived 2.2.7, lvs_sync_daemon (IPVS, UML 6.1)",
         "hanode-ipvs": "hanode, lvs_sync_daemon (IPVS, UML 6.1)",
         "hanode-nft": "hanode, conntrack_sync / conntrackd (nftables, host kernel)"}


def markdown(results: dict) -> str:
    rows = ["## Connection survival (bench_connsync.py)", "",
            f"{results['connections']} long-lived TCP connections through the VIP, one message each every 100 ms; the "
            "master killed (SIGKILL of all its processes, then its links down). Survived: no reset, no stall over "
            "2 s, in the 3 s after the kill.", "",
            "| directors | survived | synced to the backup before the kill | VIP on the backup after (ms) | "
            "longest stall (ms) | median stall (ms) | sync link per 1,000 new conn/s | measured at |",
            "|---|---:|---:|---:|---:|---:|---|---|"]
    for r in results["runs"]:
        name = NAMES.get(r["kind"], r["kind"])
        if "error" in r:
            rows.append(f"| {name} | error: {r['error'][:300]} | | | | | | |")
            continue
        t, cost = r["tcp"], r.get("sync_cost") or {}
        per = cost.get("per_1000_conn_s") or {}
        pct = 100.0 * t["survived"] / t["connections"] if t["connections"] else 0.0
        rows.append(f"| {name} | {t['survived']}/{t['connections']} ({pct:.0f}%) | {t['synced_before_kill']} | "
                    f"{t['takeover_ms']} | {t['longest_stall_ms']:.0f} | {t['median_stall_ms']:.0f} | "
                    f"{per.get('packets_per_s', 'n/a')} packets/s, {per.get('bytes_per_s', 'n/a')} bytes/s | "
                    f"{cost.get('rate_reached', 'n/a')} conn/s ({cost.get('sync_packets_per_s', 'n/a')} packets/s, "
                    f"{cost.get('sync_bytes_per_s', 'n/a')} bytes/s) |")
    rows += ["", "Sync link: the sync protocol's UDP packets (IPVS 8848, conntrackd 3780) to and from the backup, counted "
             "on its bridge port while new connections (connect, one echo, close) arrive at the rate shown, scaled "
             "linearly to 1,000 new connections/s. VIP on the backup: from the kill until the backup holds the VIP, "
             f"polled (includes the polling). Load average at start: {results['loadavg_start']}."]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--churn-rate", type=float, default=200.0)
    parser.add_argument("--churn-s", type=float, default=5.0)
    parser.add_argument("--no-uml", action="store_true")
    parser.add_argument("--inside-uml", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("HANODE_BENCH_OUT", REPO / "bench-results")))
    args = parser.parse_args(argv)
    if args.inside_uml:
        print(MARKER + json.dumps(inside_uml(args)), flush=True)
        return 0
    results: dict = {"connections": args.connections, "churn_rate": args.churn_rate,
                     "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()), "runs": []}
    with tempfile.TemporaryDirectory(prefix="hanode-bench-connsync-") as tmp:
        results["runs"].append(run_kind("hanode-nft", args, Path(tmp)))
    if not args.no_uml:
        results["runs"][:0] = run_uml(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "connsync.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (args.out / "connsync.md").write_text(text)
    print(text)
    hanode = [r for r in results["runs"] if r["kind"].startswith("hanode")]
    return 0 if all("error" not in r for r in results["runs"]) and all(
        r["tcp"]["survived"] == r["tcp"]["connections"] for r in hanode) else 1


if __name__ == "__main__":
    sys.exit(main())
