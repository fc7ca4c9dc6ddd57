#!/usr/bin/env bash
# Runs every test suite; the exit status is non-zero when any suite fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
status=0
run() { echo "=== $*"; "$@" || status=1; }
run .venv/bin/pytest -q -p no:cacheprovider agent/tests/unit
run .venv/bin/pytest -q -p no:cacheprovider tests/integration
exit $status
