"""The VRRP process's receive sockets read with recvmmsg(2) (hanode.vrrp.io.BatchReader) and with recvmsg() per
packet (the fallback) give the same packets: the same idents, the same decoded adverts, arrival times from the
kernel's stamps (between the send and the read). A packet longer than a receive slot comes out truncated and
empty, for the engine to count as packet_len_err, both ways. Two namespaces joined by a veth pair (MTU 9000);
rx_probe.py runs in the receiving one."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import pytest

from hanode.lab import netns

pytestmark = pytest.mark.netns

PROBE = Path(__file__).with_name("rx_probe.py")
COUNT = 150   # more than two batches (64 a batch)


@pytest.fixture
def veth_pair():
    names = [f"rx5{secrets.token_hex(3)}{side}" for side in "ab"]
    try:
        for name in names:
            netns.add(name)
            netns.sysctl(name, {"net.ipv6.conf.default.accept_dad": 0, "net.ipv6.conf.all.accept_dad": 0})
        netns.ip(names[0], "link", "add", "v0", "mtu", "9000", "type", "veth", "peer", "name", "v1", "mtu", "9000",
                 "netns", names[1])
        netns.ip(names[0], "addr", "add", "198.51.100.1/24", "dev", "v0")
        netns.ip(names[1], "addr", "add", "198.51.100.2/24", "dev", "v1")
        netns.ip(names[0], "link", "set", "v0", "up")
        netns.ip(names[1], "link", "set", "v1", "up")
        yield names
    finally:
        for name in names:
            netns.delete(name)


def link_local(name: str) -> str:
    for link in netns.ip_json(name, "-6", "addr", "show", "dev", "v1", "scope", "link"):
        for addr in link.get("addr_info", []):
            return addr["local"]
    raise AssertionError(f"no link-local address on v1 in {name}")


def masked(data: str, family: int) -> str:
    """IPv4: without the IP ident and header checksum, which the sender's kernel fills in."""
    return data[:8] + "...." + data[12:20] + "...." + data[24:] if family == 4 and data else data


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_recvmmsg_and_recvmsg_read_the_same(veth_pair, family):
    receiver, sender = veth_pair
    src = "198.51.100.2" if family == 4 else link_local(sender)
    proc = netns.ns_exec(receiver, [sys.executable, str(PROBE), sender, str(family), src, str(COUNT)], timeout=60)
    result = json.loads(proc.stdout)
    batched, each = result["recvmmsg"], result["recvmsg"]
    assert batched["batched"] and not each["batched"]
    for got in (batched, each):
        packets = got["packets"]
        assert len(packets) == COUNT + 1 and got["truncated"] == 1
        sent = [masked(data, family) for data in result["sent"][:COUNT]]
        assert [masked(p["data"], family) for p in packets] == sent + [""]   # in order; the long one empty
        assert "payload=b''" in packets[-1]["received"]
        assert len({p["ident"] for p in packets}) == COUNT + 1
        for p in packets:   # kernel stamps: after the send began, before the read
            assert p["after_send_us"] >= 0 and p["before_read_us"] >= 0, p
        assert f"src='{src}'" in packets[0]["received"] and "ttl=255" in packets[0]["received"]
        assert f"dst='{'224.0.0.18' if family == 4 else 'ff02::12'}'" in packets[0]["received"]
    assert [p["ident"] for p in batched["packets"]] == [p["ident"] for p in each["packets"]]
    assert [p["received"] for p in batched["packets"]] == [p["received"] for p in each["packets"]]
