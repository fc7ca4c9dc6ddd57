"""Every check type against real servers on 127.0.0.1 started by the test itself."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from health_servers import HttpServer, UdpServer, md5, probe, scripted_tcp, self_signed
from virtual_time import on_readable, run_virtual

from hanode.health.checks import close_pingers, run_probe
from hanode.lvs.model import UrlCheck


def arun(coro):
    return asyncio.run(coro)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# TCP_CHECK ---------------------------------------------------------------------------------------

def test_tcp_up_down_and_latency():
    async def scenario():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        up = await run_probe(probe("TCP_CHECK", port))
        server.close()
        await server.wait_closed()
        down = await run_probe(probe("TCP_CHECK", port))
        return up, down

    up, down = arun(scenario())
    assert up.ok and up.reason is None and 0 < up.latency_us < 1_000_000
    assert not down.ok and down.reason == "connection refused"


def test_tcp_connect_timeout():
    """On a virtual clock (virtual_time.py): the check gives up exactly when connect_timeout has passed."""
    # backlog 0 and nobody accepting: the first connection fills the queue, the kernel drops later SYNs
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = [socket.create_connection(("127.0.0.1", port), timeout=2)]

    async def scenario(clock):
        started = clock.now_s
        result = await run_probe(probe("TCP_CHECK", port, connect_timeout_ms=300))
        return result, clock.now_s - started

    try:
        result, elapsed_s = run_virtual(scenario)
    finally:
        for sock in filler:
            sock.close()
        listener.close()
    assert not result.ok and result.reason == "connect timeout after 0.3 s"
    assert elapsed_s == pytest.approx(0.3)


def test_tcp_connect_ip_port_and_bindto():
    async def scenario():
        peers, both_seen = [], asyncio.Event()

        def accepted(_reader, writer):
            peers.append(writer.get_extra_info("peername"))
            writer.close()
            if len(peers) == 2:
                both_seen.set()
        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # the real server's own port is closed: connect_port decides
        moved = await run_probe(probe("TCP_CHECK", free_port(), connect_ip="127.0.0.1", connect_port=port))
        source_port = free_port()
        bound = await run_probe(probe("TCP_CHECK", port, bindto="127.0.0.2", bind_port=source_port))
        not_here = await run_probe(probe("TCP_CHECK", port, bindto="198.51.100.250"))
        await asyncio.wait_for(both_seen.wait(), 5)  # the server has handled both connections (5 s: hang guard)
        server.close()
        return moved, bound, not_here, peers, source_port

    moved, bound, not_here, peers, source_port = arun(scenario())
    assert moved.ok and bound.ok
    assert peers[1] == ("127.0.0.2", source_port)
    assert not not_here.ok and "cannot bind to 198.51.100.250" in not_here.reason


def test_tcp_without_port_names_the_fix():
    result = arun(run_probe(probe("TCP_CHECK", None, fwmark=7)))
    assert not result.ok and "set connect_port" in result.reason


# HTTP_GET / SSL_GET ------------------------------------------------------------------------------

ROUTES = {
    "/ok": (200, b"hello world", "plain"),
    "/busy": (503, b"busy", "plain"),
    "/moved": (302, b"", "plain"),
    "/chunked": (200, b"chunked body text", "chunked"),
    "/nolength": (200, b"until close", "nolength"),
    "/short": (200, b"cut", "short"),
    "/hang": (200, b"", "hang"),
    "/close": (200, b"", "close"),
}


def http(server_port, *urls, check_type="HTTP_GET", **kwargs):
    return probe(check_type, server_port, urls=tuple(urls), connect_timeout_ms=kwargs.pop("connect_timeout_ms", 1000),
                 **kwargs)


def test_http_status_ranges_and_request_format():
    async def scenario():
        server = await HttpServer(ROUTES).start()
        results = [await run_probe(http(server.port, url)) for url in (
            UrlCheck("/ok"), UrlCheck("/busy"), UrlCheck("/busy", ((500, 599),)),
            UrlCheck("/moved", ((200, 200), (300, 302))), UrlCheck("/moved", ((200, 200),)))]
        await server.close()
        return results, server.requests

    (ok, busy, busy_accepted, moved_ok, moved_bad), requests = arun(scenario())
    assert ok.ok and busy_accepted.ok and moved_ok.ok
    assert busy.reason == "HTTP status 503 not in 200-299 for /busy"
    assert moved_bad.reason == "HTTP status 302 not in 200 for /moved"
    head = requests[0].decode()
    assert head.startswith("GET /ok HTTP/1.0\r\n")
    assert "User-Agent: KeepAliveClient\r\n" in head
    port = head.split("Host: 127.0.0.1:")[1].split("\r\n")[0]
    assert port.isdigit()


def test_http_digest_of_every_body_framing():
    async def scenario():
        server = await HttpServer(ROUTES).start()
        out = {}
        for path, body in (("/ok", b"hello world"), ("/chunked", b"chunked body text"), ("/nolength", b"until close")):
            out[path] = await run_probe(http(server.port, UrlCheck(path, digest=md5(body).upper())))
        out["mismatch"] = await run_probe(http(server.port, UrlCheck("/ok", digest=md5(b"other"))))
        out["short"] = await run_probe(http(server.port, UrlCheck("/short", digest=md5(b"cut"))))
        await server.close()
        return out

    out = arun(scenario())
    assert out["/ok"].ok and out["/chunked"].ok and out["/nolength"].ok
    assert out["mismatch"].reason == (f"digest mismatch for /ok: body md5 {md5(b'hello world')}, "
                                      f"expected {md5(b'other')}")
    assert out["short"].reason == "body shorter than its Content-Length (3 of 13 bytes)"


def test_http_every_url_must_pass_and_virtualhost_is_the_host():
    async def scenario():
        server = await HttpServer(ROUTES).start()
        both = await run_probe(http(server.port, UrlCheck("/ok"), UrlCheck("/busy"), virtualhost="www.example.test"))
        from_vs = await run_probe(probe("HTTP_GET", server.port, urls=(UrlCheck("/ok"),), vs_virtualhost="vs.test"))
        await server.close()
        return both, from_vs, server.requests

    both, from_vs, requests = arun(scenario())
    assert not both.ok and both.reason == "HTTP status 503 not in 200-299 for /busy"
    assert [r.split(b"\r\n")[0] for r in requests[:2]] == [b"GET /ok HTTP/1.0", b"GET /busy HTTP/1.0"]
    assert b"Host: www.example.test\r\n" in requests[0]
    assert from_vs.ok and b"Host: vs.test\r\n" in requests[2]


def test_http_read_timeout_and_early_close():
    async def scenario():
        server = await HttpServer(ROUTES).start()
        hang = await run_probe(http(server.port, UrlCheck("/hang"), connect_timeout_ms=200))
        close = await run_probe(http(server.port, UrlCheck("/close")))
        await server.close()
        return hang, close

    hang, close = arun(scenario())
    assert hang.reason == "HTTP read timeout after 0.2 s"
    assert close.reason == "connection closed before the HTTP status line"


def test_http_not_http():
    async def scenario():
        server, _received = await scripted_tcp([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"])
        result = await run_probe(http(server.sockets[0].getsockname()[1], UrlCheck("/")))
        server.close()
        return result

    assert arun(scenario()).reason == "bad HTTP status line 'SSH-2.0-OpenSSH_9.2'"


def test_ssl_get_with_self_signed_certificate_and_sni(tmp_path):
    context = self_signed(tmp_path)

    async def scenario():
        server = await HttpServer(ROUTES).start(tls=context)
        no_sni = await run_probe(http(server.port, UrlCheck("/ok", digest=md5(b"hello world")), check_type="SSL_GET"))
        sni = await run_probe(http(server.port, UrlCheck("/ok"), check_type="SSL_GET", sni="api.example.test"))
        busy = await run_probe(http(server.port, UrlCheck("/busy"), check_type="SSL_GET"))
        await server.close()
        plain = await HttpServer(ROUTES).start()  # waits for a request: the ClientHello gets no answer
        silent = await run_probe(http(plain.port, UrlCheck("/ok"), check_type="SSL_GET", connect_timeout_ms=300))
        await plain.close()
        talker, _received = await scripted_tcp([b"HTTP/1.0 400 Bad Request\r\n\r\n"])
        not_tls = await run_probe(http(talker.sockets[0].getsockname()[1], UrlCheck("/ok"), check_type="SSL_GET"))
        talker.close()
        return no_sni, sni, busy, not_tls, silent, server.snis

    no_sni, sni, busy, not_tls, silent, snis = arun(scenario())
    assert no_sni.ok and sni.ok
    assert snis == [None, "api.example.test", None]
    assert busy.reason == "HTTP status 503 not in 200-299 for /busy"
    assert not not_tls.ok and not_tls.reason.startswith("TLS handshake failed: WRONG_VERSION_NUMBER"), not_tls.reason
    assert silent.reason == "TLS handshake timeout after 0.3 s"


# UDP_CHECK / DNS_CHECK ---------------------------------------------------------------------------

def test_udp_reply_silence_and_port_unreachable():
    async def scenario():
        echo = await UdpServer.start("echo")
        silent = await UdpServer.start("silent")
        out = {
            "echo": await run_probe(probe("UDP_CHECK", echo.port, payload=b"ping", require_reply=True,
                                          connect_timeout_ms=500)),
            "silent_ok": await run_probe(probe("UDP_CHECK", silent.port, connect_timeout_ms=200)),
            "silent_required": await run_probe(probe("UDP_CHECK", silent.port, require_reply=True,
                                                     connect_timeout_ms=200)),
            "closed": await run_probe(probe("UDP_CHECK", free_port(), connect_timeout_ms=500)),
        }
        echo.close()
        silent.close()
        return out, echo.received

    out, received = arun(scenario())
    assert out["echo"].ok and received == [b"ping"]
    assert out["silent_ok"].ok
    assert out["silent_required"].reason == "no UDP reply within 0.2 s"
    assert not out["closed"].ok and out["closed"].reason.startswith("ICMP port unreachable from 127.0.0.1:")


def test_udp_expected_reply_is_compared_like_keepalived():
    """require_reply with data: the reply's first bytes must match (as many as both have) and its length must be
    within min/max_reply_length; a reply that differs is down with the bytes named."""
    async def scenario():
        echo = await UdpServer.start("echo")
        exchange = dict(payload=b"ping", require_reply=True, connect_timeout_ms=500)
        out = {
            "prefix": await run_probe(probe("UDP_CHECK", echo.port, reply_data=b"pi", **exchange)),
            "longer_expected": await run_probe(probe("UDP_CHECK", echo.port, reply_data=b"ping-pong", **exchange)),
            "different": await run_probe(probe("UDP_CHECK", echo.port, reply_data=b"pong", **exchange)),
            "too_long": await run_probe(probe("UDP_CHECK", echo.port, reply_data=b"pi", max_reply_length=2,
                                              **exchange)),
            "too_short": await run_probe(probe("UDP_CHECK", echo.port, reply_data=b"pi", min_reply_length=5,
                                               **exchange)),
        }
        echo.close()
        return out

    out = arun(scenario())
    assert out["prefix"].ok and out["longer_expected"].ok
    assert out["different"].reason == "UDP reply 0x70696e67 does not match require_reply 0x706f6e67"
    assert out["too_long"].reason == "UDP reply of 4 bytes, outside min_reply_length 0..max_reply_length 2"
    assert out["too_short"].reason == "UDP reply of 4 bytes, outside min_reply_length 5..max_reply_length 255"


def test_dns_query_and_rcode():
    async def scenario():
        dns = await UdpServer.start("dns", rcode_for={"gone.example.test.": 3})
        spoof = await UdpServer.start("dns", bad_id=True)
        out = {
            "soa_root": await run_probe(probe("DNS_CHECK", dns.port)),
            "a": await run_probe(probe("DNS_CHECK", dns.port, dns_type="A", dns_name="www.example.test")),
            "nx": await run_probe(probe("DNS_CHECK", dns.port, dns_type="AAAA", dns_name="gone.example.test")),
            "spoof": await run_probe(probe("DNS_CHECK", spoof.port, connect_timeout_ms=200)),
            "silent": await run_probe(probe("DNS_CHECK", free_port(), connect_timeout_ms=300)),
        }
        dns.close()
        spoof.close()
        return out, dns.received

    out, received = arun(scenario())
    assert out["soa_root"].ok and out["a"].ok
    assert out["nx"].reason == "DNS RCODE NXDOMAIN for AAAA gone.example.test"
    assert out["spoof"].reason == "no DNS reply within 0.2 s"
    assert not out["silent"].ok
    # the queries on the wire: SOA (6) for the root, then A (1) for the name
    assert received[0][12:] == b"\x00\x00\x06\x00\x01"
    assert received[1][12:] == b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"


# SMTP_CHECK --------------------------------------------------------------------------------------

def test_smtp_against_aiosmtpd():
    from aiosmtpd.controller import Controller

    controller = Controller(object(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        up = arun(run_probe(probe("SMTP_CHECK", controller.port, helo_name="checker.example.test")))
    finally:
        controller.stop()
    down = arun(run_probe(probe("SMTP_CHECK", controller.port)))
    assert up.ok, up.reason
    assert down.reason == "connection refused"


def test_smtp_bad_banner_and_bad_helo():
    async def scenario():
        busy, _received = await scripted_tcp([b"421 too busy\r\n"])
        picky, received = await scripted_tcp([b"220-first line\r\n220 ready\r\n", b"550 go away\r\n"])
        out = (await run_probe(probe("SMTP_CHECK", busy.sockets[0].getsockname()[1])),
               await run_probe(probe("SMTP_CHECK", picky.sockets[0].getsockname()[1])))
        busy.close()
        picky.close()
        return out, received

    (busy, picky), received = arun(scenario())
    assert busy.reason == "SMTP banner 421 not 220 (too busy)"
    assert picky.reason == "SMTP HELO answered 550 not 250 (go away)"
    assert received[0] == b"HELO smtpchecker.keepalived.org\r\n"


# PING_CHECK --------------------------------------------------------------------------------------

def test_ping_loopback_v4_and_v6_share_one_socket_per_family():
    async def scenario():
        results = await asyncio.gather(*(run_probe(probe("PING_CHECK", None, address=a, connect_timeout_ms=1000))
                                         for a in ("127.0.0.1", "127.0.0.1", "::1", "127.0.0.3")))
        fds = len(os.listdir("/proc/self/fd"))
        more = await asyncio.gather(*(run_probe(probe("PING_CHECK", None, connect_timeout_ms=1000)) for _probe in range(50)))
        fds_after = len(os.listdir("/proc/self/fd"))
        broadcast = await run_probe(probe("PING_CHECK", None, address="255.255.255.255"))
        close_pingers()
        return results, more, fds, fds_after, broadcast

    results, more, fds, fds_after, broadcast = arun(scenario())
    assert all(r.ok for r in results + more), [r.reason for r in results]
    assert fds_after == fds  # 50 concurrent pings, no new sockets
    assert not broadcast.ok and broadcast.reason.startswith("cannot send the echo request")


# MISC_CHECK --------------------------------------------------------------------------------------

@pytest.fixture
def world_readable_dir():
    """A directory `nobody` can reach (pytest's tmp_path sits under a root-only directory)."""
    path = tempfile.mkdtemp(prefix="hck-misc-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path)


def script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_misc_exit_codes_and_dynamic_weight(tmp_path):
    good = script(tmp_path, "good", "exit 0")
    bad = script(tmp_path, "bad", "echo 'database not reachable' >&2; exit 1")
    twelve = script(tmp_path, "twelve", "exit 12")

    async def scenario():
        return [await run_probe(p) for p in (
            probe("MISC_CHECK", 80, misc_path=good), probe("MISC_CHECK", 80, misc_path=bad),
            probe("MISC_CHECK", 80, misc_path=f"{twelve} --some-arg", misc_dynamic=True),
            probe("MISC_CHECK", 80, misc_path=twelve),
            probe("MISC_CHECK", 80, misc_path=str(tmp_path / "missing")))]

    good_r, bad_r, dyn, not_dyn, missing = arun(scenario())
    assert good_r.ok and good_r.weight is None
    assert bad_r.reason == f"{bad} exited with status 1: database not reachable"
    assert dyn.ok and dyn.weight == 10
    assert not_dyn.reason == f"{twelve} exited with status 12"
    assert missing.reason == (f"refused: script {tmp_path / 'missing'}: {tmp_path / 'missing'} does not exist or is "
                              "not a file")


def fifo(path: Path) -> int:
    """A FIFO at path, held open by the test for reading and writing (so nobody's open() of it blocks)."""
    os.mkfifo(path)
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)


def exited(pid: int) -> bool:
    """Has the process exited (a zombie counts)? Waits on its pidfd (5 s only stops a hang)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], 5)[0])
    finally:
        os.close(fd)


def test_misc_timeout_kills_the_process_group(tmp_path):
    """On a virtual clock: the script is killed, with the sleep it started (its process group), exactly when
    misc_timeout has passed. The clock stands still until the script says through a FIFO that both run."""
    pids = tmp_path / "pids"
    ready = fifo(tmp_path / "ready")
    slow = script(tmp_path, "slow",
                  f"sleep 30 & echo $! >> {pids}; echo $$ >> {pids}; echo up > {tmp_path / 'ready'}; wait")

    async def scenario(clock):
        started = clock.now_s
        with clock.held():
            check = asyncio.ensure_future(run_probe(probe("MISC_CHECK", 80, misc_path=slow, misc_timeout_ms=300)))
            await on_readable(ready)
        return await check, clock.now_s - started

    try:
        result, elapsed_s = run_virtual(scenario)
    finally:
        os.close(ready)
    assert result.reason == f"{slow} timed out after 0.3 s (process group killed)"
    assert elapsed_s == pytest.approx(0.3)
    group = list(map(int, pids.read_text().split()))
    assert len(group) == 2 and all(exited(pid) for pid in group)  # the sleep child too, reparented to init


def test_misc_runs_as_the_user_with_a_clean_environment(world_readable_dir):
    tmp_path = world_readable_dir
    check = script(tmp_path, "env", '[ "$(id -un)" = nobody ] || exit 1; [ -z "$SECRET_TOKEN" ] || exit 1;'
                                    ' [ "$PATH" = /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ]')
    os.environ["SECRET_TOKEN"] = "leak"
    try:
        as_nobody = arun(run_probe(probe("MISC_CHECK", 80, misc_path=check, user="nobody")))
        as_default = arun(run_probe(probe("MISC_CHECK", 80, misc_path=check, script_user="nobody")))
        as_root = arun(run_probe(probe("MISC_CHECK", 80, misc_path=check)))
        no_user = arun(run_probe(probe("MISC_CHECK", 80, misc_path=check, user="no-such-user-hck")))
    finally:
        del os.environ["SECRET_TOKEN"]
    assert as_nobody.ok and as_default.ok
    assert as_root.reason == f"{check} exited with status 1"
    assert no_user.reason == "refused: user 'no-such-user-hck' does not exist"


def test_a_slow_misc_script_does_not_block_other_checks(tmp_path):
    """The script runs until the test lets it end (EOF on a FIFO it opened): five TCP checks pass meanwhile,
    while its check is still pending; then it ends and passes."""
    ready, gate = fifo(tmp_path / "ready"), fifo(tmp_path / "gate")
    slow = script(tmp_path, "slow", f"exec 3< {tmp_path / 'gate'}; echo up > {tmp_path / 'ready'}; cat <&3 > /dev/null")

    async def scenario():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        misc = asyncio.ensure_future(run_probe(probe("MISC_CHECK", 80, misc_path=slow, misc_timeout_ms=5000)))
        await asyncio.wait_for(on_readable(ready), 5)  # the script holds the gate open (5 s: hang guard)
        tcp = [await run_probe(probe("TCP_CHECK", port)) for _probe in range(5)]
        still_running = not misc.done()
        os.close(gate)  # the last writer goes: the script's cat reads EOF and the script ends
        misc_result = await misc
        server.close()
        return tcp, still_running, misc_result

    try:
        tcp, still_running, misc_result = arun(scenario())
    finally:
        os.close(ready)
    assert all(result.ok for result in tcp) and still_running
    assert misc_result.ok
