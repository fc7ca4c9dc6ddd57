"""The control socket: UNIX stream, mode 0600, one JSON request per line, one JSON reply per line
(a streaming request such as `events --follow` gets one line per event until the client leaves)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import socket
from typing import Any, AsyncIterator, Awaitable, Callable

log = logging.getLogger("hanode.control")

Handler = Callable[[dict], Awaitable[dict] | AsyncIterator[dict]]


class SocketInUse(RuntimeError):
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


class ControlServer:
    def __init__(self, path: str, handler: Handler):
        self.path = path
        self.handler = handler
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        if os.path.exists(self.path):
            if _socket_alive(self.path):
                raise SocketInUse(f"another hanode agent is already serving {self.path}")
            os.unlink(self.path)
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o755, exist_ok=True)
        old_umask = os.umask(0o177)
        try:
            self.server = await asyncio.start_unix_server(self._client, path=self.path, limit=1024 * 1024)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        os.chown(self.path, 0, 0) if os.geteuid() == 0 else None

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if await self._answer(line, writer):
                    break  # a streamed reply (events) ends with the connection: the client reads to EOF
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answers one request; True when the answer was a stream (the connection is then closed)."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
                raise ValueError("a request is a JSON object with a string 'cmd'")
        except ValueError as exc:
            await _write(writer, {"ok": False, "error": f"bad request: {exc}"})
            return False
        try:
            result = self.handler(request)
            if inspect.isasyncgen(result):
                async for item in result:
                    await _write(writer, item)
                return True
            await _write(writer, await result)
        except (ConnectionError, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - the agent keeps serving
            log.exception("control request %s failed", request.get("cmd"))
            await _write(writer, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return False


async def _write(writer: asyncio.StreamWriter, message: Any) -> None:
    writer.write(json.dumps(message, default=str).encode() + b"\n")
    await writer.drain()
