"""The pure core never reaches the clock, the network, processes, netlink or the file system: walk its imports
(ast), transitively within the hanode package (package __init__ files and modules named by string for importlib
included), and every call in every module reached: open(), os.stat/listdir/uname/scandir/path.exists and their
kin, and pathlib's reads (read_text, exists, iterdir...) are file-system access."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest

import hanode

SRC = Path(hanode.__file__).resolve().parent.parent       # .../agent/src

PURE = [
    "hanode.config.model", "hanode.config.problems", "hanode.config.vip", "hanode.config.parse_vrrp",
    "hanode.config.parse", "hanode.vrrp.packet", "hanode.vrrp.garp", "hanode.vrrp.timers", "hanode.vrrp.actions",
    "hanode.vrrp.fsm", "hanode.vrrp.accept", "hanode.vrrp.track", "hanode.vrrp.engine", "hanode.vrrp.status",
    "hanode.vrrp.sync_group", "hanode.vrrp.output",
    "hanode.vrrp.notify", "hanode.control.render", "hanode.control.watch_view", "hanode.control.protocol",
    "hanode.lvs.model", "hanode.kernel_time", "hanode.health.grid", "hanode.config.host", "hanode.config.parse_lvs",
    "hanode.config.parse_connsync", "hanode.lvs.kernel", "hanode.lvs.validate", "hanode.lvs.slots", "hanode.lvs.nftnl",
    "hanode.lvs.syncd", "hanode.lvs.conntrackd", "hanode.lab.topology", "hanode.lvs.nft_layout", "hanode.lvs.nft_batch",
    "hanode.lvs.nft_parse", "hanode.lvs.nft_read",
    "hanode.vrrp.bpf", "hanode.vrrp.rtnl", "hanode.vrrp.deadlines", "hanode.vrrp.repeat",
    "hanode.vrrp.ah", "hanode.vrrp.datagram", "hanode.config.parse_vrrp_strict",
    "hanode.config.ipnames", "hanode.config.iproute", "hanode.config.iprule", "hanode.config.parse_vrrp_net",
    "hanode.config.parse_static", "hanode.vrrp.rtnl_route", "hanode.vrrp.rtnl_link", "hanode.vrrp.vmac_plan",
    "hanode.vrrp.routes_plan", "hanode.vrrp.proctrack", "hanode.config.parse_track", "hanode.vrrp.debounce",
    "hanode.config.parse_vrrp_notify", "hanode.config.parse_ifdelays", "hanode.config.parse_garp",
    "hanode.vrrp.garp_pace", "hanode.vrrp.mmsg",
]
LATER = [f"hanode.{pkg}.{name}" for pkg in ("lvs", "health") for name in ("plan", "model", "desired", "hysteresis")
         if (SRC / "hanode" / pkg / f"{name}.py").exists()]
ALL_PURE = sorted(set(PURE + LATER))

FORBIDDEN_MODULES = {"socket", "asyncio", "time", "subprocess", "pyroute2", "multiprocessing", "pty", "threading",
                     "concurrent", "selectors", "select",
                     # the file system and the host, whole modules
                     "shutil", "glob", "tempfile", "fileinput", "fcntl", "mmap", "platform", "pwd", "grp",
                     # chance and packet crafting have no place in a pure module either
                     "random", "secrets", "scapy"}
PROCESS_CALLS = {"system", "popen", "fork", "forkpty", "execv", "execve", "execl", "execle", "execlp", "execlpe",
                 "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
                 "spawnvpe", "posix_spawn", "posix_spawnp", "kill", "killpg"}


# os.<name> (and os.path.<name>) that touch the file system or read the host; os.path's string functions
# (join, basename, dirname, splitext, normpath...) are pure.
OS_FILE_CALLS = {"open", "fdopen", "stat", "lstat", "fstat", "statvfs", "listdir", "scandir", "walk", "fwalk",
                 "uname", "access", "readlink", "getcwd", "getcwdb", "chdir", "mkdir", "makedirs", "remove",
                 "removedirs", "unlink", "rmdir", "rename", "renames", "replace", "link", "symlink", "chmod",
                 "chown", "lchown", "utime", "truncate", "mkfifo", "mknod", "read", "write", "getenv", "environ",
                 "getenvb", "environb", "urandom", "getrandom", "cpu_count", "getloadavg", "sysconf"}
OS_PATH_FILE_CALLS = {"exists", "lexists", "isfile", "isdir", "islink", "ismount", "isjunction", "getsize",
                      "getmtime", "getatime", "getctime", "realpath", "samefile", "sameopenfile", "samestat",
                      "expanduser", "expandvars", "abspath"}
# Methods that read or write through a pathlib.Path (flagged on any receiver: a pure module holds no Path to call
# them on). PurePath's string work (name, suffix, parent, joinpath, with_suffix...) is fine.
# (str.replace and re.Match.group share a name with Path.replace and Path.group: left out, os.replace is caught.)
PATH_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "exists", "is_file", "is_dir",
                "is_symlink", "is_mount", "is_socket", "is_fifo", "is_block_device", "is_char_device", "iterdir",
                "glob", "rglob", "walk", "stat", "lstat", "owner", "readlink", "resolve", "samefile", "touch",
                "mkdir", "rmdir", "unlink", "rename", "chmod", "lchmod", "symlink_to", "hardlink_to", "absolute",
                "expanduser", "cwd", "home"}
BUILTIN_FILE_CALLS = {"open", "input", "breakpoint"}


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
    dynamic = _imports_dynamically(tree)
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
                if module in ("os", "os.path", "io"):
                    bad += [f"from {module} import {a.name}" for a in node.names if _file_access(module, a.name)]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "os" and node.attr in PROCESS_CALLS:
                bad.append(f"os.{node.attr}")
            elif node.value.id in ("os", "io") and _file_access(node.value.id, node.attr):
                bad.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Attribute) and _dotted(node.value) == "os.path" and node.attr in OS_PATH_FILE_CALLS:
            bad.append(f"os.path.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BUILTIN_FILE_CALLS:
            bad.append(f"{node.func.id}()")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PATH_METHODS \
                and _dotted(node.func.value) not in ("os", "os.path"):  # those are the Attribute cases above
            bad.append(f"{_dotted(node.func.value) or '<expression>'}.{node.func.attr}() (pathlib)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and dynamic:
            text = node.value     # importlib.import_module("hanode.x"); not `python -m hanode.x` in a module without
            if text.startswith(f"{package}.") and module_file(text, root):
                internal(text)
            elif text in FORBIDDEN_MODULES:
                bad.append(f"importlib of {text!r}")
    return ours - {name}, bad


def _file_access(module: str, name: str) -> bool:
    if module == "io":
        return name in ("open", "open_code", "FileIO")
    if module == "os.path":
        return name in OS_PATH_FILE_CALLS
    return name in OS_FILE_CALLS


def _dotted(node: ast.AST) -> str:
    """os.path -> "os.path"; anything but plain names and attributes -> ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _imports_dynamically(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "import_module" or
               isinstance(n, ast.Name) and n.id == "__import__" for n in ast.walk(tree))


def impurities(entry: str, root: Path | None = None, package: str = "hanode") -> list[str]:
    """Every forbidden use reachable from entry, each with the import chain that reaches it (root: the source
    tree holding the package, this checkout's agent/src unless given)."""
    root = root or SRC
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
    found = impurities(module, SRC)
    assert found == [], "impure:\n" + "\n".join(found)


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
        "opens.py": "def load(name):\n    with open(name) as handle:\n        return handle.read()\n",
        "osfs.py": "import os\nimport os.path\n\ndef look(p):\n    return (os.stat(p), os.listdir(p), os.uname(), "
                   "os.scandir(p),\n            os.path.exists(p), os.path.isfile(p), os.environ, os.path.join(p, 'x'))\n",
        "fromos.py": "from io import open\nfrom os import listdir, sep\nfrom os.path import basename, exists\n",
        "paths.py": "from pathlib import Path, PurePath\n\nclass Tree:\n    def __init__(self, root):\n"
                    "        self.root = root\n\n    def look(self, path):\n"
                    "        return (path.read_text(), path.exists(), Path.iterdir(path), (path / 'x').read_bytes(),\n"
                    "                self.root.glob('*'), PurePath(path).name, path.with_suffix('.y'))\n",
        "copies.py": "import shutil\nfrom glob import glob\n",
        "caps.py": "def probe():\n    with open('/proc/net/ip_vs') as handle:\n        return handle.read()\n",
        "reaches_caps.py": "from fakepkg import caps\n\ndef backend():\n    return caps.probe()\n",
        "cyc_a.py": "from fakepkg import cyc_b\n",
        "cyc_b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fakepkg.cyc_a import Thing\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("entry, expected", [
    ("fakepkg.clean", []),
    ("fakepkg.deep", ["fakepkg.deep -> fakepkg.middle -> fakepkg.sub: import time"]),
    ("fakepkg.shell", ["fakepkg.shell: os.system"]),
    ("fakepkg.spawn", ["fakepkg.spawn: from os import execvp", "fakepkg.spawn: from os import getcwd"]),
    ("fakepkg.netio", ["fakepkg.netio: from asyncio import ...", "fakepkg.netio: import socket"]),
    ("fakepkg.lazy", ["fakepkg.lazy -> fakepkg.netio: from asyncio import ...",
                      "fakepkg.lazy -> fakepkg.netio: import socket"]),
    ("fakepkg.sneaky", ["fakepkg.sneaky: importlib of 'socket'"]),
    ("fakepkg.opens", ["fakepkg.opens: open()"]),
    ("fakepkg.osfs", ["fakepkg.osfs: os.stat", "fakepkg.osfs: os.listdir", "fakepkg.osfs: os.uname",
                      "fakepkg.osfs: os.scandir", "fakepkg.osfs: os.path.exists", "fakepkg.osfs: os.path.isfile",
                      "fakepkg.osfs: os.environ"]),
    ("fakepkg.fromos", ["fakepkg.fromos: from os.path import exists", "fakepkg.fromos: from os import listdir",
                        "fakepkg.fromos: from io import open"]),
    ("fakepkg.paths", ["fakepkg.paths: path.read_text() (pathlib)", "fakepkg.paths: path.exists() (pathlib)",
                       "fakepkg.paths: Path.iterdir() (pathlib)", "fakepkg.paths: <expression>.read_bytes() (pathlib)",
                       "fakepkg.paths: self.root.glob() (pathlib)"]),
    ("fakepkg.copies", ["fakepkg.copies: import shutil", "fakepkg.copies: from glob import ..."]),
    ("fakepkg.reaches_caps", ["fakepkg.reaches_caps -> fakepkg.caps: open()"]),
])
def test_the_walker_finds_impure_imports(fake_package, entry, expected):
    assert sorted(impurities(entry, fake_package, "fakepkg")) == sorted(expected)


def test_the_walker_sees_the_io_shell_as_impure():
    found = impurities("hanode.vrrp.runner")
    assert "hanode.vrrp.runner: import asyncio" in found
    assert "hanode.vrrp.runner -> hanode.vrrp.io: import socket" in found


@pytest.mark.parametrize("module, plant, found", [
    ("hanode/vrrp/fsm.py", "\n\ndef _planted():\n    with open('/etc/hostname') as handle:\n        return handle.read()\n",
     "hanode.vrrp.fsm: open()"),
    # what issue 11 found: the lb_backend decision reading the running kernel inside the pure config parser
    ("hanode/config/parse_lvs.py", "\nfrom hanode.lvs import caps\nIPVS = caps.ipvs_available\n",
     "hanode.config.parse -> hanode.config.parse_lvs -> hanode.lvs.caps: open()"),
])
def test_the_purity_test_fails_on_a_planted_open_in_a_pure_module(tmp_path, monkeypatch, module, plant, found):
    """Self-test: a copy of this agent's source with file-system access planted into a pure module; the very
    test above, pointed at the copy, fails and names the module (through the import chain that reaches it)."""
    planted = tmp_path / "src"
    shutil.copytree(SRC / "hanode", planted / "hanode", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(sys.modules[__name__], "SRC", planted)
    entry = "hanode.config.parse" if "parse_lvs" in module else module[:-3].replace("/", ".")
    test_pure_module_imports_nothing_impure(entry)  # the copy is clean before the plant
    target = planted / module
    target.write_text(target.read_text() + plant)
    with pytest.raises(AssertionError) as failed:
        test_pure_module_imports_nothing_impure(entry)
    assert found in str(failed.value)


# no import cycles ----------------------------------------------------------------------------------------------

def import_cycles(root: Path | None = None, package: str = "hanode") -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop; imports made only for type checking
    count too. Edges to a package's __init__ that come from importing one of its modules do not."""
    root = root or SRC
    graph = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = _scan(name, path, package, root)[0]
        graph[name] = {m for m in imported if module_file(m, root).name != "__init__.py"}
    return _strongly_connected(graph)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: every component of more than one module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, edges = work[-1]
            child = next((m for m in edges if m in graph), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(sorted(members))
    return sorted(found)


def test_no_modules_of_the_agent_import_each_other():
    """Issue 11: hanode.lab.lab and hanode.lab.procs imported each other (one of them only for a type)."""
    assert import_cycles() == []


def test_the_cycle_finder_sees_a_type_only_cycle(fake_package):
    assert import_cycles(fake_package, "fakepkg") == [["fakepkg.cyc_a", "fakepkg.cyc_b"]]
