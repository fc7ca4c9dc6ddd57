"""UDP_CHECK: send the payload from a connected UDP socket; an ICMP port unreachable (ECONNREFUSED) means
down; silence within connect_timeout is up unless require_reply is set (keepalived's rule). With an expected
reply (require_reply: "0x..."), a reply must be min_reply_length..max_reply_length bytes long and its first
bytes must match (as many as both have, as keepalived compares)."""

from __future__ import annotations

import asyncio
import socket

from hanode.health.checks.base import CheckFailure, bind_if_asked, family_of, need_port, os_reason, sockaddr
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
            sock.connect(sockaddr(probe, port))
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
    check = probe.check
    reply = await udp_exchange(probe, check.payload or b"")
    if reply is None and check.require_reply:
        raise CheckFailure(f"no UDP reply within {format_ms(probe.timeout_ms)}")
    if reply is not None and check.reply_data is not None:
        problem = reply_problem(reply, check.reply_data, check.min_reply_length, check.max_reply_length,
                                check.reply_mask)
        if problem:
            raise CheckFailure(problem)
    return CheckResult(True)


def reply_problem(reply: bytes, expected: bytes, min_length: int, max_length: int,
                  mask: bytes | None = None) -> str | None:
    """Why a reply fails require_reply's expected data (None: it matches); bits set in `mask` (keepalived's x
    wildcard nibbles) are not compared."""
    if not min_length <= len(reply) <= max_length:
        return f"UDP reply of {len(reply)} bytes, outside min_reply_length {min_length}..max_reply_length {max_length}"
    common = min(len(reply), len(expected))
    if mask is None:
        differs = reply[:common] != expected[:common]
    else:
        differs = any((reply[i] ^ expected[i]) & ~mask[i] & 0xFF for i in range(common))
    if differs:
        shown = _shown(expected[:16], None if mask is None else mask[:16])
        return f"UDP reply 0x{reply[:16].hex()} does not match require_reply 0x{shown}"
    return None


def _shown(expected: bytes, mask: bytes | None) -> str:
    """The expected reply as configured: hex, with x for a wildcard nibble."""
    text = expected.hex()
    if mask is None:
        return text
    nibbles = mask.hex()
    return "".join("x" if m == "f" else c for c, m in zip(text, nibbles))
