"""UDP_CHECK: send the payload from a connected UDP socket; an ICMP port unreachable (ECONNREFUSED) means
down; silence within connect_timeout is up unless require_reply is set (keepalived's rule)."""

from __future__ import annotations

import asyncio
import socket

from hanode.health.checks.base import CheckFailure, bind_if_asked, family_of, need_port, os_reason
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe, format_ms


async def udp_exchange(probe: Probe, payload: bytes, accept=None) -> bytes | None:
    """Sends payload, returns the first datagram `accept` takes (None: silence until the timeout).
    Raises CheckFailure on ICMP errors."""
    port = need_port(probe)
    sock = socket.socket(family_of(probe), socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    try:
        sock.setblocking(False)
        bind_if_asked(sock, probe)
        try:
            sock.connect((probe.address, port))
            sock.send(payload)
        except OSError as exc:
            raise CheckFailure(os_reason(exc, "send")) from None
        try:
            async with asyncio.timeout(probe.timeout_ms / 1000):
                while True:
                    data = await loop.sock_recv(sock, 65535)
                    if accept is None or accept(data):
                        return data
        except TimeoutError:
            return None
        except ConnectionRefusedError:
            raise CheckFailure(f"ICMP port unreachable from {probe.address}:{port}") from None
        except OSError as exc:
            raise CheckFailure(os_reason(exc, "receive")) from None
    finally:
        sock.close()


async def check_udp(probe: Probe) -> CheckResult:
    reply = await udp_exchange(probe, probe.check.payload or b"")
    if reply is None and probe.check.require_reply:
        raise CheckFailure(f"no UDP reply within {format_ms(probe.timeout_ms)}")
    return CheckResult(True)
