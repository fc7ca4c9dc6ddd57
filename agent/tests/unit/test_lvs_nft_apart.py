"""A large nftables dump parsed in the helper process gives what parsing it here gives, and the same error."""

from __future__ import annotations

import asyncio
import json

import pytest

from hanode.lvs.nft_apart import parsed_apart, parsed_here

CHAIN = "svc_tcp_198.51.100.100_80"


def _dump_text(servers: int) -> str:
    return json.dumps({"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"map": {"family": "ip", "name": "services", "table": "hanode", "map": "verdict",
                 "type": ["ipv4_addr", "inet_proto", "inet_service"],
                 "elem": [[{"concat": ["198.51.100.100", "tcp", 80]}, {"jump": {"target": CHAIN}}]]}},
        {"map": {"family": "ip", "name": f"w_{CHAIN}", "table": "hanode", "map": "mark",
                 "elem": [[{"concat": [f"127.1.{i // 250}.{i % 250 + 1}", 8080]}, 1] for i in range(servers)]}},
        {"rule": {"family": "ip", "table": "hanode", "chain": CHAIN, "comment": "rr", "expr": []}},
    ]})


def test_the_helper_process_parses_a_dump_as_this_process_does():
    texts = [(4, _dump_text(3000))]
    state, _slots = asyncio.run(parsed_apart(texts))
    assert (state, _slots) == parsed_here(texts)
    (entry,) = state.values()
    assert len(entry.dests) == 3000 and entry.service.scheduler == "rr"


def test_a_document_that_is_not_json_fails_as_it_would_here():
    with pytest.raises(json.JSONDecodeError):
        asyncio.run(parsed_apart([(4, "{not json")]))
