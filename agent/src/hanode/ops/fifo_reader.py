"""notify_fifo_script: keepalived's FIFO reader, a long-running script the agent starts with the FIFO's path as
its last argument (as the script user, under the script security rules), and stops (SIGTERM, then SIGKILL)
when the agent stops or the config drops or changes it. One that exits on its own is logged, not restarted
(keepalived's behaviour)."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal

from hanode.config.security import ScriptRefused, prepare_script

log = logging.getLogger("hanode.events")
STOP_WAIT_S = 2.0
EXIT_WAIT_S = 1.0


class FifoReader:
    def __init__(self, command: str, fifo: str, user: str | None, secure: bool):
        self.argv = shlex.split(command) + [fifo]
        self.key = (command, fifo, user, secure)
        self.user, self.secure = user, secure
        self.proc: asyncio.subprocess.Process | None = None
        self.watch: asyncio.Task | None = None

    async def start(self) -> None:
        try:
            prepared = prepare_script(self.argv, self.user, self.secure)
        except ScriptRefused as exc:
            log.error("notify_fifo_script refused: %s", exc)
            return
        try:
            self.proc = await asyncio.create_subprocess_exec(
                prepared.executable, *self.argv[1:], stdin=asyncio.subprocess.DEVNULL, env=dict(prepared.env),
                start_new_session=True, cwd="/", **prepared.popen_identity())
        except (OSError, KeyError) as exc:
            log.error("cannot start notify_fifo_script %s: %s", self.argv[0], exc)
            return
        log.info("notify_fifo_script %s started (pid %d)", shlex.join(self.argv), self.proc.pid)
        self.watch = asyncio.get_running_loop().create_task(self._exited())

    async def _exited(self) -> None:
        code = await self.proc.wait()
        log.warning("notify_fifo_script %s exited with status %s", self.argv[0], code)

    async def stop(self) -> None:
        """After the FIFO is closed the reader sees its end and may finish on its own (EXIT_WAIT_S); then SIGTERM,
        then SIGKILL."""
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.watch:
            self.watch.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), EXIT_WAIT_S)
            return
        except asyncio.TimeoutError:
            pass
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_WAIT_S)
        except asyncio.TimeoutError:
            _signal_group(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
