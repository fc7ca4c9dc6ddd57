"""ha_suspend (pure): which virtual servers' checks wait because none of their addresses is on this host.

keepalived 2.2.7 (check_api.c update_checker_activity, register_checkers_thread): a virtual server with
ha_suspend counts how many of its addresses (its own, or any in its group's address ranges) the kernel reports
on local interfaces; while the count is zero its checkers are "suspended": each one wakes every delay_loop and
probes nothing, so the real servers keep the health they had. The kernel service and its real servers are
left as they are (nothing is added, removed or reweighted), and the checks go on at their next run once an
address appears. fwmark services cannot use it (keepalived clears it; hanode's config refuses it).

Here the addresses are compared as a set of the host's current addresses (the I/O shell dumps them again on
every address event), which gives keepalived's count-above-zero without counting events.
"""

from __future__ import annotations

import ipaddress
from typing import Collection, Iterable

from hanode.lvs.model import VirtualServer


def _canonical(address: str) -> str:
    return str(ipaddress.ip_address(address))


def service_addresses(vs: VirtualServer) -> frozenset[str]:
    """The addresses whose presence on this host lets a service's checks run."""
    found = {vs.address} if vs.address is not None else set()
    found.update(member.address for member in vs.members if member.address is not None)
    return frozenset(map(_canonical, found))


def watched(services: Iterable[VirtualServer]) -> dict[str, frozenset[str]]:
    """{service name: its addresses} of every service with ha_suspend (empty: nothing to watch)."""
    return {vs.name: service_addresses(vs) for vs in services if vs.ha_suspend}


def suspended(watch: dict[str, frozenset[str]], local: Collection[str]) -> frozenset[str]:
    """The services (of `watched()`) none of whose addresses is among the host's addresses `local`."""
    here = frozenset(map(_canonical, local))
    return frozenset(name for name, addresses in watch.items() if not addresses & here)


def transitions(before: frozenset[str], after: frozenset[str]) -> tuple[list[str], list[str]]:
    """(services whose checks are suspended now, services whose checks resume), sorted, for the log."""
    return sorted(after - before), sorted(before - after)
