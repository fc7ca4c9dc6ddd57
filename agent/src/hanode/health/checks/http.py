"""HTTP_GET and SSL_GET: every url must answer with an accepted status (and, when given, a body whose md5
matches `digest`, as keepalived's genhash prints it, and a body its `regex` matches). One connection per url;
TLS certificates are not verified (keepalived does not either: its SSL block's CA is loaded but not enforced);
the SSL block's client certificate is presented; SNI is sent only when configured."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl

from hanode.health.checks.base import CheckFailure, os_reason, step_timeout, tcp_connect
from hanode.health.httpwire import (HttpError, build_request, chunk_size, format_ranges, host_header, parse_head,
                                    status_accepted)
from hanode.health.hysteresis import CheckResult
from hanode.health.regex import body_problem, compile_regex
from hanode.health.spec import Probe
from hanode.lvs.model import SslConfig, UrlCheck

MAX_HEAD_BYTES = 64 * 1024
REGEX_BODY_MAX = 1024 * 1024     # a regex looks at the first MiB of the body


@functools.lru_cache(maxsize=16)
def client_context(config: SslConfig | None = None) -> ssl.SSLContext:
    """keepalived's SSL context: no verification of the server; the SSL block's certificate chain and key
    (decrypted with its password) presented to servers that ask; its CA loaded. Raises CheckFailure naming
    the file that cannot be loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if config is None:
        return context
    try:
        if config.certificate:
            context.load_cert_chain(config.certificate, config.key, config.password)
        if config.ca:
            context.load_verify_locations(config.ca)
    except (OSError, ssl.SSLError) as exc:
        raise CheckFailure(f"cannot load the SSL block's files (certificate {config.certificate}, key "
                           f"{config.key}, ca {config.ca}): {getattr(exc, 'reason', None) or exc}") from None
    return context


def ssl_load_problem(config: SslConfig) -> str | None:
    """Why the SSL block's files cannot be used (check-config says so before any SSL_GET fails on it)."""
    try:
        client_context(config)
    except CheckFailure as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=256)
def _url_regex(url: UrlCheck):
    return compile_regex(url.regex, url.regex_options, url.regex_no_match, url.regex_min_offset,
                         url.regex_max_offset)


async def check_http(probe: Probe) -> CheckResult:
    return await _check(probe, tls=False)


async def check_ssl(probe: Probe) -> CheckResult:
    return await _check(probe, tls=True)


async def _check(probe: Probe, tls: bool) -> CheckResult:
    for url in probe.check.urls or (UrlCheck(),):
        await _fetch(probe, url, tls)
    return CheckResult(True)


def server_name(probe: Probe, url: UrlCheck) -> str:
    """SNI: `sni` as given, else with enable_sni the url's virtualhost, the check's or the service's (keepalived's
    order; not the real server's), else none."""
    if probe.check.sni:
        return probe.check.sni
    if probe.check.enable_sni:
        return url.virtualhost or probe.virtualhost or ""
    return ""


async def _open(probe: Probe, url: UrlCheck, tls: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = client_context(probe.ssl) if tls else None
    sock = await tcp_connect(probe)
    if not tls:
        return await asyncio.open_connection(sock=sock, limit=MAX_HEAD_BYTES)
    try:
        async with step_timeout(probe, "TLS handshake"):
            return await asyncio.open_connection(sock=sock, ssl=context, server_hostname=server_name(probe, url),
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
    reader, writer = await _open(probe, url, tls)
    try:
        host = url.virtualhost or probe.virtualhost or host_header(probe.address, probe.port or 0, tls)
        writer.write(build_request(url.path, host, probe.check.http_protocol))
        async with step_timeout(probe, "HTTP read"):
            head = await _read_head(reader)
            if not status_accepted(head.status, url.status_codes):
                raise CheckFailure(f"HTTP status {head.status} not in {format_ranges(url.status_codes)} for {url.path}")
            if url.digest or url.regex is not None:
                digest, body = await _read_body(reader, head, url.regex is not None)
                if url.digest and digest != url.digest.lower():
                    raise CheckFailure(f"digest mismatch for {url.path}: body md5 {digest}, "
                                       f"expected {url.digest.lower()}")
                problem = body_problem(_url_regex(url), body, url.path) if url.regex is not None else None
                if problem:
                    raise CheckFailure(problem)
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


async def _read_body(reader: asyncio.StreamReader, head, keep: bool) -> tuple[str, bytes]:
    """The body's md5 and, when `keep`, its first REGEX_BODY_MAX bytes (a chunked body de-chunked)."""
    kept = bytearray()
    md5 = hashlib.md5(usedforsecurity=False)

    def take(block: bytes) -> None:
        md5.update(block)
        if keep and len(kept) < REGEX_BODY_MAX:
            kept.extend(block[:REGEX_BODY_MAX - len(kept)])

    try:
        if head.chunked:
            while True:
                size = chunk_size(await reader.readuntil(b"\r\n"))
                if size == 0:
                    break
                take(await reader.readexactly(size))
                await reader.readexactly(2)
        elif head.content_length is not None:
            remaining = head.content_length
            while remaining:
                block = await reader.read(min(remaining, 65536))
                if not block:
                    raise CheckFailure(f"body shorter than its Content-Length ({head.content_length - remaining} "
                                       f"of {head.content_length} bytes)")
                take(block)
                remaining -= len(block)
        else:
            while block := await reader.read(65536):
                take(block)
    except asyncio.IncompleteReadError:
        raise CheckFailure("connection closed in the middle of a chunked body") from None
    return md5.hexdigest(), bytes(kept)
