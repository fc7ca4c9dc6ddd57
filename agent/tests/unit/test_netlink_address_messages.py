"""rtnetlink messages of the VRRP process (hanode.vrrp.rtnl): VIP requests as the kernel will read them and link
and address dumps as the kernel writes them, both checked against pyroute2's codec; the ack parser."""

from __future__ import annotations

import errno
import struct

import pytest
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from hanode.config.model import Vip
from hanode.vrrp.rtnl import (Address, Link, NetlinkError, address_message, dump_request, messages, parse_address,
                              parse_link, reply_errno)


def decoded(data: bytearray) -> ifaddrmsg:
    msg = ifaddrmsg(bytes(data))
    msg.decode()
    return msg


def test_add_carries_address_prefix_label_scope_and_broadcast():
    vip = Vip("198.51.100.100", 24, 4, dev="eth0", label="eth0:vip", scope="link", broadcast="198.51.100.255")
    msg = decoded(address_message(RTM_NEWADDR, vip, 7))
    assert msg["header"]["type"] == RTM_NEWADDR
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    assert (msg["family"], msg["prefixlen"], msg["index"], msg["scope"]) == (2, 24, 7, 253)
    assert msg.get_attr("IFA_LOCAL") == msg.get_attr("IFA_ADDRESS") == "198.51.100.100"
    assert msg.get_attr("IFA_LABEL") == "eth0:vip"
    assert msg.get_attr("IFA_BROADCAST") == "198.51.100.255"


def test_ipv6_add_skips_duplicate_address_detection():
    msg = decoded(address_message(RTM_NEWADDR, Vip("2001:db8::100", 64, 6), 3))
    assert (msg["family"], msg["prefixlen"], msg["flags"] & 0x02) == (10, 64, 0x02)
    assert msg.get_attr("IFA_ADDRESS") == "2001:db8::100"


def test_delete_names_the_address_only():
    vip = Vip("198.51.100.100", 24, 4, label="eth0:vip", broadcast="198.51.100.255")
    msg = decoded(address_message(RTM_DELADDR, vip, 7))
    assert msg["header"]["type"] == RTM_DELADDR
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK
    assert msg.get_attr("IFA_LABEL") is None and msg.get_attr("IFA_BROADCAST") is None
    assert msg.get_attr("IFA_LOCAL") == "198.51.100.100"


def ack(sequence: int, code: int) -> bytes:
    return struct.pack("=IHHII", 36, 2, 0, sequence, 0) + struct.pack("=i", -code) + bytes(16)


def test_reply_errno_reads_the_ack_of_this_request_only():
    assert reply_errno(ack(5, 0), 5) == 0
    assert reply_errno(ack(5, errno.EEXIST), 5) == errno.EEXIST
    assert reply_errno(ack(4, errno.EEXIST), 5) is None          # a late reply to an earlier request
    assert reply_errno(ack(4, 0) + ack(5, errno.ENODEV), 5) == errno.ENODEV
    assert reply_errno(b"\x00" * 8, 5) is None                   # truncated
    assert reply_errno(struct.pack("=IHHII", 0, 2, 0, 5, 0), 5) is None   # a zero length never loops


def test_dump_requests_ask_for_every_link_and_address():
    for kind, cls in ((RTM_GETLINK, ifinfmsg), (RTM_GETADDR, ifaddrmsg)):
        msg = cls(dump_request(kind, 9))
        msg.decode()
        assert (msg["header"]["type"], msg["header"]["flags"], msg["header"]["sequence_number"]) == \
            (kind, NLM_F_REQUEST | NLM_F_DUMP, 9)
        assert msg["family"] == 0


def encoded(cls, fields: dict, attrs: list) -> bytes:
    msg = cls()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg.encode()
    return bytes(msg.data)


@pytest.mark.parametrize("flags, operstate, up", [(0x1 | 0x40, "UP", True), (0x1 | 0x40, "DOWN", False),
                                                  (0x1, "UNKNOWN", False), (0x1 | 0x40, "UNKNOWN", True),
                                                  (0x1 | 0x40, "LOWERLAYERDOWN", False)])
def test_link_from_a_kernel_message(flags, operstate, up):
    data = encoded(ifinfmsg, {"index": 7, "flags": flags},
                   [("IFLA_IFNAME", "eth0.101"), ("IFLA_ADDRESS", "02:68:6e:01:01:00"), ("IFLA_MTU", 1500),
                    ("IFLA_OPERSTATE", operstate)])
    (kind, _flags, _seq, payload), = messages(data)
    assert parse_link(payload) == Link(7, "eth0.101", up, "02:68:6e:01:01:00")


@pytest.mark.parametrize("family, address", [(2, "198.51.100.11"), (10, "fe80::1")])
def test_address_from_a_kernel_message(family, address):
    data = encoded(ifaddrmsg, {"family": family, "prefixlen": 24, "index": 3},
                   [("IFA_ADDRESS", address), ("IFA_LABEL", "eth0")])
    (kind, _flags, _seq, payload), = messages(data)
    assert parse_address(payload) == Address(3, 4 if family == 2 else 6, address)


def test_truncated_messages_are_refused_by_name():
    with pytest.raises(NetlinkError, match="length 200"):
        list(messages(struct.pack("=IHHII", 200, 16, 0, 1, 0)))
    with pytest.raises(NetlinkError, match="RTM_NEWLINK of 4 bytes"):
        parse_link(b"\0" * 4)
    with pytest.raises(NetlinkError, match="attribute of length 99"):
        parse_address(struct.pack("=BBBBI", 2, 24, 0, 0, 1) + struct.pack("=HH", 99, 1))
