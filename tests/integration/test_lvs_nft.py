"""The nftables load-balancing backend on the host kernel, in a namespace lab:

    client c1 (198.51.100.201) -> VIP 198.51.100.100:80 on director n1 -> real servers r1..r3 (203.0.113.11-13:8080)
    (and the same over IPv6: [2001:db8:100::100]:80 -> [2001:db8:203::11-13]:8080)

The real servers route back through the director (keepalived NAT's requirement). Each real server answers
with its own name, so the scheduler shows in the traffic split. The config goes through the real parser,
desired_state() and the Reconciler. Per-destination changes go over the backend's netlink socket (no `nft`
process); the tests read the kernel back with `nft -j list table`, parsed here independently of the backend.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import subprocess
import sys
import textwrap

import pytest

from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.lab import netns
from hanode.lvs.desired import RsHealth, desired_state
from hanode.lvs.kernel import DestKey
from hanode.lvs.nft import NftBackend
from hanode.lvs.plan import AddDest, EditDest
from hanode.lvs.reconciler import Reconciler

pytestmark = pytest.mark.netns

VIP = "198.51.100.100"
VIP6 = "2001:db8:100::100"
GATEWAY = "203.0.113.1"
GATEWAY6 = "2001:db8:203::1"
CHAIN = "svc_tcp_198.51.100.100_80"


def lvs_config(algo: str, weights=(1, 1, 1), family: int = 4, servers=None):
    vip, rs = (VIP, "203.0.113.{}") if family == 4 else (VIP6, "2001:db8:203::{}")
    addresses = servers or [rs.format(11 + i) for i in range(len(weights))]
    raw = {"lb_backend": "nftables", "virtual_servers": [{
        "address": vip, "port": 80, "lb_algo": algo, "lb_kind": "NAT",
        "real_servers": [{"address": a, "port": 8080, "weight": w} for a, w in zip(addresses, weights)],
    }]}
    config, problems = parse_config(raw)
    assert not problems.errors, problems.errors
    return config.sections["lvs"]


def read_kernel(lab, host, chain: str = CHAIN, fam: str = "ip") -> dict:
    """The service as `nft -j list table` shows it, parsed here (not by the backend): slot runs
    (first, last, "addr:port"), weights {"addr:port": w}, the rules of its chain, @nodest."""
    doc = json.loads(lab.run(host, ["nft", "-j", "list", "table", fam, "hanode"]).stdout)
    out = {"runs": [], "weights": {}, "rules": [], "nodest": []}
    for item in doc["nftables"]:
        body = item.get("map") or item.get("set") or {}
        if body.get("name") == f"d_{chain}":
            for slot, dest in body.get("elem", []):
                first, last = slot["range"] if isinstance(slot, dict) else (slot, slot)
                out["runs"].append((first, last, "{}:{}".format(*dest["concat"])))
        elif body.get("name") == f"w_{chain}":
            out["weights"] = {"{}:{}".format(*key["concat"]): weight for key, weight in body.get("elem", [])}
        elif body.get("name") == "nodest":
            out["nodest"] = [elem["concat"] for elem in body.get("elem", [])]
        elif "rule" in item and item["rule"]["chain"] == chain:
            out["rules"].append(item["rule"])
    out["runs"].sort()
    return out


def modulus(rule: dict) -> int | None:
    for expr in rule["expr"]:
        if "dnat" in expr:
            key = expr["dnat"]["addr"]["map"]["key"]
            return (key.get("numgen") or key.get("jhash"))["mod"]
    return None


def assert_slots_match(kernel: dict, weights: dict[str, int], scheduler: str = "wrr") -> None:
    """Each destination owns exactly its slot count; the slots are 0..N-1 once; the rule's modulus is N."""
    owned = collections.Counter()
    expected_first = 0
    for first, last, dest in kernel["runs"]:
        assert first == expected_first, f"slot map is not 0..N-1: {kernel['runs']}"
        owned[dest] += last - first + 1
        expected_first = last + 1
    want = {d: (1 if scheduler == "rr" else w) for d, w in weights.items() if w > 0}
    assert dict(owned) == want
    assert kernel["weights"] == weights
    (rule,) = kernel["rules"]
    assert rule["comment"] == scheduler
    assert modulus(rule) == (expected_first or None)


class NftCalls:
    """Records every `nft` process the backend starts."""

    def __init__(self, backend):
        self.calls: list[list[str]] = []
        run = backend._run

        async def recording(args, stdin=None):
            self.calls.append(list(args))
            return await run(args, stdin)
        backend._run = recording

    def scripts(self) -> list[list[str]]:
        return [c for c in self.calls if c[:1] == ["-f"]]


@pytest.fixture
def lb(lab_factory):
    lab = lab_factory(nodes=1, clients=2, real_servers=3, real_server_gateway=GATEWAY, real_server_gateway6=GATEWAY6)
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
            self.nft_calls = NftCalls(backend)

        def apply(self, config, refresh: bool = False):
            state, _quorum = desired_state(config, {})
            result = loop.run_until_complete(reconciler.reconcile(state, refresh=refresh))
            assert result.ok, result.errors
            return result

        def kernel(self, **kwargs) -> dict:
            return read_kernel(lab, director, **kwargs)

        def dump(self):
            return loop.run_until_complete(backend.dump())

        def cleanup(self, keep: bool):
            return loop.run_until_complete(reconciler.cleanup(keep))

        def names(self, count: int, client=None, url: str = f"http://{VIP}/") -> list[str]:
            client = client or lab.clients[0]
            out = []
            for _request in range(count):
                status, body = lab.http_get(client, url, timeout=5)
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
        slots_before = set(lb.kernel()["runs"])
        scripts = len(lb.nft_calls.scripts())
        result = lb.apply(lvs_config("wrr", (1, 5, 1)))
        r2 = DestKey("203.0.113.12", 8080)
        assert [type(op) for op in result.ops] == [EditDest] and result.ops[0].dest.key == r2
        assert len(lb.nft_calls.scripts()) == scripts, "a weight change must not start nft"
        kernel = lb.kernel()
        assert_slots_match(kernel, {"203.0.113.11:8080": 1, "203.0.113.12:8080": 5, "203.0.113.13:8080": 1})
        assert set(kernel["runs"]) - slots_before == {(3, 6, "203.0.113.12:8080")}    # 4 slots appended
        assert slots_before <= set(kernel["runs"])                                     # nothing else moved
        after = lb.dump()
        (key,) = after
        changed = {dk: (before[key].dests[dk].weight, d.weight) for dk, d in after[key].dests.items()
                   if before[key].dests[dk] != d}
        assert changed == {r2: (1, 5)}
        client.stdin.write("go\n")
        client.stdin.flush()
        out = client.communicate(timeout=15)[0]
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
    state, _quorum = desired_state(config, {})
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


def test_weight_changes_go_over_netlink_and_read_back_with_nft_json(lb):
    """A sequence of changes (grow, shrink in the middle, to 0, back), each one batch on the backend's socket:
    after each, nft -j shows every server owning exactly its weight in slots 0..N-1, the modulus N, one rule,
    and the traffic over N requests splits exactly by weight."""
    lb.apply(lvs_config("wrr", (3, 1, 0)))
    scripts = len(lb.nft_calls.scripts())
    steps = [(3, 1, 2), (1, 1, 2), (1, 4, 2), (0, 4, 2), (2, 4, 0), (2, 1, 5), (2, 1, 1)]
    for step, weights in enumerate(steps):
        before = set(lb.kernel()["runs"])
        result = lb.apply(lvs_config("wrr", weights))
        assert result.ops and all(isinstance(op, EditDest) for op in result.ops), result.ops
        kernel = lb.kernel()
        assert_slots_match(kernel, {f"203.0.113.{11 + i}:8080": w for i, w in enumerate(weights)})
        moved = before ^ set(kernel["runs"])
        assert len(moved) <= 4 * sum(abs(op.dest.weight - op.before.weight) for op in result.ops) + 4, moved
        (rule,) = kernel["rules"]
        (info,) = lb.backend.slots.values()
        assert info.handle == rule["handle"]                          # known for the next in-place replace
        if step in (0, 3, 6):
            total = sum(weights)
            counts = collections.Counter(lb.names(total * 2))
            assert counts == {f"r{i + 1}": 2 * w for i, w in enumerate(weights) if w}, (weights, counts)
    assert len(lb.nft_calls.scripts()) == scripts, "weight changes must not start nft"
    assert lb.apply(lvs_config("wrr", steps[-1]), refresh=True).ops == ()     # a fresh dump agrees


def test_thousands_of_servers_over_netlink_match_nft_json(lab_factory):
    """2,000 real servers (no traffic: only the maps are checked), then random changes of several weights per
    reconcile, additions and removals: nft -j agrees with the config after every batch."""
    lab = lab_factory(nodes=1, clients=0)
    director = lab.nodes[0]
    backend = NftBackend(netns=director.netns)
    reconciler = Reconciler(backend)
    rng = random.Random(3)
    servers = [f"10.{i >> 8}.{i & 255}.1" for i in range(2000)]
    weights = {a: rng.randint(0, 5) for a in servers}

    async def run():
        await backend.open()
        try:
            for step in range(12):
                if step:
                    for address in rng.sample(servers, 5):
                        weights[address] = rng.randint(0, 9)
                    if step % 4 == 0:                           # add and remove servers too
                        for address in rng.sample(sorted(weights), 3):
                            del weights[address]
                        for i in range(3):
                            weights[f"10.200.{step}.{i + 1}"] = rng.randint(1, 3)
                addresses = sorted(weights)
                config = lvs_config("wrr", [weights[a] for a in addresses], servers=addresses)
                state, _quorum = desired_state(config, {})
                result = await reconciler.reconcile(state)
                assert result.ok, result.errors
                assert_slots_match(read_kernel(lab, director), {f"{a}:8080": w for a, w in weights.items()})
            assert await backend.dump() == state
            result = await reconciler.cleanup(keep=False)
            assert result.ok, result.errors
            assert "hanode" not in lab.run(director, ["nft", "list", "tables"]).stdout
        finally:
            await backend.close()
    asyncio.run(run())


def test_ipv6_service_over_netlink(lb):
    lb.lab.run(lb.director, ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
    lb.lab.run(lb.director, ["ip", "-6", "addr", "add", f"{VIP6}/128", "dev", "eth0", "nodad"])
    url = f"http://[{VIP6}]/"
    lb.apply(lvs_config("rr", (1, 1, 1), family=6))
    names = lb.names(6, url=url)
    assert names[:3] * 2 == names and sorted(set(names)) == ["r1", "r2", "r3"], names
    chain = "svc_tcp_2001-db8-100--100_80"
    lb.apply(lvs_config("rr", (1, 0, 1), family=6))
    assert_slots_match(lb.kernel(chain=chain, fam="ip6"),
                       {"2001:db8:203::11:8080": 1, "2001:db8:203::12:8080": 0, "2001:db8:203::13:8080": 1}, "rr")
    names = lb.names(4, url=url)
    assert names[:2] * 2 == names and sorted(set(names)) == ["r1", "r3"], names
    lb.apply(lvs_config("sh", (1, 2, 1), family=6))                # scheduler change: the map is rebuilt
    assert_slots_match(lb.kernel(chain=chain, fam="ip6"),
                       {"2001:db8:203::11:8080": 1, "2001:db8:203::12:8080": 2, "2001:db8:203::13:8080": 1}, "sh")
    assert len(set(lb.names(4, url=url))) == 1                    # one client, one server


def test_damaged_slot_map_is_rebuilt_on_the_next_resync(lb):
    lb.apply(lvs_config("wrr", (2, 1, 1)))
    lb.lab.run(lb.director, ["nft", "delete", "element", "ip", "hanode", f"d_{CHAIN}", "{ 0-1 }"])   # r1's slots
    dumped = lb.dump()
    assert {d.weight for d in next(iter(dumped.values())).dests.values()} == {-1}      # the service is marked
    result = lb.apply(lvs_config("wrr", (2, 1, 1)), refresh=True)
    assert sorted(type(op).__name__ for op in result.ops) == ["EditDest"] * 3, result.ops
    assert_slots_match(lb.kernel(), {"203.0.113.11:8080": 2, "203.0.113.12:8080": 1, "203.0.113.13:8080": 1})
    assert collections.Counter(lb.names(8)) == {"r1": 4, "r2": 2, "r3": 2}


def test_sh_still_sticks_after_a_weight_change(lb):
    lb.apply(lvs_config("sh", (1, 1, 1)))
    assert len(set(lb.names(3))) == 1
    assert [type(op) for op in lb.apply(lvs_config("sh", (1, 3, 1))).ops] == [EditDest]
    assert_slots_match(lb.kernel(), {"203.0.113.11:8080": 1, "203.0.113.12:8080": 3, "203.0.113.13:8080": 1}, "sh")
    for client in lb.lab.clients:
        assert len(set(lb.names(3, client=client))) == 1


def test_a_failed_batch_changes_nothing_and_the_next_reconcile_repairs(lb):
    lb.apply(lvs_config("wrr", (1, 1, 1)))
    before = lb.kernel()
    lb.lab.run(lb.director, ["nft", "delete", "element", "ip", "hanode", f"w_{CHAIN}", "{ 203.0.113.12 . 8080 }"])
    state, _quorum = desired_state(lvs_config("wrr", (1, 3, 1)), {})
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(lb.reconciler.reconcile(state))     # trusts its bookkeeping: r2 is there
        assert not result.ok
        why = "weights of TCP 198.51.100.100:80: No such file or directory"
        assert any(why in error for error in result.errors), result.errors
        after = lb.kernel()
        assert (after["runs"], after["rules"]) == (before["runs"], before["rules"])   # all or nothing
        result = loop.run_until_complete(lb.reconciler.reconcile(state))     # dumps first, after the failure
        assert result.ok and [type(op) for op in result.ops] == [AddDest], result
    finally:
        loop.close()
    assert_slots_match(lb.kernel(), {"203.0.113.11:8080": 1, "203.0.113.12:8080": 3, "203.0.113.13:8080": 1})
    assert collections.Counter(lb.names(10)) == {"r1": 2, "r2": 6, "r3": 2}


def test_a_groups_vips_share_real_servers_and_health_on_nftables(lb):
    """virtual_server_groups on nftables: a range of two VIPs is two DNAT services with the same real servers;
    one health entry (r1 down) takes r1 out of both; a fwmark entry or a threshold is refused by name."""
    vip2 = "198.51.100.101"
    lb.lab.run(lb.director, ["ip", "addr", "add", f"{vip2}/32", "dev", "eth0"])
    raw = {"lb_backend": "nftables", "virtual_server_groups": {"pair": [{"address": f"{VIP}-101", "port": 80}]},
           "virtual_servers": [{"group": "pair", "protocol": "TCP", "lb_algo": "rr", "real_servers": [
               {"address": f"203.0.113.{11 + i}", "port": 8080} for i in range(3)]}]}
    config = parse_config(raw)[0].sections["lvs"]
    lb.apply(config)
    for vip in (VIP, vip2):
        assert sorted(set(lb.names(6, url=f"http://{vip}/"))) == ["r1", "r2", "r3"]
    vs = config.virtual_servers[0]
    state, _quorum = desired_state(config, {(vs.name, "203.0.113.11:8080"): RsHealth(False)})
    assert asyncio.new_event_loop().run_until_complete(lb.reconciler.reconcile(state)).ok
    for vip in (VIP, vip2):
        assert sorted(set(lb.names(6, url=f"http://{vip}/"))) == ["r2", "r3"]
    assert lb.dump() == state
    raw["virtual_server_groups"]["pair"].append({"fwmark": 7})
    raw["virtual_servers"][0]["real_servers"][0]["uthreshold"] = 5
    with pytest.raises(ConfigError) as refused:
        parse_config(raw)
    assert {p.path for p in refused.value.problems} == {"virtual_servers[0].group",
                                                        "virtual_servers[0].real_servers[0].uthreshold"}
