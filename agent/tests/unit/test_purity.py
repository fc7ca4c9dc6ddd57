"""The pure core never reaches the clock, the network, processes or netlink: walk its imports (ast), transitively
within the hanode package (package __init__ files and modules named by string for importlib included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hanode

SRC = Path(hanode.__file__).resolve().parent.parent       # .../agent/src

PURE = [
    "hanode.config.model", "hanode.config.problems", "hanode.config.vip", "hanode.config.parse_vrrp",
    "hanode.config.parse", "hanode.vrrp.packet", "hanode.vrrp.garp", "hanode.vrrp.timers", "hanode.vrrp.actions",
    "hanode.vrrp.fsm", "hanode.vrrp.accept", "hanode.vrrp.track", "hanode.vrrp.engine", "hanode.vrrp.status",
    "hanode.vrrp.notify", "hanode.control.render", "hanode.control.watch_view", "hanode.control.protocol",
    "hanode.lvs.model", "hanode.kernel_time", "hanode.health.grid",
]
LATER = [f"hanode.{pkg}.{name}" for pkg in ("lvs", "health") for name in ("plan", "model", "desired", "hysteresis")
         if (SRC / "hanode" / pkg / f"{name}.py").exists()]
ALL_PURE = sorted(set(PURE + LATER))

FORBIDDEN_MODULES = {"socket", "asyncio", "time", "subprocess", "pyroute2", "multiprocessing", "pty", "threading",
                     "concurrent", "selectors", "select"}
PROCESS_CALLS = {"system", "popen", "fork", "forkpty", "execv", "execve", "execl", "execle", "execlp", "execlpe",
                 "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
                 "spawnvpe", "posix_spawn", "posix_spawnp", "kill", "killpg"}


def module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _scan(name: str, path: Path, package: str, root: Path) -> tuple[set[str], list[str]]:
    """(modules of our package this one imports, forbidden things it uses)."""
    tree = ast.parse(path.read_text(), str(path))
    ours: set[str] = set()
    bad: list[str] = []

    def external(module: str, what: str) -> None:
        if module.split(".")[0] in FORBIDDEN_MODULES:
            bad.append(what)

    def internal(module: str) -> None:
        for parent in _parents(module):
            if module_file(parent, root):
                ours.add(parent)

    this_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package:
                    internal(alias.name)
                else:
                    external(alias.name, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = this_package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == package:
                internal(module)
                for alias in node.names:
                    if module_file(f"{module}.{alias.name}", root):
                        internal(f"{module}.{alias.name}")
            else:
                external(module, f"from {module} import ...")
                if module == "os":
                    bad += [f"from os import {a.name}" for a in node.names if a.name in PROCESS_CALLS]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "os" and node.attr in PROCESS_CALLS:
                bad.append(f"os.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith(f"{package}.") and module_file(text, root):   # importlib.import_module("hanode.x")
                internal(text)
            elif text in FORBIDDEN_MODULES and _imports_dynamically(tree):
                bad.append(f"importlib of {text!r}")
    return ours - {name}, bad


def _imports_dynamically(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "import_module" or
               isinstance(n, ast.Name) and n.id == "__import__" for n in ast.walk(tree))


def impurities(entry: str, root: Path = SRC, package: str = "hanode") -> list[str]:
    """Every forbidden use reachable from entry, each with the import chain that reaches it."""
    chains = {parent: [parent] for parent in _parents(entry)}
    todo = list(chains)
    found = []
    while todo:
        name = todo.pop(0)
        path = module_file(name, root)
        if path is None:
            continue
        imported, bad = _scan(name, path, package, root)
        found += [f"{' -> '.join(chains[name])}: {what}" for what in bad]
        for module in sorted(imported):
            if module not in chains:
                chains[module] = chains[name] + [module]
                todo.append(module)
    return found


@pytest.mark.parametrize("module", ALL_PURE)
def test_pure_module_imports_nothing_impure(module):
    assert module_file(module, SRC), f"{module} is listed as pure but does not exist"
    assert impurities(module) == []


def test_the_list_covers_the_modules_named_in_the_design():
    assert "hanode.lvs.plan" in LATER and "hanode.lvs.desired" in LATER and "hanode.health.hysteresis" in LATER


# the walker itself must be able to fail ---------------------------------------------------------------

@pytest.fixture
def fake_package(tmp_path):
    pkg = tmp_path / "fakepkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "sub/__init__.py": "import time\n",
        "clean.py": "import ipaddress\nimport os.path\nfrom fakepkg import leaf\n",
        "leaf.py": "X = 1\n",
        "deep.py": "from fakepkg import middle\n",
        "middle.py": "from .sub import thing\n",
        "sub/thing.py": "Y = 2\n",
        "shell.py": "import os\n\ndef run(cmd):\n    return os.system(cmd)\n",
        "spawn.py": "from os import execvp, getcwd\n",
        "netio.py": "from asyncio import sleep\nimport socket\n",
        "lazy.py": "import importlib\nMODULES = ('fakepkg.netio',)\n\ndef load():\n"
                   "    return [importlib.import_module(m) for m in MODULES]\n",
        "sneaky.py": "import importlib\nsock = importlib.import_module('socket')\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("entry, expected", [
    ("fakepkg.clean", []),
    ("fakepkg.deep", ["fakepkg.deep -> fakepkg.middle -> fakepkg.sub: import time"]),
    ("fakepkg.shell", ["fakepkg.shell: os.system"]),
    ("fakepkg.spawn", ["fakepkg.spawn: from os import execvp"]),
    ("fakepkg.netio", ["fakepkg.netio: from asyncio import ...", "fakepkg.netio: import socket"]),
    ("fakepkg.lazy", ["fakepkg.lazy -> fakepkg.netio: from asyncio import ...",
                      "fakepkg.lazy -> fakepkg.netio: import socket"]),
    ("fakepkg.sneaky", ["fakepkg.sneaky: importlib of 'socket'"]),
])
def test_the_walker_finds_impure_imports(fake_package, entry, expected):
    assert sorted(impurities(entry, fake_package, "fakepkg")) == sorted(expected)


def test_the_walker_sees_the_io_shell_as_impure():
    found = impurities("hanode.vrrp.runner")
    assert "hanode.vrrp.runner: import asyncio" in found
    assert "hanode.vrrp.runner -> hanode.vrrp.io: import socket" in found
