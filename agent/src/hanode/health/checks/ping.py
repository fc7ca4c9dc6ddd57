"""PING_CHECK: one ICMP echo request, up when the echo reply arrives within connect_timeout.

No fork and no socket per check: one ICMP socket per (event loop, family, source address) carries every
ping, and replies are matched by (source, sequence). A raw socket is used when allowed (root), else an
unprivileged datagram ICMP socket (net.ipv4.ping_group_range)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
import weakref

from hanode.health.checks.base import CheckFailure, mark_and_device, os_reason
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe, format_ms

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
PAYLOAD = b"hanode-health-ping"


def icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST[family], 0, 0, ident, seq)
    if family == 6:  # the kernel fills in the ICMPv6 checksum (it covers a pseudo-header)
        return header + PAYLOAD
    checksum = icmp_checksum(header + PAYLOAD)
    return struct.pack("!BBHHH", ECHO_REQUEST[family], 0, checksum, ident, seq) + PAYLOAD


class Pinger:
    def __init__(self, family: int, bind_address: str | None, probe: Probe | None = None):
        self.family = family
        af, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if family == 6 else (socket.AF_INET, socket.IPPROTO_ICMP)
        try:
            self.sock = socket.socket(af, socket.SOCK_RAW, proto)
            self.raw = True
        except PermissionError:
            self.sock = socket.socket(af, socket.SOCK_DGRAM, proto)  # needs ping_group_range
            self.raw = False
        self.sock.setblocking(False)
        try:
            if probe is not None:
                mark_and_device(self.sock, probe)   # bind_if, fwmark: a pinger of their own
            if bind_address:
                self.sock.bind((bind_address, 0))
        except BaseException:
            self.sock.close()
            raise
        self.ident = os.getpid() & 0xFFFF
        self.seq = 0
        self.waiting: dict[tuple[str, int], asyncio.Future] = {}
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _readable(self) -> None:
        while True:
            try:
                data, source = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if self.raw and self.family == 4:
                data = data[(data[0] & 0x0F) * 4:] if data else data
            if len(data) < 8:
                continue
            kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", data[:8])
            if kind != ECHO_REPLY[self.family] or (self.raw and ident != self.ident):
                continue
            future = self.waiting.pop((source[0], seq), None)
            if future is not None and not future.done():
                future.set_result(None)

    async def ping(self, address: str, timeout_ms: int) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        seq = self.seq
        key = (str(ipaddress.ip_address(address)), seq)
        future = self.loop.create_future()
        self.waiting[key] = future
        try:
            try:
                self.sock.sendto(echo_request(self.family, self.ident, seq), (address, 0))
            except OSError as exc:
                raise CheckFailure(f"cannot send the echo request: {os_reason(exc, 'send')}") from None
            try:
                async with asyncio.timeout(timeout_ms / 1000):
                    await future
            except TimeoutError:
                raise CheckFailure(f"no echo reply within {format_ms(timeout_ms)}") from None
        finally:
            self.waiting.pop(key, None)


_pingers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def _pinger(family: int, bind_address: str | None, probe: Probe | None = None) -> Pinger:
    loop = asyncio.get_running_loop()
    per_loop = _pingers.setdefault(loop, {})
    key = (family, bind_address, probe and probe.bind_if, probe and probe.fwmark)
    if key not in per_loop:
        try:
            per_loop[key] = Pinger(family, bind_address, probe)
        except OSError as exc:
            raise CheckFailure(f"cannot open an ICMP socket: {os_reason(exc, 'socket')}") from None
    return per_loop[key]


def close_pingers() -> None:
    """Closes this event loop's ICMP sockets (the scheduler calls it when it stops)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    for pinger in _pingers.pop(loop, {}).values():
        pinger.close()


async def check_ping(probe: Probe) -> CheckResult:
    await _pinger(probe.family, probe.bind_address, probe).ping(probe.address, probe.timeout_ms)
    return CheckResult(True)
