"""Parent <-> child messages: one JSON object per line over a socketpair."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

LIMIT = 16 * 1024 * 1024


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at end of stream."""
    line = await reader.readline()
    if not line:
        return None
    return json.loads(line)


async def open_fd(fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket(fileno=fd)
    return await asyncio.open_unix_connection(sock=sock, limit=LIMIT)


async def open_socket(sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(sock=sock, limit=LIMIT)
