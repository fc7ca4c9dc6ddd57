"""VIP requests as the kernel will read them (decoded back with pyroute2), and the ack parser."""

from __future__ import annotations

import errno
import struct

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from hanode.config.model import Vip
from hanode.vrrp.netlink import address_message, reply_errno


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
