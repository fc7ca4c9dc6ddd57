"""Netlink through pyroute2's AsyncIPRoute: interface inventory, link/address events, VIP add and delete."""

from __future__ import annotations

import asyncio
import errno
import logging
from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK

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


class Netlink:
    def __init__(self) -> None:
        self.ipr = AsyncIPRoute()
        self.lock = asyncio.Lock()
        self._index: dict[str, int] = {}

    async def open(self) -> None:
        await self.ipr.setup_endpoint()

    def close(self) -> None:
        self.ipr.close()

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

    async def add_vip(self, vip: Vip, default_dev: str) -> bool:
        """True when added, False when it was already there."""
        index = self._index.get(vip.dev or default_dev)
        if index is None:
            raise OSError(errno.ENODEV, f"no interface {vip.dev or default_dev}")
        kwargs = {"index": index, "address": vip.address, "prefixlen": vip.prefixlen}
        if vip.family == 6:
            kwargs["flags"] = IFA_F_NODAD
        if vip.label:
            kwargs["label"] = vip.label
        if vip.scope:
            kwargs["scope"] = SCOPES[vip.scope]
        if vip.broadcast:
            kwargs["broadcast"] = vip.broadcast
        try:
            async with self.lock:
                await self.ipr.addr("add", **kwargs)
        except NetlinkError as exc:
            if exc.code == errno.EEXIST:
                return False
            raise
        return True

    async def del_vip(self, vip: Vip, default_dev: str) -> bool:
        """True when removed, False when it was not there."""
        index = self._index.get(vip.dev or default_dev)
        if index is None:
            return False
        try:
            async with self.lock:
                await self.ipr.addr("del", index=index, address=vip.address, prefixlen=vip.prefixlen)
        except NetlinkError as exc:
            if exc.code in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT, errno.ESRCH):
                return False
            raise
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
