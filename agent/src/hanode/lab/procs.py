"""Handles on processes a lab started inside its namespaces: generic, agent, keepalived, sniffer."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple, Protocol, TypeVar


class Host(Protocol):
    """What a process handle needs of the lab host it runs on (hanode.lab.lab.Host is one); a protocol, so
    that this module does not import lab.py, which imports it."""
    name: str


T = TypeVar("T")

SRC_DIR = Path(__file__).resolve().parents[2]  # .../agent/src, holds the hanode package


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for child Pythons: hanode importable even when it is not installed."""
    env = dict(os.environ)
    paths = [str(SRC_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env


def python_module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def hanode_argv() -> list[str]:
    """$HANODE_LAB_HANODE (a command line), else `hanode` next to this Python (the venv), else on
    PATH, else `python -m hanode`."""
    override = os.environ.get("HANODE_LAB_HANODE")
    if override:
        return shlex.split(override)
    sibling = Path(sys.executable).parent / "hanode"
    if sibling.exists():
        return [str(sibling)]
    found = shutil.which("hanode")
    if found:
        return [found]
    return python_module_argv("hanode")


class ProcessExited(RuntimeError):
    """A lab process awaited by wait_for died: waiting longer is pointless (wait_for lets it through)."""


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.05, what: str | None = None) -> T:
    """Polls `predicate` until it returns something truthy and returns that; exceptions count as not
    yet, except ProcessExited which propagates at once.

    Raises TimeoutError naming `what`, with the last value or exception seen."""
    what = what or getattr(predicate, "__name__", repr(predicate))
    deadline = time.monotonic() + timeout
    last_value: object = None
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_value, last_error = value, None
        except ProcessExited:
            raise
        except Exception as exc:  # the awaited thing may well fail until it is ready
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {last_value!r}"
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} ({detail})")
        time.sleep(interval)


class ProcessHandle:
    """A process running in a lab namespace, started in its own session; output goes to `log_path`."""

    def __init__(self, host: Host, name: str, argv: list[str], popen: subprocess.Popen, log_path: Path):
        self.host = host
        self.name = name
        self.argv = argv
        self.popen = popen
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.host.name} pid={self.pid} rc={self.popen.returncode}>"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        if self.running:
            self.popen.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; if it does not exit in time, SIGKILL its group and raise TimeoutError."""
        self.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(f"{self.name} on {self.host.name} ignored SIGTERM for {timeout:g}s; killed") from None

    def kill(self, group: bool = True) -> int:
        """SIGKILL the process (and by default its whole process group, i.e. its children)."""
        try:
            if group:
                os.killpg(self.pid, signal.SIGKILL)
            else:
                self.popen.kill()
        except (ProcessLookupError, PermissionError):
            pass
        return self.popen.wait(10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def failure(self, message: str) -> ProcessExited:
        return ProcessExited(f"{message}\n--- last lines of {self.log_path} ---\n{self.log_tail()}")


class AgentHandle(ProcessHandle):
    """`hanode run --config <host dir>/agent.yaml` and its control socket."""

    def __init__(self, *args, config_path: Path, socket_path: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.config_path = config_path
        self.socket_path = socket_path

    def _ctl(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(hanode_argv() + args, capture_output=True, text=True, timeout=timeout,
                              env=python_env(), check=False)  # callers report the exit status with stderr

    def status(self, timeout: float = 5.0) -> dict:
        """`hanode status --json --socket ...`, parsed."""
        proc = self._ctl(["status", "--json", "--socket", str(self.socket_path)], timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"hanode status on {self.host.name} exited {proc.returncode}: {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    def reload(self, timeout: float = 10.0) -> subprocess.CompletedProcess:
        proc = self._ctl(["reload", "--socket", str(self.socket_path)], timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"hanode reload on {self.host.name} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def wait_ready(self, timeout: float = 10.0) -> dict:
        """Waits until status answers; fails at once (with the log) if the agent exits."""
        def ready() -> dict | None:
            if not self.running:
                raise self.failure(f"agent on {self.host.name} exited with {self.returncode}")
            return self.status()
        try:
            return wait_for(ready, timeout, what=f"agent on {self.host.name} to answer status")
        except TimeoutError as exc:
            if not self.running:
                raise self.failure(f"agent on {self.host.name} exited with {self.returncode}") from None
            raise TimeoutError(f"{exc}\n--- last lines of {self.log_path} ---\n{self.log_tail()}") from None


class KeepalivedHandle(ProcessHandle):
    """Debian's keepalived in the foreground; reload = SIGHUP."""

    def __init__(self, *args, conf_path: Path, pid_path: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.conf_path = conf_path
        self.pid_path = pid_path

    def reload(self) -> None:
        self.send_signal(signal.SIGHUP)


class VrrpAdvert(NamedTuple):
    t: float  # the kernel's receive time on the bridge, on the time.monotonic() clock (see hanode.lab.sniffer)
    src: str
    vrid: int
    priority: int


class VrrpSniffer:
    """Collects every VRRP packet seen on a bridge (see hanode.lab.sniffer)."""

    def __init__(self, handle: ProcessHandle):
        self.handle = handle
        self._records: list[VrrpAdvert] = []
        self._frames: list[dict] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"vrrp-sniffer-{handle.host.name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.handle.popen.stdout:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if item.get("ready"):
                self._ready.set()
                continue
            with self._cond:
                self._frames.append(item)
                self._records.append(VrrpAdvert(item["t"], item["src"], item["vrid"], item["priority"]))
                self._cond.notify_all()
        self._ready.set()

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(timeout) or not self.handle.running:
            raise self.handle.failure("VRRP sniffer did not start")

    @property
    def records(self) -> list[VrrpAdvert]:
        with self._cond:
            return list(self._records)

    @property
    def frames(self) -> list[dict]:
        """Every field the sniffer printed (also dst, VRRP version and type)."""
        with self._cond:
            return list(self._frames)

    def adverts(self, src: str | None = None, vrid: int | None = None, since: float | None = None) -> list[VrrpAdvert]:
        return [r for r in self.records if (src is None or r.src == src) and (vrid is None or r.vrid == vrid)
                and (since is None or r.t >= since)]

    def wait_for_adverts(self, count: int = 1, timeout: float = 5.0, src: str | None = None,
                         vrid: int | None = None, since: float | None = None) -> list[VrrpAdvert]:
        """Waits until at least `count` adverts match the filters and returns them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self._records if (src is None or r.src == src)
                         and (vrid is None or r.vrid == vrid) and (since is None or r.t >= since)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:g}s waiting for {count} VRRP adverts "
                                       f"(src={src}, vrid={vrid}); saw {len(found)}, {len(self._records)} in all")
                self._cond.wait(left)

    def stop(self) -> None:
        if self.handle.running:
            self.handle.kill()
        self._thread.join(5)

    def __enter__(self) -> VrrpSniffer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
