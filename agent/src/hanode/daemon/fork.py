"""Children forked from the supervisor itself, so that the pages they share stay one copy.

Each supervised process used to be a fresh interpreter (`python -m hanode.vrrp.child`): ~9 MB of private memory
for Python and asyncio before the first line of hanode, and hanode's config code again, the same pages in every
process. A child forked from the supervisor shares them copy-on-write: only what it changes becomes its own
(docs/benchmarks.md, "VRRP at scale", says what it saves). gc.freeze() before the fork keeps the supervisor's
collector off the objects that exist then, so that their pages are not copied by a collection either.

The child starts as `python -m MODULE ARGS` would (runpy, `__main__`), with only the descriptors it is given
(and 0-2) open, no signal handler of the supervisor's and no running event loop. The supervisor sees it as a
ForkedProcess (what asyncio's Process offers: pid, returncode, wait(), kill()), reaped through a pidfd. When a
fork is not safe (another thread runs in the supervisor: asyncio's child watcher for an exec'd process, the
mail sender) or the kernel has no pidfd, the supervisor starts the child with exec as before."""

from __future__ import annotations

import asyncio
import gc
import os
import runpy
import signal
import sys
import threading
import traceback
from typing import Any

from hanode.daemon.forked import drop_inherited_handlers, exit_now

PR_SET_NAME = 15


def can_fork() -> bool:
    """A fork is safe here (this thread alone) and its end can be waited for (pidfd_open)."""
    if threading.active_count() != 1 or not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


class ForkedProcess:
    """A forked child, as the supervisor sees it; reaped when its pidfd becomes readable."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._loop = asyncio.get_running_loop()
        self._exited = self._loop.create_future()
        self._pidfd = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._reap)

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:   # reaped by someone else: the code is lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)   # not reaped yet: the pid is still this child's

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _set_comm(title: str) -> None:
    import ctypes  # pylint: disable=import-outside-toplevel

    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, title.encode()[:15], 0, 0, 0)
    except (AttributeError, OSError):
        pass


def loaded_digest() -> str | None:
    """The digest of the config this process loaded last (what a child forked now inherits), if any."""
    load = sys.modules.get("hanode.config.loaded")
    last = load.last_loaded() if load is not None else None
    return last.digest if last is not None else None


def inherited_config(digest: str | None) -> Any:
    """The AgentConfig the supervisor loaded with this digest, when this process was forked from it after it
    loaded that config (None otherwise: exec'd, or another config since). Taking it instead of parsing the
    config message's copy keeps the config's objects one copy, shared with the supervisor."""
    load = sys.modules.get("hanode.config.loaded")   # imported only where a config was loaded
    loaded = load.loaded_here(digest) if load is not None else None
    return loaded.config if loaded is not None else None


def spawn_forked(module: str, args: list[str], pass_fds: tuple[int, ...], title: str = "") -> ForkedProcess:
    """Forks `python -m module args...` with `pass_fds` open (call only when can_fork()). `title`: the
    child's process name (/proc/PID/comm, what ps -o comm and top show; its command line stays the
    supervisor's)."""
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        _child(module, args, pass_fds, title)   # never returns
    return ForkedProcess(pid)


def _child(module: str, args: list[str], pass_fds: tuple[int, ...], title: str) -> None:
    """In the new child: what `python -m module args...` would be."""
    code = 1
    try:
        if title:
            _set_comm(title)
        drop_inherited_handlers()
        asyncio.events._set_running_loop(None)   # pylint: disable=protected-access
        low = 3
        for fd in sorted(pass_fds):
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, os.sysconf("SC_OPEN_MAX"))
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever it was, this process ends here and says why
        traceback.print_exc()
    finally:
        exit_now(code)
