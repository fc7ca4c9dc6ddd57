"""The checker's view of this host's addresses, for ha_suspend: an rtnetlink address dump at start and again
after every address event (RTM_NEWADDR / RTM_DELADDR on the IPv4 and IPv6 address groups), as keepalived's
checker process follows them with its netlink reflector. A dump after each burst of events (rather than
counting events) cannot drift: a lost event (the socket's queue overflowed) only delays the next dump."""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Callable, Iterable

from hanode.health.suspend import suspended, transitions, watched
from hanode.lvs.model import VirtualServer
from hanode.vrrp import rtnl
from hanode.vrrp.netlink import RECV_BYTES, RouteRequests, _route_socket

log = logging.getLogger("hanode.health")


def dump_addresses(requests: RouteRequests) -> frozenset[str]:
    found = set()
    for payload in requests.dump(rtnl.RTM_GETADDR):
        address = rtnl.parse_address(payload)
        if address is not None:
            found.add(address.address)
    return frozenset(found)


class LocalAddresses:
    """Calls `on_change(addresses)` with the host's addresses after each address event (runs until closed)."""

    def __init__(self, on_change: Callable[[frozenset[str]], None]):
        self.on_change = on_change
        self.monitor = None
        self.requests: RouteRequests | None = None
        self.task: asyncio.Task | None = None
        self.changed = asyncio.Event()

    def start(self) -> frozenset[str]:
        """Subscribes first, then dumps: no event between the two is lost. Returns the addresses now."""
        self.monitor = _route_socket(rtnl.RTMGRP_IPV4_IFADDR | rtnl.RTMGRP_IPV6_IFADDR)
        self.monitor.setblocking(False)
        self.requests = RouteRequests()
        loop = asyncio.get_running_loop()
        loop.add_reader(self.monitor.fileno(), self._readable)
        self.task = loop.create_task(self._run(), name="ha_suspend address watch")
        return dump_addresses(self.requests)

    def _readable(self) -> None:
        while True:
            try:
                self.monitor.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:   # ENOBUFS: events were lost; the dump below covers them
                    log.error("address monitor: %s", exc)
                    return
            self.changed.set()

    async def _run(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            try:
                addresses = dump_addresses(self.requests)
            except OSError as exc:
                log.error("address dump for ha_suspend: %s", exc)
                self.changed.set()
                await asyncio.sleep(1.0)
                continue
            self.on_change(addresses)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.monitor is not None:
            asyncio.get_running_loop().remove_reader(self.monitor.fileno())
            self.monitor.close()
            self.monitor = None
        if self.requests is not None:
            self.requests.close()
            self.requests = None


class HaSuspend:
    """Follows this host's addresses while a service has ha_suspend (keepalived's checker watches them only then
    too) and keeps the scheduler's suspended services to match."""

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler
        self.addresses: LocalAddresses | None = None
        self.watch: dict[str, frozenset[str]] = {}
        self.local: frozenset[str] = frozenset()

    async def follow(self, services: Iterable[VirtualServer]) -> None:
        """At start and on every reload, before the checks (re)start."""
        self.watch = watched(services)
        if self.watch and self.addresses is None:
            self.addresses = LocalAddresses(self._changed)
            try:
                self.local = self.addresses.start()
            except OSError as exc:
                log.error("ha_suspend: cannot follow this host's addresses (%s): the checks run", exc)
                await self.close()
        elif not self.watch and self.addresses is not None:
            await self.close()
        self._apply()

    def _changed(self, local: frozenset[str]) -> None:
        self.local = local
        self._apply()

    def _apply(self) -> None:
        after = suspended(self.watch, self.local) if self.addresses is not None else frozenset()
        paused, resumed = transitions(self.scheduler.suspended, after)
        for name in paused:
            log.info("suspending the checks of %s: none of its addresses is on this host (ha_suspend)", name)
        for name in resumed:
            if name in self.watch:
                log.info("activating the checks of %s: its address is on this host (ha_suspend)", name)
        self.scheduler.suspended = after

    async def close(self) -> None:
        if self.addresses is not None:
            await self.addresses.close()
            self.addresses = None
