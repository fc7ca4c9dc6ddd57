"""One importer core: stdlib only, pure, and the Ansible collection's copy is byte-identical to it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from hanode.migrate import keepalived, sync_module_utils, validate

REPO = Path(__file__).resolve().parents[3]
FORBIDDEN_IMPORTS = {"socket", "asyncio", "time", "subprocess", "pyroute2"}


def imported_top_level_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_collection_copy_is_identical():
    copy = REPO / "plugins/module_utils/_keepalived_import.py"
    assert copy.read_bytes() == Path(keepalived.__file__).read_bytes(), \
        "run: python -m hanode.migrate.sync_module_utils (edit agent/src/hanode/migrate/keepalived.py, not the copy)"
    assert sync_module_utils.main(["--check", "--repo", str(REPO)]) == 0


def test_the_core_is_stdlib_only_and_pure():
    names = imported_top_level_modules(Path(keepalived.__file__)) - {"__future__"}
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)
    assert names & FORBIDDEN_IMPORTS == set()


def test_the_validator_is_pure():
    assert imported_top_level_modules(Path(validate.__file__)) & FORBIDDEN_IMPORTS == set()


def test_the_core_parses_as_python_3_8():
    ast.parse(Path(keepalived.__file__).read_text(), feature_version=(3, 8))
