"""The nftables load-balancing backend on the host kernel, in a namespace lab:

    client c1 (198.51.100.201) -> VIP 198.51.100.100:80 on director n1 -> real servers r1..r3 (203.0.113.11-13:8080)

The real servers route back through the director (keepalived NAT's requirement). Each real server answers
with its own name, so the scheduler shows in the traffic split. The config goes through the real parser,
desired_state() and the Reconciler.
"""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
import textwrap

import pytest

from hanode.config.parse import parse_config
from hanode.lab import netns
from hanode.lvs.desired import desired_state
from hanode.lvs.kernel import DestKey
from hanode.lvs.nft import NftBackend
from hanode.lvs.plan import EditDest
from hanode.lvs.reconciler import Reconciler

pytestmark = pytest.mark.netns

VIP = "198.51.100.100"
GATEWAY = "203.0.113.1"


def lvs_config(algo: str, weights=(1, 1, 1)):
    raw = {"lb_backend": "nftables", "virtual_servers": [{
        "address": VIP, "port": 80, "lb_algo": algo, "lb_kind": "NAT",
        "real_servers": [{"address": f"203.0.113.{11 + i}", "port": 8080, "weight": w} for i, w in enumerate(weights)],
    }]}
    config, _ = parse_config(raw)
    return config.sections["lvs"]


@pytest.fixture
def lb(lab_factory):
    lab = lab_factory(nodes=1, clients=2, real_servers=3, real_server_gateway=GATEWAY)
    director = lab.nodes[0]
    lab.run(director, ["ip", "addr", "add", f"{VIP}/32", "dev", "eth0"])
    for rs in lab.real_servers:
        lab.start_http_server(rs, 8080)
    backend = NftBackend(netns=director.netns)
    reconciler = Reconciler(backend)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(backend.open())

    class LB:
        def __init__(self):
            self.lab, self.director, self.reconciler, self.backend = lab, director, reconciler, backend

        def apply(self, config):
            state, _ = desired_state(config, {})
            result = loop.run_until_complete(reconciler.reconcile(state))
            assert result.ok, result.errors
            return result

        def dump(self):
            return loop.run_until_complete(backend.dump())

        def cleanup(self, keep: bool):
            return loop.run_until_complete(reconciler.cleanup(keep))

        def names(self, count: int, client=None) -> list[str]:
            client = client or lab.clients[0]
            out = []
            for _ in range(count):
                status, body = lab.http_get(client, f"http://{VIP}/", timeout=5)
                assert status == 200
                out.append(body.strip())
            return out

    yield LB()
    loop.close()


def test_rr_alternates_between_all_real_servers(lb):
    lb.apply(lvs_config("rr"))
    names = lb.names(9)
    assert sorted(set(names)) == ["r1", "r2", "r3"]
    assert names[:3] * 3 == names, f"round robin should cycle: {names}"


def test_wrr_splits_by_weight_exactly(lb):
    lb.apply(lvs_config("wrr", (3, 1, 0)))
    counts = collections.Counter(lb.names(16))
    assert counts == {"r1": 12, "r2": 4}, counts     # r3 has weight 0: never scheduled


def test_sh_keeps_a_client_on_one_server(lb):
    lb.apply(lvs_config("sh"))
    first = lb.names(6)
    second = lb.names(6, client=lb.lab.clients[1])
    assert len(set(first)) == 1 and len(set(second)) == 1, (first, second)


CLIENT = textwrap.dedent("""
    import socket, sys
    s = socket.create_connection((sys.argv[1], 80), timeout=10)
    print("connected", flush=True)
    sys.stdin.readline()
    s.sendall(b"GET / HTTP/1.0\\r\\nHost: vip\\r\\n\\r\\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    print(data.decode().splitlines()[0], data.decode().strip().splitlines()[-1], flush=True)
""")


def test_one_weight_change_is_one_edit_and_keeps_established_connections(lb):
    lb.apply(lvs_config("wrr", (1, 1, 1)))
    client = subprocess.Popen(netns.exec_argv(lb.lab.clients[0].netns, [sys.executable, "-c", CLIENT, VIP]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "connected"
        before = lb.dump()
        result = lb.apply(lvs_config("wrr", (1, 5, 1)))
        r2 = DestKey("203.0.113.12", 8080)
        assert [type(op) for op in result.ops] == [EditDest] and result.ops[0].dest.key == r2
        after = lb.dump()
        (key,) = after
        changed = {dk: (before[key].dests[dk].weight, d.weight) for dk, d in after[key].dests.items()
                   if before[key].dests[dk] != d}
        assert changed == {r2: (1, 5)}
        client.stdin.write("go\n")
        client.stdin.flush()
        out, _ = client.communicate(timeout=15)
        assert client.returncode == 0, out
        assert out.startswith("HTTP/1.0 200"), out     # the connection made before the change still works
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    counts = collections.Counter(lb.names(14))
    assert counts == {"r1": 2, "r2": 10, "r3": 2}, counts


def test_reconcile_is_idempotent_and_repairs_drift(lb):
    config = lvs_config("rr")
    lb.apply(config)
    state, _ = desired_state(config, {})
    assert lb.apply(config).ops == ()
    chain = "svc_tcp_198.51.100.100_80"
    lb.lab.run(lb.director, ["nft", "delete", "element", "ip", "hanode", f"w_{chain}", "{ 203.0.113.11 . 8080 }"])
    result = asyncio.new_event_loop().run_until_complete(lb.reconciler.reconcile(state, refresh=True))
    assert [type(op).__name__ for op in result.ops] == ["AddDest"], result.ops
    assert lb.dump() == state


def test_cleanup_removes_only_hanode_tables_unless_kept(lb):
    lb.lab.run(lb.director, ["nft", "add table ip operator; add chain ip operator c; add rule ip operator c counter"])
    lb.apply(lvs_config("rr"))
    assert lb.cleanup(keep=True).ops == ()
    assert lb.names(1)                                     # still load balancing
    result = lb.cleanup(keep=False)
    assert result.ok and result.ops
    tables = lb.lab.run(lb.director, ["nft", "list", "tables"]).stdout.split("\n")
    assert "table ip hanode" not in tables and "table ip operator" in tables


def test_service_without_live_server_refuses_at_once_like_ipvs(lb):
    lb.apply(lvs_config("wrr", (0, 0, 0)))
    proc = lb.lab.run(lb.lab.clients[0], ["curl", "-sS", "-m", "5", f"http://{VIP}/"], check=False)
    assert proc.returncode == 7, (proc.returncode, proc.stderr)      # refused (ICMP unreachable), not a timeout
    lb.apply(lvs_config("wrr", (0, 1, 0)))
    assert lb.names(3) == ["r2"] * 3
