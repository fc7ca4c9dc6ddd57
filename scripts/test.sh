#!/usr/bin/env bash
# `make test`: every suite, each in its own section; the exit status is non-zero when any of them fails.
#   1. agent unit tests (pure core, codecs, config, planners, checks against local servers)
#   2. namespace integration tests (real agents, keepalived, nftables; real IPVS inside User-Mode Linux)
#   3. the Ansible collection: unit, integration, build, ansible-test sanity, ansible-lint, molecule
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PWD/.venv/bin:$PATH" PY_COLORS=0
declare -A took
status=0
run() {
  local name=$1; shift
  echo; echo "=== $name"
  local started=$SECONDS
  "$@" || { status=1; echo "=== $name: FAILED"; }
  took[$name]=$((SECONDS - started))
}
run unit .venv/bin/pytest -q -p no:cacheprovider agent/tests/unit
# The Ansible integration tests run in stage 3, on a snapshot laid out as ansible_collections/hanode/fleet.
run integration .venv/bin/pytest -q -p no:cacheprovider tests/integration --ignore-glob='tests/integration/test_ansible_*.py'
run ansible bash scripts/ansible_checks.sh
echo
for name in unit integration ansible; do printf '=== %-12s %4ss\n' "$name" "${took[$name]:-0}"; done
[ $status -eq 0 ] && echo "=== make test: all passed" || echo "=== make test: FAILED"
exit $status
