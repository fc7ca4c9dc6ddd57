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
from operator import itemgetter
from typing import Iterable, Mapping

from hanode.lvs.kernel import (SCHED_FLAGS, SVC_F_ONEPACKET, SVC_F_PERSISTENT, Dest, DestKey, Entry, KernelState,
                               Service, ServiceKey)
from hanode.lvs.model import (GroupMember, LvsConfig, RealServer, VirtualServer, configured_dest, member_dest,
                              real_server_name, sorry_dest)

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
    """The virtual server's kernel service (a group's: its first member's; service_keys() has them all)."""
    if vs.members:
        return member_key(vs, vs.members[0])
    if vs.fwmark is not None:
        return ServiceKey.for_fwmark(vs.family, vs.fwmark)
    return ServiceKey.for_address(vs.family, vs.protocol, vs.address or "", vs.port or 0)


def member_key(vs: VirtualServer, member: GroupMember) -> ServiceKey:
    if member.fwmark is not None:
        return ServiceKey.for_fwmark(member.family, member.fwmark)
    return ServiceKey.for_address(member.family, vs.protocol, member.address or "", member.port)


def service_keys(vs: VirtualServer) -> tuple[ServiceKey, ...]:
    """Every kernel service of the virtual server: one, or one per member of its group."""
    if vs.members:
        return tuple(member_key(vs, member) for member in vs.members)
    return (service_key(vs),)


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


def service_of(vs: VirtualServer, key: ServiceKey | None = None) -> Service:
    flags = 0
    if vs.persistence_timeout_s:
        flags |= SVC_F_PERSISTENT
    if vs.ops:
        flags |= SVC_F_ONEPACKET
    for name in vs.sched_flags:
        flags |= SCHED_FLAGS[name]
    key = key or service_key(vs)
    return Service(key, vs.lb_algo, flags, vs.persistence_timeout_s or 0,
                   granularity_prefixlen(vs.persistence_granularity, key.family), vs.persistence_engine or "").normalized()


def rs_health(vs: VirtualServer, rs: RealServer, health: Mapping[tuple[str, str], RsHealth]) -> RsHealth:
    found = health.get((vs.name, real_server_name(rs)))
    return found if found is not None else initial_health(vs, rs)


def initial_health(vs: VirtualServer, rs: RealServer) -> RsHealth:
    """A real server not checked yet: down until its first check passes with alpha, else up."""
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
                         previous: QuorumState | None = None) -> tuple[list[Entry], QuorumState]:
    """The virtual server's kernel services (one, or one per member of its group: each holds the same real
    servers, checked once) and its quorum, which the whole group shares as in keepalived."""
    dests, quorum = _dests_and_quorum(vs, health, previous)
    if not vs.members:
        return [Entry(service_of(vs), dests)], quorum
    entries = []
    for member in vs.members:
        key = member_key(vs, member)
        member_dests = [member_dest(member, dest) for dest in dests.values()]
        entries.append(Entry(service_of(vs, key), {dest.key: dest for dest in member_dests}))
    return entries, quorum


def _dests_and_quorum(vs: VirtualServer, health: Mapping[tuple[str, str], RsHealth],
                      previous: QuorumState | None) -> tuple[dict[DestKey, Dest], QuorumState]:
    live_rs: list[RealServer] = []
    live: list[Dest] = []
    down: list[tuple[RealServer, Dest]] = []
    name = vs.name
    # A tight loop over every real server of the service, on each health change (10,000 in a few ms). It
    # allocates nothing per live server (parallel lists, the configured Dest objects): 10,000 new tuples
    # would also set off a dozen garbage-collector passes.
    for rs, rs_name, dest in zip(vs.real_servers, vs.real_server_names, vs.configured_dests):
        h = health.get((name, rs_name))
        if h is None:
            h = initial_health(vs, rs)
        if not h.up:
            down.append((rs, dest))
            continue
        live_rs.append(rs)
        live.append(dest if h.weight is None or h.weight == dest.weight else dest._replace(weight=h.weight))
    live_weight = sum(dest.weight for dest in live)
    up = next_quorum(vs, live_weight, previous)
    sorry = vs.sorry_server
    sorry_active = sorry is not None and not up
    dests: dict[DestKey, Dest] = {}
    for rs, dest in down:
        if _inhibit(vs, rs):
            dests[dest.key] = dest._replace(weight=0)
    if not sorry_active:
        dests.update(zip(map(itemgetter(0), live), live))
    else:
        for rs, dest in zip(live_rs, live):
            if _inhibit(vs, rs):
                dests[dest.key] = dest._replace(weight=0)
    if sorry is not None and (sorry_active or sorry.inhibit):
        dest = sorry_dest(vs, SORRY_WEIGHT if sorry_active else 0)
        dests[dest.key] = dest
    return dests, QuorumState(up, live_weight, _threshold(vs, up), sorry_active)


def desired_update(config: LvsConfig, state: Mapping[ServiceKey, Entry], quorum: Mapping[str, QuorumState],
                   health: Mapping[tuple[str, str], RsHealth], changed: Iterable[tuple[VirtualServer, RealServer]]
                   ) -> tuple[KernelState, dict[str, QuorumState]] | None:
    """desired_state(config, health, quorum) computed from its last result (`state` and `quorum`, for the same
    config), looking only at the real servers in `changed` (`health` needs only theirs): a health change
    among 10,000 real servers costs what one server does. The same value as the full computation; its dicts
    are new, the last result's are never modified. None when it cannot work this way: a virtual server with a
    sorry server whose quorum may change (that swaps its whole pool), a group's virtual server whose real
    servers changed, or one not in the last result."""
    by_vs: dict[str, list[RealServer]] = {}
    for vs, rs in changed:
        by_vs.setdefault(vs.name, []).append(rs)
    out, new_quorum = dict(state), dict(quorum)
    for vs in config.virtual_servers:
        key, before = service_key(vs), quorum.get(vs.name)
        entry = state.get(key)
        if before is None or entry is None:
            return None
        servers = by_vs.get(vs.name, ())
        live_weight = before.live_weight      # without a sorry server in the pool: the sum of its weights
        if servers:
            if vs.sorry_server is not None or vs.members:
                return None
            dests = dict(entry.dests)
            for rs in servers:
                live_weight += _update_dest(vs, rs, rs_health(vs, rs, health), dests)
            out[key] = Entry(entry.service, dests)
        up = next_quorum(vs, live_weight, before)   # re-evaluated for every service, as desired_state does
        if up != before.up and vs.sorry_server is not None:
            return None
        new_quorum[vs.name] = QuorumState(up, live_weight, _threshold(vs, up), before.sorry_active)
    return out, new_quorum


def _update_dest(vs: VirtualServer, rs: RealServer, h: RsHealth, dests: dict[DestKey, Dest]) -> int:
    """Puts one real server's destination for health `h` into `dests` (in place: the order is kept); returns
    the change of the live weight."""
    configured = configured_dest(vs, rs, h.weight)
    dk = configured.key
    old = dests.get(dk)
    if h.up:
        new: Dest | None = configured
    else:
        new = configured._replace(weight=0) if _inhibit(vs, rs) else None
    if new is None:
        dests.pop(dk, None)
    else:
        dests[dk] = new
    return (new.weight if new is not None else 0) - (old.weight if old is not None else 0)


def _threshold(vs: VirtualServer, up: bool) -> int:
    return vs.quorum - vs.hysteresis if up else vs.quorum + vs.hysteresis


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
        entries, q = virtual_server_state(vs, health, previous.get(vs.name))
        for entry in entries:
            state[entry.service.key] = entry
        quorum[vs.name] = q
    return state, quorum
