"""CPU and time of one dump of the nftables backend's table (what a checker's status request and each
lb_reconcile_interval refresh pay): bench_health's service (one rr virtual server of N real servers) written
by the backend in a namespace of its own, then NftBackend.dump() `--dumps` times; CPU of this process and of
its children (nft, the helper process of builds that had one) per dump, from getrusage, and the longest
the event loop was held during the dump (a 1 ms sleeper's lateness). Medians over the dumps.

    sudo .venv/bin/python scripts/bench_nft_dump.py [--n 8000] [--dumps 20] [--src DIR ...] [--repeat 2]

`--src DIR` (repeatable): run that agent/src too (A/B), each tree in turn per repetition (interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKTREE_SRC = str(HERE.parent / "agent" / "src")

WORKER = r"""
import asyncio, gc, json, resource, sys, time
from hanode.config.parse import parse_config
from hanode.lvs.desired import desired_state
from hanode.lvs.nft import NftBackend
from hanode.lvs.reconciler import Reconciler

n, dumps, netns = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
raw = {"lb_backend": "nftables", "virtual_servers": [{"address": "198.51.100.100", "port": 80, "lb_algo": "rr",
       "lb_kind": "NAT", "real_servers": [{"address": f"198.18.{i >> 8}.{i & 255}", "port": 8080, "weight": 1}
                                          for i in range(1, n + 1)]}]}
config, _problems = parse_config(raw)
state, _quorum = desired_state(config.sections["lvs"], {})

def cpu_ms():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((own.ru_utime + own.ru_stime) * 1000, (kids.ru_utime + kids.ru_stime) * 1000)

async def main():
    backend = NftBackend(netns=netns)
    await backend.open()
    reconciler = Reconciler(backend)
    assert (await reconciler.reconcile(state)).ok
    assert await backend.dump() == state
    gc.collect()
    gc.freeze()                      # as the checker does after start (health/runner.py settle_heap)
    out = []
    held = [0.0]

    async def ticker():              # how long the event loop is held: a 1 ms sleeper's lateness
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.001)
            held[0] = max(held[0], (loop.time() - before - 0.001) * 1000)

    tick = asyncio.get_running_loop().create_task(ticker())
    for _ in range(dumps):
        await asyncio.sleep(0.01)
        held[0] = 0.0
        (own0, kids0), t0 = cpu_ms(), time.perf_counter()
        got = await backend.dump()
        (own1, kids1), t1 = cpu_ms(), time.perf_counter()
        assert len(got) == 1 and len(next(iter(got.values())).dests) == n
        out.append({"own_ms": own1 - own0, "children_ms": kids1 - kids0, "wall_ms": (t1 - t0) * 1000,
                    "loop_held_ms": held[0]})
    tick.cancel()
    await reconciler.cleanup(keep=False)
    await backend.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def run_once(src: str, n: int, dumps: int) -> dict:
    netns = f"mem4-dump-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        env = dict(os.environ, PYTHONPATH=src)
        out = subprocess.run([sys.executable, "-c", WORKER, str(n), str(dumps), netns], env=env, check=True,
                             capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
    samples = json.loads(out)
    med = {k: round(statistics.median(s[k] for s in samples), 1)
           for k in ("own_ms", "children_ms", "wall_ms", "loop_held_ms")}
    med["cpu_ms"] = round(statistics.median(s["own_ms"] + s["children_ms"] for s in samples), 1)
    return {"src": src, "n": n, "dumps": dumps, "load": os.getloadavg()[0], **med}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--dumps", type=int, default=20)
    parser.add_argument("--src", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    results = []
    for _round in range(args.repeat):
        for src in args.src + [WORKTREE_SRC]:
            result = run_once(src, args.n, args.dumps)
            print(json.dumps(result), flush=True)
            results.append(result)
    print("| source | load | CPU ms per dump (this process + children) | own | children | wall ms | "
          "longest loop hold ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['src']} | {r['load']:.2f} | {r['cpu_ms']} | {r['own_ms']} | {r['children_ms']} | {r['wall_ms']} | "
              f"{r['loop_held_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
