"""The fast path reuses its sockets (connect(AF_UNSPEC) between checks): a server still sees one new
connection per check, from a new source port, ended by a reset as before; a socket's previous check never
leaks into the next one's verdict; nothing piles up in the checker."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from health_servers import HttpServer, probe

from hanode.health.checks.fast import FastProbes, prepare
from hanode.health.hysteresis import CheckResult
from hanode.lvs.model import UrlCheck


class Recorder:
    """A TCP server that records, per connection, the client's port and how the client ended it."""

    def __init__(self) -> None:
        self.ends: list[tuple[int, str]] = []
        self.ended = asyncio.Event()
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str = "127.0.0.1") -> "Recorder":
        self.server = await asyncio.start_server(self._handle, host, 0)
        return self

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("peername")[1]
        try:
            data = await asyncio.wait_for(reader.read(100), 5)
            how = "fin" if not data else "data"
        except ConnectionResetError:
            how = "reset"
        except TimeoutError:
            how = "open"
        self.ends.append((port, how))
        self.ended.set()
        writer.close()

    async def wait(self, count: int) -> None:
        """Until `count` connections have ended (woken by each end, no polling; 5 s only stops a hang)."""
        async with asyncio.timeout(5):
            while len(self.ends) < count:
                self.ended.clear()
                await self.ended.wait()


class Checks:
    """FastProbes as the scheduler drives it: reusable flights launched again and again, results handed over
    in batches."""

    def __init__(self) -> None:
        self.fast = FastProbes(asyncio.get_running_loop(), self._finished)
        self.waiting: dict[object, asyncio.Future] = {}

    def _finished(self, passed, results) -> None:
        for context, latency_us in passed:
            self.waiting.pop(context).set_result(CheckResult(True, latency_us))
        for context, result in results:
            self.waiting.pop(context).set_result(result)

    def flight(self, p):
        return self.fast.flight(prepare(p), object())

    async def run(self, flight) -> CheckResult:
        """One more run of a reusable flight; its result."""
        done = self.waiting[flight.context] = asyncio.get_running_loop().create_future()
        self.fast.launch_all((flight,))
        return await asyncio.wait_for(done, 5)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_passed_checks_reuse_one_socket_and_end_each_connection_with_a_reset():
    async def scenario():
        recorder = await Recorder().start()
        checks = Checks()
        fast = checks.fast
        flight = checks.flight(probe("TCP_CHECK", recorder.port))
        fds_before = open_fds()
        results, pooled = [], []
        for _check in range(5):
            results.append(await checks.run(flight))
            pooled.append(list(fast.pools[socket.AF_INET]))
        await recorder.wait(5)
        fds_after = open_fds()
        fast.close()
        recorder.server.close()
        return results, pooled, recorder.ends, fds_after - fds_before

    results, pooled, ends, new_fds = asyncio.run(scenario())
    assert all(r.ok and r.reason is None for r in results)
    assert all(len(p) == 1 and p[0] is pooled[0][0] for p in pooled), "one socket, reused by every check"
    assert [how for _port, how in ends] == ["reset"] * 5
    assert len({port for port, _how in ends}) == 5, "every check connects from a new source port"
    assert new_fds == 1


def test_verdicts_of_consecutive_checks_on_one_socket_never_mix():
    """Alternating a live and a refusing server on the same pooled socket(s): the wakeups a socket's previous
    check left behind must not pass a refused check or fail a live one."""
    async def scenario():
        live = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        with socket.socket() as probe_port:
            probe_port.bind(("127.0.0.1", 0))
            dead_port = probe_port.getsockname()[1]
        checks = Checks()
        up = checks.flight(probe("TCP_CHECK", live.sockets[0].getsockname()[1]))
        down = checks.flight(probe("TCP_CHECK", dead_port))
        verdicts = []
        for _pair in range(20):
            verdicts.append((await checks.run(up)).reason)
            verdicts.append((await checks.run(down)).reason)
        checks.fast.close()
        live.close()
        return verdicts

    assert asyncio.run(scenario()) == [None, "connection refused"] * 20


ROUTES = {"/ok": (200, b"hello", "plain"), "/busy": (503, b"busy", "plain"), "/close": (200, b"", "close")}


def test_http_checks_on_reused_sockets_keep_their_verdicts_and_requests():
    async def scenario():
        server = await HttpServer(ROUTES).start()
        checks = Checks()
        flights = {path: checks.flight(probe("HTTP_GET", server.port, urls=(UrlCheck(path),))) for path in ROUTES}
        reasons = []
        for _round in range(3):
            for path in ("/ok", "/busy", "/ok", "/close", "/ok"):
                reasons.append((await checks.run(flights[path])).reason)
        pooled = len(checks.fast.pools[socket.AF_INET])
        checks.fast.close()
        await server.close()
        return reasons, pooled, server.requests

    reasons, pooled, requests = asyncio.run(scenario())
    assert reasons == [None, "HTTP status 503 not in 200-299 for /busy", None,
                       "connection closed before the HTTP status line", None] * 3
    assert pooled == 1   # a passed check gives its socket back; a failed one closes it
    assert len(requests) == 15 and all(r.startswith(b"GET /") for r in requests)


@pytest.mark.parametrize("line, reason", [
    (b"HTTP/1.0 200 OK\r\n", None),
    (b"HTTP/1.1 200\r\n", None),
    (b"HTTP/1.0 200\tOK\r\n", None),          # not the common form: read by parse_status_line, same verdict
    (b"HTTP/2 204 No Content\r\n", None),
    (b"HTTP/1.0  200 OK\r\n", None),
    (b"HTTP/1.0 2000 OK\r\n", "bad HTTP status line 'HTTP/1.0 2000 OK'"),
    (b"HTTP/1.0 200OK\r\n", "bad HTTP status line 'HTTP/1.0 200OK'"),
    (b"HTTP/1.0 404 Not Found\r\n", "HTTP status 404 not in 200-299 for /"),
])
def test_status_line_forms(line, reason):
    """The shortcut for 'HTTP/1.x NNN' and the full parser agree on every form around it."""
    async def scenario():
        async def answer(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(line + b"Content-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        checks = Checks()
        result = await checks.run(checks.flight(probe("HTTP_GET", server.sockets[0].getsockname()[1],
                                                      urls=(UrlCheck("/"),))))
        checks.fast.close()
        server.close()
        return result

    assert asyncio.run(scenario()).reason == reason


def test_ipv6_sockets_are_reused_too():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")

    async def scenario():
        try:
            recorder = await Recorder().start("::1")
        except OSError:
            pytest.skip("no ::1 here")
        checks = Checks()
        flight = checks.flight(probe("TCP_CHECK", recorder.port, address="::1"))
        results = [await checks.run(flight) for _check in range(3)]
        await recorder.wait(3)
        pooled = len(checks.fast.pools[socket.AF_INET6])
        checks.fast.close()
        recorder.server.close()
        return results, pooled, recorder.ends

    results, pooled, ends = asyncio.run(scenario())
    assert all(r.ok for r in results) and pooled == 1
    assert [how for _port, how in ends] == ["reset"] * 3
