"""Issue 6, IPVS half of the round trip: keepalived with an original keepalived.conf and hanode with the config
`hanode import-keepalived` made from it program the same IPVS table (runs inside UML, see conftest.py).

For each sample both run, one after the other, in the same director namespace with the same real servers:
keepalived (`keepalived -n -l -D -f CONF -p/-r/-c`) until its table holds, `ipvsadm -Sn` is read, keepalived is
stopped (its rules must be gone), then `hanode run` with the imported config and the same again. Each stage
turns some real servers' listeners off (or back on); both implementations must reach the same table, compared
service by service (scheduler, persistence, flags) and destination by destination (weight, forwarding method).

    mig-c  198.51.100.201/24 --- eth0 198.51.100.1/24 [mig-d: director, its own IPVS table] eth1 203.0.113.1/24
                                                                                                 |
    mig-rs 203.0.113.2/24 + every real server address /32, one Python process listening on all of them:
           GET <path> answers 200 with "<address> <path>\\n"; TLS on the SSL_GET ports (self-signed, made here)

The Debian samples' 192.168.200.N / 192.168.201.N / 10.10.10.N become 198.51.100.N / 203.0.113.N /
198.51.100.(200+N). lvs-nat-http's url digest is replaced by the md5 of the lab body so that its check can pass;
keepalived.conf.sample keeps its digest, which no body has, so that its real server fails. The imported config
gets two lines more: its control socket and a longer watchdog timeout for this slow guest (import_config).
Set HANODE_MIGRATE_LOGS=1 (uml_run.py --env) and pass -s to see both daemons' logs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from hanode.lab.procs import hanode_argv, python_env

SAMPLES = Path(__file__).resolve().parents[1] / "keepalived_configs"
DIRECTOR, CLIENT, SERVERS = "mig-d", "mig-c", "mig-rs"
START_DEADLINE_S = 90.0       # UML runs Python ~15x slower than the host
STAGE_DEADLINE_S = 90.0
WATCHDOG_TIMEOUT_S = 30
ELSEWHERE_S = 30.0            # a table that stays the same this long, although not the expected one, is settled

# (address, port, tls): every listener any sample checks or sends traffic to
LISTENERS = [
    ("203.0.113.11", 8080, False), ("203.0.113.12", 8080, False), ("203.0.113.50", 8080, False),
    ("203.0.113.11", 8443, True), ("203.0.113.12", 8443, False),
    ("203.0.113.100", 80, False), ("203.0.113.100", 443, True), ("203.0.113.101", 80, False),
    ("198.51.100.2", 1358, False),
]

SERVER = r'''
import os, socket, ssl, sys, threading, time
ctl, cert, key = sys.argv[1:4]
specs = [(a, int(p), t == "tls") for a, p, t in (s.split(",") for s in sys.argv[4:])]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)

def serve(conn, addr, tls):
    try:
        conn.settimeout(5)
        if tls:
            conn = context.wrap_socket(conn, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ")[1].decode()
        body = ("%s %s\n" % (addr, path)).encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    except Exception:
        pass
    finally:
        conn.close()

def listen(s, addr, tls, stop):
    while not stop.is_set():
        try:
            conn, _peer = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn, addr, tls), daemon=True).start()
    s.close()

running = {}
last = None
while True:
    for addr, port, tls in specs:
        down = os.path.exists(os.path.join(ctl, "down-%s-%d" % (addr, port)))
        if down and (addr, port) in running:
            stop, thread = running.pop((addr, port))
            stop.set()
            thread.join()
        elif not down and (addr, port) not in running:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.listen(64)
            s.settimeout(0.1)
            stop = threading.Event()
            thread = threading.Thread(target=listen, args=(s, addr, tls, stop), daemon=True)
            running[(addr, port)] = (stop, thread)
            thread.start()
    state = sorted("%s:%d" % k for k in running)
    if state != last:           # every socket in it is listening, or closed
        with open(os.path.join(ctl, "listening.tmp"), "w") as f:
            f.write("\n".join(state) + "\n")
        os.replace(os.path.join(ctl, "listening.tmp"), os.path.join(ctl, "listening"))
        last = state
    time.sleep(0.1)
'''


def body(address: str, path: str) -> bytes:
    return f"{address} {path}\n".encode()


def md5(address: str, path: str) -> str:
    return hashlib.md5(body(address, path), usedforsecurity=False).hexdigest()


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def in_ns(netns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", netns, *argv, check=check)


def parse_table(text: str) -> dict[str, list[str]]:
    """`ipvsadm -Sn` as {service line: sorted destination lines}: the kernel lists services in hash order and
    destinations in the order they were added, neither of which is part of what the table means."""
    table: dict[str, list[str]] = {}
    services = {}
    for line in filter(None, (line.strip() for line in text.splitlines())):
        words = line.split()
        if words[0] == "-A":
            services[" ".join(words[1:3])] = line
            table[line] = []
        elif words[0] == "-a":
            table[services[" ".join(words[1:3])]].append(line)
        else:
            raise AssertionError(f"unexpected ipvsadm -Sn line: {line!r}")
    return {service: sorted(dests) for service, dests in table.items()}


def table_text(table: dict[str, list[str]]) -> str:
    return "\n".join(line for service in sorted(table) for line in [service, *table[service]]) or "(empty)"


class Lab:
    """The director, the client and the real servers' namespace with its one listener process."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mig-"))
        self.ctl = self.dir / "ctl"
        self.ctl.mkdir()
        self.namespaces: list[str] = []
        self.server: subprocess.Popen | None = None

    def up(self) -> None:
        for name in (DIRECTOR, CLIENT, SERVERS):
            sh("ip", "netns", "add", name)
            self.namespaces.append(name)
            in_ns(name, "ip", "link", "set", "lo", "up")
        self._link("mig-d0", "eth0", "mig-c0", CLIENT, "198.51.100.1/24", "198.51.100.201/24")
        self._link("mig-d1", "eth1", "mig-s0", SERVERS, "203.0.113.1/24", "203.0.113.2/24")
        in_ns(DIRECTOR, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        in_ns(CLIENT, "ip", "route", "add", "default", "via", "198.51.100.1")
        in_ns(SERVERS, "ip", "route", "add", "default", "via", "203.0.113.1")
        for address in sorted({a for a, _port, _tls in LISTENERS}):
            in_ns(SERVERS, "ip", "addr", "add", f"{address}/32", "dev", "eth0")
            if not address.startswith("203.0.113."):
                in_ns(DIRECTOR, "ip", "route", "add", f"{address}/32", "dev", "eth1")
        cert, key = self.dir / "cert.pem", self.dir / "key.pem"
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-days", "2", "-subj", "/CN=www.example.com", "-keyout", str(key), "-out", str(cert))
        specs = [f"{a},{p},{'tls' if t else 'tcp'}" for a, p, t in LISTENERS]
        with open(self.dir / "servers.log", "w") as log:
            self.server = subprocess.Popen(["ip", "netns", "exec", SERVERS, sys.executable, "-c", SERVER,
                                            str(self.ctl), str(cert), str(key), *specs],
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        self.set_down()

    def _link(self, outer: str, outer_name: str, inner: str, netns: str, outer_addr: str, inner_addr: str) -> None:
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", outer, "netns", DIRECTOR)
        sh("ip", "link", "set", inner, "netns", netns)
        in_ns(DIRECTOR, "ip", "link", "set", outer, "name", outer_name)
        in_ns(netns, "ip", "link", "set", inner, "name", "eth0")
        in_ns(DIRECTOR, "ip", "addr", "add", outer_addr, "dev", outer_name)
        in_ns(netns, "ip", "addr", "add", inner_addr, "dev", "eth0")
        in_ns(DIRECTOR, "ip", "link", "set", outer_name, "up")
        in_ns(netns, "ip", "link", "set", "eth0", "up")

    def set_down(self, *listeners: str) -> None:
        """Only these listeners ("203.0.113.12:8080") refuse connections; waits until the server says so."""
        for path in self.ctl.glob("down-*"):
            path.unlink()
        for name in listeners:
            address, port = name.rsplit(":", 1)
            (self.ctl / f"down-{address}-{port}").touch()
        want = sorted(f"{a}:{p}" for a, p, _tls in LISTENERS if f"{a}:{p}" not in listeners)
        deadline = time.monotonic() + START_DEADLINE_S
        listening = self.ctl / "listening"
        while not (listening.exists() and listening.read_text().split() == want):
            if self.server.poll() is not None:
                raise RuntimeError(f"the real servers' process exited: {(self.dir / 'servers.log').read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"real servers did not reach {want}")
            time.sleep(0.1)

    def table(self) -> dict[str, list[str]]:
        return parse_table(in_ns(DIRECTOR, "ipvsadm", "-Sn").stdout)

    def vips(self) -> set[str]:
        out = in_ns(DIRECTOR, "ip", "-o", "-4", "addr", "show").stdout
        return set(re.findall(r"inet (\S+)", out))

    def get(self, url: str) -> str:
        proc = in_ns(CLIENT, "curl", "-sS", "-m", "10", url, check=False)
        assert proc.returncode == 0, f"GET {url} from the client: {proc.stderr.strip()}"
        return proc.stdout

    def down(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


class Director:
    """keepalived or hanode running in the director namespace."""

    def __init__(self, lab: Lab, kind: str, conf: Path) -> None:
        self.lab, self.kind = lab, kind
        self.log = lab.dir / f"{conf.stem}-{kind}.log"
        run = lab.dir / f"{conf.stem}-{kind}"
        if kind == "keepalived":
            argv = ["keepalived", "-n", "-l", "-D", "-f", str(conf), "-p", f"{run}.pid", "-r", f"{run}-vrrp.pid",
                    "-c", f"{run}-checkers.pid"]
        else:
            argv = [*hanode_argv(), "run", "--config", str(conf)]
        self.reached: list[float] = []      # per stage: seconds until the table first equalled the expected one
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(["ip", "netns", "exec", DIRECTOR, *argv], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=python_env(),
                                         start_new_session=True)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def settle(self, expected: dict[str, list[str]], hold_s: float) -> dict[str, list[str]]:
        """The table once it has equalled `expected` for hold_s, or once it has stayed something else for
        ELSEWHERE_S (the caller compares), or at the deadline."""
        start = time.monotonic()
        last, since = None, start
        reached = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log_tail()}")
            table, now = self.lab.table(), time.monotonic()
            if table != last:
                last, since = table, now
            held = now - since
            if table == expected and reached is None:
                reached = since - start
                self.reached.append(round(reached, 1))
            if (table == expected and held >= hold_s) or held >= ELSEWHERE_S or now - start > STAGE_DEADLINE_S:
                return table
            time.sleep(0.1)

    def stop(self) -> dict[str, list[str]]:
        """SIGTERM, wait for the exit; the table right after."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"{self.kind} ignored SIGTERM for 60 s:\n{self.log_tail()}") from None
        return self.lab.table()


def import_config(lab: Lab, text: str, name: str) -> tuple[Path, Path, str]:
    """Writes the keepalived.conf, runs `hanode import-keepalived` on it; (conf, agent config, importer stderr).
    Two lines are added to the imported file: the control socket in the lab directory, and a watchdog timeout
    for this slow guest (UML runs Python ~15x slower, a restarted child needs more than the default 2 s to send
    its first heartbeat, and on a loaded host the whole guest stalls for seconds)."""
    conf, out = lab.dir / f"{name}.conf", lab.dir / f"{name}.yaml"
    conf.write_text(text)
    proc = subprocess.run([*hanode_argv(), "import-keepalived", str(conf), "--output", str(out)],
                          capture_output=True, text=True, env=python_env(), timeout=120, check=False)
    assert proc.returncode in (0, 3), f"import-keepalived exited {proc.returncode}: {proc.stderr}"
    imported = out.read_text()
    out.write_text(imported + ("" if imported.endswith("\n") else "\n")
                   + f"control_socket: {lab.dir / name}.sock\nwatchdog_timeout: {WATCHDOG_TIMEOUT_S}\n")
    return conf, out, proc.stderr


class Run(NamedTuple):
    tables: list          # the table at every stage, then the one right after the stop
    timeline: list        # seconds to each stage's table, VIP waits, the stop
    log_tail: str


def run_stages(lab: Lab, kind: str, conf: Path, stages: list[dict]) -> Run:
    """Starts keepalived or hanode, walks the stages (listeners down, expected table, hold, optional request
    through a VIP) and stops it."""
    lab.set_down()
    assert lab.table() == {}, f"IPVS table not empty before {kind} started: {lab.table()}"
    director = Director(lab, kind, conf)
    tables, timeline = [], []
    try:
        for i, stage in enumerate(stages):
            lab.set_down(*stage.get("down", ()))
            tables.append(director.settle(stage["table"], stage.get("hold_s", 3.0)))
            timeline.append(f"stage {i} table after {director.reached[i]} s" if len(director.reached) > i
                            else f"stage {i} table never reached")
            if "get" in stage and tables[-1] == stage["table"]:
                url, answers = stage["get"]
                started = time.monotonic()
                host = url.split("/")[2]
                while host not in {vip.split("/")[0] for vip in lab.vips()}:
                    assert time.monotonic() - started < START_DEADLINE_S, f"{kind}: no VIP {host}: {lab.vips()}"
                    time.sleep(0.2)
                answer = lab.get(url)
                assert answer in answers, f"{kind}: GET {url} answered {answer!r}, expected one of {answers}"
                timeline.append(f"VIP after {time.monotonic() - started:.1f} s, GET answered by {answer.split()[0]}")
    finally:
        started = time.monotonic()
        tables.append(director.stop())
        timeline.append(f"stopped in {time.monotonic() - started:.1f} s")
        in_ns(DIRECTOR, "ipvsadm", "-C")        # what a stop left behind fails this test, not the next one
        if os.environ.get("HANODE_MIGRATE_LOGS"):          # uml_run.py --env HANODE_MIGRATE_LOGS=1 -- -s ...
            print(f"----- {director.log.name}\n{director.log.read_text(errors='replace')}")
    return Run(tables, timeline, director.log_tail())


def expect(*lines: str) -> dict[str, list[str]]:
    return parse_table("\n".join(lines))


def compare(lab: Lab, name: str, text: str, stages: list[dict]) -> None:
    """The round trip for one sample: same tables for keepalived and hanode at every stage, each the expected
    one, and nothing left after either stops."""
    conf, agent_yaml, notes = import_config(lab, text, name)
    started = time.monotonic()
    keepalived = run_stages(lab, "keepalived", conf, stages)
    middle = time.monotonic()
    hanode = run_stages(lab, "hanode", agent_yaml, stages)
    report = [f"{name}: keepalived {middle - started:.0f} s: {'; '.join(keepalived.timeline)}",
              f"{name}: hanode {time.monotonic() - middle:.0f} s: {'; '.join(hanode.timeline)}"]
    for i, stage in enumerate(stages):
        report.append(f"-- stage {i} (down: {', '.join(stage.get('down', ())) or 'none'}):\n"
                      + table_text(keepalived.tables[i]))
    print("\n".join(report))
    logs = (f"\n--- import notes:\n{notes}\n--- keepalived log:\n{keepalived.log_tail}\n--- hanode log:\n"
            f"{hanode.log_tail}")
    for i, stage in enumerate(stages):
        assert keepalived.tables[i] == hanode.tables[i], (
            f"{name}, stage {i} (down: {stage.get('down', ())}): tables differ\n--- keepalived:\n"
            f"{table_text(keepalived.tables[i])}\n--- hanode:\n{table_text(hanode.tables[i])}{logs}")
        assert keepalived.tables[i] == stage["table"], (
            f"{name}, stage {i}: both have\n{table_text(keepalived.tables[i])}\nexpected\n"
            f"{table_text(stage['table'])}{logs}")
    assert keepalived.tables[-1] == {}, f"keepalived left rules after its stop:\n{table_text(keepalived.tables[-1])}"
    assert hanode.tables[-1] == {}, f"hanode left rules after its stop:\n{table_text(hanode.tables[-1])}{logs}"


def debian(name: str) -> str:
    text = (SAMPLES / "debian" / name).read_text()
    text = re.sub(r"192\.168\.200\.(\d+)", r"198.51.100.\1", text)
    text = re.sub(r"192\.168\.201\.(\d+)", r"203.0.113.\1", text)
    return re.sub(r"10\.10\.10\.(\d+)", lambda m: f"198.51.100.{200 + int(m.group(1))}", text)


# ----- the samples --------------------------------------------------------------------------------------------

def test_lvs_nat_http_get_wrr_persistence_sorry_server_inhibit(lab):
    """tests/integration/keepalived_configs/lvs-nat-http: wrr + persistence + quorum 1 + sorry server on :80 with
    HTTP_GET checks (one real server with inhibit_on_failure, one with two urls, status range and digest), sh on
    :443 with SSL_GET (SNI) and TCP_CHECK, and a VRRP instance carrying the VIP. The :80 real servers fail one
    after the other: the plain one disappears, the inhibited one drops to weight 0 and the sorry server comes in
    as the quorum is lost; both come back."""
    text = (SAMPLES / "lvs-nat-http" / "keepalived.conf").read_text()
    text = text.replace("9b3a0c85a887a256d6939da88aabd8cd", md5("203.0.113.12", "/"))
    vs80, vs443 = "-t 198.51.100.120:80", "-t 198.51.100.120:443"
    https = [f"-A {vs443} -s sh", f"-a {vs443} -r 203.0.113.11:8443 -m -w 1",
             f"-a {vs443} -r 203.0.113.12:8443 -m -w 1"]
    all_up = expect(f"-A {vs80} -s wrr -p 60", f"-a {vs80} -r 203.0.113.11:8080 -m -w 3",
                    f"-a {vs80} -r 203.0.113.12:8080 -m -w 1", *https)
    answers = {body("203.0.113.11", "/").decode(), body("203.0.113.12", "/").decode()}
    stages = [
        {"table": all_up, "get": ("http://198.51.100.120/", answers)},
        {"down": ["203.0.113.12:8080"],
         "table": expect(f"-A {vs80} -s wrr -p 60", f"-a {vs80} -r 203.0.113.11:8080 -m -w 3", *https)},
        {"down": ["203.0.113.12:8080", "203.0.113.11:8080"],
         "table": expect(f"-A {vs80} -s wrr -p 60", f"-a {vs80} -r 203.0.113.11:8080 -m -w 0",
                         f"-a {vs80} -r 203.0.113.50:8080 -m -w 1", *https),
         "get": ("http://198.51.100.120/", {body("203.0.113.50", "/").decode()})},
        {"table": all_up},
    ]
    compare(lab, "lvs-nat-http", text, stages)


def test_debian_fwmark_sample(lab):
    """keepalived.conf.fwmark: a fwmark service with persistence 900, real servers without a port checked with
    TCP_CHECK on connect_port 80; one stops listening and disappears."""
    fw = "-f 1"
    stages = [
        {"table": expect(f"-A {fw} -s rr -p 900", f"-a {fw} -r 203.0.113.100:0 -m -w 1",
                         f"-a {fw} -r 203.0.113.101:0 -m -w 1")},
        {"down": ["203.0.113.101:80"],
         "table": expect(f"-A {fw} -s rr -p 900", f"-a {fw} -r 203.0.113.100:0 -m -w 1")},
    ]
    compare(lab, "debian-fwmark", debian("keepalived.conf.fwmark"), stages)


def test_debian_keepalived_conf_sample(lab):
    """keepalived.conf.sample (Debian's /usr/share/doc/keepalived/samples/keepalived.conf.sample) as shipped: a
    VRRP instance and a persistent rr service with a sorry server; its one real server's HTTP_GET wants a digest
    no lab body has, so it fails, is removed, the quorum (1) is lost and the sorry server takes its place."""
    vs = "-t 198.51.100.202:1358"
    stages = [{"table": expect(f"-A {vs} -s rr -p 50", f"-a {vs} -r 198.51.100.200:1358 -m -w 1")}]
    compare(lab, "debian-sample", debian("keepalived.conf.sample"), stages)


DEFAULTS_CONF = """\
! keepalived's defaults and the service flags hanode carries over; real servers without checks are always up
virtual_server 198.51.100.130 53 {
    real_server 203.0.113.11 53 {
    }
}
virtual_server 198.51.100.131 80 {
    protocol TCP
    lb_algo sh
    lb_kind DR
    persistence_timeout
    persistence_granularity 255.255.255.0
    real_server 203.0.113.11 80 {
        weight 5
    }
    real_server 203.0.113.12 {
        weight 0
    }
    real_server 203.0.113.13 8080 {
        weight 1
    }
}
virtual_server 198.51.100.132 5060 {
    protocol UDP
    lb_algo rr
    lb_kind TUN
    ops
    real_server 203.0.113.11 5060 {
        weight 2
    }
}
virtual_server 2001:db8:100::132 443 {
    protocol TCP
    lb_algo lc
    lb_kind NAT
    persistence_timeout 30
    persistence_granularity 64
    real_server 2001:db8:203::11 8443 {
        weight 3
    }
}
virtual_server fwmark 7 {
    lb_algo wlc
    lb_kind DR
    real_server 203.0.113.11 {
        weight 4
    }
    real_server 203.0.113.12 8080 {
        weight 1
    }
}
virtual_server 198.51.100.133 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    sorry_server 203.0.113.50 8080
    sorry_server_inhibit
    real_server 203.0.113.11 8080 {
    }
}
virtual_server 198.51.100.134 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    quorum 5
    hysteresis 1
    sorry_server 203.0.113.50 8080
    real_server 203.0.113.11 8080 {
        weight 2
    }
    real_server 203.0.113.12 8080 {
        weight 2
    }
}
virtual_server 198.51.100.135 80 {
    protocol TCP
    lb_algo rr
    lb_kind DR
    sorry_server 203.0.113.50 8080
    sorry_server_inhibit
    real_server 203.0.113.11 80 {
    }
}
virtual_server 198.51.100.136 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    quorum 5
    sorry_server 203.0.113.50 8080
    real_server 203.0.113.11 8080 {
        weight 2
    }
    real_server 203.0.113.12 8080 {
        weight 2
    }
}
virtual_server 198.51.100.137 80 {
    protocol TCP
    sorry_server 203.0.113.50 8080
}
virtual_server 198.51.100.138 80 {
    protocol TCP
    lb_algo rr
    sorry_server 203.0.113.50 8080
    real_server 203.0.113.11 8080 {
        weight 0
    }
}
virtual_server 198.51.100.139 0 {
    protocol TCP
    real_server 203.0.113.11 0 {
    }
}
virtual_server 198.51.100.140 80 {
    protocol TCP
    ops
    persistence_granularity 255.255.255.0
    real_server 203.0.113.11 80 {
    }
}
"""


def test_defaults_and_service_flags(lab):
    """A hand-written keepalived.conf for what the table gets without any check: the defaults keepalived fills
    in (no protocol, lb_algo, lb_kind, weight, real server port, persistence_timeout without a value), DR, TUN,
    one-packet scheduling, persistence granularity (IPv4 mask and IPv6 prefix), an IPv6 service, a fwmark
    service, an inhibited sorry server while the quorum is up, and what keepalived corrects as it loads a
    virtual_server (the importer writes it out): DR destinations and sorry server get the service's port (a
    fwmark's none), a quorum above the total weight is lowered to it (.134 still starts short because of its
    hysteresis, .136 starts up), a service without real servers is ignored (.137), a total weight of 0
    leaves only the sorry server (.138), port 0 and persistence_granularity make a service persistent for 360 s
    (.139, .140) and ops is ignored on TCP (.140)."""
    table = expect(
        "-A -u 198.51.100.130:53 -s wlc", "-a -u 198.51.100.130:53 -r 203.0.113.11:53 -m -w 1",
        "-A -t 198.51.100.131:80 -s sh -p 360 -M 255.255.255.0",
        "-a -t 198.51.100.131:80 -r 203.0.113.11:80 -g -w 5", "-a -t 198.51.100.131:80 -r 203.0.113.12:80 -g -w 0",
        "-a -t 198.51.100.131:80 -r 203.0.113.13:80 -g -w 1",
        "-A -u 198.51.100.132:5060 -s rr -o", "-a -u 198.51.100.132:5060 -r 203.0.113.11:5060 -i -w 2 --tun-type ipip",
        "-A -t [2001:db8:100::132]:443 -s lc -p 30 -M 64",
        "-a -t [2001:db8:100::132]:443 -r [2001:db8:203::11]:8443 -m -w 3",
        "-A -f 7 -s wlc", "-a -f 7 -r 203.0.113.11:0 -g -w 4", "-a -f 7 -r 203.0.113.12:0 -g -w 1",
        "-A -t 198.51.100.133:80 -s rr", "-a -t 198.51.100.133:80 -r 203.0.113.11:8080 -m -w 1",
        "-a -t 198.51.100.133:80 -r 203.0.113.50:8080 -m -w 0",
        "-A -t 198.51.100.134:80 -s rr", "-a -t 198.51.100.134:80 -r 203.0.113.50:8080 -m -w 1",
        "-A -t 198.51.100.135:80 -s rr", "-a -t 198.51.100.135:80 -r 203.0.113.11:80 -g -w 1",
        "-a -t 198.51.100.135:80 -r 203.0.113.50:80 -g -w 0",
        "-A -t 198.51.100.136:80 -s rr", "-a -t 198.51.100.136:80 -r 203.0.113.11:8080 -m -w 2",
        "-a -t 198.51.100.136:80 -r 203.0.113.12:8080 -m -w 2",
        "-A -t 198.51.100.138:80 -s rr", "-a -t 198.51.100.138:80 -r 203.0.113.50:8080 -m -w 1",
        "-A -t 198.51.100.139:0 -s wlc -p 360", "-a -t 198.51.100.139:0 -r 203.0.113.11:0 -m -w 1",
        "-A -t 198.51.100.140:80 -s wlc -p 360 -M 255.255.255.0", "-a -t 198.51.100.140:80 -r 203.0.113.11:80 -m -w 1")
    compare(lab, "defaults", DEFAULTS_CONF, [{"table": table}])


GROUPS_CONF = """\
! issue 13: a virtual_server_group (a range and a fwmark) sharing its real servers, their checks and the quorum;
! per-real-server forwarding with tunnel options, scheduler flags, a persistence engine, the sorry server's method
virtual_server_group grp {
    198.51.100.150-151 80
    fwmark 9
}
virtual_server group grp {
    protocol TCP
    lb_algo rr
    delay_loop 1
    sorry_server 203.0.113.50 8080
    real_server 203.0.113.11 8080 {
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 203.0.113.12 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 198.51.100.152 8080 {
    protocol TCP
    lb_algo sh
    sh-port
    persistence_timeout 60
    persistence_engine sip
    sorry_server 203.0.113.50 8080
    sorry_server_lvs_method DR
    sorry_server_inhibit
    real_server 203.0.113.11 8080 {
        uthreshold 100
    }
    real_server 203.0.113.100 80 {
        lvs_method DR
    }
    real_server 203.0.113.101 8080 {
        lvs_method TUN type gue port 6080
    }
}
"""


def test_groups_and_ipvs_options(lab):
    """GROUPS_CONF: keepalived and hanode build the same table for a group's three members (two addresses of a
    range and a fwmark) and keep it the same as the group's real servers fail: one stops listening and leaves
    every member, the inhibited one goes to weight 0 in every member while the sorry server comes in, both come
    back. The second service mixes NAT, DR and TUN (GUE) real servers with sh-port, the SIP persistence engine and
    a DR sorry server. A GET through the range's second address reaches a real server."""
    vips = ("198.51.100.150", "198.51.100.151", "198.51.100.152")
    for vip in vips:
        in_ns(DIRECTOR, "ip", "addr", "add", f"{vip}/32", "dev", "lo")
    members = ["-t 198.51.100.150:80", "-t 198.51.100.151:80", "-f 9"]
    mixed = ["-A -t 198.51.100.152:8080 -s sh -p 60 --pe sip -b sh-port",
             "-a -t 198.51.100.152:8080 -r 203.0.113.11:8080 -m -w 1",
             "-a -t 198.51.100.152:8080 -r 203.0.113.50:8080 -g -w 0",
             "-a -t 198.51.100.152:8080 -r 203.0.113.100:8080 -g -w 1",
             "-a -t 198.51.100.152:8080 -r 203.0.113.101:8080 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum"]

    def table(*dests: str):
        return expect(*[line for m in members for line in [f"-A {m} -s rr", *(f"-a {m} -r {d}" for d in dests)]],
                      *mixed)

    up = table("203.0.113.11:8080 -m -w 1", "203.0.113.12:8080 -m -w 1")
    stages = [
        {"table": up, "get": ("http://198.51.100.151/", {body(rs, "/").decode() for rs in ("203.0.113.11",
                                                                                           "203.0.113.12")})},
        {"down": ["203.0.113.12:8080"], "table": table("203.0.113.11:8080 -m -w 1")},
        {"down": ["203.0.113.12:8080", "203.0.113.11:8080"],
         "table": table("203.0.113.11:8080 -m -w 0", "203.0.113.50:8080 -m -w 1")},
        {"table": up},
    ]
    try:
        compare(lab, "groups", GROUPS_CONF, stages)
    finally:
        for vip in vips:
            in_ns(DIRECTOR, "ip", "addr", "del", f"{vip}/32", "dev", "lo", check=False)
