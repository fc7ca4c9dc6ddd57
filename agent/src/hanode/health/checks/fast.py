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
from typing import Callable, NamedTuple

from hanode.health.checks.base import os_reason
from hanode.health.httpwire import HttpError, build_request, format_ranges, host_header, parse_status_line, \
    status_accepted
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe, format_ms
from hanode.lvs.model import UrlCheck

_GRID_PER_S = 50                    # the scheduler's timer wheel ticks every 20 ms (TimerWheel.TICK_MS) ...
_SWEEP_TICKS = 3                    # ... and timeouts are swept every 2 to 3 of its ticks
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
_tuple_new = tuple.__new__          # CheckResult without its Python-level __new__ (thousands a second)
_now_ns = time.monotonic_ns


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
    timeout_s: float
    request: bytes | None             # HTTP_GET: the request; TCP_CHECK: None
    url: UrlCheck | None
    probe: Probe
    timeout_ns: int = 0
    accepted: frozenset = frozenset()  # HTTP_GET: the accepted status codes as 3 ASCII digits (b"200")


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
    accepted: frozenset = frozenset()
    if probe.type == "HTTP_GET":
        url = probe.check.urls[0] if probe.check.urls else _DEFAULT_URL
        request = build_request(url.path, probe.virtualhost or host_header(probe.address, probe.port, False))
        accepted = accepted_codes(url.status_codes)
    return Target(socket.AF_INET6 if probe.family == 6 else socket.AF_INET, (probe.address, probe.port), bind,
                  probe.timeout_ms / 1000, request, url, probe, probe.timeout_ms * 1_000_000, accepted)


@functools.lru_cache(maxsize=64)
def accepted_codes(ranges: tuple[tuple[int, int], ...]) -> frozenset:
    """The 3-digit statuses `ranges` accept, as the bytes a status line carries (b"200"); shared by every check
    with the same status_code (thousands of real servers: one set)."""
    return frozenset(b"%03d" % code for low, high in ranges for code in range(max(low, 0), min(high, 999) + 1))


class _Flight:
    """One check of one target; the scheduler keeps one per check and launches it again on every run. What
    each run reads is copied here from the target (one object to touch per check). `sock` and `fd` are those
    of the run in progress; after it they may already belong to another check's run."""
    __slots__ = ("sock", "fd", "target", "sockaddr", "request", "timeout_ns", "context", "started_ns",
                 "deadline_ns", "phase", "buf", "pool")

    def __init__(self, target: Target, context: object, pool: list | None):
        self.sock: _socket.socket | None = None
        self.fd = -1
        self.target = target
        self.sockaddr = target.sockaddr
        self.request = target.request
        self.timeout_ns = target.timeout_ns
        self.context = context
        self.started_ns = self.deadline_ns = 0
        self.phase = _CONNECT if target.request is None else _SEND
        self.buf = b""
        # where the socket goes back after a passed check (None: a socket of its own, closed after each run)
        self.pool = pool


def _each_done(results: list[tuple[object, CheckResult]]) -> None:
    """FastProbes' default hand-over: each flight's own done(context, result) (see FastProbes.flight)."""
    for (done, context), result in results:
        done(context, result)


class FastProbes:
    """The checks in flight on the fast path. Results are handed over in batches, those of the checks that
    ended together: `finished(results)` gets (context, result) pairs. Without `finished`, each flight's own
    `done(context, result)` is called instead."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 finished: Callable[[list[tuple[object, CheckResult]]], None] | None = None):
        self.loop = loop
        self.finished = finished
        self.results: list[tuple[object, CheckResult]] = []   # not handed over yet
        self.epoll = select.epoll()
        self.inflight: dict[int, _Flight] = {}
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

    def flight(self, target: Target, context: object,
               done: Callable[[object, CheckResult], None] | None = None) -> _Flight:
        """A check that launch() runs, as often as asked. Each run's result is handed over once, from the event
        loop (or from launch() itself when the check fails at once), unless abort()ed: to `finished` with
        `context`, or, without `finished`, to `done(context, result)`."""
        pooled = target.bind is None and _connect is not None
        if self.finished is None:
            context = (done, context)
        return _Flight(target, context, self.pools[target.family] if pooled else None)

    def start(self, target: Target, context: object,
              done: Callable[[object, CheckResult], None] | None = None) -> _Flight | None:
        """Starts one check (see flight()). Returns the flight in progress, or None when it already ended."""
        flight = self.flight(target, context, done)
        return flight if self.launch(flight) else None

    def launch(self, flight: _Flight) -> bool:
        """Runs the check once more; False when it ended at once (its result already handed over)."""
        if flight.phase == _READ:
            flight.phase = _SEND
            flight.buf = b""
        flight.started_ns = started = _now_ns()
        flight.deadline_ns = started + flight.timeout_ns
        pool = flight.pool
        sock = pool.pop() if pool else self._new_socket(flight)
        if sock is None:
            self._hand_over()
            return False
        flight.sock = sock
        flight.fd = fd = sock.fileno()
        err = sock.connect_ex(flight.sockaddr)
        if err and err != _EINPROGRESS:
            self._end(flight, False, os_reason(OSError(err, os.strerror(err))), registered=False)
            self._hand_over()
            return False
        self.inflight[fd] = flight
        if self.sweeper is None:
            self._arm_sweeper()
        return True

    def poll(self) -> None:
        """Finishes every check whose answer is already in (the scheduler calls it right after starting a
        batch: on a fast network many have connected already, and no loop iteration is spent waiting)."""
        self._ready()

    def abort(self, flight: _Flight) -> None:
        if flight.fd >= 0 and self.inflight.get(flight.fd) is flight:
            del self.inflight[flight.fd]
            flight.sock.close()   # closing the only descriptor of the socket also takes it out of the epoll set

    # ------------------------------------------------------------------------------------------

    def _new_socket(self, flight: _Flight) -> _socket.socket | None:
        """A new socket for the pool (its pool is empty), or one of its own for a check with a source address;
        None when that failed (the check is over: its result is in self.results)."""
        target = flight.target
        try:
            sock = _socket.socket(target.family, _STREAM)
        except OSError as exc:
            self.results.append((flight.context, CheckResult(False, 0, f"cannot open a socket: "
                                                                       f"{os_reason(exc, 'socket')}")))
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
        self.epoll.register(sock.fileno(), _POOLED_EVENTS)
        return sock

    def _arm_sweeper(self) -> None:
        """The next sweep, 40 to 60 ms ahead on the scheduler's 20 ms tick: it shares the wheel's wakeup."""
        self.sweeper = self.loop.call_at((int(self.loop.time() * _GRID_PER_S) + _SWEEP_TICKS) / _GRID_PER_S,
                                         self._sweep)

    def _release(self, flight: _Flight) -> None:
        """After a passed check: the socket is reset and goes back to its pool (or is closed with a reset)."""
        sock, pool = flight.sock, flight.pool
        if pool is not None and len(pool) < POOL_MAX and not _connect(flight.fd, _UNSPEC, 16):
            pool.append(sock)
        else:
            sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _RESET)
            sock.close()

    def _end(self, flight: _Flight, ok: bool, reason: str | None, registered: bool = True) -> None:
        """A failed check (or a passed one off the inlined paths): its socket is closed, its result queued."""
        if registered:
            del self.inflight[flight.fd]
        if ok:
            self._release(flight)
        else:
            flight.sock.close()
        self.results.append((flight.context, CheckResult(ok, (_now_ns() - flight.started_ns) // 1000, reason)))

    def _hand_over(self) -> None:
        results = self.results
        if results:
            self.results = []
            (self.finished or _each_done)(results)

    def _ready(self) -> None:
        inflight, results = self.inflight, self.results
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
                results.append((flight.context, _tuple_new(CheckResult, (True, (now - flight.started_ns) // 1000,
                                                                         None, None))))
            elif phase == _READ:
                if events & _IN_OR_FAILED:
                    self._readable(flight, now)
            elif events & _FAILED:   # only a failed connect needs the error's name
                err = flight.sock.getsockopt(_SOL_SOCKET, _SO_ERROR) or errno.ECONNRESET
                self._end(flight, False, os_reason(OSError(err, os.strerror(err))))
            elif events & _OUT:
                self._send(flight, events, now)
        self._hand_over()

    def _send(self, flight: _Flight, events: int, now: int) -> None:
        try:
            flight.sock.send(flight.request)
        except OSError as exc:
            self._end(flight, False, f"HTTP read failed: {os_reason(exc, 'send')}")
            return
        flight.phase = _READ
        flight.deadline_ns = now + flight.timeout_ns
        if events & _IN:   # the answer (or the peer's close) is already there: no new wakeup will say so
            self._readable(flight, now)

    def _readable(self, flight: _Flight, now: int) -> None:
        sock = flight.sock
        while True:   # edge-triggered: read until the status line or until the socket has nothing more
            try:
                data = sock.recv(4096)
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
            if flight.buf:
                data = flight.buf + data
            end = data.find(b"\r\n")
            if end >= 0:
                break
            if len(data) > MAX_STATUS_LINE:
                flight.buf = data
                self._end(flight, False, f"bad HTTP status line {data[:80].decode('latin-1')!r}")
                return
            flight.buf = data
        target = flight.target
        if data[9:12] in target.accepted and data[:9] in _HTTP_1X and (end == 12 or data[12] == 32):
            # 'HTTP/1.x NNN ...' with an accepted status: what parse_status_line() reads, without a str
            del self.inflight[flight.fd]
            self._release(flight)
            self.results.append((flight.context, _tuple_new(CheckResult, (True, (now - flight.started_ns) // 1000,
                                                                              None, None))))
            return
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
        for flight in [f for f in self.inflight.values() if f.deadline_ns <= now]:
            what = "HTTP read" if flight.phase == _READ else "connect"
            self._end(flight, False, f"{what} timeout after {format_ms(flight.target.probe.timeout_ms)}")
        self._hand_over()
        if self.inflight:
            self._arm_sweeper()
