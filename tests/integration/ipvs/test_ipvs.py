"""The IPVS backend against a real IPVS (inside UML): NAT through the VIP with the scheduler visible in the
traffic split, weight changes in place keep connection entries, services not owned are left alone,
inhibit_on_failure and the sorry server, cleanup on stop. The kernel is read back with ipvsadm."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap

import pytest

from conftest import SORRY, VIP, connections, ipvsadm_rules, rs_addr
from hanode.config.parse import parse_config
from hanode.lvs.backend import open_backend
from hanode.lvs.desired import RsHealth, desired_state
from hanode.lvs.plan import EditDest
from hanode.lvs.reconciler import Reconciler


def lvs_config(algo: str = "rr", weights=(1, 1, 1), **vs_keys):
    raw = {"lb_backend": "auto", "virtual_servers": [{
        "address": VIP, "port": 80, "lb_algo": algo, "lb_kind": "NAT",
        "real_servers": [{"address": rs_addr(i + 1), "port": 8080, "weight": w} for i, w in enumerate(weights)],
        **vs_keys}]}
    config, _problems = parse_config(raw)
    return config.sections["lvs"]


@pytest.fixture
def lb(clean_ipvs, run):
    config = lvs_config()
    backend = run(open_backend(config))
    assert backend.name == "ipvs"            # auto picked IPVS on this kernel
    reconciler = Reconciler(backend)

    def apply(config, health=None, previous=None):
        state, quorum = desired_state(config, health or {}, previous)
        result = run(reconciler.reconcile(state))
        assert result.ok, result.errors
        return result, quorum

    yield clean_ipvs, reconciler, apply
    run(backend.close())


def test_rr_nat_through_the_vip_alternates(lb):
    topo, _reconciler, apply = lb
    apply(lvs_config("rr"))
    assert ipvsadm_rules() == [f"-A -t {VIP}:80 -s rr",
                               *(f"-a -t {VIP}:80 -r {rs_addr(i)}:8080 -m -w 1" for i in (1, 2, 3))]
    names = topo.names(6)
    assert sorted(set(names)) == ["r1", "r2", "r3"] and names[:3] * 2 == names, names


def test_wrr_split_follows_weights(lb):
    topo, _reconciler, apply = lb
    apply(lvs_config("wrr", (3, 1, 0)))
    assert collections.Counter(topo.names(12)) == {"r1": 9, "r2": 3}


def test_sh_keeps_each_client_on_one_server(lb):
    topo, _reconciler, apply = lb
    apply(lvs_config("sh"))
    for client in (1, 2):
        assert len(set(topo.names(4, client))) == 1


HOLD = textwrap.dedent("""
    import socket, sys
    s = socket.create_connection((sys.argv[1], 80), timeout=10)
    print(s.getsockname()[1], flush=True)
    sys.stdin.readline()
    s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    print(data.decode().splitlines()[0], flush=True)
""")


def test_weight_change_is_one_set_and_keeps_connection_entries(lb, run):
    topo, reconciler, apply = lb
    apply(lvs_config("wrr", (1, 1, 1)))
    topo.names(3)
    held = subprocess.Popen(["ip", "netns", "exec", "ipvs-c1", sys.executable, "-c", HOLD, VIP],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = held.stdout.readline().strip()
        before = connections()
        established = [c for c in before if c[0].endswith(f":{port}")]
        assert established and established[0][2] == "ESTABLISHED", before
        result, _quorum = apply(lvs_config("wrr", (1, 4, 1)))
        assert [type(op) for op in result.ops] == [EditDest]
        assert ipvsadm_rules() == [f"-A -t {VIP}:80 -s wrr", f"-a -t {VIP}:80 -r {rs_addr(1)}:8080 -m -w 1",
                                   f"-a -t {VIP}:80 -r {rs_addr(2)}:8080 -m -w 4",
                                   f"-a -t {VIP}:80 -r {rs_addr(3)}:8080 -m -w 1"]
        after = {(c[0], c[1]) for c in connections()}
        assert {(c[0], c[1]) for c in before} <= after          # every entry is still there, same destination
        held.stdin.write("go\n")
        held.stdin.flush()
        out = held.communicate(timeout=20)[0]
        assert out.startswith("HTTP/1.0 200"), out
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()
    assert reconciler.diff() == []


def test_services_not_owned_are_left_alone(lb, run):
    topo, reconciler, apply = lb
    subprocess.run(["ipvsadm", "-A", "-t", "198.51.100.200:80", "-s", "lc"], check=True)
    subprocess.run(["ipvsadm", "-a", "-t", "198.51.100.200:80", "-r", f"{rs_addr(1)}:8080", "-m", "-w", "7"], check=True)
    foreign = [r for r in ipvsadm_rules() if "198.51.100.200" in r]
    apply(lvs_config("rr"))
    run(reconciler.reconcile(desired_state(lvs_config("rr", (1, 1)), {})[0], refresh=True))
    run(reconciler.cleanup(keep=False))
    assert ipvsadm_rules() == foreign


def test_cleanup_removes_owned_services_unless_kept(lb, run):
    topo, reconciler, apply = lb
    apply(lvs_config("rr"))
    assert run(reconciler.cleanup(keep=True)).ops == ()
    assert len(ipvsadm_rules()) == 4 and topo.get()
    result = run(reconciler.cleanup(keep=False))
    assert result.ok and ipvsadm_rules() == []


def test_inhibit_on_failure_sets_weight_zero_and_traffic_avoids_it(lb):
    topo, _reconciler, apply = lb
    config = lvs_config("rr", inhibit_on_failure=True)
    vs = config.virtual_servers[0]
    down = {(vs.name, f"{rs_addr(2)}:8080"): RsHealth(False, reason="connect refused")}
    apply(config, down)
    assert f"-a -t {VIP}:80 -r {rs_addr(2)}:8080 -m -w 0" in ipvsadm_rules()
    assert "r2" not in topo.names(6)
    apply(config, {})
    assert f"-a -t {VIP}:80 -r {rs_addr(2)}:8080 -m -w 1" in ipvsadm_rules()


def test_quorum_loss_switches_to_the_sorry_server_and_back(lb):
    topo, _reconciler, apply = lb
    config = lvs_config("rr", (1, 1, 1), quorum=2, sorry_server={"address": rs_addr(SORRY), "port": 8080})
    vs = config.virtual_servers[0]

    def failing(*indexes):
        return {(vs.name, f"{rs_addr(i)}:8080"): RsHealth(False) for i in indexes}

    _result, quorum = apply(config, failing(1))
    assert quorum[vs.name].up and set(topo.names(4)) == {"r2", "r3"}
    _result, quorum = apply(config, failing(1, 2), quorum)
    assert not quorum[vs.name].up
    assert ipvsadm_rules() == [f"-A -t {VIP}:80 -s rr", f"-a -t {VIP}:80 -r {rs_addr(SORRY)}:8080 -m -w 1"]
    assert set(topo.names(3)) == {f"r{SORRY}"}
    _result, quorum = apply(config, {}, quorum)
    assert quorum[vs.name].up and set(topo.names(3)) == {"r1", "r2", "r3"}


def test_ipv6_and_fwmark_services_round_trip(lb, run):
    reconciler = lb[1]
    raw = {"lb_backend": "ipvs", "virtual_servers": [
        {"address": "2001:db8:100::100", "port": 53, "protocol": "UDP", "lb_algo": "sh", "lb_kind": "DR",
         "persistence_timeout": 120, "persistence_granularity": "64",
         "real_servers": [{"address": "2001:db8:203::11", "port": 53, "weight": 2}]},
        {"fwmark": 7, "lb_algo": "wlc", "lb_kind": "TUN", "real_servers": [{"address": "203.0.113.99", "weight": 3}]},
    ]}
    config, _problems = parse_config(raw)
    state, _quorum = desired_state(config.sections["lvs"], {})
    assert run(reconciler.reconcile(state)).ok
    assert run(reconciler.dump()) == state
    rules = ipvsadm_rules()
    assert "-A -f 7 -s wlc" in rules and "-a -f 7 -r 203.0.113.99:0 -i -w 3 --tun-type ipip" in rules
    assert "-A -u [2001:db8:100::100]:53 -s sh -p 120 -M 64" in rules
    assert "-a -u [2001:db8:100::100]:53 -r [2001:db8:203::11]:53 -g -w 2" in rules
    assert run(reconciler.reconcile(state, refresh=True)).ops == ()
