"""Netlink for the VRRP process: the interface inventory (link and address dumps), link and address events,
and VIP add/delete, on rtnetlink sockets of its own with messages from hanode.vrrp.rtnl.

VIP requests are synchronous: a takeover adds the VIPs before its first advert (as keepalived does), so their
cost is failover time. rtnetlink handles RTM_NEWADDR inside the sendmsg() call, so the ack is already queued
when send returns: one request costs ~0.2 ms here (an asynchronous request machinery took 1-2 ms, measured in
the failover benchmark: +3 ms over keepalived on a master loss). Dumps are read the same way (the kernel fills
each part during recv()), so the inventory of a few thousand addresses takes milliseconds."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from typing import TYPE_CHECKING

from hanode.config.model import Vip
from hanode.vrrp import rtnl

if TYPE_CHECKING:   # the checker's addrwatch uses this module without the VRRP engine (~0.7 MB of imports)
    from hanode.vrrp.engine import InterfaceInfo

log = logging.getLogger("hanode.vrrp.netlink")

REPLY_TIMEOUT_S = 1.0
RECV_BYTES = 1 << 16
MONITOR_RCVBUF = 1 << 20


def _route_socket(groups: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    if groups:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MONITOR_RCVBUF)
    sock.bind((0, groups))
    return sock


class RouteRequests:
    """Synchronous requests on one rtnetlink socket; encoded VIP messages are kept per (operation, VIP,
    interface), only the sequence number changes."""

    def __init__(self) -> None:
        self.sock = _route_socket()
        self.sock.settimeout(REPLY_TIMEOUT_S)
        self.sequence = 0
        self.messages: dict[tuple[int, Vip, int], bytearray] = {}

    def close(self) -> None:
        self.sock.close()

    def _next(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence

    def address(self, kind: int, vip: Vip, index: int) -> int:
        """Sends one RTM_NEWADDR/RTM_DELADDR and returns the kernel's errno for it (0: done)."""
        key = (kind, vip, index)
        message = self.messages.get(key)
        if message is None:
            message = self.messages[key] = rtnl.address_message(kind, vip, index)
        return self.talk(message)

    def talk(self, message: bytearray) -> int:
        """Sends one request (its sequence number set here) and returns the kernel's errno for it (0: done)."""
        sequence = self._next()
        rtnl.set_sequence(message, sequence)
        self.sock.send(message)
        while True:   # raises socket.timeout (an OSError) if the kernel never answers
            code = rtnl.reply_errno(self.sock.recv(RECV_BYTES), sequence)
            if code is not None:
                return code

    def dump(self, kind: int) -> list[bytes]:
        """The payloads of every part of an RTM_GETLINK / RTM_GETADDR dump."""
        sequence = self._next()
        self.sock.send(rtnl.dump_request(kind, sequence))
        parts: list[bytes] = []
        while True:
            for msg_kind, _flags, seq, payload in rtnl.messages(self.sock.recv(RECV_BYTES)):
                if seq != sequence:
                    continue   # a late reply to an earlier request
                if msg_kind == rtnl.NLMSG_DONE:
                    return parts
                if msg_kind == rtnl.NLMSG_ERROR:
                    code = -rtnl.NLMSG_ERRNO.unpack_from(payload)[0] if len(payload) >= 4 else errno.EIO
                    raise OSError(code, f"netlink dump {kind}: {os.strerror(code)}")
                parts.append(payload)


class Netlink:
    def __init__(self) -> None:
        self.requests: RouteRequests | None = None
        self._index: dict[str, int] = {}

    async def open(self) -> None:
        self.requests = RouteRequests()

    def close(self) -> None:
        if self.requests is not None:
            self.requests.close()

    async def interfaces(self) -> dict[str, InterfaceInfo]:
        from hanode.vrrp.engine import InterfaceInfo  # pylint: disable=import-outside-toplevel,redefined-outer-name

        links = [rtnl.parse_link(p) for p in self.requests.dump(rtnl.RTM_GETLINK)]
        ipv4: dict[int, list[str]] = {}
        ipv6_ll: dict[int, str] = {}
        for payload in self.requests.dump(rtnl.RTM_GETADDR):
            addr = rtnl.parse_address(payload)
            if addr is None:
                continue
            if addr.family == 4:
                ipv4.setdefault(addr.index, []).append(addr.address)
            elif addr.address.startswith("fe80:") and addr.index not in ipv6_ll:
                ipv6_ll[addr.index] = addr.address
        infos = {link.name: InterfaceInfo(name=link.name, index=link.index, up=link.up, mac=link.mac,
                                          ipv4=tuple(ipv4.get(link.index, ())), ipv6_link_local=ipv6_ll.get(link.index))
                 for link in links}
        self._index = {name: info.index for name, info in infos.items()}
        return infos

    def add_vip(self, vip: Vip, default_dev: str) -> bool:
        """True when added, False when it was already there."""
        index = self._index.get(vip.dev or default_dev)
        if index is None:
            raise OSError(errno.ENODEV, f"no interface {vip.dev or default_dev}")
        code = self.requests.address(rtnl.RTM_NEWADDR, vip, index)
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
        code = self.requests.address(rtnl.RTM_DELADDR, vip, index)
        if code in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT, errno.ESRCH):
            return False
        if code:
            raise OSError(code, os.strerror(code))
        return True


async def watch_links(changed: asyncio.Event) -> None:
    """Sets `changed` on every link or address event (runs until cancelled). A lost event (the socket's queue
    overflowed: ENOBUFS) counts as one: the receiver dumps everything again anyway."""
    loop = asyncio.get_running_loop()
    sock = _route_socket(rtnl.RTMGRP_LINK | rtnl.RTMGRP_IPV4_IFADDR | rtnl.RTMGRP_IPV6_IFADDR)
    sock.setblocking(False)

    def readable() -> None:
        while True:
            try:
                sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    log.error("link monitor: %s", exc)
                    return
            changed.set()

    loop.add_reader(sock.fileno(), readable)
    try:
        await loop.create_future()   # until cancelled
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
