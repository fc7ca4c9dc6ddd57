"""The hot path for the common checks: TCP_CHECK, and HTTP_GET with one url and no digest.

Thousands of checks a second cost little CPU when each one is a handful of syscalls and callbacks: no
coroutine, task or future per check. One epoll set of our own (registered once with the event loop) holds
the sockets of the checks in flight; each check is a non-blocking connect, (HTTP) one send and reads
until the status line, then close with a reset (SO_LINGER 0, as HAProxy's checks do: no TIME_WAIT pile-up on
the checker at thousands of checks a second). Timeouts are swept every 50 ms. Results and failure reasons are the
same as the coroutine adapters' (tcp.py, http.py); every other check type or option goes there.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import _socket
import socket
import struct
import time
from typing import Callable

from hanode.health.checks.base import os_reason
from hanode.health.httpwire import HttpError, build_request, format_ranges, host_header, parse_status_line, \
    status_accepted
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe, format_ms
from hanode.lvs.model import UrlCheck

SWEEP_S = 0.05
MAX_STATUS_LINE = 4096
_CONNECT, _READ = 0, 1
_DEFAULT_URL = UrlCheck()
_RESET = struct.pack("ii", 1, 0)   # SO_LINGER on, 0 s: close with a reset (no TIME_WAIT here), as HAProxy's checks


def eligible(probe: Probe) -> bool:
    if probe.port is None:
        return False
    if probe.type == "TCP_CHECK":
        return True
    if probe.type != "HTTP_GET" or len(probe.check.urls) > 1:
        return False
    url = probe.check.urls[0] if probe.check.urls else _DEFAULT_URL
    return url.digest is None and (getattr(probe.check, "http_protocol", None) or "1.0") == "1.0"


class _Flight:
    __slots__ = ("sock", "fd", "probe", "done", "started_ns", "deadline", "phase", "buf", "url")

    def __init__(self, sock: _socket.socket, probe: Probe, done: Callable[[CheckResult], None], started_ns: int):
        self.sock = sock
        self.fd = sock.fileno()
        self.probe = probe
        self.done = done
        self.started_ns = started_ns
        self.deadline = time.monotonic() + probe.timeout_ms / 1000
        self.phase = _CONNECT
        self.buf = b""
        self.url: UrlCheck | None = None


class FastProbes:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.epoll = select.epoll()
        self.inflight: dict[int, _Flight] = {}
        self.sweeper: asyncio.TimerHandle | None = None
        loop.add_reader(self.epoll.fileno(), self._ready)

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
        for flight in list(self.inflight.values()):
            flight.sock.close()
        self.inflight.clear()
        self.loop.remove_reader(self.epoll.fileno())
        self.epoll.close()

    def start(self, probe: Probe, done: Callable[[CheckResult], None]) -> _Flight | None:
        """Starts one check; `done(result)` is called once, from the event loop, unless abort()ed."""
        started = time.monotonic_ns()
        family = socket.AF_INET6 if probe.family == 6 else socket.AF_INET
        try:
            sock = _socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        except OSError as exc:
            done(CheckResult(False, 0, f"cannot open a socket: {os_reason(exc, 'socket')}"))
            return None
        flight = _Flight(sock, probe, done, started)
        if probe.bind_address is not None or probe.bind_port is not None:
            try:
                if probe.bind_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((probe.bind_address or ("::" if probe.family == 6 else "0.0.0.0"), probe.bind_port or 0))
            except OSError as exc:
                self._end(flight, False, f"cannot bind to {probe.bind_address or '*'}:{probe.bind_port or 0}: "
                                         f"{os_reason(exc, 'bind')}", registered=False)
                return None
        err = sock.connect_ex((probe.address, probe.port))
        if err not in (0, errno.EINPROGRESS):
            self._end(flight, False, os_reason(OSError(err, os.strerror(err))), registered=False)
            return None
        self.inflight[flight.fd] = flight
        self.epoll.register(flight.fd, select.EPOLLOUT)
        if self.sweeper is None:
            self.sweeper = self.loop.call_later(SWEEP_S, self._sweep)
        return flight

    def abort(self, flight: _Flight) -> None:
        if self.inflight.pop(flight.fd, None) is flight:
            self._forget(flight)

    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _forget(flight: _Flight) -> None:
        flight.sock.close()  # closing the only descriptor of the socket also takes it out of the epoll set

    def _end(self, flight: _Flight, ok: bool, reason: str | None, registered: bool = True) -> None:
        if registered:
            self.inflight.pop(flight.fd, None)
            self._forget(flight)
        else:
            flight.sock.close()
        flight.done(CheckResult(ok, (time.monotonic_ns() - flight.started_ns) // 1000, reason))

    def _ready(self) -> None:
        for fd, events in self.epoll.poll(0):
            flight = self.inflight.get(fd)
            if flight is None:
                continue
            if flight.phase == _CONNECT:
                self._connected(flight, events)
            else:
                self._readable(flight)

    def _connected(self, flight: _Flight, events: int) -> None:
        if events & (select.EPOLLERR | select.EPOLLHUP):   # only a failed connect needs the error's name
            err = flight.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or errno.ECONNRESET
            self._end(flight, False, os_reason(OSError(err, os.strerror(err))))
            return
        probe = flight.probe
        if probe.type == "TCP_CHECK":
            flight.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            self._end(flight, True, None)
            return
        url = probe.check.urls[0] if probe.check.urls else _DEFAULT_URL
        host = probe.virtualhost or host_header(probe.address, probe.port, False)
        try:
            flight.sock.send(build_request(url.path, host))
        except OSError as exc:
            self._end(flight, False, f"HTTP read failed: {os_reason(exc, 'send')}")
            return
        flight.url, flight.phase = url, _READ
        flight.deadline = time.monotonic() + probe.timeout_ms / 1000
        self.epoll.modify(flight.fd, select.EPOLLIN)

    def _readable(self, flight: _Flight) -> None:
        try:
            data = flight.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._end(flight, False, f"HTTP read failed: {os_reason(exc, 'receive')}")
            return
        if not data:
            reason = ("connection closed before the HTTP status line" if not flight.buf else
                      f"connection closed in the HTTP headers after {len(flight.buf)} bytes")
            self._end(flight, False, reason)
            return
        flight.buf += data
        line, sep, _ = flight.buf.partition(b"\r\n")
        if not sep:
            if len(flight.buf) > MAX_STATUS_LINE:
                self._end(flight, False, f"bad HTTP status line {flight.buf[:80].decode('latin-1')!r}")
            return
        try:
            _version, status = parse_status_line(line.decode("latin-1"))
        except HttpError as exc:
            self._end(flight, False, str(exc))
            return
        url = flight.url
        flight.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        if status_accepted(status, url.status_codes):
            self._end(flight, True, None)
        else:
            self._end(flight, False, f"HTTP status {status} not in {format_ranges(url.status_codes)} for {url.path}")

    def _sweep(self) -> None:
        self.sweeper = None
        now = time.monotonic()
        for flight in [f for f in self.inflight.values() if f.deadline <= now]:
            what = "connect" if flight.phase == _CONNECT else "HTTP read"
            self._end(flight, False, f"{what} timeout after {format_ms(flight.probe.timeout_ms)}")
        if self.inflight:
            self.sweeper = self.loop.call_later(SWEEP_S, self._sweep)
