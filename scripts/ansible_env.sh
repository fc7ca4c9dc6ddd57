#!/usr/bin/env bash
# Source me: puts .venv/bin first on PATH and makes this checkout visible as the collection hanode.fleet
# (.cache/collections/ansible_collections/hanode/fleet -> the repository; ansible.cfg points there).
_hanode_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$_hanode_root/.cache/collections/ansible_collections/hanode"
if [ ! -L "$_hanode_root/.cache/collections/ansible_collections/hanode/fleet" ]; then
  ln -sfn ../../../.. "$_hanode_root/.cache/collections/ansible_collections/hanode/fleet"
fi
export PATH="$_hanode_root/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$_hanode_root/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$_hanode_root/.cache/collections"
unset _hanode_root
