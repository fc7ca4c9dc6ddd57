"""HTTP_GET and SSL_GET: every url must answer with an accepted status (and, when given, a body whose md5
matches `digest`, as keepalived's genhash prints it). One connection per url; TLS certificates are not
verified (keepalived does not either); SNI is sent only when configured."""

from __future__ import annotations

import asyncio
import hashlib
import ssl

from hanode.health.checks.base import CheckFailure, os_reason, step_timeout, tcp_connect
from hanode.health.httpwire import (HttpError, build_request, chunk_size, format_ranges, host_header, parse_head,
                                    status_accepted)
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe
from hanode.lvs.model import UrlCheck

MAX_HEAD_BYTES = 64 * 1024
_context: ssl.SSLContext | None = None


def client_context() -> ssl.SSLContext:
    global _context
    if _context is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _context = context
    return _context


async def check_http(probe: Probe) -> CheckResult:
    return await _check(probe, tls=False)


async def check_ssl(probe: Probe) -> CheckResult:
    return await _check(probe, tls=True)


async def _check(probe: Probe, tls: bool) -> CheckResult:
    for url in probe.check.urls or (UrlCheck(),):
        await _fetch(probe, url, tls)
    return CheckResult(True)


async def _open(probe: Probe, tls: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = await tcp_connect(probe)
    if not tls:
        return await asyncio.open_connection(sock=sock, limit=MAX_HEAD_BYTES)
    try:
        async with step_timeout(probe, "TLS handshake"):
            return await asyncio.open_connection(sock=sock, ssl=client_context(), server_hostname=probe.check.sni or "",
                                                 ssl_handshake_timeout=probe.timeout_ms / 1000, limit=MAX_HEAD_BYTES)
    except ssl.SSLError as exc:
        sock.close()
        raise CheckFailure(f"TLS handshake failed: {exc.reason or exc}") from None
    except OSError as exc:
        sock.close()
        raise CheckFailure(f"TLS handshake failed: {os_reason(exc, 'handshake')}") from None
    except BaseException:
        sock.close()
        raise


async def _fetch(probe: Probe, url: UrlCheck, tls: bool) -> None:
    reader, writer = await _open(probe, tls)
    try:
        host = probe.virtualhost or host_header(probe.address, probe.port or 0, tls)
        version = getattr(probe.check, "http_protocol", None) or "1.0"
        writer.write(build_request(url.path, host, version))
        async with step_timeout(probe, "HTTP read"):
            head = await _read_head(reader)
            if not status_accepted(head.status, url.status_codes):
                raise CheckFailure(f"HTTP status {head.status} not in {format_ranges(url.status_codes)} for {url.path}")
            if url.digest:
                digest = await _body_md5(reader, head)
                if digest != url.digest.lower():
                    raise CheckFailure(f"digest mismatch for {url.path}: body md5 {digest}, "
                                       f"expected {url.digest.lower()}")
    except HttpError as exc:
        raise CheckFailure(str(exc)) from None
    except (ssl.SSLError, ConnectionError) as exc:
        raise CheckFailure(f"HTTP read failed: {exc}") from None
    finally:
        writer.close()


async def _read_head(reader: asyncio.StreamReader):
    try:
        data = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise CheckFailure("connection closed before the HTTP status line") from None
        raise CheckFailure(f"connection closed in the HTTP headers after {len(exc.partial)} bytes") from None
    except asyncio.LimitOverrunError:
        raise CheckFailure(f"HTTP headers longer than {MAX_HEAD_BYTES} bytes") from None
    return parse_head(data[:-4])


async def _body_md5(reader: asyncio.StreamReader, head) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        if head.chunked:
            while True:
                size = chunk_size(await reader.readuntil(b"\r\n"))
                if size == 0:
                    break
                md5.update(await reader.readexactly(size))
                await reader.readexactly(2)
        elif head.content_length is not None:
            remaining = head.content_length
            while remaining:
                block = await reader.read(min(remaining, 65536))
                if not block:
                    raise CheckFailure(f"body shorter than its Content-Length ({head.content_length - remaining} "
                                       f"of {head.content_length} bytes)")
                md5.update(block)
                remaining -= len(block)
        else:
            while block := await reader.read(65536):
                md5.update(block)
    except asyncio.IncompleteReadError:
        raise CheckFailure("connection closed in the middle of a chunked body") from None
    return md5.hexdigest()
