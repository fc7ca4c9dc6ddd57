"""Clients that connect while the agent's loop is busy wait in the listen backlog, up to MAX_CLIENTS of them.
With a shorter backlog a non-blocking AF_UNIX connect fails with EAGAIN, and an asyncio client then sees its
connection lost on its first write (CI saw that in the control fuzz test's 200-client storm)."""

from __future__ import annotations

import asyncio
import json
import socket

from hanode.control.protocol import MAX_CLIENTS
from hanode.control.server import ControlServer

CLIENTS = 300


async def _pong(request) -> dict:
    return {"ok": True, "cmd": request.cmd}


async def _ask(sock: socket.socket) -> dict:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    writer.write(b'{"cmd": "ping"}\n')
    await writer.drain()
    answer = json.loads(await reader.readline())
    writer.close()
    return answer


async def _ask_all(socks: list[socket.socket]) -> list[dict]:
    return await asyncio.gather(*(_ask(sock) for sock in socks))


def test_clients_queue_while_the_loop_is_busy_and_all_are_answered(tmp_path):
    assert CLIENTS < MAX_CLIENTS
    path = str(tmp_path / "hanode.sock")
    loop = asyncio.new_event_loop()
    server = ControlServer(path, _pong)
    try:
        loop.run_until_complete(server.start())
        # the loop is not running: nothing is accepted, every connection waits in the backlog
        socks = []
        for _count in range(CLIENTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect(path)  # BlockingIOError (EAGAIN) once the backlog is full
            socks.append(sock)
        answers = loop.run_until_complete(_ask_all(socks))
        assert answers == [{"ok": True, "cmd": "ping"}] * CLIENTS
    finally:
        loop.run_until_complete(server.close())
        loop.close()
