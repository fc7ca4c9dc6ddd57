"""SMTP_CHECK: banner 220, HELO answered 250, then QUIT (keepalived's sequence)."""

from __future__ import annotations

import asyncio

from hanode.health.checks.base import CheckFailure, step_timeout, tcp_connect
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe

DEFAULT_HELO = "smtpchecker.keepalived.org"  # keepalived's default helo_name


async def _reply(reader: asyncio.StreamReader, stage: str) -> tuple[int, str]:
    """Reads one (possibly multi-line) SMTP reply: '250-...' lines continue, '250 ...' ends it."""
    while True:
        line = await reader.readline()
        if not line:
            raise CheckFailure(f"connection closed before the {stage}")
        text = line.decode("latin-1").rstrip("\r\n")
        if len(text) < 3 or not text[:3].isdigit():
            raise CheckFailure(f"bad SMTP reply to {stage}: {text[:60]!r}")
        if len(text) == 3 or text[3] != "-":
            return int(text[:3]), text[4:]


async def check_smtp(probe: Probe) -> CheckResult:
    sock = await tcp_connect(probe)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        async with step_timeout(probe, "SMTP banner"):
            code, text = await _reply(reader, "banner")
        if code != 220:
            raise CheckFailure(f"SMTP banner {code} not 220 ({text[:60]})")
        writer.write(f"HELO {probe.check.helo_name or DEFAULT_HELO}\r\n".encode())
        async with step_timeout(probe, "SMTP HELO reply"):
            code, text = await _reply(reader, "HELO reply")
        if code != 250:
            raise CheckFailure(f"SMTP HELO answered {code} not 250 ({text[:60]})")
        writer.write(b"QUIT\r\n")
        return CheckResult(True)
    finally:
        writer.close()
