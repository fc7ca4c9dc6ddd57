"""One supervised child process that speaks JSON lines over a socketpair."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import sys
import time
from typing import Any, Callable

from hanode.daemon.alarm import Alarm
from hanode.daemon.beat import BeatPage, late_after_s
from hanode.daemon.fork import ForkedProcess, can_fork, loaded_digest, spawn_forked
from hanode.daemon.imports import asyncio_has_tls
from hanode.daemon.ipc import encode, open_socket, read_message
from hanode.daemon.parts import PackedEntries, encode_value

log = logging.getLogger("hanode.supervisor")

STARTUP_GRACE_S = 30.0  # a child's first heartbeat may take this long (imports on a slow or loaded host)


class Child:
    def __init__(self, name: str, module: str, on_message: Callable[["Child", dict], None], log_level: str = "info",
                 tls: bool = False, on_alarm: Callable[["Child"], None] | None = None):
        """on_alarm: called when the run's dead man's switch goes off (it may be silent: the watchdog judges)."""
        self.name = name
        self.tls = tls   # needs asyncio with TLS: forked only from a process whose asyncio has it
        self.fork = not os.environ.get("HANODE_EXEC_CHILDREN")   # exec each child instead (to compare)
        self.module = module
        self.on_message = on_message
        self.log_level = log_level
        self.proc: ForkedProcess | asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task | None = None
        self.started_at = 0.0
        self._last_beat = 0.0
        self.beat: BeatPage | None = None   # where this run writes its later heartbeats (daemon/beat.py)
        self.alarm: Alarm | None = None     # this run's dead man's switch (daemon/alarm.py), which it moves on
        self.on_alarm = on_alarm
        self.timeout_s = 2.0   # the watchdog timeout and beat period this child keeps to (set_limits)
        self.period_s = 1.0
        self.beating = False  # has this run sent its first heartbeat (imports done, loop running)?
        self.restarts = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.parts: dict[int, dict[str, PackedEntries]] = {}   # request id -> the entries of its answer so far
        self.ids = itertools.count(1)
        self.stopping = False
        self.killed_at: float | None = None   # when the watchdog killed it for silence (not yet restarted)
        self.hung_s: float | None = None      # how long it had been silent then
        self.stall_excused = False   # its switch went off long after its deadline once: judged on the next one
        self.gone: asyncio.Future | None = None   # done when this run's messages end (it exited or was killed)
        self.applied_generation: int | None = None  # the last config generation this run reported applied
        self.inherited_digest: str | None = None   # the config this run has from the fork (daemon/fork.py)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def last_heartbeat(self) -> float:
        """When this run last beat (time.monotonic()): its last heartbeat message or its beat page."""
        return max(self._last_beat, self.beat.read()) if self.beat is not None else self._last_beat

    @last_heartbeat.setter
    def last_heartbeat(self, monotonic_s: float) -> None:
        self._last_beat = monotonic_s
        if self.beat is not None:
            self.beat.write(monotonic_s)

    @property
    def limit_s(self) -> float:
        """How long this run may stay silent: the watchdog timeout, or the startup grace before its first beat."""
        return self.timeout_s if self.beating else max(self.timeout_s, STARTUP_GRACE_S)

    def late(self, now: float) -> bool:
        """Silent for a beat period plus slack (daemon/beat.late_after_s), or for the watchdog timeout if that is
        shorter: frozen or busy. Status shows its last answer without asking; systemd's pings are held back."""
        return now - self.last_heartbeat > min(late_after_s(self.period_s), self.timeout_s)

    def set_limits(self, timeout_s: float, period_s: float) -> None:
        """The watchdog timeout and beat period (daemon/beat.py), for this run and the next ones."""
        self.timeout_s, self.period_s = timeout_s, period_s
        if self.beat is not None:
            self.beat.set_limits(timeout_s, period_s)
        if self.alarm is not None:
            self.alarm.arm_at(self.last_heartbeat + self.limit_s)

    async def start(self) -> None:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.beat is not None:
            self.beat.close()
        self._close_alarm()
        self.beat, beat_fd = BeatPage.create()
        self.beat.set_limits(self.timeout_s, self.period_s)
        # before any await: the watchdog must not judge the new run by the old one's last beat
        self.last_heartbeat = time.monotonic()
        self.beating = False
        self.alarm = Alarm()
        self.alarm.arm_at(self.last_heartbeat + self.limit_s)   # before the child can move it on
        if self.on_alarm is not None:
            asyncio.get_running_loop().add_reader(self.alarm.fileno(), self.on_alarm, self)
        try:
            self.proc = await self._spawn(child_sock.fileno(), beat_fd, self.alarm.fileno())
        finally:
            child_sock.close()
            os.close(beat_fd)
        reader, self.writer = await open_socket(parent_sock)
        self.started_at = self.last_heartbeat = time.monotonic()
        self.beating = False
        self.stopping = False
        self.killed_at = self.hung_s = None
        self.stall_excused = False
        self.applied_generation = None
        self.gone = asyncio.get_running_loop().create_future()
        self.reader_task = asyncio.get_running_loop().create_task(self._read(reader))
        log.info("%s process started (pid %d)", self.name, self.proc.pid)

    async def _spawn(self, sock_fd: int, beat_fd: int, alarm_fd: int) -> ForkedProcess | asyncio.subprocess.Process:
        """Forked from this process when that is safe (shared pages: daemon/fork.py), else exec'd."""
        args = ["--fd", str(sock_fd), "--log-level", self.log_level, "--beat-fd", str(beat_fd),
                "--alarm-fd", str(alarm_fd)]
        fds = (sock_fd, beat_fd, alarm_fd)
        self.inherited_digest = None
        if self.fork and can_fork() and (asyncio_has_tls() or not self.tls):
            self.inherited_digest = loaded_digest()
            return spawn_forked(self.module, args, fds, title=f"hanode-{self.name}")
        return await asyncio.create_subprocess_exec(sys.executable, "-m", self.module, *args, pass_fds=fds)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                message = await read_message(reader)
            except ConnectionError:  # a killed child resets the socket; its exit is reported by the supervisor
                message = None
            except ValueError as exc:
                log.error("%s: bad message from child: %s", self.name, exc)
                message = None
            if message is None:
                break
            kind = message.get("type")
            if kind == "heartbeat":
                self.last_heartbeat = time.monotonic()
                self.beating = True
            elif kind == "part" and message.get("id") in self.pending:
                # kept as JSON bytes, not as the objects it was read into (daemon/parts.py)
                entries = self.parts.setdefault(message["id"], {}).setdefault(message.get("key"), PackedEntries())
                entries.add(message.get("name"), encode_value(message.get("value")))
            elif kind == "reply" and message.get("id") in self.pending:
                parts = self.parts.pop(message["id"], {})
                message["parts"] = {key: parts.get(key, PackedEntries()).finish() for key in message.get("parts") or ()}
                future = self.pending.pop(message["id"])
                if not future.done():
                    future.set_result(message)
            else:
                self.on_message(self, message)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"{self.name} process went away"))
        self.pending.clear()
        self.parts.clear()
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)

    def kill(self) -> None:
        """SIGKILL (a stopped process too); the supervisor's _supervise sees it exit and restarts it."""
        if self.running:
            self.proc.kill()

    def send(self, message: dict[str, Any]) -> bool:
        if self.writer is None or self.writer.is_closing() or not self.running:
            return False
        self.writer.write(encode(message))
        return True

    async def request(self, message: dict[str, Any], timeout_s: float = 2.0) -> dict:
        request_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        if not self.send(dict(message, id=request_id)):
            self.pending.pop(request_id, None)
            raise ConnectionError(f"{self.name} process is not running")
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self.pending.pop(request_id, None)
            self.parts.pop(request_id, None)

    async def wait(self) -> int:
        return await self.proc.wait()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Asks the child to stop cleanly; kills it when it does not within the timeout."""
        if not self.running:
            return
        self.stopping = True
        self.send({"type": "stop"})
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
        except asyncio.TimeoutError:
            log.error("%s process did not stop within %.0f s: killing it", self.name, timeout_s)
            self.proc.kill()
            await self.proc.wait()
        await self.close()

    def _close_alarm(self) -> None:
        if self.alarm is not None:
            if self.on_alarm is not None:
                asyncio.get_running_loop().remove_reader(self.alarm.fileno())
            self.alarm.close()
            self.alarm = None

    async def close(self) -> None:
        self._close_alarm()
        if self.writer is not None:
            self.writer.close()
        if self.reader_task is not None:
            await asyncio.gather(self.reader_task, return_exceptions=True)
