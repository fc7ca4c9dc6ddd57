"""Malformed and foreign VRRP packets, made with scapy in a third namespace: each is counted under its
keepalived counter and ignored; the MASTER keeps its state and the agent keeps running. A correct packet
from the same sender afterwards does make the MASTER step down: the bad ones did reach the agent.
VRRPv2 over IPv4 and VRRPv3 over IPv6."""

from __future__ import annotations

from collections import Counter

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (PASSWORD, VIP4, VIP6, holders, inst, link_local, new_lab, send_packets, single, status,
                          wait_state)

pytestmark = pytest.mark.netns

COUNT = 2  # each bad packet is sent twice: the counters must say exactly 2
COMMON = {  # scapy_packets.py case -> the counter it belongs to
    "ttl": "ip_ttl_err",
    "checksum": "chk_err",
    "version": "vers_err",
    "type": "invalid_type_rcvd",
    "short": "packet_len_err",
    "interval": "advert_interval_err",
    "addresses": "addr_list_err",
}
# AH is a supported auth type: in a PASS instance's advert it is a mismatch, as keepalived's vrrp_check_packet counts it
AUTH = {"authtype_none": "authtype_mismatch", "auth_ah": "authtype_mismatch", "password": "auth_failure"}
FAMILIES = {  # VRRPv2 with PASS over IPv4; VRRPv3 over IPv6 (no authentication), from link-local addresses
    4: {"expected": {**COMMON, **AUTH}, "vip": VIP4, "password": PASSWORD,
        "instance": {"authentication": {"auth_type": "PASS", "auth_pass": PASSWORD}}, "address": lambda h: h.ipv4},
    6: {"expected": COMMON, "vip": VIP6, "password": None, "instance": {"version": 3, "vips": (VIP6,)},
        "address": link_local},
}


@pytest.mark.parametrize("family", [4, 6], ids=["vrrpv2-ipv4", "vrrpv3-ipv6"])
def test_bad_packets_are_counted_and_ignored(lab_factory, family):
    shape = FAMILIES[family]
    expected, vip, password, address = shape["expected"], shape["vip"], shape["password"], shape["address"]
    lab = new_lab(lab_factory, nodes=1, clients=1)
    (n1,) = lab.nodes
    (c1,) = lab.clients
    agent = lab.start_agent(n1, single("n1", 150, **shape["instance"]))
    wait_state(agent, "MASTER", timeout=15)
    before = status(agent)
    child_pid = before["agent"]["processes"]["vrrp"]["pid"]
    assert before["instances"]["VI_1"]["stats"]["advert_rcvd"] == 0
    sender = address(c1)

    sent = send_packets(lab, c1, [*expected, "vrid"], vrid=51, vips=[vip], src=sender, password=password,
                        count=COUNT, family=family)
    assert len(sent.splitlines()) == COUNT * (len(expected) + 1)
    want = {c: COUNT * n for c, n in Counter(expected.values()).items()}  # per counter: cases sent to it x COUNT

    def counted() -> dict | None:
        st = status(agent)
        stats = st["instances"]["VI_1"]["stats"]
        done = all(stats[c] >= n for c, n in want.items()) and st["vrrp"]["stats"]["unknown_vrid"] >= COUNT
        return st if done else None
    st = wait_for(counted, 10, what="every bad packet to be counted")
    stats = st["instances"]["VI_1"]["stats"]
    assert {c: stats[c] for c in want} == want
    others = {k: v for k, v in stats.items() if k not in expected.values()}
    assert others["advert_rcvd"] == 0 and others["pri_zero_rcvd"] == 0 and others["become_master"] == 1
    assert st["vrrp"]["stats"]["unknown_vrid"] == COUNT
    foreign = [f for f in st["vrrp"]["foreign_vrids"] if f["vrid"] == 99]
    assert foreign and foreign[0]["src"] == sender and foreign[0]["count"] == COUNT
    # Ignored: still MASTER with its VIP, same VRRP process, nobody recorded as master but us.
    entry = st["instances"]["VI_1"]
    assert (entry["state"], entry["master_address"], entry["transitions"]) == ("MASTER", address(n1), 2)
    assert sender not in entry["peers"]
    assert holders(lab.nodes, vip) == ["n1"]
    processes = st["agent"]["processes"]["vrrp"]
    assert (processes["pid"], processes["restarts"], processes["running"]) == (child_pid, 0, True)
    assert agent.running

    # The control: one correct advert at 254 from the same sender, and the MASTER steps down to it.
    send_packets(lab, c1, ["valid"], vrid=51, vips=[vip], src=sender, password=password, family=family)
    entry = wait_state(agent, "BACKUP", timeout=5)
    assert entry["master_address"] == sender and entry["stats"]["advert_rcvd"] == 1
    assert inst(agent)["stats"]["release_master"] == 1
    assert holders(lab.nodes, vip) == []
