"""Check adapters (asyncio, no fork except MISC_CHECK's script): `run_probe(probe)` runs one check and
always returns a CheckResult with its latency and, when it failed, the reason."""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from hanode.health.checks.base import CheckFailure
from hanode.health.checks.dns import check_dns
from hanode.health.checks.file import check_file
from hanode.health.checks.http import check_http, check_ssl
from hanode.health.checks.misc import check_misc
from hanode.health.checks.ping import check_ping, close_pingers
from hanode.health.checks.smtp import check_smtp
from hanode.health.checks.tcp import check_tcp
from hanode.health.checks.udp import check_udp
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe

log = logging.getLogger("hanode.health.checks")

ADAPTERS: dict[str, Callable[[Probe], Awaitable[CheckResult]]] = {
    "TCP_CHECK": check_tcp,
    "HTTP_GET": check_http,
    "SSL_GET": check_ssl,
    "MISC_CHECK": check_misc,
    "PING_CHECK": check_ping,
    "UDP_CHECK": check_udp,
    "DNS_CHECK": check_dns,
    "SMTP_CHECK": check_smtp,
    "FILE_CHECK": check_file,
}

__all__ = ["ADAPTERS", "CheckFailure", "close_pingers", "run_probe"]


async def run_probe(probe: Probe) -> CheckResult:
    started = time.monotonic_ns()
    try:
        adapter = ADAPTERS[probe.type]
    except KeyError:
        return CheckResult(False, 0, f"unknown check type {probe.type!r}")
    try:
        result = await adapter(probe)
    except CheckFailure as exc:
        result = CheckResult(False, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug in one adapter must not stop the checker
        log.exception("%s to %s:%s crashed", probe.type, probe.address, probe.port)
        result = CheckResult(False, reason=f"internal error in {probe.type}: {exc!r}")
    latency_us = (time.monotonic_ns() - started) // 1000
    return CheckResult(result.ok, latency_us, result.reason, result.weight)
