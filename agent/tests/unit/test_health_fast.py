"""The callback fast path (TCP_CHECK, plain HTTP_GET) gives the same verdicts and reasons as the coroutine
adapters, against the same real servers."""

from __future__ import annotations

import asyncio
import socket

import pytest
from health_servers import HttpServer, probe, scripted_tcp
from virtual_time import VirtualClock, run_virtual

from hanode.health.checks import fast as fast_module
from hanode.health.checks import run_probe
from hanode.health.checks.fast import FastProbes, eligible, prepare
from hanode.lvs.model import UrlCheck

ROUTES = {"/ok": (200, b"hello", "plain"), "/busy": (503, b"busy", "plain"), "/hang": (200, b"", "hang"),
          "/close": (200, b"", "close")}


async def run_fast(p):
    loop = asyncio.get_running_loop()
    fast = FastProbes(loop)
    done = loop.create_future()
    fast.start(prepare(p), None, lambda _context, result: done.set_result(result))
    try:
        return await done
    finally:
        fast.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def both(make_probe, setup=None):
    """(fast result, coroutine result) for the probe make_probe(context) builds."""
    async def scenario():
        context = await setup() if setup else None
        try:
            p = make_probe(context)
            assert eligible(p)
            return await run_fast(p), await run_probe(p)
        finally:
            if context is not None and hasattr(context, "close"):
                result = context.close()
                if asyncio.iscoroutine(result):
                    await result
    return asyncio.run(scenario())


def http_server():
    return HttpServer(ROUTES).start()


@pytest.mark.parametrize("path, ok, reason", [
    ("/ok", True, None),
    ("/busy", False, "HTTP status 503 not in 200-299 for /busy"),
    ("/close", False, "connection closed before the HTTP status line"),
    ("/hang", False, "HTTP read timeout after 0.3 s"),
])
def test_http_same_verdicts(path, ok, reason):
    fast, slow = both(lambda s: probe("HTTP_GET", s.port, urls=(UrlCheck(path),), connect_timeout_ms=300), http_server)
    assert (fast.ok, fast.reason) == (slow.ok, slow.reason) == (ok, reason)
    assert fast.latency_us > 0


def test_http_request_is_the_same_bytes():
    async def scenario():
        server = await HttpServer(ROUTES).start()
        p = probe("HTTP_GET", server.port, urls=(UrlCheck("/ok"),), virtualhost="www.example.test")
        await run_fast(p)
        await run_probe(p)
        await server.close()
        return server.requests

    fast_request, slow_request = asyncio.run(scenario())
    assert fast_request == slow_request


def test_http_bad_status_line():
    async def setup():
        server, _received = await scripted_tcp([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"])
        server.port = server.sockets[0].getsockname()[1]
        return server
    fast, slow = both(lambda s: probe("HTTP_GET", s.port, urls=(UrlCheck("/"),)), setup)
    assert fast.reason == slow.reason == "bad HTTP status line 'SSH-2.0-OpenSSH_9.2'"


def test_tcp_same_verdicts():
    async def setup():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        server.port = server.sockets[0].getsockname()[1]
        return server
    up = both(lambda s: probe("TCP_CHECK", s.port), setup)
    assert up[0].ok and up[1].ok
    port = free_port()
    refused = both(lambda _: probe("TCP_CHECK", port))
    assert refused[0].reason == refused[1].reason == "connection refused"
    unbindable = both(lambda _: probe("TCP_CHECK", port, bindto="198.51.100.250"))
    assert unbindable[0].reason == unbindable[1].reason
    assert unbindable[0].reason.startswith("cannot bind to 198.51.100.250:0")


def test_tcp_connect_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        fast, slow = both(lambda _: probe("TCP_CHECK", port, connect_timeout_ms=200))
    finally:
        filler.close()
        listener.close()
    assert fast.reason == slow.reason == "connect timeout after 0.2 s"
    assert 150_000 < fast.latency_us < 1_000_000


@pytest.mark.parametrize("kwargs, expected", [
    ({"check_type": "TCP_CHECK"}, True),
    ({"check_type": "HTTP_GET"}, True),
    ({"check_type": "HTTP_GET", "urls": (UrlCheck("/a"), UrlCheck("/b"))}, False),
    ({"check_type": "HTTP_GET", "urls": (UrlCheck("/", digest="0" * 32),)}, False),
    ({"check_type": "SSL_GET"}, False),
    ({"check_type": "TCP_CHECK", "port": None, "fwmark": 7}, False),
])
def test_what_takes_the_fast_path(kwargs, expected):
    check_type = kwargs.pop("check_type")
    port = kwargs.pop("port", 80)
    p = probe(check_type, port, **kwargs)
    assert eligible(p) is expected
    assert (prepare(p) is not None) is expected


def test_abort_closes_the_socket_and_never_reports(monkeypatch):
    """On a virtual clock (the fast path's deadlines too): a check aborted while connecting never reports, though
    a check started with it to the same silent server times out and reports within the time waited."""
    clock = VirtualClock()
    monkeypatch.setattr(fast_module, "_now_ns", lambda: int(clock.now_s * 1e9))

    async def scenario(_clock):
        loop = asyncio.get_running_loop()
        fast = FastProbes(loop)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler = socket.create_connection(listener.getsockname(), timeout=2)  # the kernel now drops further SYNs
        results = []
        target = prepare(probe("TCP_CHECK", listener.getsockname()[1], connect_timeout_ms=100))
        flight = fast.start(target, "aborted", lambda context, result: results.append((context, result)))
        fast.start(target, "control", lambda context, result: results.append((context, result)))
        fast.abort(flight)
        await asyncio.sleep(0.3)
        fileno = flight.sock.fileno()
        fast.close()
        filler.close()
        listener.close()
        return results, fileno, fast.inflight

    results, fileno, inflight = run_virtual(scenario, clock)
    assert [(context, result.ok, result.reason) for context, result in results] == [
        ("control", False, "connect timeout after 0.1 s")]
    assert fileno == -1 and inflight == {}
