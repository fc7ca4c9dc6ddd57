"""DNS_CHECK: one query of dns_type for dns_name over UDP; any reply with RCODE NOERROR is up (keepalived)."""

from __future__ import annotations

import random

from hanode.health.checks.base import CheckFailure
from hanode.health.checks.udp import udp_exchange
from hanode.health.dnswire import DnsError, build_query, parse_reply
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe, format_ms


async def check_dns(probe: Probe) -> CheckResult:
    ident = random.getrandbits(16)
    try:
        query = build_query(ident, probe.check.dns_name, probe.check.dns_type)
    except DnsError as exc:
        raise CheckFailure(str(exc)) from None

    def ours(data: bytes) -> bool:  # replies with another id are stray or spoofed: keep waiting
        return len(data) >= 2 and int.from_bytes(data[:2], "big") == ident

    data = await udp_exchange(probe, query, ours)
    if data is None:
        raise CheckFailure(f"no DNS reply within {format_ms(probe.timeout_ms)}")
    try:
        reply = parse_reply(data)
    except DnsError as exc:
        raise CheckFailure(str(exc)) from None
    if reply.rcode != 0:
        raise CheckFailure(f"DNS RCODE {reply.rcode_name} for {probe.check.dns_type} {probe.check.dns_name}")
    return CheckResult(True)
