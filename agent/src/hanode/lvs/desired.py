"""What the kernel should hold, from the config and the health of each real server (pure).

keepalived's semantics (check/ipwrapper.c):
- a real server that is down is removed from its service, or kept with weight 0 when inhibit_on_failure;
- a live server has its configured weight, or the weight its MISC_CHECK set (misc_dynamic: RsHealth.weight);
- quorum: the sum of the weights of live servers. A service that is up goes down when that sum is 0 or
  below quorum - hysteresis; a service that is down comes up when the sum reaches quorum + hysteresis.
  The first evaluation (no previous state) is up when the sum reaches quorum + hysteresis;
- while quorum is down and a sorry server is configured, the sorry server is in the pool with weight 1 and
  the real servers are out of it (weight 0 with inhibit_on_failure). Without a sorry server the live ones
  stay. While quorum is up the sorry server is out of the pool (weight 0 when its own inhibit is set);
- alpha: a real server without a health entry starts down (until its checks pass); without alpha it
  starts up. A real server without checks is always up unless the health map says otherwise.
omega (quorum_down on stop) has no kernel effect: the checker runs the script when it stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from hanode.lvs.kernel import SVC_F_ONEPACKET, SVC_F_PERSISTENT, Dest, DestKey, Entry, KernelState, Service, ServiceKey
from hanode.lvs.model import LvsConfig, RealServer, VirtualServer, real_server_name

SORRY_WEIGHT = 1


@dataclass(frozen=True)
class RsHealth:
    up: bool
    weight: int | None = None        # misc_dynamic: the weight a MISC_CHECK set; None: the configured weight
    reason: str | None = None        # why it is down (for status and logs)


@dataclass(frozen=True)
class QuorumState:
    up: bool
    live_weight: int                 # sum of the weights of live real servers
    threshold: int                   # the sum this state is compared with next: quorum -/+ hysteresis
    sorry_active: bool = False       # the sorry server is in the pool


def service_key(vs: VirtualServer) -> ServiceKey:
    if vs.fwmark is not None:
        return ServiceKey.for_fwmark(vs.family, vs.fwmark)
    return ServiceKey.for_address(vs.family, vs.protocol, vs.address or "", vs.port or 0)


def granularity_prefixlen(text: str | None, family: int) -> int | None:
    """persistence_granularity as a prefix length: '255.255.255.0' or '24' (IPv4), '64' (IPv6)."""
    if text is None:
        return None
    text = str(text).strip().lstrip("/")
    if text.isdigit():
        return int(text)
    octets = [int(part) for part in text.split(".")]
    bits = "".join(f"{o:08b}" for o in octets)
    return bits.count("1")


def service_of(vs: VirtualServer) -> Service:
    flags = 0
    if vs.persistence_timeout_s:
        flags |= SVC_F_PERSISTENT
    if vs.ops:
        flags |= SVC_F_ONEPACKET
    return Service(service_key(vs), vs.lb_algo, flags, vs.persistence_timeout_s or 0,
                   granularity_prefixlen(vs.persistence_granularity, vs.family)).normalized()


def rs_dest_key(vs: VirtualServer, rs: RealServer) -> DestKey:
    port = rs.port if rs.port is not None else (vs.port or 0)
    return DestKey(rs.address, port)


def rs_health(vs: VirtualServer, rs: RealServer, health: Mapping[tuple[str, str], RsHealth]) -> RsHealth:
    found = health.get((vs.name, real_server_name(rs)))
    if found is not None:
        return found
    alpha = rs.alpha if rs.alpha is not None else vs.alpha
    if rs.checks and alpha:
        return RsHealth(False, reason="alpha: waiting for the first successful check")
    return RsHealth(True)


def next_quorum(vs: VirtualServer, live_weight: int, previous: QuorumState | None) -> bool:
    if previous is None:
        return live_weight >= vs.quorum + vs.hysteresis
    if previous.up:
        return not (live_weight == 0 or live_weight < vs.quorum - vs.hysteresis)
    return live_weight >= vs.quorum + vs.hysteresis


def virtual_server_state(vs: VirtualServer, health: Mapping[tuple[str, str], RsHealth],
                         previous: QuorumState | None = None) -> tuple[Entry, QuorumState]:
    live: list[tuple[RealServer, int]] = []
    down: list[RealServer] = []
    for rs in vs.real_servers:
        h = rs_health(vs, rs, health)
        if h.up:
            live.append((rs, rs.weight if h.weight is None else h.weight))
        else:
            down.append(rs)
    live_weight = sum(w for _rs, w in live)
    up = next_quorum(vs, live_weight, previous)
    sorry = vs.sorry_server
    sorry_active = sorry is not None and not up
    dests: dict[DestKey, Dest] = {}
    method = vs.lb_kind
    for rs in down:
        if _inhibit(vs, rs):
            key = rs_dest_key(vs, rs)
            dests[key] = Dest(key, 0, method)
    for rs, weight in live:
        key = rs_dest_key(vs, rs)
        if sorry_active:
            if _inhibit(vs, rs):
                dests[key] = Dest(key, 0, method)
        else:
            dests[key] = Dest(key, weight, method)
    if sorry is not None and (sorry_active or sorry.inhibit):
        key = DestKey(sorry.address, sorry.port if sorry.port is not None else (vs.port or 0))
        dests[key] = Dest(key, SORRY_WEIGHT if sorry_active else 0, method)
    threshold = vs.quorum - vs.hysteresis if up else vs.quorum + vs.hysteresis
    return Entry(service_of(vs), dests), QuorumState(up, live_weight, threshold, sorry_active)


def _inhibit(vs: VirtualServer, rs: RealServer) -> bool:
    return rs.inhibit_on_failure if rs.inhibit_on_failure is not None else vs.inhibit_on_failure


def desired_state(config: LvsConfig, health: Mapping[tuple[str, str], RsHealth],
                  previous: Mapping[str, QuorumState] | None = None) -> tuple[KernelState, dict[str, QuorumState]]:
    """The kernel state the config asks for given health[(vs.name, real_server_name(rs))], and each virtual
    server's quorum. Pass the returned quorum states back as `previous` next time: hysteresis needs them."""
    state: KernelState = {}
    quorum: dict[str, QuorumState] = {}
    previous = previous or {}
    for vs in config.virtual_servers:
        entry, q = virtual_server_state(vs, health, previous.get(vs.name))
        state[entry.service.key] = entry
        quorum[vs.name] = q
    return state, quorum
