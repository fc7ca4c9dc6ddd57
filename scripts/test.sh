#!/usr/bin/env bash
# `make test`: every suite, each in its own section; the exit status is non-zero when any of them fails.
#   1. agent unit tests (pure core, codecs, config, planners, checks against local servers)
#   2. namespace integration tests (real agents, keepalived, nftables)
#   3. ipvs: the real-IPVS suite inside User-Mode Linux (tests/integration/test_ipvs_uml.py); it prints which kernel
#      booted and why, and how many IPVS tests passed inside the guest (fewer than the suite holds fails the test)
#   4. the Ansible collection: unit, integration, build, ansible-test sanity, ansible-lint, molecule
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
# The Ansible integration tests run in stage 4, on a snapshot laid out as ansible_collections/hanode/fleet.
run integration .venv/bin/pytest -q -p no:cacheprovider tests/integration --ignore-glob='tests/integration/test_ansible_*.py' \
  --ignore=tests/integration/test_ipvs_uml.py
# The IPVS tests run inside User-Mode Linux; the section fails unless every test of the suite passed there.
ipvs_count="IPVS suite inside UML: no count (the suite did not run)"
# shellcheck disable=SC2317  # run through run()
ipvs_suite() {
  local log rc line
  log=$(mktemp /tmp/hanode-ipvs.XXXXXX)
  .venv/bin/pytest -q -s -p no:cacheprovider tests/integration/test_ipvs_uml.py | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -oE 'IPVS suite inside UML: [0-9]+ of [0-9]+ tests passed' "$log" | tail -1)
  rm -f "$log"
  [ -n "$line" ] && ipvs_count=$line
  echo "=== ipvs: $ipvs_count"
  if [[ ! $line =~ :\ ([0-9]+)\ of\ ([0-9]+) ]] || [ "${BASH_REMATCH[1]}" -eq 0 ] \
       || [ "${BASH_REMATCH[1]}" -ne "${BASH_REMATCH[2]}" ]; then
    return 1
  fi
  return "$rc"
}
run ipvs ipvs_suite
run ansible bash scripts/ansible_checks.sh
echo
for name in unit integration ipvs ansible; do printf '=== %-12s %4ss\n' "$name" "${took[$name]:-0}"; done
echo "=== $ipvs_count"
[ $status -eq 0 ] && echo "=== make test: all passed" || echo "=== make test: FAILED"
exit $status
