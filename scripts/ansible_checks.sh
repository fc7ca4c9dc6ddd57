#!/usr/bin/env bash
# Everything of the Ansible collection hanode.fleet, offline where it matters; exit status non-zero on any failure.
#   scripts/ansible_checks.sh                 # all stages
#   scripts/ansible_checks.sh unit sanity     # some: unit integration molecule hosts sanity lint build
# `hosts` runs site.yml over SSH against real Debian 12/13 hosts (systemd-nspawn, hanode.lab.hosts); their
# images are built once and cached in .cache/hostlab of the repository.
# The stages run on a snapshot of the working tree at .../ansible_collections/hanode/fleet in a temp dir
# (ansible-test needs that layout; a snapshot also keeps the agent build stable while the tree changes).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv"
export PATH="$VENV/bin:$PATH"
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(unit integration build sanity lint molecule hosts)

WORK="$(mktemp -d /tmp/hn4-checks.XXXXXX)"
COLL="$WORK/ansible_collections/hanode/fleet"
RUN_ID="$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# shellcheck disable=SC2317  # run by the EXIT trap below
cleanup() {
  for lab in "hnmd$RUN_ID" "hnmr$RUN_ID"; do
    [ -f "/run/hanode-lab/$lab.json" ] && "$VENV/bin/hanode" lab down "$lab" >/dev/null 2>&1
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

snapshot() {
  mkdir -p "$COLL"
  # Tracked and new (not ignored) files of the working tree; nothing of .venv, .lab, caches or test output.
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) \
    | (cd "$ROOT" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$COLL"
  # ansible-test looks at git-tracked files when the collection is a git repository: make the snapshot one.
  git -C "$COLL" init -q && git -C "$COLL" add -A && \
    git -C "$COLL" -c user.name=checks -c user.email=checks@invalid commit -qm snapshot
}

offline_ansible_test_bootstrap() {
  # ansible-test --venv downloads a pip bootstrap script; give it a cached one that installs pip from a wheel.
  local cache="$HOME/.ansible/test/cache" pipv=24.2
  mkdir -p "$cache"
  if ! ls "$cache/pip-$pipv-py3-none-any.whl" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps "pip==$pipv" -d "$cache" || return 1
  fi
  cat > "$cache/get_pip_${pipv//./_}.py" <<PY
import os, runpy, sys
HERE = os.path.dirname(os.path.abspath(__file__))
WHEEL = os.path.join(HERE, "pip-$pipv-py3-none-any.whl")
sys.path.insert(0, WHEEL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", "--no-index", "--find-links", HERE] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)
PY
}

status=0
declare -A took
stage() {
  local name=$1
  local t0=$SECONDS
  echo "=== ansible checks: $name"
  if run_stage "$name"; then echo "=== $name: ok ($((SECONDS - t0)) s)"; else echo "=== $name: FAILED ($((SECONDS - t0)) s)"; status=1; fi
  took[$name]=$((SECONDS - t0))
}

run_unit() {
  # module_utils and modules run on managed hosts (Python >= 3.8): tests/unit/test_managed_host_python.py
  # parses them as Python 3.8 with the interpreter this venv has, so no other interpreter is needed.
  (cd "$COLL" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/unit)
}
run_integration() {
  (cd "$COLL" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/integration/test_ansible_*.py)
}
run_build() {
  local out="$WORK/build"
  mkdir -p "$out"
  (cd "$COLL" && ansible-galaxy collection build --force --output-path "$out") || return 1
  local tarball listing; tarball=$(ls "$out"/hanode-fleet-*.tar.gz)
  listing=$(tar -tzf "$tarball")
  grep -qx 'agent/pyproject.toml' <<<"$listing" || { echo "the artifact lacks agent/pyproject.toml"; return 1; }
  grep -qx 'agent/src/hanode/cli/main.py' <<<"$listing" || { echo "the artifact lacks the agent source"; return 1; }
  for f in monitoring/alerts.yaml monitoring/rules.yaml monitoring/dashboards/hanode-fleet.json; do
    grep -qx "$f" <<<"$listing" || { echo "the artifact lacks the monitoring mixin's $f"; return 1; }
  done
  if grep -qE '^(\.venv|\.lab|\.git|\.cache|tests/output)/' <<<"$listing"; then
    echo "the artifact holds working state"; return 1
  fi
  ansible-galaxy collection install -p "$WORK/installed" "$tarball" >/dev/null || return 1
  ANSIBLE_COLLECTIONS_PATH="$WORK/installed" ansible-doc hanode.fleet.ha_config >/dev/null || return 1
  test -f "$WORK/installed/ansible_collections/hanode/fleet/agent/src/hanode/config/parse.py"
  echo "built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB, $(wc -l <<<"$listing") entries), installs, holds the agent"
}
run_sanity() {
  offline_ansible_test_bootstrap || return 1
  # The whole tree: without targets ansible-test checks every file git tracks, and the snapshot is a git
  # repository of the working tree's tracked and new files (the collection, the agent, tests, scripts).
  # No ignore entries are used.
  # SANITY_TARGETS="plugins/ roles/" scripts/ansible_checks.sh sanity  checks only some paths.
  local targets=()
  [ -n "${SANITY_TARGETS:-}" ] && read -r -a targets <<<"$SANITY_TARGETS"
  (cd "$COLL" && ansible-test sanity --venv --python 3.11 --color no "${targets[@]}")
}
run_lint() {
  (cd "$COLL" && ANSIBLE_COLLECTIONS_PATH="$WORK" ansible-lint --offline --profile production -q)
}
run_molecule() {
  local rc=0
  (cd "$COLL" && ANSIBLE_COLLECTIONS_PATH="$WORK" ANSIBLE_CONFIG="$COLL/ansible.cfg" HANODE_LAB="hnmd$RUN_ID" \
    molecule test -s default) || rc=1
  (cd "$COLL" && ANSIBLE_COLLECTIONS_PATH="$WORK" ANSIBLE_CONFIG="$COLL/ansible.cfg" HANODE_LAB="hnmr$RUN_ID" \
    molecule test -s rolling) || rc=1
  return "$rc"
}

run_hosts() {
  (cd "$COLL" && ANSIBLE_COLLECTIONS_PATH="$WORK" ANSIBLE_CONFIG="$COLL/ansible.cfg" \
    HANODE_HOSTLAB_CACHE="${HANODE_HOSTLAB_CACHE:-$ROOT/.cache/hostlab}" \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider -s tests/hosts)
}

run_stage() {
  case "$1" in
    snapshot) snapshot ;;
    unit) run_unit ;;
    integration) run_integration ;;
    build) run_build ;;
    sanity) run_sanity ;;
    lint) run_lint ;;
    molecule) run_molecule ;;
    hosts) run_hosts ;;
  esac
}

stage snapshot
for s in "${STAGES[@]}"; do
  case "$s" in
    unit|integration|build|sanity|lint|molecule|hosts) stage "$s" ;;
    *) echo "unknown stage $s (unit integration build sanity lint molecule hosts)"; status=1 ;;
  esac
done
echo "=== ansible checks: $(for k in "${!took[@]}"; do printf '%s %ss  ' "$k" "${took[$k]}"; done)"
[ $status -eq 0 ] && echo "=== ansible checks: all passed" || echo "=== ansible checks: FAILED"
exit $status
