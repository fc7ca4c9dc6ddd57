"""Netlink: interface inventory and link/address events through pyroute2's AsyncIPRoute; VIP add and delete
as synchronous requests on a socket of their own, with messages encoded by pyroute2's ifaddrmsg.

Why VIPs do not go through AsyncIPRoute: a takeover adds the VIPs before its first advert (as keepalived
does), so their cost is failover time. rtnetlink handles RTM_NEWADDR inside the sendmsg() call, so the ack
is already queued when send returns: one request costs ~0.2 ms here, where AsyncIPRoute's request
machinery took 1-2 ms (measured in the failover benchmark: +3 ms over keepalived on a master loss)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
from pyroute2 import AsyncIPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_ERROR
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from hanode.config.model import Vip
from hanode.vrrp.engine import InterfaceInfo

log = logging.getLogger("hanode.vrrp.netlink")

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFA_F_NODAD = 0x02
SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}


def _link_up(msg) -> bool:
    flags = msg["flags"]
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING) and msg.get("operstate") not in ("DOWN", "LOWERLAYERDOWN")


NLMSG_HEADER = struct.Struct("=IHHII")      # length, type, flags, sequence, port id
NLMSG_ERRNO = struct.Struct("=i")
ADD_FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
DEL_FLAGS = NLM_F_REQUEST | NLM_F_ACK
REPLY_TIMEOUT_S = 1.0


def address_message(kind: int, vip: Vip, index: int) -> bytearray:
    """An RTM_NEWADDR/RTM_DELADDR request for `vip` on interface `index` (sequence number 0: set per send)."""
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET if vip.family == 4 else socket.AF_INET6
    msg["prefixlen"] = vip.prefixlen
    msg["index"] = index
    msg["flags"] = IFA_F_NODAD if vip.family == 6 and kind == RTM_NEWADDR else 0
    msg["scope"] = SCOPES[vip.scope] if vip.scope and kind == RTM_NEWADDR else 0
    attrs = [("IFA_LOCAL", vip.address), ("IFA_ADDRESS", vip.address)]
    if kind == RTM_NEWADDR and vip.label:
        attrs.append(("IFA_LABEL", vip.label))
    if kind == RTM_NEWADDR and vip.broadcast:
        attrs.append(("IFA_BROADCAST", vip.broadcast))
    msg["attrs"] = attrs
    msg["header"]["type"] = kind
    msg["header"]["flags"] = ADD_FLAGS if kind == RTM_NEWADDR else DEL_FLAGS
    msg.encode()
    return bytearray(msg.data)


def reply_errno(data: bytes, sequence: int) -> int | None:
    """The errno (0: success) that the kernel's NLMSG_ERROR reply to `sequence` carries; None when `data`
    holds no such reply (a reply to an older request that timed out)."""
    offset = 0
    while offset + NLMSG_HEADER.size <= len(data):
        length, kind, _flags, seq, _port = NLMSG_HEADER.unpack_from(data, offset)
        if length < NLMSG_HEADER.size:
            return None
        if kind == NLMSG_ERROR and seq == sequence and length >= NLMSG_HEADER.size + NLMSG_ERRNO.size:
            return -NLMSG_ERRNO.unpack_from(data, offset + NLMSG_HEADER.size)[0]
        offset += (length + 3) & ~3
    return None


class AddressRequests:
    """Synchronous RTM_NEWADDR/RTM_DELADDR requests (see the module docstring); encoded messages are kept
    per (operation, VIP, interface), only the sequence number changes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.sock.settimeout(REPLY_TIMEOUT_S)
        self.sequence = 0
        self.messages: dict[tuple[int, Vip, int], bytearray] = {}

    def close(self) -> None:
        self.sock.close()

    def request(self, kind: int, vip: Vip, index: int) -> int:
        """Sends one request and returns the kernel's errno for it (0: done)."""
        key = (kind, vip, index)
        message = self.messages.get(key)
        if message is None:
            message = self.messages[key] = address_message(kind, vip, index)
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        struct.pack_into("=I", message, 8, self.sequence)
        self.sock.send(message)
        while True:   # raises socket.timeout (an OSError) if the kernel never answers
            code = reply_errno(self.sock.recv(65536), self.sequence)
            if code is not None:
                return code


class Netlink:
    def __init__(self) -> None:
        self.ipr = AsyncIPRoute()
        self.lock = asyncio.Lock()
        self.addresses = AddressRequests()
        self._index: dict[str, int] = {}

    async def open(self) -> None:
        await self.ipr.setup_endpoint()

    def close(self) -> None:
        self.ipr.close()
        self.addresses.close()

    async def interfaces(self) -> dict[str, InterfaceInfo]:
        async with self.lock:
            return await self._interfaces()

    async def _interfaces(self) -> dict[str, InterfaceInfo]:
        links = {}
        async for msg in await self.ipr.link("dump"):
            links[msg["index"]] = msg
        ipv4: dict[int, list[str]] = {}
        ipv6_ll: dict[int, str] = {}
        async for msg in await self.ipr.addr("dump"):
            address = msg.get("address")
            if not address:
                continue
            if msg["family"] == 2:
                ipv4.setdefault(msg["index"], []).append(address)
            elif address.startswith("fe80:") and msg["index"] not in ipv6_ll:
                ipv6_ll[msg["index"]] = address
        infos = {}
        for index, msg in links.items():
            name = msg.get("ifname")
            infos[name] = InterfaceInfo(name=name, index=index, up=_link_up(msg), mac=msg.get("address") or "",
                                        ipv4=tuple(ipv4.get(index, ())), ipv6_link_local=ipv6_ll.get(index))
        self._index = {name: info.index for name, info in infos.items()}
        return infos

    def add_vip(self, vip: Vip, default_dev: str) -> bool:
        """True when added, False when it was already there."""
        index = self._index.get(vip.dev or default_dev)
        if index is None:
            raise OSError(errno.ENODEV, f"no interface {vip.dev or default_dev}")
        code = self.addresses.request(RTM_NEWADDR, vip, index)
        if code == errno.EEXIST:
            return False
        if code:
            raise OSError(code, os.strerror(code))
        return True

    def del_vip(self, vip: Vip, default_dev: str) -> bool:
        """True when removed, False when it was not there."""
        index = self._index.get(vip.dev or default_dev)
        if index is None:
            return False
        code = self.addresses.request(RTM_DELADDR, vip, index)
        if code in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT, errno.ESRCH):
            return False
        if code:
            raise OSError(code, os.strerror(code))
        return True


async def watch_links(changed: asyncio.Event) -> None:
    """Sets `changed` on every link or address event (runs until cancelled)."""
    monitor = AsyncIPRoute()
    try:
        await monitor.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        while True:  # get() ends after one batch of messages (pyroute2 0.9): ask again for the next one
            async for _msg in monitor.get():
                changed.set()
    finally:
        monitor.close()
