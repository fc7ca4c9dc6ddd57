"""The nftables backend reads its table back over netlink (lvs/nft_read.py): on real tables, what it reads is
what `nft -j list table` shows, parsed by nft_parse.py (the reader it replaces), damaged tables included."""

from __future__ import annotations

import asyncio
import json

import pytest

from hanode.config.parse import parse_config
from hanode.lvs.desired import desired_state
from hanode.lvs.nft import NftBackend
from hanode.lvs.nft_parse import state_of
from hanode.lvs.reconciler import Reconciler

pytestmark = pytest.mark.netns


def config(extra_weights: int = 0):
    def vs(address, port, algo, servers, protocol="TCP", weights=None):
        weights = weights or [1 + (i + extra_weights) % 4 for i in range(len(servers))]
        return {"address": address, "port": port, "protocol": protocol, "lb_algo": algo, "lb_kind": "NAT",
                "real_servers": [{"address": a, "port": 8080, "weight": w} for a, w in zip(servers, weights)]}
    raw = {"lb_backend": "nftables", "virtual_servers": [
        vs("198.51.100.100", 80, "wrr", [f"203.0.113.{i}" for i in range(10, 60)]),
        vs("198.51.100.100", 53, "rr", ["203.0.113.11", "203.0.113.12"], protocol="UDP"),
        vs("198.51.100.101", 443, "sh", [f"198.18.{i >> 8}.{i & 255}" for i in range(1, 301)]),
        vs("198.51.100.102", 80, "wrr", ["203.0.113.20"], weights=[0]),                # nothing to schedule
        vs("2001:db8:100::100", 80, "dh", [f"2001:db8:203::{i:x}" for i in range(1, 40)]),
        vs("2001:db8:100::101", 25, "rr", ["2001:db8:203::1"], protocol="SCTP"),
    ]}
    parsed, problems = parse_config(raw)
    assert not problems.errors, problems.errors
    return parsed.sections["lvs"]


def json_view(lab, host) -> tuple:
    """What `nft -j list table` says, parsed by nft_parse.py (the JSON reader)."""
    texts = []
    for family, fam in ((4, "ip"), (6, "ip6")):
        result = lab.run(host, ["nft", "-j", "list", "table", fam, "hanode"], check=False)
        if result.returncode == 0:
            texts.append((family, result.stdout))
    return state_of([(family, json.loads(text)) for family, text in texts])


def same(netlink: tuple, json_read: tuple) -> None:
    state, slots = netlink
    want_state, want_slots = json_read
    assert state == want_state
    assert slots.keys() == want_slots.keys()
    for key, info in slots.items():
        want = want_slots[key]
        got_info = (info.rule, info.handle, info.nodest, info.orphans)
        assert got_info == (want.rule, want.handle, want.nodest, want.orphans), key
        assert (info.table.runs() if info.table else None) == (want.table.runs() if want.table else None), key


def test_netlink_read_matches_nft_json_on_real_tables(lab_factory):
    lab = lab_factory(nodes=1, clients=0)
    director = lab.nodes[0]
    backend = NftBackend(netns=director.netns)
    reconciler = Reconciler(backend)

    async def run():
        await backend.open()
        try:
            assert await backend.dump() == {} and backend.tables == set()     # no table yet
            for step in range(2):
                state, _quorum = desired_state(config(step), {})
                result = await reconciler.reconcile(state)
                assert result.ok, result.errors
                got = await backend.dump()
                assert got == state
                assert backend.tables == {4, 6}
                same((got, backend.slots), json_view(lab, director))
        finally:
            await backend.close()

    asyncio.run(run())


def test_netlink_read_of_damaged_tables_matches_nft_json(lab_factory):
    lab = lab_factory(nodes=1, clients=0)
    director = lab.nodes[0]
    backend = NftBackend(netns=director.netns)
    reconciler = Reconciler(backend)

    def nft(*args):
        lab.run(director, ["nft", *args])

    async def run():
        await backend.open()
        try:
            state, _quorum = desired_state(config(), {})
            assert (await reconciler.reconcile(state)).ok
            # hand edits: a slot run removed, a weight changed, a second rule, a weight entry gone (its slots
            # become orphans), an element of nodest removed
            nft("delete", "element", "ip", "hanode", "d_svc_tcp_198.51.100.100_80", "{ 0 }")
            weights = "w_svc_sctp_2001-db8-100--101_25"
            nft("delete", "element", "ip6", "hanode", weights, "{ 2001:db8:203::1 . 8080 }")
            nft("add", "element", "ip6", "hanode", weights, "{ 2001:db8:203::1 . 8080 : 7 }")
            nft("add", "rule", "ip", "hanode", "svc_udp_198.51.100.100_53", "counter")
            nft("delete", "element", "ip", "hanode", "w_svc_tcp_198.51.100.101_443", "{ 198.18.0.7 . 8080 }")
            nft("delete", "element", "ip", "hanode", "nodest", "{ 198.51.100.102 . tcp . 80 }")
            got = await backend.dump()
            same((got, backend.slots), json_view(lab, director))
            assert any(d.weight == -1 for e in got.values() for d in e.dests.values())
            result = await reconciler.reconcile(state, refresh=True)        # the repair
            assert result.ok, result.errors
            assert await backend.dump() == state
            same((state, backend.slots), json_view(lab, director))
            assert (await reconciler.cleanup(keep=False)).ok
            assert await backend.dump() == {} and backend.tables == set()
        finally:
            await backend.close()

    asyncio.run(run())
