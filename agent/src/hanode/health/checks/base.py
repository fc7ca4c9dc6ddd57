"""Shared plumbing of the check adapters: one failure type carrying the reason, TCP connect with bind and
timeout, and the error words operators read in status and logs."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from contextlib import asynccontextmanager
from typing import AsyncIterator

from hanode.health.spec import Probe, format_ms


class CheckFailure(Exception):
    """A check found the server unhealthy; str() is the reason shown to the operator."""


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "cannot bind the source address (not on this host)",
    errno.EADDRINUSE: "source address and port already in use",
    errno.EPIPE: "connection closed by peer",
}


def os_reason(exc: OSError, what: str = "connect") -> str:
    words = _ERRNO_WORDS.get(exc.errno or 0)
    if words:
        return words
    return f"{what} failed: {exc.strerror or exc}"


def family_of(probe: Probe) -> int:
    return socket.AF_INET6 if probe.family == 6 else socket.AF_INET


def seconds(probe: Probe) -> float:
    return probe.timeout_ms / 1000


def need_port(probe: Probe) -> int:
    if probe.port is None:
        raise CheckFailure(f"{probe.type} needs a port: the real server has none, set connect_port")
    return probe.port


def mark_and_device(sock: socket.socket, probe: Probe) -> None:
    """fwmark (SO_MARK) and bind_if (SO_BINDTODEVICE), set before any bind as keepalived sets them."""
    if probe.fwmark:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, probe.fwmark)
        except OSError as exc:
            raise CheckFailure(f"cannot set fwmark {probe.fwmark} on the check's socket: "
                               f"{os_reason(exc, 'setsockopt')}") from None
    if probe.bind_if:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, probe.bind_if.encode() + b"\0")
        except OSError as exc:
            raise CheckFailure(f"cannot bind the check to interface {probe.bind_if}: "
                               f"{os_reason(exc, 'setsockopt')}") from None


def sockaddr(probe: Probe, port: int) -> tuple:
    """The address to connect to; an IPv6 link-local one gets bind_if's scope (keepalived needs bind_if there)."""
    if probe.family == 6 and probe.bind_if and ipaddress.ip_address(probe.address).is_link_local:
        return (probe.address, port, 0, socket.if_nametoindex(probe.bind_if))
    return (probe.address, port)


def bind_if_asked(sock: socket.socket, probe: Probe) -> None:
    mark_and_device(sock, probe)
    if probe.bind_address is None and probe.bind_port is None:
        return
    if probe.bind_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((probe.bind_address or ("::" if probe.family == 6 else "0.0.0.0"), probe.bind_port or 0))
    except OSError as exc:
        raise CheckFailure(f"cannot bind to {probe.bind_address or '*'}:{probe.bind_port or 0}: "
                           f"{os_reason(exc, 'bind')}") from None


async def tcp_connect(probe: Probe) -> socket.socket:
    """A connected non-blocking TCP socket, or CheckFailure('connect timeout after 2 s' / 'connection refused')."""
    port = need_port(probe)
    sock = socket.socket(family_of(probe), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        bind_if_asked(sock, probe)
        async with asyncio.timeout(seconds(probe)):
            await asyncio.get_running_loop().sock_connect(sock, sockaddr(probe, port))
    except TimeoutError:
        sock.close()
        raise CheckFailure(f"connect timeout after {format_ms(probe.timeout_ms)}") from None
    except OSError as exc:
        sock.close()
        raise CheckFailure(os_reason(exc)) from None
    except BaseException:   # CheckFailure from bind_if_asked too
        sock.close()
        raise
    return sock


@asynccontextmanager
async def step_timeout(probe: Probe, what: str) -> AsyncIterator[None]:
    """Bounds one exchange after the connect by connect_timeout, as keepalived does for reads."""
    try:
        async with asyncio.timeout(seconds(probe)):
            yield
    except TimeoutError:
        raise CheckFailure(f"{what} timeout after {format_ms(probe.timeout_ms)}") from None
