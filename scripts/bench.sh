#!/usr/bin/env bash
# `make bench`: runs every benchmark script present (bench_failover.py, bench_lvs.py, bench_health.py,
# bench_connsync.py, bench_scale.py), each writing its results under bench-results/, draws them (bench_plot.py:
# a PNG next to each JSON), then collects their Markdown and pictures into bench-results/summary.md.
#
# Environment (read by the benchmark scripts too):
#   HANODE_BENCH_OUT     output directory (default: bench-results)
#   HANODE_BENCH_REPEAT  repetitions per cell (default: each script's own, 10 for failover)
#   HANODE_BENCH_ONLY    space-separated subset to run, e.g. "failover lvs"
#   HANODE_BENCH_SCALE   extra arguments for bench_scale.py, e.g. "--quick" (a small run: 2 cells, 10 s windows)
# Arguments after `--` are passed to every script, e.g. `bash scripts/bench.sh -- --repeat 3`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PY=.venv/bin/python
[ -x "$PY" ] || { echo "bench: $PY missing: run \`make setup\` first" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (the benchmarks build network namespaces): run \`sudo make bench\`" >&2
  exit 2
fi

[ "${1:-}" = "--" ] && shift
export HANODE_BENCH_OUT=${HANODE_BENCH_OUT:-bench-results}
mkdir -p "$HANODE_BENCH_OUT"

BENCHES=(failover lvs health connsync scale)
only=${HANODE_BENCH_ONLY:-${BENCHES[*]}}
ran=() failed=() missing=()
started=$(date +%s)
stamp=$(mktemp /tmp/hanode-bench-stamp.XXXXXX)
trap 'rm -f "$stamp"' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

for name in "${BENCHES[@]}"; do
  [[ " $only " == *" $name "* ]] || continue
  script=scripts/bench_$name.py
  if [ ! -f "$script" ]; then
    missing+=("$name")
    continue
  fi
  extra=()
  if [ "$name" = scale ] && [ -n "${HANODE_BENCH_SCALE:-}" ]; then
    read -r -a extra <<< "$HANODE_BENCH_SCALE"
  fi
  echo "=== bench: $script $* ${extra[*]} (load $(cut -d' ' -f1-3 /proc/loadavg))"
  t0=$(date +%s)
  if "$PY" "$script" "$@" "${extra[@]}"; then
    ran+=("$name")
  else
    echo "bench: $script failed (exit $?)" >&2
    failed+=("$name")
  fi
  echo "=== bench: $script took $(( $(date +%s) - t0 )) s"
done

# The pictures (scripts/bench_plot.py: failover.png, lvs.png, health.png next to their JSON).
"$PY" scripts/bench_plot.py --out "$HANODE_BENCH_OUT" || failed+=(plot)

summary=$HANODE_BENCH_OUT/summary.md
{
  echo "# hanode benchmarks"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs,"
  echo "load average $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at end, $(( $(date +%s) - started )) s."
  echo "Ran: ${ran[*]:-none}. Failed: ${failed[*]:-none}. Not present: ${missing[*]:-none}."
  # Every Markdown result written during this run (each script writes <name>.md next to its JSON).
  for md in "$HANODE_BENCH_OUT"/*.md; do
    if [ ! -f "$md" ] || [ ! "$md" -nt "$stamp" ] || [ "$(basename "$md")" = summary.md ]; then continue; fi
    echo
    cat "$md"
    png=${md%.md}.png
    if [ -f "$png" ] && [ "$png" -nt "$stamp" ]; then echo; echo "![$(basename "${md%.md}")]($(basename "$png"))"; fi
  done
} > "$summary"
echo "bench: wrote $summary"
[ ${#failed[@]} -eq 0 ]
