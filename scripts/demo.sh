#!/usr/bin/env bash
# `make demo`: the main job on the built-in namespace lab.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x scripts/demo_ansible.sh ] && [ "${HANODE_DEMO:-ansible}" = ansible ]; then
  exec bash scripts/demo_ansible.sh
fi
exec .venv/bin/python scripts/demo_vrrp.py
