"""Malformed and foreign VRRP packets, made with scapy in a third namespace: each is counted under its
keepalived counter and ignored; the MASTER keeps its state and the agent keeps running. A correct packet
from the same sender afterwards does make the MASTER step down: the bad ones did reach the agent.
VRRPv2 over IPv4 and VRRPv3 over IPv6."""

from __future__ import annotations

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (PASSWORD, VIP4, VIP6, holders, inst, link_local, new_lab, send_packets, single, status,
                          wait_state)

pytestmark = pytest.mark.netns

COUNT = 2  # each bad packet is sent twice: the counters must say exactly 2
EXPECTED = {  # scapy_packets.py case -> the counter it belongs to
    "ttl": "ip_ttl_err",
    "checksum": "chk_err",
    "version": "vers_err",
    "type": "invalid_type_rcvd",
    "short": "packet_len_err",
    "authtype_none": "authtype_mismatch",
    "auth_ah": "invalid_authtype",
    "password": "auth_failure",
    "interval": "advert_interval_err",
    "addresses": "addr_list_err",
}


def test_bad_packets_are_counted_and_ignored(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=1)
    (n1,) = lab.nodes
    (c1,) = lab.clients
    agent = lab.start_agent(n1, single("n1", 150, authentication={"auth_type": "PASS", "auth_pass": PASSWORD}))
    wait_state(agent, "MASTER", timeout=15)
    before = status(agent)
    child_pid = before["agent"]["processes"]["vrrp"]["pid"]
    assert before["instances"]["VI_1"]["stats"]["advert_rcvd"] == 0

    sent = send_packets(lab, c1, [*EXPECTED, "vrid"], vrid=51, vips=[VIP4], src=c1.ipv4, password=PASSWORD,
                        count=COUNT)
    assert len(sent.splitlines()) == COUNT * (len(EXPECTED) + 1)

    def counted() -> dict | None:
        st = status(agent)
        stats = st["instances"]["VI_1"]["stats"]
        done = all(stats[c] >= COUNT for c in EXPECTED.values()) and st["vrrp"]["stats"]["unknown_vrid"] >= COUNT
        return st if done else None
    st = wait_for(counted, 10, what="every bad packet to be counted")
    stats = st["instances"]["VI_1"]["stats"]
    assert {c: stats[c] for c in EXPECTED.values()} == {c: COUNT for c in EXPECTED.values()}
    others = {k: v for k, v in stats.items() if k not in EXPECTED.values()}
    assert others["advert_rcvd"] == 0 and others["pri_zero_rcvd"] == 0 and others["become_master"] == 1
    assert st["vrrp"]["stats"]["unknown_vrid"] == COUNT
    foreign = [f for f in st["vrrp"]["foreign_vrids"] if f["vrid"] == 99]
    assert foreign and foreign[0]["src"] == c1.ipv4 and foreign[0]["count"] == COUNT
    # Ignored: still MASTER with its VIP, same VRRP process, nobody recorded as master but us.
    entry = st["instances"]["VI_1"]
    assert (entry["state"], entry["master_address"], entry["transitions"]) == ("MASTER", n1.ipv4, 2)
    assert c1.ipv4 not in entry["peers"]
    assert holders(lab.nodes, VIP4) == ["n1"]
    processes = st["agent"]["processes"]["vrrp"]
    assert (processes["pid"], processes["restarts"], processes["running"]) == (child_pid, 0, True)
    assert agent.running

    # The control: one correct advert at 254 from the same sender, and the MASTER steps down to it.
    send_packets(lab, c1, ["valid"], vrid=51, vips=[VIP4], src=c1.ipv4, password=PASSWORD)
    entry = wait_state(agent, "BACKUP", timeout=5)
    assert entry["master_address"] == c1.ipv4 and entry["stats"]["advert_rcvd"] == 1
    assert inst(agent)["stats"]["release_master"] == 1


EXPECTED_V6 = {  # the IPv6 cases (VRRPv3 has no authentication)
    "ttl": "ip_ttl_err",
    "checksum": "chk_err",
    "version": "vers_err",
    "type": "invalid_type_rcvd",
    "short": "packet_len_err",
    "interval": "advert_interval_err",
    "addresses": "addr_list_err",
}


def test_bad_ipv6_vrrpv3_packets_are_counted_and_ignored(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=1)
    (n1,) = lab.nodes
    (c1,) = lab.clients
    agent = lab.start_agent(n1, single("n1", 150, version=3, vips=(VIP6,)))
    wait_state(agent, "MASTER", timeout=15)
    child_pid = status(agent)["agent"]["processes"]["vrrp"]["pid"]
    sender = link_local(c1)

    sent = send_packets(lab, c1, [*EXPECTED_V6, "vrid"], vrid=51, vips=[VIP6], src=sender, count=COUNT, family=6)
    assert len(sent.splitlines()) == COUNT * (len(EXPECTED_V6) + 1)

    def counted() -> dict | None:
        st = status(agent)
        stats = st["instances"]["VI_1"]["stats"]
        done = all(stats[c] >= COUNT for c in EXPECTED_V6.values()) and st["vrrp"]["stats"]["unknown_vrid"] >= COUNT
        return st if done else None
    st = wait_for(counted, 10, what="every bad IPv6 packet to be counted")
    stats = st["instances"]["VI_1"]["stats"]
    assert {c: stats[c] for c in EXPECTED_V6.values()} == {c: COUNT for c in EXPECTED_V6.values()}
    assert stats["advert_rcvd"] == 0 and stats["become_master"] == 1
    foreign = [f for f in st["vrrp"]["foreign_vrids"] if f["vrid"] == 99]
    assert foreign and foreign[0]["src"] == sender and foreign[0]["count"] == COUNT
    entry = st["instances"]["VI_1"]
    assert (entry["state"], entry["master_address"]) == ("MASTER", link_local(n1))
    assert holders(lab.nodes, VIP6) == ["n1"]
    assert st["agent"]["processes"]["vrrp"]["pid"] == child_pid and agent.running

    # The control: the same sender's correct advert at 254, and the MASTER steps down to it.
    send_packets(lab, c1, ["valid"], vrid=51, vips=[VIP6], src=sender, family=6)
    entry = wait_state(agent, "BACKUP", timeout=5)
    assert entry["master_address"] == sender and entry["stats"]["advert_rcvd"] == 1
    assert holders(lab.nodes, VIP6) == []
