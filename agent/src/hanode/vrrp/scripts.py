"""Running vrrp_scripts and notify scripts: as the script user (hanode.config.security: keepalived_script by
default, root only when the config says so), the file checked again before every run, with a clean environment
and a hard timeout."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
from dataclasses import dataclass
from typing import Awaitable, Callable

from hanode.config.security import ScriptRefused, prepare_script

log = logging.getLogger("hanode.vrrp.scripts")

NOTIFY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ScriptResult:
    success: bool
    exit_code: int | None
    error: str | None = None


async def run_command(argv: list[str], timeout_s: float, user: str | None = None,
                      extra_env: dict[str, str] | None = None, secure: bool = True) -> ScriptResult:
    """Runs argv as the script user (`user`, else keepalived_script; refused when neither exists); with
    `secure` (enable_script_security) only when no non-root user can change the file or its path. Success is
    exit status 0. On timeout the whole process group is killed."""
    try:
        prepared = prepare_script(argv, user, secure)
    except ScriptRefused as exc:
        return ScriptResult(False, None, f"refused: {exc}")
    env = dict(prepared.env)
    env.update(extra_env or {})
    try:
        proc = await asyncio.create_subprocess_exec(
            prepared.executable, *argv[1:], stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True, cwd="/", **prepared.popen_identity())
    except (OSError, KeyError) as exc:
        return ScriptResult(False, None, f"cannot start {argv[0]}: {exc}")
    try:
        _out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except asyncio.TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return ScriptResult(False, None, f"timed out after {timeout_s:g} s")
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        raise
    message = err.decode(errors="replace").strip().splitlines()[-1][:200] if err and err.strip() else None
    return ScriptResult(proc.returncode == 0, proc.returncode, message if proc.returncode else None)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def run_periodically(command: str, interval_s: float, timeout_s: float, user: str | None,
                           report: Callable[[ScriptResult], None], secure: bool = True) -> None:
    """A vrrp_script: runs every interval (measured start to start) until cancelled."""
    loop = asyncio.get_running_loop()
    argv = shlex.split(command)
    while True:
        started = loop.time()
        report(await run_command(argv, timeout_s, user, secure=secure))
        await asyncio.sleep(max(0.0, interval_s - (loop.time() - started)))


class NotifyQueue:
    """Runs notify scripts one after another, in the order the state changes happened."""

    def __init__(self, user: str | None, on_done: Callable[[list[str], ScriptResult], Awaitable[None] | None] | None = None,
                 secure: bool = True):
        self.user = user
        self.secure = secure
        self.queue: asyncio.Queue[list[str]] = asyncio.Queue()
        self.on_done = on_done
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._worker())

    def put(self, argv: list[str]) -> None:
        self.queue.put_nowait(argv)

    async def drain(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self.queue.join(), timeout_s)
        except asyncio.TimeoutError:
            log.warning("notify scripts still running after %.1f s at shutdown", timeout_s)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            argv = await self.queue.get()
            try:
                result = await run_command(argv, NOTIFY_TIMEOUT_S, self.user, secure=self.secure)
                if not result.success:
                    log.warning("notify script %s failed: %s", shlex.join(argv), result.error or f"exit {result.exit_code}")
                if self.on_done:
                    maybe = self.on_done(argv, result)
                    if maybe is not None:
                        await maybe
            finally:
                self.queue.task_done()
