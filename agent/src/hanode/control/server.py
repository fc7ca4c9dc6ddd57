"""The control socket: UNIX stream, mode 0600 in a directory only root can change, one JSON request per line,
one JSON reply per line (a streaming request such as `events --follow` gets one line per event until the client
leaves). Requests are checked against the protocol's schema (hanode.control.protocol) before the handler sees
them. Every client is served on its own: one that sends too much (MAX_REQUEST_BYTES), too slowly
(REQUEST_TIMEOUT_MS), or does not read its answers (WRITE_TIMEOUT_MS) is answered with an error and dropped,
and never holds up another client's status."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import socket
import stat
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from hanode.control.protocol import (MAX_CLIENTS, MAX_REQUEST_BYTES, REQUEST_TIMEOUT_MS, WRITE_TIMEOUT_MS, Request,
                                     RequestError, parse_request)
from hanode.daemon.parts import Encoded

log = logging.getLogger("hanode.control")

REFUSALS_LOGGED = 10
REFUSAL_LOG_WINDOW_S = 60.0

Handler = Callable[[Request], Awaitable[dict] | AsyncIterator[dict]]


class SocketInUse(RuntimeError):
    pass


class UnsafeSocketDirectory(RuntimeError):
    pass


def _socket_alive(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def unsafe_directory(path: str) -> str | None:
    """Names the first directory of path (and its parents) that a non-root user could change (replace the
    socket with their own, or remove it), else None. Sticky directories (/tmp) are safe, as for scripts."""
    current = os.path.realpath(path)
    while True:
        st = os.stat(current)
        sticky = st.st_mode & stat.S_ISVTX
        if st.st_uid != 0 and st.st_uid != os.geteuid():
            return f"{current} is owned by uid {st.st_uid}"
        if not sticky and st.st_gid != 0 and st.st_mode & stat.S_IWGRP:
            return f"{current} is writable by group {st.st_gid}"
        if not sticky and st.st_mode & stat.S_IWOTH:
            return f"{current} is writable by everyone"
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


@dataclass
class _Client:
    writer: asyncio.StreamWriter
    idle_since: float
    busy: bool = False


@dataclass
class ControlCounters:
    """What the control socket has seen (status: agent.control)."""
    clients: int = 0          # connected now
    requests: int = 0         # requests answered (refused ones included)
    refused: int = 0          # requests refused by the schema (bad JSON, unknown command or field, wrong type)
    too_large: int = 0        # request lines longer than MAX_REQUEST_BYTES
    timed_out: int = 0        # clients dropped for sending or reading too slowly
    evicted: int = 0          # idle clients dropped to admit a new one past MAX_CLIENTS
    last_refusal: str | None = field(default=None)

    def as_status(self) -> dict[str, Any]:
        return {"clients": self.clients, "requests": self.requests, "refused": self.refused,
                "too_large": self.too_large, "timed_out": self.timed_out, "evicted": self.evicted,
                "last_refusal": self.last_refusal}


class ControlServer:
    def __init__(self, path: str, handler: Handler):
        self.path = path
        self.handler = handler
        self.server: asyncio.base_events.Server | None = None
        self.clients: dict[asyncio.StreamWriter, _Client] = {}
        self.counters = ControlCounters()
        self.log_window_start = float("-inf")
        self.logged = self.unlogged = 0

    async def start(self) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o755, exist_ok=True)
        problem = unsafe_directory(directory)
        if problem:
            raise UnsafeSocketDirectory(f"refusing to serve {self.path}: {problem} (another user could replace "
                                        "the socket)")
        if os.path.exists(self.path):
            if _socket_alive(self.path):
                raise SocketInUse(f"another hanode agent is already serving {self.path}")
            os.unlink(self.path)
        old_umask = os.umask(0o177)
        try:
            # the reader's limit bounds what one client can make us buffer: a longer line is refused. The
            # backlog holds every client we serve: past a full backlog a non-blocking AF_UNIX connect fails
            # with EAGAIN, which asyncio clients see as a connection lost on their first write.
            self.server = await asyncio.start_unix_server(self._client, path=self.path, limit=MAX_REQUEST_BYTES,
                                                          backlog=MAX_CLIENTS)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        os.chown(self.path, 0, 0) if os.geteuid() == 0 else None

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.clients):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def status(self) -> dict[str, Any]:
        self.counters.clients = len(self.clients)
        return self.counters.as_status()

    # one client ---------------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.clients) >= MAX_CLIENTS and not self._evict_idle():
            await self._drop(writer, f"the agent serves at most {MAX_CLIENTS} clients at once: try again")
            return
        client = self.clients[writer] = _Client(writer, time.monotonic())
        try:
            while line := await self._read_request(reader, writer):
                client.busy = True
                if await self._answer(line, writer):
                    break  # a streamed reply (events) ends with the connection: the client reads to EOF
                client.busy, client.idle_since = False, time.monotonic()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.TimeoutError:  # it did not take an answer in time: what is still buffered for it goes too
            self.counters.timed_out += 1
            writer.transport.abort()
        finally:
            self.clients.pop(writer, None)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
        """The next request line; None when the client is gone or was dropped (answered with why)."""
        try:
            return await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_MS / 1000)
        except asyncio.TimeoutError:
            self.counters.timed_out += 1
            await self._drop(writer, f"no complete request line within {REQUEST_TIMEOUT_MS / 1000:g} s")
        except (ValueError, asyncio.LimitOverrunError):  # the line is longer than the reader's limit
            self.counters.too_large += 1
            self.counters.requests += 1
            self._refused(f"request is larger than {MAX_REQUEST_BYTES} bytes")
            await self._drop(writer, f"bad request: request is larger than {MAX_REQUEST_BYTES} bytes")
        return None

    def _evict_idle(self) -> bool:
        """Past MAX_CLIENTS: drops the client that has been idle (connected, no request being answered)
        longest. False when every client is busy."""
        idle = [c for c in self.clients.values() if not c.busy]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.idle_since)
        self.counters.evicted += 1
        log.warning("control socket: %d clients, dropping the longest idle one", len(self.clients))
        self.clients.pop(oldest.writer, None)
        oldest.writer.transport.abort()
        return True

    async def _drop(self, writer: asyncio.StreamWriter, error: str) -> None:
        """Tells the client why (if it takes the line within a second) and closes the connection."""
        try:
            writer.write(_encode({"ok": False, "error": error}))
            await asyncio.wait_for(writer.drain(), 1.0)
            writer.close()
        except (ConnectionError, asyncio.TimeoutError, RuntimeError):
            writer.transport.abort()

    def _refused(self, error: str) -> None:
        """Counted every time; logged at most REFUSALS_LOGGED times per REFUSAL_LOG_WINDOW_S (a client looping on
        a bad request must not flood the journal)."""
        self.counters.refused += 1
        self.counters.last_refusal = error[:200]
        now = time.monotonic()
        if now - self.log_window_start > REFUSAL_LOG_WINDOW_S:
            if self.unlogged:
                log.warning("control socket: %d more requests refused in the last %.0f s (not logged one by one)",
                            self.unlogged, now - self.log_window_start)
            self.log_window_start, self.logged, self.unlogged = now, 0, 0
        if self.logged < REFUSALS_LOGGED:
            self.logged += 1
            log.warning("control request refused: %s", error[:200])
        else:
            self.unlogged += 1

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answers one request; True when the answer was a stream (the connection is then closed)."""
        self.counters.requests += 1
        try:
            request = parse_request(line)
        except RequestError as exc:
            self._refused(str(exc))
            await _write(writer, {"ok": False, "error": f"bad request: {exc}"})
            return False
        try:
            result = self.handler(request)
            if inspect.isasyncgen(result):
                async for item in result:
                    await _write(writer, item)
                return True
            await _write(writer, await result)
        except (ConnectionError, asyncio.TimeoutError):
            raise
        except Exception as exc:  # noqa: BLE001 - the agent keeps serving
            log.exception("control request %s failed", request.cmd)
            await _write(writer, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return False


def _encode(message: Any) -> bytes | bytearray:
    if isinstance(message, Encoded):   # a status answer, written from its parts (daemon/parts.py)
        message.data += b"\n"
        return message.data
    return json.dumps(message, default=str).encode() + b"\n"


async def _write(writer: asyncio.StreamWriter, message: Any) -> None:
    """One reply line; a client that does not take it within WRITE_TIMEOUT_MS is dropped (TimeoutError)."""
    writer.write(_encode(message))
    await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_MS / 1000)
