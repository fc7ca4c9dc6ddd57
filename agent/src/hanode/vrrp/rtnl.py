"""The few rtnetlink messages the VRRP process needs, encoded and decoded with struct (pure: no sockets).

Requests: link and address dumps, RTM_NEWADDR / RTM_DELADDR for VIPs. Replies: NLMSG_ERROR acks, dump parts
(RTM_NEWLINK, RTM_NEWADDR), NLMSG_DONE. Layouts from linux/netlink.h, linux/rtnetlink.h, linux/if_link.h and
linux/if_addr.h. (pyroute2 does all this and much more, at ~12 MB of memory per process that imports it.)
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Iterator

NLMSG_HEADER = struct.Struct("=IHHII")      # length, type, flags, sequence, port id
NLMSG_ERRNO = struct.Struct("=i")
IFINFOMSG = struct.Struct("=BxHiII")        # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")         # family, prefix length, flags, scope, index
RTATTR = struct.Struct("=HH")               # length, type

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR = 0x1, 0x10, 0x100

AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
IFLA_ADDRESS, IFLA_IFNAME, IFLA_OPERSTATE = 1, 3, 16
IFA_F_NODAD = 0x02
IFF_UP, IFF_RUNNING = 0x1, 0x40
IF_OPER_DOWN, IF_OPER_LOWERLAYERDOWN = 2, 3
SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
ADD_FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
DEL_FLAGS = NLM_F_REQUEST | NLM_F_ACK


class NetlinkError(ValueError):
    """A reply that is not a well-formed netlink message."""


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    up: bool          # administratively up, running, and not operationally down
    mac: str


@dataclass(frozen=True)
class Address:
    index: int
    family: int
    address: str


def _attr(kind: int, value: bytes) -> bytes:
    length = RTATTR.size + len(value)
    return RTATTR.pack(length, kind) + value + bytes(-length % 4)


def _message(kind: int, flags: int, sequence: int, body: bytes) -> bytearray:
    return bytearray(NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), kind, flags, sequence, 0) + body)


def dump_request(kind: int, sequence: int) -> bytes:
    """RTM_GETLINK or RTM_GETADDR for every interface / address, all families."""
    if kind == RTM_GETLINK:
        body = IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0)
    elif kind == RTM_GETADDR:
        body = IFADDRMSG.pack(AF_UNSPEC, 0, 0, 0, 0)
    else:
        raise ValueError(f"kind: a dump of {kind} is not supported")
    return bytes(_message(kind, NLM_F_REQUEST | NLM_F_DUMP, sequence, body))


def address_message(kind: int, vip, index: int) -> bytearray:
    """An RTM_NEWADDR/RTM_DELADDR request for `vip` (config.model.Vip) on interface `index`, sequence number 0
    (set_sequence() per send). A delete names the address only, as `ip addr del` does."""
    add = kind == RTM_NEWADDR
    if kind not in (RTM_NEWADDR, RTM_DELADDR):
        raise ValueError(f"kind: must be RTM_NEWADDR or RTM_DELADDR, got {kind}")
    packed = ipaddress.ip_address(vip.address).packed
    family = AF_INET if vip.family == 4 else AF_INET6
    flags = IFA_F_NODAD if vip.family == 6 and add else 0
    scope = SCOPES[vip.scope] if vip.scope and add else 0
    body = IFADDRMSG.pack(family, vip.prefixlen, flags, scope, index)
    body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
    if add and vip.label:
        body += _attr(IFA_LABEL, vip.label.encode() + b"\0")
    if add and vip.broadcast:
        body += _attr(IFA_BROADCAST, ipaddress.ip_address(vip.broadcast).packed)
    return _message(kind, ADD_FLAGS if add else DEL_FLAGS, 0, body)


def set_sequence(message: bytearray, sequence: int) -> None:
    struct.pack_into("=I", message, 8, sequence)


def messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, sequence, payload) of each message in one datagram from the kernel."""
    offset = 0
    while offset + NLMSG_HEADER.size <= len(data):
        length, kind, flags, sequence, _port = NLMSG_HEADER.unpack_from(data, offset)
        if length < NLMSG_HEADER.size or offset + length > len(data):
            raise NetlinkError(f"netlink message of length {length} at offset {offset} in {len(data)} bytes")
        yield kind, flags, sequence, data[offset + NLMSG_HEADER.size:offset + length]
        offset += (length + 3) & ~3


def reply_errno(data: bytes, sequence: int) -> int | None:
    """The errno (0: success) that the kernel's NLMSG_ERROR reply to `sequence` carries; None when `data`
    holds no such reply (a reply to an older request that timed out, or a truncated one)."""
    try:
        for kind, _flags, seq, payload in messages(data):
            if kind == NLMSG_ERROR and seq == sequence and len(payload) >= NLMSG_ERRNO.size:
                return -NLMSG_ERRNO.unpack_from(payload)[0]
    except NetlinkError:
        return None
    return None


def attributes(payload: bytes, offset: int) -> dict[int, bytes]:
    """The rtattrs after a fixed header (the first of each type)."""
    found: dict[int, bytes] = {}
    while offset + RTATTR.size <= len(payload):
        length, kind = RTATTR.unpack_from(payload, offset)
        if length < RTATTR.size or offset + length > len(payload):
            raise NetlinkError(f"attribute of length {length} at offset {offset} in {len(payload)} bytes")
        found.setdefault(kind & 0x3FFF, payload[offset + RTATTR.size:offset + length])  # without NLA_F_ flags
        offset += (length + 3) & ~3
    return found


def parse_link(payload: bytes) -> Link:
    if len(payload) < IFINFOMSG.size:
        raise NetlinkError(f"RTM_NEWLINK of {len(payload)} bytes")
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(payload)
    attrs = attributes(payload, IFINFOMSG.size)
    name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
    operstate = attrs.get(IFLA_OPERSTATE, b"\0")[0]
    up = bool(flags & IFF_UP) and bool(flags & IFF_RUNNING) and operstate not in (IF_OPER_DOWN, IF_OPER_LOWERLAYERDOWN)
    mac = ":".join(f"{b:02x}" for b in attrs.get(IFLA_ADDRESS, b""))
    return Link(index, name, up, mac)


def parse_address(payload: bytes) -> Address | None:
    """An RTM_NEWADDR's interface, family and IFA_ADDRESS; None without one."""
    if len(payload) < IFADDRMSG.size:
        raise NetlinkError(f"RTM_NEWADDR of {len(payload)} bytes")
    family, _prefixlen, _flags, _scope, index = IFADDRMSG.unpack_from(payload)
    raw = attributes(payload, IFADDRMSG.size).get(IFA_ADDRESS)
    if family not in (AF_INET, AF_INET6) or raw is None or len(raw) != (4 if family == AF_INET else 16):
        return None
    return Address(index, 4 if family == AF_INET else 6, str(ipaddress.ip_address(raw)))
