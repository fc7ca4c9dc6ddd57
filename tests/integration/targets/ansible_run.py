"""Running ansible-playbook / ansible against this checkout as the collection hanode.fleet (helpers for
tests/integration/test_ansible_*.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
TARGETS = Path(__file__).resolve().parent


def collections_path() -> str:
    if ROOT.parent.name == "hanode" and ROOT.parent.parent.name == "ansible_collections":
        return str(ROOT.parents[2])
    link = ROOT / ".cache" / "collections" / "ansible_collections" / "hanode" / "fleet"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../../../.."))
    return str(ROOT / ".cache" / "collections")


def env() -> dict:
    bindir = str(Path(sys.executable).parent)
    out = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_DISPLAY_OK_HOSTS="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    out.pop("ANSIBLE_INVENTORY", None)
    return out


def write_inventory(path: Path, inventory: dict) -> Path:
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def playbook(inventory: Path, book: str | Path, *args: str, timeout: float = 300,
             wrapper: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """ansible-playbook on this checkout; `wrapper` runs it (the controller) under a command, e.g. unshare."""
    book = Path(book)
    if not book.is_absolute():
        book = TARGETS / book
    return subprocess.run([*wrapper, str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(book),
                           *args], env=env(), capture_output=True, text=True, timeout=timeout, check=False)


def adhoc(inventory: Path, pattern: str, module: str, module_args: dict | str, *args: str) -> subprocess.CompletedProcess:
    margs = module_args if isinstance(module_args, str) else json.dumps(module_args)
    run_env = dict(env(), ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    return subprocess.run([str(Path(sys.executable).parent / "ansible"), "-i", str(inventory), pattern, "-m", module,
                           "-a", margs, *args], env=run_env, capture_output=True, text=True, timeout=120, check=False)


def adhoc_results(run: subprocess.CompletedProcess) -> dict:
    """{host: module result} of an adhoc() run (the default callback: `host | SUCCESS => {json}`)."""
    results, host, lines = {}, None, []
    for line in run.stdout.splitlines():
        if host is None and " => {" in line and " | " in line:
            host, lines = line.split(" | ", 1)[0], ["{"]
        elif host is not None:
            lines.append(line)
            if line == "}":
                results[host] = json.loads("\n".join(lines))
                host = None
    return results


def recap(output: str) -> dict:
    """PLAY RECAP -> {host: {"ok": n, "changed": n, "failed": n, ...}}."""
    out = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line:
            host, _colon, rest = line.partition(":")
            out[host.strip()] = {k: int(v) for k, v in (part.split("=") for part in rest.split())}
    return out
