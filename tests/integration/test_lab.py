"""The namespace lab itself: connectivity, routing, partitions, teardown, registry, CLI, sniffer."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hanode.lab import netns, registry
from hanode.lab.lab import Lab, LabHttpError, default_workdir_root
from hanode.lab.procs import hanode_argv, python_env, wait_for
from hanode.lab.sniffer import parse_frame

LAB_CLI = [*hanode_argv(), "lab"]  # the real `hanode lab` command


def lab_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(LAB_CLI + list(args), capture_output=True, text=True, timeout=60, env=python_env(), check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"hanode lab {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def namespaces_of(prefix: str) -> list[str]:
    return [ns for ns in netns.names() if ns.startswith(prefix + "-")]


def process_gone(pid: int) -> bool:
    return registry.process_start_ticks(pid) is None


def link_local(mac: str) -> str:
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    words = [(b[0] << 8) | b[1], (b[2] << 8) | 0xFF, 0xFE00 | b[3], (b[4] << 8) | b[5]]
    return "fe80::" + ":".join(f"{w:x}" for w in words)


@pytest.fixture
def private_registry(tmp_path, monkeypatch) -> Path:
    """A registry only this test sees, so `clean --all` cannot touch anyone else's labs."""
    path = tmp_path / "registry"
    monkeypatch.setenv("HANODE_LAB_REGISTRY", str(path))
    return path


def test_wait_for_names_what_it_awaited():
    with pytest.raises(TimeoutError, match=r"waiting for the moon \(last value: 0\)"):
        wait_for(lambda: 0, timeout=0.1, interval=0.02, what="the moon")

    def boom():
        raise ValueError("not yet")
    with pytest.raises(TimeoutError, match="last error: ValueError"):
        wait_for(boom, timeout=0.1, interval=0.02, what="boom")
    assert wait_for(lambda: "ok", timeout=0.1) == "ok"


@pytest.mark.netns
def test_nodes_ping_each_other_over_ipv4_and_ipv6(lab_factory):
    lab = lab_factory(nodes=3, clients=1)
    n1, n2, n3 = lab.nodes
    (c1,) = lab.clients
    for src in (n1, n2, n3, c1):
        for dst in (n1, n2, n3, c1):
            if src is not dst:
                assert lab.ping(src, dst.ipv4), f"{src.name} -> {dst.name} {dst.ipv4}"
                assert lab.ping(src, dst.ipv6), f"{src.name} -> {dst.name} {dst.ipv6}"
    # Deterministic MACs: the neighbour entries name exactly the peers' MACs.
    assert lab.neighbour(n1, n2.ipv4) == n2.mac == "02:68:6e:01:02:00"
    assert lab.neighbour(n1, n3.ipv6) == n3.mac
    assert lab.neighbour(n1, "198.51.100.99") is None
    assert n1.addresses("eth0", family=4) == ["198.51.100.11/24"]
    assert {"2001:db8:100::11/64", f"{link_local(n1.mac)}/64"} <= set(n1.addresses("eth0", family=6))
    assert n1.has_address("2001:db8:100::11") and not n1.has_address("198.51.100.12")
    assert "eth1" not in {p.ifname for p in n1.ports}  # no real servers, no backend port
    # No address is tentative (nodad / accept_dad=0), forwarding only on nodes.
    assert "tentative" not in lab.run(n1, ["ip", "-6", "addr", "show", "dev", "eth0"]).stdout
    assert lab.run(n1, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    assert lab.run(c1, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
    assert lab.run(n1, ["ip", "-j", "link", "show", "lo"]).stdout.count('"UP"') >= 1
    for host in (n1, c1, lab.switch):
        assert host.dir.is_dir() and host.dir.parent == lab.dir


@pytest.mark.netns
def test_client_reaches_real_servers_through_a_node_acting_as_router(lab_factory):
    lab = lab_factory(nodes=1, clients=1, real_servers=2,
                      real_server_gateway="203.0.113.1", real_server_gateway6="2001:db8:203::1")
    (n1,) = lab.nodes
    (c1,) = lab.clients
    r1, r2 = lab.real_servers
    assert n1.port("eth1").ipv4 == "203.0.113.1" and r2.ipv4 == "203.0.113.12"
    for rs in (r1, r2):
        lab.start_http_server(rs, port=8080)
    with pytest.raises(LabHttpError):  # no route from the client to the backend yet
        lab.http_get(c1, "http://203.0.113.11:8080/", timeout=1)
    lab.add_route(c1, "203.0.113.0/24", n1.ipv4)
    lab.add_route(c1, "2001:db8:203::/64", n1.ipv6)
    lab.run(n1, ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
    assert lab.http_get(c1, "http://203.0.113.11:8080/") == (200, "r1\n")
    assert lab.http_get(c1, "http://203.0.113.12:8080/any/path") == (200, "r2\n")
    assert lab.http_get(c1, "http://[2001:db8:203::12]:8080/") == (200, "r2\n")
    # The request really crossed n1: r1 saw the client's address, not n1's.
    assert c1.ipv4 in (r1.dir / "httpd-8080.log").read_text()


@pytest.mark.netns
def test_partition_drops_traffic_between_two_hosts_and_heal_restores_it(lab_factory):
    lab = lab_factory(nodes=2, clients=1)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    assert lab.ping(n1, n2.ipv4)
    lab.partition(n1, n2)
    assert not lab.ping(n1, n2.ipv4, timeout=0.3)
    assert not lab.ping(n2, n1.ipv6, timeout=0.3)
    assert lab.ping(n1, c1.ipv4) and lab.ping(n2, c1.ipv6)
    lab.heal(n1, n2)
    assert lab.wait_reachable(n1, n2.ipv4) and lab.wait_reachable(n2, n1.ipv6)
    # Sides may be groups; heal() without arguments removes every partition.
    lab.partition([n1], [n2, c1])
    assert not lab.ping(n1, c1.ipv4, timeout=0.3) and not lab.ping(c1, n1.ipv4, timeout=0.3)
    assert lab.ping(n2, c1.ipv4)
    lab.heal()
    assert lab.wait_reachable(n1, c1.ipv4) and lab.wait_reachable(c1, n1.ipv6)


@pytest.mark.netns
def test_link_and_switch_port_down_and_up(lab_factory):
    lab = lab_factory(nodes=2, clients=0)
    n1, n2 = lab.nodes
    lab.link_set(n1, "eth0", up=False)
    assert not lab.ping(n2, n1.ipv4, timeout=0.3)
    lab.link_set(n1, "eth0", up=True)
    assert lab.wait_reachable(n2, n1.ipv4) and lab.wait_reachable(n2, n1.ipv6)  # addresses survive a link down
    lab.port_set(n1, "eth0", up=False)
    link = json.loads(lab.run(n1, ["ip", "-j", "link", "show", "eth0"]).stdout)[0]
    assert "NO-CARRIER" in link["flags"]
    lab.port_set(n1, "eth0", up=True)
    assert lab.wait_reachable(n2, n1.ipv4)


@pytest.mark.netns
def test_teardown_leaves_nothing_even_when_the_body_raises(lab_session):
    lab = Lab(nodes=2, clients=1)
    with pytest.raises(RuntimeError, match="boom"):
        with lab:
            lab_session.track(lab.prefix)
            sleeper = lab.popen(lab.nodes[0], ["sleep", "600"])
            # A process the lab did not start itself, only inside its namespace.
            stray = int(lab.run(lab.clients[0], ["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"]).stdout)
            assert len(namespaces_of(lab.prefix)) == 4
            assert (registry.registry_dir() / f"{lab.prefix}.json").exists()
            raise RuntimeError("boom")
    assert namespaces_of(lab.prefix) == []
    assert not sleeper.running and process_gone(sleeper.pid)
    assert wait_for(lambda: process_gone(stray), timeout=5, what="stray sleep gone")
    assert not (registry.registry_dir() / f"{lab.prefix}.json").exists()
    assert not lab.dir.exists()
    lab.close()  # idempotent


@pytest.mark.netns
def test_keep_logs_keeps_the_work_dir(lab_session):
    with Lab(nodes=1, clients=0, keep_logs=True) as lab:
        lab_session.track(lab.prefix)
        lab.run(lab.nodes[0], ["true"])
        echo = lab.popen(lab.nodes[0], ["sh", "-c", "echo hello from n1"], log_name="echo")
        echo.wait(5)
    try:
        assert namespaces_of(lab.prefix) == []
        assert "hello from n1" in (lab.dir / "n1" / "echo.log").read_text()
    finally:
        import shutil
        shutil.rmtree(lab.dir)


@pytest.mark.netns
def test_two_labs_coexist(lab_factory):
    a = lab_factory(nodes=2, clients=1)
    b = lab_factory(nodes=2, clients=1)
    assert a.prefix != b.prefix
    assert not set(a.namespaces) & set(b.namespaces)
    assert a.nodes[0].ipv4 == b.nodes[0].ipv4  # same addresses, separate wires
    a.partition(a.nodes[0], a.nodes[1])
    assert not a.ping(a.nodes[0], a.nodes[1].ipv4, timeout=0.3)
    assert b.ping(b.nodes[0], b.nodes[1].ipv4)
    b.close()
    assert namespaces_of(b.prefix) == []
    assert a.ping(a.nodes[0], a.clients[0].ipv4)


CHILD_LAB = textwrap.dedent("""
    import sys, time
    from hanode.lab.lab import Lab
    lab = Lab(nodes=1, clients=1, reaper={reaper}).up()
    sleeper = lab.popen(lab.nodes[0], ["sleep", "600"])
    print(lab.prefix, sleeper.pid, flush=True)
    time.sleep(600)
""")


def start_child_lab(reaper: bool) -> tuple[subprocess.Popen, str, int]:
    child = subprocess.Popen([sys.executable, "-c", CHILD_LAB.format(reaper=reaper)], stdout=subprocess.PIPE,
                             text=True, env=python_env())
    line = child.stdout.readline().split()
    assert line, f"child lab did not start (rc={child.wait(10)})"
    return child, line[0], int(line[1])


@pytest.mark.netns
def test_clean_removes_the_lab_of_a_killed_creator(private_registry, lab_session, lab_factory):
    live = lab_factory(nodes=1, clients=0)  # registered too, its creator (us) is alive
    child, prefix, sleeper = start_child_lab(reaper=False)
    lab_session.track(prefix)
    try:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert len(namespaces_of(prefix)) == 3
        listed = {r["prefix"]: r for r in json.loads(lab_cli("list", "--json").stdout)}
        assert listed[prefix]["alive"] is False and listed[live.prefix]["alive"] is True

        out = lab_cli("clean").stdout
        assert f"removed {prefix}" in out and live.prefix not in out
        assert namespaces_of(prefix) == []
        assert wait_for(lambda: process_gone(sleeper), timeout=5, what="the dead creator's sleep killed")
        assert not (private_registry / f"{prefix}.json").exists()
        assert len(namespaces_of(live.prefix)) == 2 and live.ping(live.nodes[0], "198.51.100.11")
        assert "nothing to clean" in lab_cli("clean").stdout
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        child.stdout.close()


@pytest.mark.netns
def test_reaper_tears_down_the_lab_when_its_creator_is_killed(private_registry, lab_session):
    child, prefix, sleeper = start_child_lab(reaper=True)
    lab_session.track(prefix)
    try:
        assert len(namespaces_of(prefix)) == 3
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        wait_for(lambda: not namespaces_of(prefix), timeout=10, what=f"reaper to remove {prefix}")
        wait_for(lambda: process_gone(sleeper), timeout=5, what="the dead creator's sleep killed")
        # (the reaper forgets the record last, after removing the lab's directory)
        wait_for(lambda: not (private_registry / f"{prefix}.json").exists(), timeout=5, what="the record removed")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        child.stdout.close()


@pytest.mark.netns
def test_finalizer_tears_down_a_lab_never_closed_when_the_creator_exits(private_registry, lab_session):
    script = "from hanode.lab.lab import Lab\nlab = Lab(nodes=1, clients=0, reaper=False).up()\nprint(lab.prefix)\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                         env=python_env(), check=True).stdout
    prefix = out.strip()
    lab_session.track(prefix)
    assert prefix.startswith("hn") and namespaces_of(prefix) == []
    assert not (private_registry / f"{prefix}.json").exists()


INNER_TESTS = textwrap.dedent("""
    import pytest
    from hanode.lab.lab import Lab

    @pytest.mark.netns
    def test_fails_and_keeps_logs(lab_factory):
        lab = lab_factory(nodes=1, clients=0)
        lab.popen(lab.nodes[0], ["sh", "-c", "echo evidence"], log_name="evidence").wait(5)
        print("PREFIX", lab.prefix)
        assert False, "deliberate"

    @pytest.mark.netns
    def test_leaks_a_lab():
        lab = Lab(nodes=1, clients=0, reaper=False).up()
        lab._finalizer.detach()  # simulate a lab nobody tears down
        print("LEAKED", lab.prefix)
""")


@pytest.mark.netns
def test_fixture_keeps_logs_of_failed_tests_and_session_fails_on_leaked_namespaces(tmp_path, private_registry,
                                                                                   lab_session):
    (tmp_path / "conftest.py").write_text((Path(__file__).parent / "conftest.py").read_text())
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-s", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=python_env(), check=False)
    out = proc.stdout + proc.stderr
    failed_prefix = out.split("PREFIX ")[1].split()[0]
    leaked_prefix = out.split("LEAKED ")[1].split()[0]
    lab_session.track(failed_prefix)
    lab_session.track(leaked_prefix)
    assert proc.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    # The failure report names the kept directory, and the logs are there.
    kept = Path(out.split("lab logs kept under:")[1].split(f"{failed_prefix}: ")[1].split()[0])
    try:
        assert "evidence" in (kept / "n1" / "evidence.log").read_text()
        assert namespaces_of(failed_prefix) == []
        # The leak was reported, cleaned up, and made the run fail.
        assert f"left behind: {leaked_prefix}-n1" in out or f"{leaked_prefix}-sw" in out.split("left behind:")[1]
        assert namespaces_of(leaked_prefix) == [] and not (default_workdir_root() / leaked_prefix).exists()
    finally:
        import shutil
        shutil.rmtree(kept, ignore_errors=True)


@pytest.mark.netns
def test_cli_up_list_down_and_clean_all(private_registry, lab_session):
    first = json.loads(lab_cli("up", "--nodes", "1", "--clients", "1", "--json").stdout)
    lab_session.track(first["prefix"])
    text = lab_cli("up", "--nodes", "2", "--clients", "0", "--real-servers", "1").stdout
    second = text.split()[1]
    lab_session.track(second)
    try:
        assert first["hosts"]["n1"]["ports"]["eth0"]["ipv4"] == "198.51.100.11/24"
        assert first["hosts"]["c1"]["netns"] == f"{first['prefix']}-c1"
        assert "203.0.113.11/24" in text and f"{second}-r1" in text
        assert len(namespaces_of(first["prefix"])) == 3 and len(namespaces_of(second)) == 4
        listed = {r["prefix"]: r for r in json.loads(lab_cli("list", "--json").stdout)}
        assert listed[first["prefix"]]["persistent"] and listed[second]["persistent"]
        assert "nothing to clean" in lab_cli("clean").stdout  # `up` labs outlive their creator
        assert f"removed {first['prefix']}" in lab_cli("down", first["prefix"]).stdout
        assert namespaces_of(first["prefix"]) == []
        assert lab_cli("down", first["prefix"], check=False).returncode == 1
        assert f"removed {second}" in lab_cli("clean", "--all").stdout
        assert namespaces_of(second) == []
        assert json.loads(lab_cli("list", "--json").stdout) == []
    finally:
        lab_cli("clean", "--all", check=False)


KEEPALIVED_CONF = """
global_defs {{
    router_id {name}
    vrrp_version 3
    enable_script_security
}}
vrrp_instance V4 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    virtual_ipaddress {{
        198.51.100.100/24
    }}
}}
vrrp_instance V6 {{
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 140
    advert_int 0.1
    virtual_ipaddress {{
        2001:db8:100::100/64
    }}
}}
"""


@pytest.mark.netns
def test_sniffer_records_keepalived_adverts_over_ipv4_and_ipv6(lab_factory):
    lab = lab_factory(nodes=1, clients=1)
    (n1,) = lab.nodes
    (c1,) = lab.clients
    sniffer = lab.sniff_vrrp()
    started = time.monotonic()
    keepalived = lab.start_keepalived(n1, KEEPALIVED_CONF.format(name=n1.name))
    v4 = sniffer.wait_for_adverts(5, timeout=10, src=n1.ipv4, vrid=51)
    v6 = sniffer.wait_for_adverts(5, timeout=10, src=link_local(n1.mac), vrid=52)
    assert {a.priority for a in v4} == {150} and {a.priority for a in v6} == {140}
    assert all(started < a.t < time.monotonic() for a in v4 + v6)
    # Kernel receive stamps, on the monotonic clock: never after this process read them.
    assert {f["stamp"] for f in sniffer.frames} == {"kernel"}
    assert all(f["t"] <= f["t_read"] for f in sniffer.frames)
    gaps = [b.t - a.t for a, b in zip(v4, v4[1:])]
    assert 0.05 < sorted(gaps)[len(gaps) // 2] < 0.3, gaps  # advert_int 0.1 s
    frames = {(f["vrid"], f["dst"], f["version"]) for f in sniffer.frames}
    assert {(51, "224.0.0.18", 3), (52, "ff02::12", 3)} <= frames
    # keepalived holds the VIPs; the client's neighbour entry for the VIP is n1's MAC.
    lab.wait_for(lambda: n1.has_address("198.51.100.100", "eth0") and n1.has_address("2001:db8:100::100"),
                 timeout=5, what="VIPs on n1")
    assert lab.ping(c1, "198.51.100.100")
    assert lab.neighbour(c1, "198.51.100.100") == n1.mac
    # A stopping master announces priority 0.
    mark = time.monotonic()
    assert keepalived.stop(timeout=10) == 0
    sniffer.wait_for_adverts(1, timeout=5, src=n1.ipv4, vrid=51, since=mark)
    assert 0 in {a.priority for a in sniffer.adverts(src=n1.ipv4, since=mark)}
    assert not n1.has_address("198.51.100.100")
    sniffer.stop()
    assert (n1.dir / "keepalived.pid").exists() or not keepalived.running
    assert "Entering MASTER STATE" in keepalived.log_text()


STAND_IN_AGENT = textwrap.dedent('''
    """Stand-in for `hanode` (run/status/reload) until the real agent lands: tests the lab's plumbing only."""
    import json, os, signal, socket, sys
    import yaml

    def serve(config_path):
        cfg = yaml.safe_load(open(config_path))
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(cfg["control_socket"])
        srv.listen()
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        reloads = 0
        while True:
            conn, _ = srv.accept()
            with conn, conn.makefile("rw") as f:
                req = json.loads(f.readline())
                if req["cmd"] == "reload":
                    reloads += 1
                status = {"schema_version": 1, "router_id": cfg["router_id"], "reloads": reloads,
                          "netns_inode": os.stat("/proc/self/ns/net").st_ino, "instances": {}}
                f.write(json.dumps({"ok": True, "status": status}) + "\\n")

    def ask(path, cmd):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(json.dumps({"cmd": cmd}).encode() + b"\\n")
            return json.loads(s.makefile().readline())["status"]

    args = sys.argv[1:]
    if args[0] == "run":
        serve(args[2])
    elif args[0] == "status":
        print(json.dumps(ask(args[3], "status")))
    elif args[0] == "reload":
        ask(args[2], "reload")
''')


@pytest.mark.netns
def test_start_agent_plumbing_with_a_stand_in_command(lab_factory, tmp_path, monkeypatch):
    script = tmp_path / "stand_in_hanode.py"
    script.write_text(STAND_IN_AGENT)
    monkeypatch.setenv("HANODE_LAB_HANODE", f"{sys.executable} {script}")
    lab = lab_factory(nodes=1, clients=0)
    (n1,) = lab.nodes
    agent = lab.start_agent(n1, {"router_id": "n1", "vrrp_instances": {}})
    assert agent.config_path == n1.dir / "agent.yaml" and agent.socket_path == n1.dir / "agent.sock"
    assert f"control_socket: {n1.dir / 'agent.sock'}" in agent.config_path.read_text()
    status = agent.status()
    assert status["router_id"] == "n1" and status["schema_version"] == 1
    assert status["netns_inode"] == os.stat(f"/run/netns/{n1.netns}").st_ino  # really in n1's namespace
    agent.reload()
    assert agent.status()["reloads"] == 1
    assert agent.stop() == 0 and agent.log_path == n1.dir / "agent.log"
    second = lab.start_agent(n1, {"router_id": "n1b", "control_socket": str(n1.dir / "b.sock")}, name="agent-b")
    assert second.status()["router_id"] == "n1b"
    assert second.kill() == -signal.SIGKILL
    with pytest.raises(RuntimeError, match="exited"):
        lab.start_agent(n1, {"router_id": "bad", "control_socket": "/nonexistent/dir/x.sock"}, name="bad", timeout=5)


PCAP_NS_MAGIC = 0xA1B23C4D


def read_pcap_ns(path: Path) -> list[tuple[int, bytes]]:
    """(CLOCK_REALTIME ns, frame) of every packet of a nanosecond pcap (tcpdump --time-stamp-precision=nano)."""
    data = path.read_bytes()
    endian = next((e for e in "<>" if len(data) >= 24 and struct.unpack_from(e + "I", data)[0] == PCAP_NS_MAGIC), None)
    assert endian, f"{path}: not a nanosecond pcap"
    packets, pos = [], 24
    while pos + 16 <= len(data):
        sec, nsec, incl, _orig_len = struct.unpack_from(endian + "IIII", data, pos)
        packets.append((sec * 1_000_000_000 + nsec, data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    return packets


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@pytest.mark.netns
def test_sniffer_stamps_agree_with_tcpdump_on_the_same_bridge(lab_factory):
    """The sniffer's "t" is the kernel's receive time: the very stamp tcpdump writes to a pcap (same skb), and
    on the monotonic clock within 0.5 ms of it -- however late this loaded machine lets the sniffer read."""
    lab = lab_factory(nodes=1, clients=0)
    (n1,) = lab.nodes
    pcap = lab.switch.dir / "vrrp.pcap"
    tcpdump = lab.popen(lab.switch, ["tcpdump", "-i", "lan", "-n", "-U", "--immediate-mode", "-Z", "root",
                                     "-s", "256", "--time-stamp-precision=nano", "-w", pcap,
                                     "ip proto 112 or ip6 proto 112"], log_name="tcpdump-lan")
    lab.wait_for(lambda: "listening on" in tcpdump.log_text(), 15, what="tcpdump on the lan bridge")
    sniffer = lab.sniff_vrrp()
    keepalived = lab.start_keepalived(n1, KEEPALIVED_CONF.format(name=n1.name))
    sniffer.wait_for_adverts(50, timeout=30, src=n1.ipv4, vrid=51)
    mark = time.monotonic()
    assert keepalived.stop(timeout=10) == 0
    for vrid in (51, 52):  # the priority-0 adverts are the last ones
        wait_for(lambda: [a for a in sniffer.adverts(vrid=vrid, since=mark) if a.priority == 0], 5,
                 what=f"the priority-0 advert of VRID {vrid}")
    frames = sniffer.frames
    wait_for(lambda: len(read_pcap_ns(pcap)) >= len(frames), 10, what=f"{len(frames)} packets in the pcap")
    tcpdump.send_signal(signal.SIGINT)
    tcpdump.wait(10)
    captured = [(ns, parse_frame(frame)) for ns, frame in read_pcap_ns(pcap)]
    assert [(f["src"], f["vrid"], f["priority"]) for f in frames] == \
        [(seen.src, seen.vrid, seen.priority) for _ns, seen in captured], "both saw the same packets in the same order"
    # Realtime read between two monotonic readings gives the offset to compare the monotonic "t" with the pcap
    # (the narrowest of 20 brackets: this process may be preempted in the middle of one).
    readings = [tuple(time.clock_gettime_ns(c) for c in (time.CLOCK_MONOTONIC, time.CLOCK_REALTIME,
                                                         time.CLOCK_MONOTONIC)) for _bracket in range(20)]
    before, real, after = min(readings, key=lambda r: r[2] - r[0])
    offset_ns = real - (before + after) // 2
    kernel_diff_ns = [f["t_kernel_ns"] - ns for f, (ns, _seen) in zip(frames, captured)]
    mono_diff_ms = [(round(f["t"] * 1e9) + offset_ns - ns) / 1e6 for f, (ns, _seen) in zip(frames, captured)]
    lag_ms = [(f["t_read"] - f["t"]) * 1000 for f in frames]
    errors_ns = [f["t_error_ns"] for f in frames]
    print(f"\nMEASURE sniffer vs tcpdump over {len(frames)} adverts: kernel stamps differ by at most "
          f"{max(map(abs, kernel_diff_ns))} ns; monotonic t + offset vs pcap: max "
          f"{max(map(abs, mono_diff_ms)):.4f} ms (conversion error bound {percentile(errors_ns, 0.5)} ns median, "
          f"{max(errors_ns)} ns max, this test's own {(after - before + 1) // 2} ns); "
          f"the sniffer read them {percentile(lag_ms, 0.5):.2f} ms (median) / {percentile(lag_ms, 0.95):.2f} ms "
          f"(p95) / {max(lag_ms):.2f} ms (max) after they arrived")
    assert len(frames) > 50 and {f["stamp"] for f in frames} == {"kernel"}
    assert all(abs(d) <= 500_000 for d in kernel_diff_ns), kernel_diff_ns
    assert all(abs(d) <= 0.5 for d in mono_diff_ms), mono_diff_ms


@pytest.mark.netns
def test_start_agent_runs_the_real_agent_in_the_namespace(lab_factory):
    lab = lab_factory(nodes=1, clients=1)
    (n1,) = lab.nodes
    sniffer = lab.sniff_vrrp()
    config = {"router_id": "n1", "vrrp_instances": {"VI_1": {
        "interface": "eth0", "virtual_router_id": 61, "priority": 150, "version": 3, "advert_int": 0.1,
        "virtual_ipaddresses": ["198.51.100.100/24"]}}}
    agent = lab.start_agent(n1, config, timeout=20)
    assert agent.pid and agent.log_path == n1.dir / "agent.log"
    status = lab.wait_for(lambda: agent.status()["instances"]["VI_1"]["state"] == "MASTER" and agent.status(),
                          timeout=10, what="n1 MASTER")
    assert "schema_version" in status and status["instances"]["VI_1"]["virtual_router_id"] == 61
    assert sniffer.wait_for_adverts(3, timeout=5, src=n1.ipv4, vrid=61)[-1].priority == 150
    lab.wait_for(lambda: n1.has_address("198.51.100.100", "eth0"), timeout=5, what="VIP on n1")
    agent.reload()
    mark = time.monotonic()
    assert agent.stop(timeout=10) == 0
    sniffer.wait_for_adverts(1, timeout=5, src=n1.ipv4, vrid=61, since=mark)
    assert sniffer.adverts(src=n1.ipv4, since=mark)[-1].priority == 0
    assert not n1.has_address("198.51.100.100")
