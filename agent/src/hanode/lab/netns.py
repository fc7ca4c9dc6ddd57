"""Thin wrappers around `ip`, `ip netns` and `nft`; every call targets a named namespace, never the root one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence

NETNS_DIR = "/run/netns"
DEFAULT_TIMEOUT = 30.0


class CommandError(subprocess.CalledProcessError):
    """A failed command; unlike CalledProcessError its message carries stderr."""

    def __str__(self) -> str:
        err = (self.stderr or "").strip() or (self.output or "").strip()
        return f"{' '.join(map(str, self.cmd))!s} exited {self.returncode}: {err[-2000:]}"


def run(argv: Sequence[str], *, check: bool = True, timeout: float | None = DEFAULT_TIMEOUT,
        input: str | None = None) -> subprocess.CompletedProcess:
    # check=False: a failure is raised below as CommandError, whose message carries stderr
    proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc


def _need(netns: str) -> str:
    if not netns:
        raise ValueError("a lab command needs a namespace; the root namespace is off limits")
    return netns


def exec_argv(netns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", _need(netns), *argv]


def ns_exec(netns: str, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    return run(exec_argv(netns, argv), **kwargs)


def ip(netns: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(["ip", "-n", _need(netns), *args], **kwargs)


def ip_json(netns: str, *args: str) -> list[dict]:
    out = run(["ip", "-n", _need(netns), "-j", *args]).stdout.strip()
    return json.loads(out) if out else []


def ip_batch(netns: str, commands: Iterable[str]) -> None:
    """Runs `ip` commands (one per line, without the leading `ip`) inside one namespace."""
    script = "".join(c + "\n" for c in commands)
    if script:
        run(["ip", "-n", _need(netns), "-batch", "-"], input=script)


def sysctl(netns: str, settings: dict[str, str | int]) -> None:
    args = [f"{k}={v}" for k, v in settings.items()]
    if args:
        ns_exec(netns, ["sysctl", "-q", "-w", *args])


def nft(netns: str, script: str) -> subprocess.CompletedProcess:
    return ns_exec(netns, ["nft", "-f", "-"], input=script)


def names() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def exists(netns: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, _need(netns)))


def add(netns: str) -> None:
    run(["ip", "netns", "add", _need(netns)])


def delete(netns: str) -> None:
    if exists(netns):
        run(["ip", "netns", "delete", netns], check=False)


def pids(netns: str) -> list[int]:
    if not exists(netns):
        return []
    out = run(["ip", "netns", "pids", netns], check=False).stdout
    return [int(tok) for tok in out.split() if tok.isdigit()]


def kill_all(netns: str, timeout: float = 5.0) -> list[int]:
    """SIGKILLs every process whose network namespace is `netns` until none is left; returns them."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        found = [p for p in pids(netns) if p != os.getpid()]
        if not found:
            return killed
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {found} survive SIGKILL in namespace {netns}")
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
