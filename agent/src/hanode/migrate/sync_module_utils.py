"""Keeps the Ansible collection's copy of the importer core identical to its single source.

    python -m hanode.migrate.sync_module_utils           # write plugins/module_utils/_keepalived_import.py
    python -m hanode.migrate.sync_module_utils --check   # exit 1 when the copy differs

The core (hanode/migrate/keepalived.py) is stdlib-only so that it can run inside Ansible, which cannot import the
agent package. The agent wheel and the collection are built from different roots (agent/ and the repository), and
a symlink does not survive `ansible-galaxy collection build`, so the collection carries a byte-identical copy;
agent/tests/unit/test_migrate_single_source.py fails whenever the two differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SOURCE = Path(__file__).with_name("keepalived.py")
COPY = Path("plugins/module_utils/_keepalived_import.py")


def checkout_root() -> Path | None:
    """The repository this agent source sits in (None for an installed wheel)."""
    root = SOURCE.resolve().parents[4]
    return root if (root / "galaxy.yml").is_file() and (root / "plugins").is_dir() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the copy is up to date")
    parser.add_argument("--repo", type=Path, default=None, help="the repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.repo or checkout_root()
    if root is None:
        parser.error("not running from a checkout: give --repo")
    target = root / COPY
    source = SOURCE.read_bytes()
    current = target.read_bytes() if target.exists() else None
    if args.check:
        if current != source:
            print(f"{target} differs from {SOURCE}: run python -m hanode.migrate.sync_module_utils", file=sys.stderr)
            return 1
        return 0
    if current != source:
        target.write_bytes(source)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
