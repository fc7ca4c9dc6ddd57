"""The importer package (hanode.migrate.keepalived): pure translation modules around one I/O module, the standard
library only (the Ansible filter runs it on the controller, which has none of the agent's dependencies), and
files small enough to read."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from hanode.migrate import keepalived, validate

PACKAGE = Path(keepalived.__file__).parent
IO_MODULES = {"files.py"}                       # reads the file and its includes; everything else works on text
FORBIDDEN_MODULES = {"socket", "asyncio", "time", "subprocess", "pyroute2", "glob", "stat", "pathlib", "io",
                     "shutil", "tempfile", "threading", "select", "selectors", "multiprocessing"}
FORBIDDEN_CALLS = {"open", "exec", "eval", "__import__"}
FORBIDDEN_OS = {"stat", "lstat", "listdir", "scandir", "walk", "uname", "open", "read", "system", "popen", "getcwd",
                "environ", "getenv", "path"}


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def impurities(source: str) -> list[str]:
    """What in this module's own code reaches the file system, the clock, processes or the network."""
    tree = ast.parse(source)
    found = sorted("import " + m for m in imported(tree) if m.split(".")[0] in FORBIDDEN_MODULES | {"os"})
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            found.append("%s() on line %d" % (node.func.id, node.lineno))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in FORBIDDEN_OS:
            found.append("os.%s on line %d" % (node.attr, node.lineno))
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", [p for p in modules() if p.name not in IO_MODULES], ids=lambda p: p.name)
def test_translation_modules_are_pure(path):
    assert impurities(path.read_text()) == []


def test_the_io_module_is_the_only_one_and_it_is_seen():
    assert [p.name for p in modules() if impurities(p.read_text())] == sorted(IO_MODULES)
    assert "open() on line" in " ".join(impurities("def f(p):\n    return open(p).read()\n"))
    assert impurities("import os\n\ndef f():\n    return os.stat('/')\n") == ["import os", "os.stat on line 4"]


def test_the_importer_needs_only_the_standard_library():
    for path in modules():
        for name in imported(ast.parse(path.read_text())):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name.startswith("hanode.migrate.keepalived"), (path.name, name)


def test_the_validator_is_pure():
    assert impurities(Path(validate.__file__).read_text()) == []


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_files_and_functions_stay_small(path):
    tree = ast.parse(path.read_text())
    assert len(path.read_text().splitlines()) <= 500
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 50]
    assert long == []
