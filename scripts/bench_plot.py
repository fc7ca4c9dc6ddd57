"""Draws the benchmark results: `make bench` runs it after the benchmarks, or by hand on any results directory.

    python3 scripts/bench_plot.py [--out DIR] [--format png|svg]

Reads DIR/failover.json, lvs.json and health.json (those present; HANODE_BENCH_OUT or bench-results by
default) and writes next to them:
  failover.<fmt>  failover time per mode and event, hanode against keepalived: ms over the theoretical interval
  lvs.<fmt>       load-balancer sync latency against the number of real servers (nftables, IPVS when measured)
  health.<fmt>    checker CPU per 1000 checks against the check rate, hanode against keepalived
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)
from matplotlib.ticker import FuncFormatter  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COLOURS = {"hanode": "#1f77b4", "keepalived": "#d62728", "hanode-baseline": "#7f7f7f"}
SCENARIO_LABELS = {"master_loss": "master loss", "graceful": "graceful"}


def _log_axes(ax) -> None:
    """Log scales with plain numbers (1000, 3000) on the ticks instead of powers of ten."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, position: f"{value:g}")
    some = FuncFormatter(lambda value, position: f"{value:g}" if _mantissa(value) in (2, 5) else "")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(some)


def _mantissa(value: float) -> int:
    return round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0


def _finish(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None} if path.suffix == ".png" else None)
    plt.close(fig)
    return path


def plot_failover(doc: dict, path: Path) -> Path:
    """Per mode, per event: how much later than the RFC's theoretical interval each implementation took over
    (median, bar up to p95): the differences are a few ms on intervals of 60 ms to 3.6 s."""
    rows = doc["results"]
    modes = list(dict.fromkeys(r["mode_label"] for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    fig, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        scenarios = list(dict.fromkeys(r["scenario"] for r in rows if r["mode_label"] == mode))
        theory = {s: next(r["theoretical_ms"] for r in rows if r["mode_label"] == mode and r["scenario"] == s)
                  for s in scenarios}
        width = 0.8 / max(1, len(impls))
        for i, impl in enumerate(impls):
            cells = [next((r for r in rows if r["mode_label"] == mode and r["scenario"] == s and r["impl"] == impl), {})
                     for s in scenarios]
            late = [(c.get("median_ms") or theory[s]) - theory[s] for c, s in zip(cells, scenarios)]
            above = [max(0.0, (c.get("p95_ms") or 0) - (c.get("median_ms") or 0)) for c in cells]
            xs = [j + (i - (len(impls) - 1) / 2) * width for j in range(len(scenarios))]
            ax.bar(xs, late, width, yerr=[[0] * len(cells), above], capsize=3, label=impl, color=COLOURS.get(impl))
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(scenarios)),
                      [f"{SCENARIO_LABELS.get(s, s)}\n(theory {theory[s]:.1f} ms)" for s in scenarios])
        ax.set_title(mode)
        ax.set_ylabel("ms later than theory (median, bar to p95)")
        ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_lvs(doc: dict, path: Path) -> Path:
    rows = doc.get("nftables", []) + doc.get("nftables_by_size", []) + doc.get("ipvs", [])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = sorted({(r["backend"], r["scheduler"]) for r in rows})
    for backend, scheduler in series:
        mine = sorted((r for r in rows if (r["backend"], r["scheduler"]) == (backend, scheduler)),
                      key=lambda r: r["real_servers"])
        xs = [r["real_servers"] for r in mine]
        style = "o-" if len(xs) > 1 else "o"
        ax.plot(xs, [r["reconcile_from_empty_ms"]["median"] for r in mine], style,
                label=f"{backend} {scheduler}: all from empty")
        ax.plot(xs, [r["health_change"]["total_ms"]["median"] for r in mine if "health_change" in r],
                style.replace("o", "s") + ("-" if len(xs) > 1 else ""), label=f"{backend} {scheduler}: one health change")
    _log_axes(ax)
    ax.axhline(1000, color="grey", linestyle=":", linewidth=1)
    ax.axhline(10, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("real servers in the service")
    ax.set_ylabel("sync to the kernel, ms (median)")
    ax.set_title("Load-balancer sync latency (targets: 1000 ms from empty, 10 ms one change)", fontsize="medium")
    ax.legend(fontsize="x-small")
    return _finish(fig, path)


def plot_health(doc: dict, path: Path) -> Path:
    rows = doc["results"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind in sorted({r["type"] for r in rows}):
        for checker in sorted({r["checker"] for r in rows}):
            mine = sorted((r for r in rows if r["type"] == kind and r["checker"] == checker),
                          key=lambda r: r["real_servers"])
            if not mine:
                continue
            line = ax.plot([r["real_servers"] for r in mine], [r["cpu_ms_per_1000_checks"] for r in mine],
                           "o-" if kind == "TCP_CHECK" else "s--", color=COLOURS.get(checker),
                           label=f"{checker} {kind}")[0]
            missed = [r for r in mine if not r["keeps_up"]]
            ax.plot([r["real_servers"] for r in missed], [r["cpu_ms_per_1000_checks"] for r in missed], "x",
                    color=line.get_color(), markersize=10, label=f"{checker} {kind}: did not keep up" if missed else None)
    _log_axes(ax)
    ax.set_xlabel("check rate, checks/s (real servers at delay_loop 1)")
    ax.set_ylabel("checker CPU, ms per 1000 checks")
    ax.set_title("Health-check cost against rate", fontsize="medium")
    ax.legend(fontsize="x-small")
    return _finish(fig, path)


PLOTS = (("failover", plot_failover), ("lvs", plot_lvs), ("health", plot_health))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("HANODE_BENCH_OUT", REPO / "bench-results")))
    parser.add_argument("--format", choices=("png", "svg"), default="png")
    args = parser.parse_args(argv)
    drawn = 0
    for name, plot in PLOTS:
        source = args.out / f"{name}.json"
        if not source.exists():
            continue
        path = plot(json.loads(source.read_text()), args.out / f"{name}.{args.format}")
        print(f"bench_plot: wrote {path}")
        drawn += 1
    if not drawn:
        print(f"bench_plot: no results in {args.out}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
