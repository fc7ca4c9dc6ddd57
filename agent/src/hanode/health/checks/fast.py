"""The hot path for the common checks: TCP_CHECK, and HTTP_GET with one url and no digest.

Thousands of checks a second cost little CPU when each one is a handful of syscalls and no Python object
beyond its result: no coroutine, task, future or socket object per check. One epoll set of our own
(registered once with the event loop) holds the sockets; each check is a non-blocking connect, (HTTP) one
send and reads until the status line, then a reset (as HAProxy's checks close: no TIME_WAIT pile-up on the
checker at thousands of checks a second).

The sockets are reused: a finished check's socket is dissolved with connect(AF_UNSPEC), which on Linux
sends the peer a reset exactly as a close with SO_LINGER 0 does, and returns the socket to the unconnected
state with no local port; the next check's connect picks a new source port. So a passing TCP_CHECK costs
two syscalls (connect, disconnect) plus its share of one epoll_wait, instead of six (socket, connect,
epoll_ctl, setsockopt, close and the wait); a passing HTTP_GET adds one send and one recv. Pooled sockets
stay in the epoll set, edge-triggered for both directions: epoll re-reads a socket's state when it reports
it, so a wakeup left over from a socket's previous check reports the current check's state or nothing.
A check that fails, times out or binds a source address closes its socket as before (rare, and a bound
socket cannot be reused for another source).

Results and failure reasons are the same as the coroutine adapters' (tcp.py, http.py); every other check
type or option goes there. Timeouts are swept every 40 to 60 ms, on the scheduler's ticks.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import functools
import os
import select
import _socket
import socket
import struct
import time
from typing import Callable, Iterable, NamedTuple

from hanode.health.checks.base import os_reason
from hanode.health.httpwire import HttpError, build_request, format_ranges, host_header, parse_status_line, \
    status_accepted
from hanode.health.grid import tick_ahead
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe, format_ms
from hanode.lvs.model import UrlCheck

_SWEEP_TICKS = 3                    # timeouts are swept every 2 to 3 ticks of the checker's grid
MAX_STATUS_LINE = 4096
POOL_MAX = 256                      # idle sockets kept per address family (about the checks started per tick)
_CONNECT, _SEND, _READ = 0, 1, 2     # TCP_CHECK connecting; HTTP_GET connecting; HTTP_GET reading the status
_EINPROGRESS = errno.EINPROGRESS
_DEFAULT_URL = UrlCheck()
_RESET = struct.pack("ii", 1, 0)   # SO_LINGER on, 0 s: close with a reset (no TIME_WAIT here), as HAProxy's checks
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_FAILED = select.EPOLLERR | select.EPOLLHUP
_OUT, _IN = select.EPOLLOUT, select.EPOLLIN
_IN_OR_FAILED = _IN | _FAILED
_OUT_OR_FAILED = _OUT | _FAILED
_POOLED_EVENTS = select.EPOLLIN | select.EPOLLOUT | select.EPOLLET
_SOL_SOCKET, _SO_LINGER, _SO_ERROR = socket.SOL_SOCKET, socket.SO_LINGER, socket.SO_ERROR
_HTTP_1X = (b"HTTP/1.0 ", b"HTTP/1.1 ")
_now_ns = time.monotonic_ns
_NO_CODES: frozenset = frozenset()  # TCP_CHECK's `accepted`: one object (each frozenset() is a new 216-byte set)


def _libc_connect() -> Callable | None:
    """libc's connect(), to dissolve a connection with an AF_UNSPEC address (0 on success); None where it
    cannot be had: no pooling then."""
    try:
        return ctypes.CDLL(None).connect
    except (OSError, AttributeError):
        return None


_connect = _libc_connect()
_UNSPEC = ctypes.create_string_buffer(16)   # a sockaddr whose sa_family is AF_UNSPEC (0)


class Target(NamedTuple):
    """A probe prepared once for the fast path (the check runs every delay_loop: nothing is worked out twice)."""
    family: int
    sockaddr: tuple
    bind: tuple | None
    request: bytes | None             # HTTP_GET: the request; TCP_CHECK: None
    url: UrlCheck | None
    probe: Probe
    timeout_ns: int
    accepted: frozenset = _NO_CODES    # HTTP_GET: the accepted status codes as 3 ASCII digits (b"200")


def eligible(probe: Probe) -> bool:
    """TCP_CHECK, and HTTP_GET of one url read by its status line (HTTP/1.0, no digest, no regex); neither
    marked (fwmark) nor bound to a device (bind_if): those run in the coroutine adapters."""
    if probe.port is None or probe.fwmark or probe.bind_if:
        return False
    if probe.type == "TCP_CHECK":
        return True
    if probe.type != "HTTP_GET" or len(probe.check.urls) > 1:
        return False
    url = probe.check.urls[0] if probe.check.urls else _DEFAULT_URL
    return url.digest is None and url.regex is None and probe.check.http_protocol == "1.0"


def prepare(probe: Probe) -> Target | None:
    """The fast-path form of a probe, or None when the coroutine adapters must run it."""
    if not eligible(probe):
        return None
    bind = None
    if probe.bind_address is not None or probe.bind_port is not None:
        bind = (probe.bind_address or ("::" if probe.family == 6 else "0.0.0.0"), probe.bind_port or 0)
    request = url = None
    accepted = _NO_CODES
    if probe.type == "HTTP_GET":
        url = probe.check.urls[0] if probe.check.urls else _DEFAULT_URL
        request = build_request(url.path, url.virtualhost or probe.virtualhost or
                                host_header(probe.address, probe.port, False))
        accepted = accepted_codes(url.status_codes)
    return Target(socket.AF_INET6 if probe.family == 6 else socket.AF_INET, (probe.address, probe.port), bind,
                  request, url, probe, timeout_ns(probe.timeout_ms), accepted)


@functools.lru_cache(maxsize=64)
def timeout_ns(timeout_ms: int) -> int:
    """One int object per distinct timeout (a billion is no small int: 8,000 targets made 8,000 of them)."""
    return timeout_ms * 1_000_000


@functools.lru_cache(maxsize=64)
def accepted_codes(ranges: tuple[tuple[int, int], ...]) -> frozenset:
    """The 3-digit statuses `ranges` accept, as the bytes a status line carries (b"200"); shared by every check
    with the same status_code (thousands of real servers: one set)."""
    return frozenset(b"%03d" % code for low, high in ranges for code in range(max(low, 0), min(high, 999) + 1))


class Flight:
    """One check of one target, run again and again (launch_all): the scheduler's Slot is one, and
    FastProbes.flight() makes plain ones. What each run reads is copied here from the target by adopt()
    (one object to touch per check). `sock` and `fd` are those of the run in progress; after it they may
    already belong to another check's run."""
    __slots__ = ("sock", "fd", "target", "sockaddr", "request", "accepted", "timeout_ns", "context", "started_ns",
                 "deadline_ns", "phase", "buf", "pool")

    def __init__(self) -> None:
        self.sock: _socket.socket | None = None
        self.fd = -1
        self.target: Target | None = None
        self.context: object = None
        self.started_ns = self.deadline_ns = 0


def _rewind(flight: Flight) -> None:
    """Ready for its next run (an HTTP_GET that got as far as reading connects and sends again)."""
    if flight.phase == _READ:
        flight.phase, flight.buf = _SEND, b""


def _each_done(passed: list[tuple[object, int]], results: list[tuple[object, CheckResult]]) -> None:
    """FastProbes' default hand-over: each flight's own done(context, result) (see FastProbes.flight)."""
    for (done, context), latency_us in passed:
        done(context, CheckResult(True, latency_us))
    for (done, context), result in results:
        done(context, result)


class FastProbes:
    """The checks in flight on the fast path. Results are handed over in batches, those of the checks that
    ended together: `finished(passed, results)` gets the passed checks as (context, latency_us) pairs (the
    hot path makes no CheckResult) and every other result as (context, CheckResult) pairs. Without
    `finished`, each flight's own `done(context, result)` is called instead."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 finished: Callable[[list[tuple[object, int]], list[tuple[object, CheckResult]]], None] | None = None):
        self.loop = loop
        self.finished = finished or _each_done
        self.plain = finished is None
        self.passed: list[tuple[object, int]] = []             # not handed over yet
        self.results: list[tuple[object, CheckResult]] = []    # not handed over yet
        self.epoll = select.epoll()
        self.inflight: dict[int, Flight] = {}
        self.pools: dict[int, list[_socket.socket]] = {socket.AF_INET: [], socket.AF_INET6: []}
        self.sweeper: asyncio.TimerHandle | None = None
        loop.add_reader(self.epoll.fileno(), self._ready)

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
        for flight in list(self.inflight.values()):
            flight.sock.close()
        self.inflight.clear()
        for pool in self.pools.values():
            for sock in pool:
                sock.close()
            pool.clear()
        self.loop.remove_reader(self.epoll.fileno())
        self.epoll.close()

    def adopt(self, flight: Flight, target: Target, context: object) -> None:
        """Makes `flight` run `target`; its results are handed over with `context`."""
        flight.target = target
        flight.sockaddr = target.sockaddr
        flight.request = target.request
        flight.accepted = target.accepted
        flight.timeout_ns = target.timeout_ns
        flight.context = context
        flight.phase = _CONNECT if target.request is None else _SEND
        flight.buf = b""
        # where the socket goes back after a passed check (None: a socket of its own, closed after each run)
        flight.pool = self.pools[target.family] if target.bind is None and _connect is not None else None

    def flight(self, target: Target, context: object,
               done: Callable[[object, CheckResult], None] | None = None) -> Flight:
        """A check that launch_all() runs, as often as asked. Each run's result is handed over once, from
        launch_all() or the event loop, unless abort()ed: to `finished` with `context`, or, without
        `finished`, to `done(context, result)`."""
        flight = Flight()
        self.adopt(flight, target, (done, context) if self.plain else context)
        return flight

    def start(self, target: Target, context: object,
              done: Callable[[object, CheckResult], None] | None = None) -> Flight | None:
        """Starts one check (see flight()). Returns the flight in progress, or None when it already ended."""
        flight = self.flight(target, context, done)
        self.launch_all((flight,))
        return flight if self.running(flight) else None

    def running(self, flight: Flight) -> bool:
        return flight.fd >= 0 and self.inflight.get(flight.fd) is flight

    def launch_all(self, flights: Iterable[Flight]) -> None:
        """Runs each check once more, then finishes those whose answer is already in (on a fast network many
        have connected by then, and no loop iteration is spent waiting for them)."""
        inflight = self.inflight
        for flight in flights:   # (a flight's phase and buf were reset when its previous run ended)
            flight.started_ns = _now_ns()
            pool = flight.pool
            sock = pool.pop() if pool else self._new_socket(flight)
            if sock is None:
                continue
            flight.sock = sock
            flight.fd = fd = sock.fileno()
            err = sock.connect_ex(flight.sockaddr)
            if err and err != _EINPROGRESS:
                self._end(flight, False, os_reason(OSError(err, os.strerror(err))), registered=False)
                continue
            inflight[fd] = flight
        if self.sweeper is None and inflight:
            self._arm_sweeper()
        self._ready()

    def abort(self, flight: Flight) -> None:
        if self.running(flight):
            del self.inflight[flight.fd]
            flight.sock.close()   # closing the only descriptor of the socket also takes it out of the epoll set
            _rewind(flight)

    # ------------------------------------------------------------------------------------------

    def _new_socket(self, flight: Flight) -> _socket.socket | None:
        """A new socket for the pool (its pool is empty), or one of its own for a check with a source address;
        None when that failed (the check is over: its result is in self.results)."""
        target = flight.target
        try:
            sock = _socket.socket(target.family, _STREAM)
        except OSError as exc:
            self.results.append((flight.context, CheckResult(False, 0, f"cannot open a socket: "
                                                                       f"{os_reason(exc, 'socket')}")))
            return None
        try:
            self.epoll.register(sock.fileno(), _POOLED_EVENTS)
        except OSError as exc:
            sock.close()
            self.results.append((flight.context, CheckResult(False, 0, f"cannot watch a socket: "
                                                                       f"{os_reason(exc, 'epoll')}")))
            return None
        if target.bind is not None:
            try:
                if target.bind[1]:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(target.bind)
            except OSError as exc:
                flight.sock = sock
                probe = target.probe
                self._end(flight, False, f"cannot bind to {probe.bind_address or '*'}:{probe.bind_port or 0}: "
                                         f"{os_reason(exc, 'bind')}", registered=False)
                return None
        return sock

    def _arm_sweeper(self) -> None:
        """The next sweep, 40 to 60 ms ahead on the checker's 20 ms grid: it shares the lag watch's wakeups."""
        self.sweeper = self.loop.call_at(tick_ahead(self.loop.time(), _SWEEP_TICKS), self._sweep)

    def _release(self, flight: Flight) -> None:
        """After a passed check: the socket is reset and goes back to its pool (or is closed with a reset)."""
        sock, pool = flight.sock, flight.pool
        if pool is not None and len(pool) < POOL_MAX and not _connect(flight.fd, _UNSPEC, 16):
            pool.append(sock)
        else:
            sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _RESET)
            sock.close()

    def _end(self, flight: Flight, ok: bool, reason: str | None, registered: bool = True) -> None:
        """A failed check (or a passed one off the inlined paths): its socket is closed, its result queued."""
        if registered:
            del self.inflight[flight.fd]
        if ok:
            self._release(flight)
        else:
            flight.sock.close()
        _rewind(flight)
        latency_us = (_now_ns() - flight.started_ns) // 1000
        if ok:
            self.passed.append((flight.context, latency_us))
        else:
            self.results.append((flight.context, CheckResult(False, latency_us, reason)))

    def _hand_over(self) -> None:
        passed, results = self.passed, self.results
        if passed or results:
            self.passed, self.results = [], []
            self.finished(passed, results)

    def _ready(self) -> None:
        inflight, passed = self.inflight, self.passed
        now = _now_ns()
        for fd, events in self.epoll.poll(0):
            flight = inflight.get(fd)
            if flight is None:   # a pooled socket's wakeup from its previous check
                continue
            phase = flight.phase
            if not phase and events & _OUT_OR_FAILED == _OUT:   # TCP_CHECK passed: the hot path, inlined
                del inflight[fd]
                pool = flight.pool
                if pool is not None and len(pool) < POOL_MAX and not _connect(fd, _UNSPEC, 16):
                    pool.append(flight.sock)
                else:
                    flight.sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _RESET)
                    flight.sock.close()
                passed.append((flight.context, (now - flight.started_ns) // 1000))
            elif phase == _READ:
                if events & _IN_OR_FAILED:
                    self._readable(flight, now)
            elif events & _FAILED:   # only a failed connect needs the error's name
                err = flight.sock.getsockopt(_SOL_SOCKET, _SO_ERROR) or errno.ECONNRESET
                self._end(flight, False, os_reason(OSError(err, os.strerror(err))))
            elif events & _OUT:
                self._send(flight, events, now)
        self._hand_over()

    def _send(self, flight: Flight, events: int, now: int) -> None:
        try:
            flight.sock.send(flight.request)
        except OSError as exc:
            self._end(flight, False, f"HTTP read failed: {os_reason(exc, 'send')}")
            return
        flight.phase = _READ
        flight.deadline_ns = now + flight.timeout_ns
        if events & _IN:   # the answer (or the peer's close) is already there: no new wakeup will say so
            self._readable(flight, now)

    def _readable(self, flight: Flight, now: int) -> None:
        sock, buf = flight.sock, flight.buf
        while True:   # edge-triggered: read until the status line or until the socket has nothing more
            try:
                data = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._end(flight, False, f"HTTP read failed: {os_reason(exc, 'receive')}")
                return
            if not data:
                reason = ("connection closed before the HTTP status line" if not buf else
                          f"connection closed in the HTTP headers after {len(buf)} bytes")
                self._end(flight, False, reason)
                return
            if buf:
                data = buf + data
            end = data.find(b"\r\n")
            if end >= 0:
                break
            flight.buf = buf = data
            if len(data) > MAX_STATUS_LINE:
                self._end(flight, False, f"bad HTTP status line {data[:80].decode('latin-1')!r}")
                return
        if data[9:12] in flight.accepted and data.startswith(_HTTP_1X) and (end == 12 or data[12] == 32):
            # 'HTTP/1.x NNN ...' with an accepted status: what parse_status_line() reads, without a str
            fd = flight.fd
            del self.inflight[fd]
            pool = flight.pool
            if pool is not None and len(pool) < POOL_MAX and not _connect(fd, _UNSPEC, 16):
                pool.append(sock)
            else:
                sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _RESET)
                sock.close()
            flight.phase, flight.buf = _SEND, b""
            self.passed.append((flight.context, (now - flight.started_ns) // 1000))
            return
        target = flight.target
        try:
            _version, status = parse_status_line(data[:end].decode("latin-1"))
        except HttpError as exc:
            self._end(flight, False, str(exc))
            return
        url = target.url
        if status_accepted(status, url.status_codes):
            self._end(flight, True, None)
        else:
            self._end(flight, False, f"HTTP status {status} not in {format_ranges(url.status_codes)} for {url.path}")

    def _sweep(self) -> None:
        self.sweeper = None
        now = _now_ns()
        for flight in [f for f in self.inflight.values()
                       if (f.deadline_ns if f.phase == _READ else f.started_ns + f.timeout_ns) <= now]:
            what = "HTTP read" if flight.phase == _READ else "connect"
            self._end(flight, False, f"{what} timeout after {format_ms(flight.target.probe.timeout_ms)}")
        self._hand_over()
        if self.inflight:
            self._arm_sweeper()
