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
from typing import Callable, NamedTuple

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
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_FAILED = select.EPOLLERR | select.EPOLLHUP
_SOL_SOCKET, _SO_LINGER = socket.SOL_SOCKET, socket.SO_LINGER
_tuple_new = tuple.__new__          # CheckResult without its Python-level __new__ (thousands a second)
_now_ns = time.monotonic_ns


class Target(NamedTuple):
    """A probe prepared once for the fast path (the check runs every delay_loop: nothing is worked out twice)."""
    family: int
    sockaddr: tuple
    bind: tuple | None
    timeout_s: float
    request: bytes | None             # HTTP_GET: the request; TCP_CHECK: None
    url: UrlCheck | None
    probe: Probe


def eligible(probe: Probe) -> bool:
    if probe.port is None:
        return False
    if probe.type == "TCP_CHECK":
        return True
    if probe.type != "HTTP_GET" or len(probe.check.urls) > 1:
        return False
    url = probe.check.urls[0] if probe.check.urls else _DEFAULT_URL
    return url.digest is None and (getattr(probe.check, "http_protocol", None) or "1.0") == "1.0"


def prepare(probe: Probe) -> Target | None:
    """The fast-path form of a probe, or None when the coroutine adapters must run it."""
    if not eligible(probe):
        return None
    bind = None
    if probe.bind_address is not None or probe.bind_port is not None:
        bind = (probe.bind_address or ("::" if probe.family == 6 else "0.0.0.0"), probe.bind_port or 0)
    request = url = None
    if probe.type == "HTTP_GET":
        url = probe.check.urls[0] if probe.check.urls else _DEFAULT_URL
        request = build_request(url.path, probe.virtualhost or host_header(probe.address, probe.port, False))
    return Target(socket.AF_INET6 if probe.family == 6 else socket.AF_INET, (probe.address, probe.port), bind,
                  probe.timeout_ms / 1000, request, url, probe)


class _Flight:
    __slots__ = ("sock", "fd", "target", "context", "done", "started_ns", "deadline_ns", "phase", "buf")

    def __init__(self, sock: _socket.socket, fd: int, target: Target, context: object,
                 done: Callable[[object, CheckResult], None], started_ns: int):
        self.sock = sock
        self.fd = fd
        self.target = target
        self.context = context
        self.done = done
        self.started_ns = started_ns
        self.deadline_ns = started_ns + int(target.timeout_s * 1e9)
        self.phase = _CONNECT
        self.buf = b""


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

    def start(self, target: Target, context: object, done: Callable[[object, CheckResult], None]) -> _Flight | None:
        """Starts one check; `done(context, result)` is called once, from the event loop, unless abort()ed."""
        started = time.monotonic_ns()
        try:
            sock = _socket.socket(target.family, _STREAM)
        except OSError as exc:
            done(context, CheckResult(False, 0, f"cannot open a socket: {os_reason(exc, 'socket')}"))
            return None
        flight = _Flight(sock, sock.fileno(), target, context, done, started)
        if target.bind is not None:
            try:
                if target.bind[1]:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(target.bind)
            except OSError as exc:
                probe = target.probe
                self._end(flight, False, f"cannot bind to {probe.bind_address or '*'}:{probe.bind_port or 0}: "
                                         f"{os_reason(exc, 'bind')}", registered=False)
                return None
        err = sock.connect_ex(target.sockaddr)
        if err != errno.EINPROGRESS and err:
            self._end(flight, False, os_reason(OSError(err, os.strerror(err))), registered=False)
            return None
        self.inflight[flight.fd] = flight
        self.epoll.register(flight.fd, select.EPOLLOUT)
        if self.sweeper is None:
            self.sweeper = self.loop.call_later(SWEEP_S, self._sweep)
        return flight

    def abort(self, flight: _Flight) -> None:
        if self.inflight.pop(flight.fd, None) is flight:
            flight.sock.close()   # closing the only descriptor of the socket also takes it out of the epoll set

    # ------------------------------------------------------------------------------------------

    def _end(self, flight: _Flight, ok: bool, reason: str | None, registered: bool = True) -> None:
        if registered:
            del self.inflight[flight.fd]
        flight.sock.close()
        flight.done(flight.context, CheckResult(ok, (time.monotonic_ns() - flight.started_ns) // 1000, reason))

    def _ready(self) -> None:
        inflight = self.inflight
        for fd, events in self.epoll.poll(0):
            flight = inflight.get(fd)
            if flight is None:
                continue
            if flight.phase != _CONNECT:
                self._readable(flight)
            elif events & _FAILED:   # only a failed connect needs the error's name
                err = flight.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or errno.ECONNRESET
                self._end(flight, False, os_reason(OSError(err, os.strerror(err))))
            elif flight.target.request is not None:
                self._send(flight)
            else:   # TCP_CHECK passed: the hot path, inlined
                del inflight[fd]
                sock = flight.sock
                sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _RESET)
                sock.close()
                flight.done(flight.context, _tuple_new(CheckResult, (True, (_now_ns() - flight.started_ns) // 1000,
                                                                      None, None)))

    def _send(self, flight: _Flight) -> None:
        try:
            flight.sock.send(flight.target.request)
        except OSError as exc:
            self._end(flight, False, f"HTTP read failed: {os_reason(exc, 'send')}")
            return
        flight.phase = _READ
        flight.deadline_ns = time.monotonic_ns() + int(flight.target.timeout_s * 1e9)
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
        url = flight.target.url
        flight.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        if status_accepted(status, url.status_codes):
            self._end(flight, True, None)
        else:
            self._end(flight, False, f"HTTP status {status} not in {format_ranges(url.status_codes)} for {url.path}")

    def _sweep(self) -> None:
        self.sweeper = None
        now = time.monotonic_ns()
        for flight in [f for f in self.inflight.values() if f.deadline_ns <= now]:
            what = "connect" if flight.phase == _CONNECT else "HTTP read"
            self._end(flight, False, f"{what} timeout after {format_ms(flight.target.probe.timeout_ms)}")
        if self.inflight:
            self.sweeper = self.loop.call_later(SWEEP_S, self._sweep)
