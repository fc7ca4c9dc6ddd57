"""module_utils and modules run on the managed hosts, whose Python may be as old as 3.8 (ansible-core 2.19's
target support): they must parse as Python 3.8 and use nothing newer. Proven with this interpreter alone
(ast.parse's feature_version plus the runtime features the grammar does not show), no Python 3.8 needed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANAGED_HOST_CODE = ("plugins/module_utils", "plugins/modules")
MANAGED_HOST_SCRIPTS = ("agent/src/hanode/lvs/caps.py",)  # the agent's host probe: the role runs it on each host
OLDEST = (3, 8)

# runtime features newer than 3.8 that parse anyway
GENERIC_BUILTINS = {"list", "dict", "tuple", "set", "frozenset", "type"}          # list[int] at run time: 3.9
NEWER_MODULES = {"zoneinfo": "3.9", "graphlib": "3.9", "tomllib": "3.11"}
NEWER_METHODS = {"removeprefix": "3.9", "removesuffix": "3.9", "bit_count": "3.10", "is_relative_to": "3.9"}


def _annotations(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        roots = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            roots = [a.annotation for a in args.posonlyargs + args.args + args.kwonlyargs if a.annotation]
            roots += [a.annotation for a in (args.vararg, args.kwarg) if a is not None and a.annotation]
            roots += [node.returns] if node.returns else []
        elif isinstance(node, ast.AnnAssign):
            roots = [node.annotation]
        for root in roots:
            inside |= {id(n) for n in ast.walk(root)}
    return inside


def newer_than_oldest(source: str, name: str) -> list[str]:
    """Why this source would not run on Python 3.8 (empty when it would)."""
    try:
        tree = ast.parse(source, name, feature_version=OLDEST)
    except SyntaxError as exc:
        return ["%s:%s: %s" % (name, exc.lineno, exc.msg)]
    lazy = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
               any(a.name == "annotations" for a in n.names) for n in tree.body)
    in_annotation = _annotations(tree)
    found = []
    for node in ast.walk(tree):
        where = "%s:%s" % (name, getattr(node, "lineno", "?"))
        if id(node) in in_annotation:
            if not lazy and isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
                found.append("%s: X | Y in an annotation needs Python 3.10 (or from __future__ import annotations)"
                             % where)
            if lazy:
                continue
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in GENERIC_BUILTINS:
            found.append("%s: %s[...] at run time needs Python 3.9" % (where, node.value.id))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += ["%s: %s needs Python %s" % (where, m, NEWER_MODULES[m.split(".")[0]])
                      for m in modules if m.split(".")[0] in NEWER_MODULES]
        elif isinstance(node, ast.Attribute) and node.attr in NEWER_METHODS:
            found.append("%s: .%s() needs Python %s" % (where, node.attr, NEWER_METHODS[node.attr]))
    return found


def managed_host_files() -> list[Path]:
    return sorted([p for d in MANAGED_HOST_CODE for p in (ROOT / d).glob("*.py")] +
                  [ROOT / script for script in MANAGED_HOST_SCRIPTS])


def test_there_is_managed_host_code_to_check():
    names = {p.name for p in managed_host_files()}
    assert {"_cluster.py", "_agent_client.py", "ha_config.py", "caps.py"} <= names


@pytest.mark.parametrize("path", managed_host_files(), ids=lambda p: "/".join(p.parts[-2:]))
def test_managed_host_code_runs_on_python_3_8(path):
    assert newer_than_oldest(path.read_text(), str(path.relative_to(ROOT))) == []


# the check itself must be able to fail --------------------------------------------------------------------------

@pytest.mark.parametrize("planted, expected", [
    ("def f(x):\n    match x:\n        case 1:\n            return 1\n",
     "Pattern matching is only supported in Python 3.10 and greater"),
    ("with (open('a') as f, open('b') as g):\n    pass\n",
     "Parenthesized context managers are only supported in Python 3.9 and greater"),
    ("NAMES = list[str]\n", "m.py:1: list[...] at run time needs Python 3.9"),
    ("def f(x: list[int]) -> dict[str, int]:\n    return {}\n", "m.py:1: list[...] at run time needs Python 3.9"),
    ("import zoneinfo\n", "m.py:1: zoneinfo needs Python 3.9"),
    ("from typing import Optional\n\ndef f(x: int | None) -> None:\n    pass\n",
     "m.py:3: X | Y in an annotation needs Python 3.10 (or from __future__ import annotations)"),
    ("def f(s):\n    return s.removeprefix('x')\n", "m.py:2: .removeprefix() needs Python 3.9"),
])
def test_the_check_finds_what_python_3_8_cannot_run(planted, expected):
    found = newer_than_oldest(planted, "m.py")
    assert any(expected in problem for problem in found), found


def test_the_check_accepts_lazy_annotations_and_3_8_syntax():
    ok = ("from __future__ import annotations\nfrom typing import List\n\n"
          "def f(x: list[int], y: int | None = None) -> dict[str, int]:\n    z: tuple[int, ...] = ()\n"
          "    if (n := len(x)) > 1:\n        return {f'{n=}': n}\n    return {}\n\nALIAS = List[int]\n")
    assert newer_than_oldest(ok, "ok.py") == []
