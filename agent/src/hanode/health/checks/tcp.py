"""TCP_CHECK: the server is up when a TCP connection to it opens within connect_timeout."""

from __future__ import annotations

from hanode.health.checks.base import tcp_connect
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe


async def check_tcp(probe: Probe) -> CheckResult:
    sock = await tcp_connect(probe)
    sock.close()
    return CheckResult(True)
