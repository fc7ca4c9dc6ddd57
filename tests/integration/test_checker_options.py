"""keepalived 2.2.7's checker options against real servers in a namespace lab (nftables backend, host kernel):
url regex on bodies the test rewrites, http_protocol 1.1 with its Host, log_all_failures, fwmark (SO_MARK)
seen by an nft rule counter on the director, bind_if, SSL_GET with a client certificate made by openssl
against a server that requires one (and SNI), and FILE_CHECK following a file the test changes.

    client c1 -> VIP 198.51.100.100:80..89 on director n1 -> r1 (203.0.113.11:8080 HTTP, :8443/:8444 HTTPS)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hanode.lab.procs import wait_for
from helpers_checker import VIP, lb_config, new_lab, reload, rewrite_config, start_director, status

pytestmark = pytest.mark.netns

MARK = 42
PASSWORD = "s3cret-lb3"


def service(port: int, r1, rs_port: int, checks: list[dict], weight: int = 1, **extra) -> dict:
    body = {"address": VIP, "port": port, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 1,
            "real_servers": [{"address": r1.ipv4, "port": rs_port, "weight": weight, "checks": checks}]}
    body.update(extra)
    return body


def rs_of(agent, port: int) -> dict:
    for vs in status(agent).get("virtual_servers", []):
        if vs["name"] == f"{VIP}:{port}/TCP":
            return vs["real_servers"][0]
    raise KeyError(port)


def wait_health(agent, port: int, timeout: float = 15.0, **want) -> dict:
    def match():
        rs = rs_of(agent, port)
        return rs if all(rs.get(k) == v for k, v in want.items()) else None
    return wait_for(match, timeout, interval=0.05, what=f"service :{port} to have {want}")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(directory: Path, name: str) -> None:
    """A CA `name`, a server certificate and a client certificate whose key is encrypted with PASSWORD."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    openssl("req", "-x509", *ec, "-nodes", "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-days", "2",
            "-subj", f"/CN={name} test CA", cwd=directory)
    for who, key_opts in (("server", ["-nodes"]), ("client", ["-passout", f"pass:{PASSWORD}"])):
        openssl("req", *ec, *key_opts, "-keyout", f"{name}-{who}.key", "-out", f"{name}-{who}.csr",
                "-subj", f"/CN={name} {who}", cwd=directory)
        openssl("x509", "-req", "-in", f"{name}-{who}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
                "-CAcreateserial", "-out", f"{name}-{who}.pem", "-days", "2", cwd=directory)


def syn_counters(lab, node) -> tuple[int, int]:
    """(SYNs to r1:8080 the director sent with the checker's mark, all SYNs to r1:8080), as its nft rules counted."""
    out = lab.run(node, ["nft", "-j", "list", "chain", "ip", "lb3marks", "out"]).stdout
    counts = [expr["counter"]["packets"] for item in json.loads(out)["nftables"] if "rule" in item
              for expr in item["rule"]["expr"] if "counter" in expr]
    assert len(counts) == 2, out
    return counts[0], counts[1]


def test_http_regex_protocol_mark_bind_if_and_tls_client_certificate(lab_factory, tmp_path):
    lab = new_lab(lab_factory, real_servers=1)
    n1, (r1,) = lab.nodes[0], lab.real_servers
    body, requests = tmp_path / "body", tmp_path / "requests.log"
    body.write_text("uptime 3d\nstate: READY\n")
    make_pki(tmp_path, "good")
    make_pki(tmp_path, "other")
    lab.start_http_server(r1, options=["--body-file", str(body), "--request-log", str(requests)])
    tls = ["--request-log", str(requests), "--tls-cert", str(tmp_path / "good-server.pem"),
           "--tls-key", str(tmp_path / "good-server.key")]
    lab.start_http_server(r1, 8443, options=[*tls, "--tls-client-ca", str(tmp_path / "good-ca.pem")])
    lab.start_http_server(r1, 8444, options=[*tls, "--tls-client-ca", str(tmp_path / "other-ca.pem")])
    syn = f"ip daddr {r1.ipv4} tcp dport 8080 tcp flags syn"
    lab.run(n1, ["nft", f"add table ip lb3marks; add chain ip lb3marks out {{ type filter hook output priority 0; }}; "
                 f"add rule ip lb3marks out {syn} meta mark {MARK} counter; add rule ip lb3marks out {syn} counter"])
    regex = {"type": "HTTP_GET", "connect_timeout": 1, "retry": 2, "delay_before_retry": 0.2, "log_all_failures": True,
             "http_protocol": "1.1", "urls": [{"path": "/health", "virtualhost": "app.example",
                                               "regex": "state: (ready|ok)", "regex_options": ["caseless"]}]}
    no_match = {"type": "HTTP_GET", "connect_timeout": 1, "retry": 0,
                "urls": [{"path": "/", "regex": "maintenance", "regex_no_match": True}]}
    ssl_get = {"type": "SSL_GET", "path": "/tls", "connect_timeout": 2, "retry": 0, "enable_sni": True,
               "virtualhost": "tls.example"}
    services = [
        service(80, r1, 8080, [regex]),
        service(81, r1, 8080, [no_match]),
        service(82, r1, 8080, [{"type": "TCP_CHECK", "connect_timeout": 1, "fwmark": MARK}]),
        service(83, r1, 8080, [{"type": "TCP_CHECK", "connect_timeout": 1, "bind_if": "eth1"}]),
        service(84, r1, 8080, [{"type": "TCP_CHECK", "connect_timeout": 1, "retry": 0, "bind_if": "eth0"}]),
        service(85, r1, 8443, [ssl_get]),
        service(86, r1, 8444, [dict(ssl_get, path="/other")]),
    ]
    ssl_block = {"certificate": str(tmp_path / "good-client.pem"), "key": str(tmp_path / "good-client.key"),
                 "password": PASSWORD, "ca": str(tmp_path / "good-ca.pem")}
    agent = start_director(lab, n1, lb_config("n1", services, ssl=ssl_block))
    for port in (80, 81, 82, 83, 85):
        wait_health(agent, port, health="up", kernel_weight=1)
    # bind_if eth0: the real servers are not on that side of the director
    unbound = wait_health(agent, 84, health="down")["failure_reason"]
    # the client certificate of another CA is refused by the server that requires its own
    refused = wait_health(agent, 86, health="down")["failure_reason"]
    print(f"\nREASONS bind_if eth0: {unbound}; other CA: {refused}")
    assert unbound in ("connect timeout after 1 s", "no route to host", "network unreachable")
    assert "TLS" in refused or "HTTP read failed" in refused
    # keepalived's HTTP/1.1 request, the url's virtualhost as Host; SSL_GET's SNI from the check's virtualhost
    seen = requests.read_text()
    assert "GET /health HTTP/1.1 host=app.example connection=close" in seen
    assert "GET /tls HTTP/1.0 host=tls.example connection=None sni=tls.example" in seen
    # the SYNs of :82's TCP_CHECK carry the mark (one a second); those of the 4 other checks of r1:8080 do not
    marked, every = syn_counters(lab, n1)
    wait_for(lambda: syn_counters(lab, n1)[0] >= marked + 3, 10, what="three more marked SYNs")
    marked_more, every_more = (now - before for now, before in zip(syn_counters(lab, n1), (marked, every)))
    print(f"\nMEASURE SYNs to r1:8080 in the window: {marked_more} marked of {every_more}")
    assert marked >= 1 and 3 <= marked_more <= 5 and every_more >= 3 * marked_more

    # the body changes: :80's regex stops matching (after its 2 retries, each failure logged), :81's no_match matches
    changed = time.monotonic()
    body.write_text("uptime 3d\nstate: maintenance\n")
    down = wait_health(agent, 80, health="down", kernel_weight=None)
    assert "did not match the body of /health" in down["failure_reason"]
    assert "regex_no_match" in wait_health(agent, 81, health="down")["failure_reason"]
    print(f"\nMEASURE regex down after {time.monotonic() - changed:.1f} s (delay_loop 1 s, retry 2 x 0.2 s)")
    log = agent.log_text()
    assert "HTTP_GET of real server 203.0.113.11:8080 of 198.51.100.100:80/TCP failed (retry 1 of 2)" in log
    assert "(retry 2 of 2)" in log
    body.write_text("state: ok\n")
    wait_health(agent, 80, health="up", kernel_weight=1)
    wait_health(agent, 81, health="up", kernel_weight=1)


UDP_RESPONDER = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 5353))
open(sys.argv[1], "w").write("ready")
while True:
    data, peer = sock.recvfrom(2048)
    if data == bytes([0x01, 0x23]):
        sock.sendto(b"OK" + bytes([0x12, 0x34]), peer)
"""


def test_file_check_follows_the_file_at_once_and_udp_reply_wildcards(lab_factory, tmp_path):
    lab = new_lab(lab_factory, real_servers=1)
    n1, (r1,) = lab.nodes[0], lab.real_servers
    lab.start_http_server(r1)
    ready = tmp_path / "udp.ready"
    udp = lab.popen(r1, [sys.executable, "-c", UDP_RESPONDER, str(ready)], log_name="udp-responder")
    wait_for(lambda: ready.exists() or not udp.running, 10, what="the UDP responder")
    weighted, gate = tmp_path / "weight", tmp_path / "gate"
    weighted.write_text("0\n")
    services = [  # delay_loop 60 s: a change seen within a second was seen by inotify, not by polling
        service(87, r1, 8080, [{"type": "FILE_CHECK", "track_file": "weighted", "weight": 10}], weight=5,
                delay_loop=60),
        service(88, r1, 8080, [{"type": "FILE_CHECK", "track_file": "gate", "weight": 0}], delay_loop=60),
        # the payload as keepalived reads "1 23"; the reply "OK" 12 34 against x wildcard nibbles
        service(89, r1, 8080, [{"type": "UDP_CHECK", "connect_port": 5353, "payload": "0x0123", "retry": 0,
                                "connect_timeout": 1, "require_reply": "0x4f4bx2x4"}]),
        service(90, r1, 8080, [{"type": "UDP_CHECK", "connect_port": 5353, "payload": "0x0123", "retry": 0,
                                "connect_timeout": 1, "require_reply": "0x4f4cxx"}]),
    ]
    track_files = {"weighted": {"file": str(weighted)}, "gate": {"file": str(gate), "init_file": 1}}
    agent = start_director(lab, n1, lb_config("n1", services, track_files=track_files))
    wait_health(agent, 89, health="up", kernel_weight=1)
    assert wait_health(agent, 90, health="down")["failure_reason"] == \
        "UDP reply 0x4f4b1234 does not match require_reply 0x4f4cxx"
    wait_health(agent, 87, health="up", kernel_weight=5)
    wait_health(agent, 88, health="down", kernel_weight=None)      # init_file wrote 1 to the missing file
    assert gate.read_text() == "1\n"

    def changes_to(path: Path, text: str, port: int, **want) -> float:
        started = time.monotonic()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)                                           # replaced by rename, as tools write files
        wait_health(agent, port, timeout=5, **want)
        return time.monotonic() - started

    timings = [changes_to(weighted, "2\n", 87, health="up", kernel_weight=25),    # 5 + 2 x 10
               changes_to(weighted, "-1\n", 87, health="up", kernel_weight=0),    # 5 - 10: weight 0, not down
               changes_to(weighted, "0x1\n", 87, health="up", kernel_weight=15),  # strtol's base 0
               changes_to(gate, "1\n", 88, health="down", kernel_weight=None),
               changes_to(gate, "0\n", 88, health="up", kernel_weight=1)]
    gate.write_text("7\n")                                          # written in place, not renamed
    wait_health(agent, 88, timeout=5, health="down")
    assert "tracked file" in rs_of(agent, 88)["failure_reason"]
    # a reload naming another file for the gate: that file is watched from then on
    other = tmp_path / "gate2"
    other.write_text("0\n")
    track_files["gate"] = {"file": str(other)}
    rewrite_config(agent, lb_config("n1", services, track_files=track_files))
    reload(agent)
    wait_health(agent, 88, timeout=5, health="up", kernel_weight=1)
    timings.append(changes_to(other, "3\n", 88, health="down", kernel_weight=None))
    print(f"\nMEASURE FILE_CHECK reaction {max(timings) * 1000:.0f} ms at most (delay_loop 60 s)")
    assert max(timings) < 3.0
