"""Long-lived connections through a VIP, for failover tests and the connection-survival benchmark.

    python -m hanode.lab.connhold server --name r1 --port 9000 [--proto sctp] --ready-file F
    python -m hanode.lab.connhold client --target 198.51.100.100:9000 --connections 200 --interval-ms 100
                                         --out result.json --ready-file F --stop-file S [--proto sctp]
    python -m hanode.lab.connhold churn --target 198.51.100.100:9000 --rate 200 --duration-s 5 --out F

The server echoes every line, prefixed with its name. The client opens N connections and on each sends a
line every interval and waits for its echo; it stops when the stop file appears (or --duration-s passes)
and writes, per connection: echoes, the longest gap between two answered messages, the server that
answered, and the error that ended it (reset, closed, timeout), if any. A connection *survives* when it ended
without error and never stalled longer than --stall-ms (default 2000).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path

IPPROTO_SCTP = 132
ANSWER_TIMEOUT_S = 30.0       # a stall is measured, not cut short


def _socket(proto: str, family: int) -> socket.socket:
    if proto == "sctp":
        return socket.socket(family, socket.SOCK_STREAM, IPPROTO_SCTP)
    return socket.socket(family, socket.SOCK_STREAM)


async def serve(name: str, port: int, proto: str, ready_file: str | None) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(name.encode() + b" " + line)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    sock = _socket(proto, socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(1024)
    server = await asyncio.start_server(echo, sock=sock, limit=1 << 16)
    if ready_file:
        Path(ready_file).write_text("ready\n")
    async with server:
        await server.serve_forever()


class Conn:
    def __init__(self, index: int):
        self.index = index
        self.echoes = 0
        self.server: str | None = None
        self.error: str | None = None
        self.max_gap_ms = 0.0
        self.last_ok: float | None = None
        self.established = False

    def result(self, stall_ms: float, now: float) -> dict:
        gap_ms = max(self.max_gap_ms, (now - self.last_ok) * 1000 if self.last_ok else 0.0)
        return {"id": self.index, "established": self.established, "echoes": self.echoes, "server": self.server,
                "error": self.error, "max_gap_ms": round(gap_ms, 1),
                "survived": self.established and self.error is None and gap_ms <= stall_ms}


async def hold(conn: Conn, host: str, port: int, proto: str, interval_s: float, stop: asyncio.Event) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = _socket(proto, family)
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), 10)
        reader, writer = await asyncio.open_connection(sock=sock)
    except (OSError, asyncio.TimeoutError) as exc:
        conn.error = f"connect: {exc!r}"
        return
    conn.established = True
    seq = 0
    try:
        while not stop.is_set():
            seq += 1
            sent = time.monotonic()
            writer.write(b"%d\n" % seq)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), ANSWER_TIMEOUT_S)
            if not line:
                conn.error = "closed by the peer"
                return
            now = time.monotonic()
            server, _space, got = line.decode().strip().partition(" ")
            if got != str(seq):
                conn.error = f"answer {got!r} to message {seq}"
                return
            if conn.last_ok is not None:
                conn.max_gap_ms = max(conn.max_gap_ms, (now - conn.last_ok) * 1000)
            conn.last_ok, conn.server = now, conn.server or server
            conn.echoes += 1
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, interval_s - (now - sent)))
            except asyncio.TimeoutError:
                pass
    except asyncio.TimeoutError:
        conn.error = f"no answer for {ANSWER_TIMEOUT_S:.0f} s"
    except ConnectionResetError:
        conn.error = "reset"
    except (ConnectionError, OSError) as exc:
        conn.error = repr(exc)
    finally:
        writer.close()


async def client(args: argparse.Namespace) -> dict:
    host, _colon, port = args.target.rpartition(":")
    host = host.strip("[]")
    stop = asyncio.Event()
    conns = [Conn(i) for i in range(args.connections)]
    tasks = []
    for conn in conns:               # spread the connections over one interval, so messages do not bunch up
        tasks.append(asyncio.ensure_future(hold(conn, host, int(port), args.proto, args.interval_ms / 1000, stop)))
        await asyncio.sleep(args.interval_ms / 1000 / max(1, args.connections))
    started = time.monotonic()
    if args.ready_file:
        while not all(c.echoes or c.error for c in conns):
            await asyncio.sleep(0.02)
        Path(args.ready_file).write_text(json.dumps({"established": sum(c.established for c in conns)}))
    while not (args.stop_file and os.path.exists(args.stop_file)):
        if args.duration_s and time.monotonic() - started >= args.duration_s:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    now = time.monotonic()
    results = [c.result(args.stall_ms, now) for c in conns]
    return {"connections": len(conns), "survived": sum(r["survived"] for r in results),
            "errors": sum(r["error"] is not None for r in results), "stall_ms": args.stall_ms,
            "interval_ms": args.interval_ms, "proto": args.proto, "per_connection": results}


async def churn(args: argparse.Namespace) -> dict:
    """New connections at a steady rate (each: connect, one echo, close) for a while."""
    host, _colon, port = args.target.rpartition(":")
    host = host.strip("[]")
    counts = {"completed": 0, "failed": 0}

    async def one() -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
            writer.write(b"1\n")
            await writer.drain()
            ok = (await asyncio.wait_for(reader.readline(), 10)).endswith(b" 1\n")
            writer.close()
            counts["completed" if ok else "failed"] += 1
        except (OSError, asyncio.TimeoutError):
            counts["failed"] += 1

    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = []
    while (now := loop.time()) - started < args.duration_s:
        due = started + len(tasks) / args.rate
        if due > now:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    return {**counts, "started": len(tasks), "elapsed_s": round(loop.time() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connhold")
    sub = parser.add_subparsers(dest="role", required=True)
    srv = sub.add_parser("server")
    srv.add_argument("--name", required=True)
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--proto", choices=("tcp", "sctp"), default="tcp")
    srv.add_argument("--ready-file")
    cli = sub.add_parser("client")
    cli.add_argument("--target", required=True)
    cli.add_argument("--proto", choices=("tcp", "sctp"), default="tcp")
    cli.add_argument("--connections", type=int, default=200)
    cli.add_argument("--interval-ms", type=float, default=100)
    cli.add_argument("--stall-ms", type=float, default=2000)
    cli.add_argument("--duration-s", type=float, default=0)
    cli.add_argument("--ready-file")
    cli.add_argument("--stop-file")
    cli.add_argument("--out", required=True)
    chn = sub.add_parser("churn")
    chn.add_argument("--target", required=True)
    chn.add_argument("--rate", type=float, required=True)
    chn.add_argument("--duration-s", type=float, required=True)
    chn.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.role == "churn":
        Path(args.out).write_text(json.dumps(asyncio.run(churn(args))))
        return 0
    if args.role == "server":
        asyncio.run(serve(args.name, args.port, args.proto, args.ready_file))
        return 0
    result = asyncio.run(client(args))
    tmp = args.out + ".tmp"
    Path(tmp).write_text(json.dumps(result))
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
