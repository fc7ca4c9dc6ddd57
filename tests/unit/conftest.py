"""Makes `ansible_collections.hanode.fleet` importable when the tests run from a plain checkout (the
collection then is .cache/collections/ansible_collections/hanode/fleet, a link to the checkout)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collections_root() -> Path:
    if ROOT.parent.name == "hanode" and ROOT.parent.parent.name == "ansible_collections":
        return ROOT.parents[2]
    link = ROOT / ".cache" / "collections" / "ansible_collections" / "hanode" / "fleet"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../../.."))
    return ROOT / ".cache" / "collections"


sys.path.insert(0, str(_collections_root()))
