"""One VRRP instance as a pure state machine: step(params, state, event, now_us) -> (state, actions).

Rules from RFC 3768 / RFC 5798 / RFC 9568 and keepalived 2.2 (see shared/reference/vrrp.md).
Which moves are legal is one table, TRANSITIONS (state x event -> the states the event may leave it in).
Every change of state goes through _transition(), which refuses a move outside the table (IllegalTransition,
naming state, event and target), emits StateChanged and bumps the counters.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field

from hanode.config.model import GarpSettings, Vip
from hanode.vrrp.actions import (Action, AddVips, Conflict, DelVips, SendAdvert, SendGarp, State,
                                 StateChanged)
from hanode.vrrp.timers import advert_interval_us, master_down_interval_us, skew_time_us

OWNER_PRIORITY = 255
CONFLICT_GARP_INTERVAL_US = 5_000_000  # re-announce VIPs at most this often while another master persists

COUNTERS = ("advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
            "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype",
            "authtype_mismatch", "auth_failure", "pri_zero_rcvd", "pri_zero_sent", "vers_err", "chk_err")


@dataclass(frozen=True)
class Params:
    name: str
    vrid: int
    version: int
    base_priority: int
    advert_int_cs: int
    nopreempt: bool = False
    preempt_delay_us: int = 0
    primary_address: str | None = None
    vips: tuple[Vip, ...] = ()
    garp: GarpSettings = field(default_factory=GarpSettings)
    down_timer_adverts: int = 3
    lower_prio_no_advert: bool = False   # a MASTER does not answer a lower priority's advert (strict mode's default)

    @property
    def owner(self) -> bool:
        return self.base_priority == OWNER_PRIORITY


@dataclass
class InstanceState:
    state: State = State.INIT
    effective_priority: int = 100
    master_adver_int_cs: int = 100
    master_down_at_us: int | None = None
    advert_at_us: int | None = None
    preempt_at_us: int | None = None
    garp_delay_at_us: int | None = None
    garp_delay_repeat: int = 0      # GARPs of the delayed burst: garp_master_repeat, or garp_lower_prio_repeat
    garp_refresh_at_us: int | None = None
    master_address: str | None = None
    master_priority: int | None = None
    fault_reasons: tuple[str, ...] = ()
    drained: bool = False
    down_reason: str = "master down timer expired"
    conflict_garp_at_us: int | None = None
    last_transition_us: int | None = None
    last_reason: str = ""
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    def deadlines(self) -> list[int]:
        # earliest_deadline() below and engine.Engine._replay_tick name these four too (without a list: per advert)
        return [t for t in (self.master_down_at_us, self.advert_at_us, self.garp_delay_at_us,
                            self.garp_refresh_at_us) if t is not None]

    def earliest_deadline(self) -> int | None:
        """min(deadlines()), without the list: the engine asks for it several times per advert."""
        best = self.master_down_at_us
        for at in (self.advert_at_us, self.garp_delay_at_us, self.garp_refresh_at_us):
            if at is not None and (best is None or at < best):
                best = at
        return best


# Events ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Start:
    resume_master: bool = False


@dataclass(frozen=True)
class Advert:
    src: str
    priority: int
    max_advert_int_cs: int


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class SetPriority:
    effective: int


@dataclass(frozen=True)
class SetFault:
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SetDrain:
    drained: bool


@dataclass(frozen=True)
class ForceState:
    state: State
    reason: str


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class PeerConflict:
    """An advert for our VRID that we cannot accept but that shows another master (e.g. a different VIP set)."""
    src: str
    priority: int
    kind: str
    detail: str


Event = Start | Advert | Tick | SetPriority | SetFault | SetDrain | ForceState | Shutdown | PeerConflict
EVENTS = (Start, Advert, Tick, SetPriority, SetFault, SetDrain, ForceState, Shutdown, PeerConflict)

# The legal moves --------------------------------------------------------------------------------
# state x event -> the states that event may leave the instance in. An event not named for a state leaves
# that state as it is (SetPriority and PeerConflict never move anything; STOP is final).
_I, _B, _M, _F, _S = State.INIT, State.BACKUP, State.MASTER, State.FAULT, State.STOP
TRANSITIONS: dict[State, dict[type, frozenset[State]]] = {
    _I: {Start: frozenset({_B, _M, _F}),  # listen first; the owner / a resumed master take over; a fault waits
         Shutdown: frozenset({_S})},
    _B: {Tick: frozenset({_B, _M}),  # Master_Down_Timer expired
         ForceState: frozenset({_B, _M}),  # sync group: a member became MASTER
         SetFault: frozenset({_B, _F}),
         Shutdown: frozenset({_S})},
    _M: {Advert: frozenset({_M, _B}),  # a higher priority (or equal priority, higher address) master wins
         SetDrain: frozenset({_M, _B}),  # the operator drains this node
         ForceState: frozenset({_M, _B}),  # sync group: a member became BACKUP
         SetFault: frozenset({_M, _F}),
         Shutdown: frozenset({_S})},
    _F: {SetFault: frozenset({_F, _B, _M}),  # the last fault cleared: listen first, the owner takes over
         Shutdown: frozenset({_S})},
    _S: {},
}


class IllegalTransition(RuntimeError):
    """A handler tried a move that TRANSITIONS does not allow: a bug in this module, never bad input."""


def allowed(state: State, event: type) -> frozenset[State]:
    """The states `event` may leave an instance in `state` in (the table, with "stays" filled in)."""
    return TRANSITIONS[state].get(event, frozenset({state}))


def new_state(params: Params) -> InstanceState:
    return InstanceState(effective_priority=params.base_priority, master_adver_int_cs=params.advert_int_cs)


def step(params: Params, state: InstanceState, event: Event, now_us: int) -> tuple[InstanceState, list[Action]]:
    st = copy.copy(state)
    st.stats = dict(state.stats)
    actions: list[Action] = []
    handler = _HANDLERS[type(event)]
    handler(params, st, event, now_us, actions)
    return st, actions


# Transitions ----------------------------------------------------------------------------------

def _transition(st: InstanceState, ev: Event, new: State, reason: str, now_us: int, actions: list[Action],
                resumed: bool = False) -> None:
    old = st.state
    if new == old or new not in allowed(old, type(ev)):
        legal = ", ".join(sorted(s.value for s in allowed(old, type(ev)) - {old})) or "none"
        raise IllegalTransition(f"illegal VRRP transition {old.value} -> {new.value} on {type(ev).__name__} "
                                f"({reason}); legal moves from {old.value} on {type(ev).__name__}: {legal}")
    st.state = new
    st.last_transition_us = now_us
    st.last_reason = reason
    if new == State.MASTER:
        st.stats["become_master"] += 1
    if old == State.MASTER and new != State.MASTER:
        st.stats["release_master"] += 1
    actions.append(StateChanged(old=old, new=new, reason=reason, priority=st.effective_priority, resumed=resumed))


def _send_advert(st: InstanceState, priority: int, actions: list[Action]) -> None:
    st.stats["advert_sent"] += 1
    if priority == 0:
        st.stats["pri_zero_sent"] += 1
    actions.append(SendAdvert(priority=priority))


def _down_interval_us(params: Params, st: InstanceState) -> int:
    return master_down_interval_us(st.effective_priority, st.master_adver_int_cs, params.version,
                                   params.down_timer_adverts)


def _arm_down_timer(params: Params, st: InstanceState, now_us: int) -> None:
    st.master_down_at_us = None if st.drained else now_us + _down_interval_us(params, st)


def _become_master(params: Params, st: InstanceState, ev: Event, now_us: int, reason: str, actions: list[Action],
                   resumed: bool = False) -> None:
    st.master_down_at_us = None
    st.preempt_at_us = None
    st.master_adver_int_cs = params.advert_int_cs
    st.master_address = params.primary_address
    st.master_priority = st.effective_priority
    # VIPs first, as keepalived does: the advert makes a preempted master drop them at once, so adding
    # them afterwards would leave the VIP on no node for a moment. Then the advert, then the GARP burst.
    if params.vips:
        actions.append(AddVips(params.vips))
    _send_advert(st, st.effective_priority, actions)
    if params.vips:
        actions.append(SendGarp(params.vips, params.garp.master_repeat))
    garp = params.garp
    st.garp_delay_at_us = now_us + garp.master_delay_ms * 1000 if garp.master_delay_ms else None
    st.garp_delay_repeat = garp.master_repeat
    st.garp_refresh_at_us = now_us + garp.master_refresh_ms * 1000 if garp.master_refresh_ms else None
    st.advert_at_us = now_us + advert_interval_us(params.advert_int_cs)
    _transition(st, ev, State.MASTER, reason, now_us, actions, resumed)


def _leave_master(params: Params, st: InstanceState, actions: list[Action]) -> None:
    if params.vips:
        actions.append(DelVips(params.vips))
    st.advert_at_us = st.garp_delay_at_us = st.garp_refresh_at_us = None


def _become_backup(params: Params, st: InstanceState, ev: Event, now_us: int, reason: str, actions: list[Action],
                   master_adver_int_cs: int | None = None) -> None:
    if st.state == State.MASTER:
        _leave_master(params, st, actions)
    st.master_adver_int_cs = master_adver_int_cs or params.advert_int_cs
    st.preempt_at_us = None
    st.down_reason = "master down timer expired"
    _arm_down_timer(params, st, now_us)
    if st.state != State.BACKUP:
        _transition(st, ev, State.BACKUP, reason, now_us, actions)


def _become_fault(params: Params, st: InstanceState, ev: Event, now_us: int, actions: list[Action]) -> None:
    if st.state == State.MASTER:
        _send_advert(st, 0, actions)
        _leave_master(params, st, actions)
    st.master_down_at_us = st.preempt_at_us = None
    _transition(st, ev, State.FAULT, "; ".join(st.fault_reasons), now_us, actions)


def _go_up(params: Params, st: InstanceState, ev: Event, now_us: int, reason: str, actions: list[Action]) -> None:
    """Leaving INIT or FAULT: the owner takes over at once, everybody else listens first."""
    if params.owner and not st.drained:
        _become_master(params, st, ev, now_us, f"{reason}; address owner (priority 255)", actions)
    else:
        _become_backup(params, st, ev, now_us, reason, actions)


# Event handlers -------------------------------------------------------------------------------

def _on_start(params: Params, st: InstanceState, ev: Start, now_us: int, actions: list[Action]) -> None:
    if st.state != State.INIT:
        return
    if st.fault_reasons:
        _become_fault(params, st, ev, now_us, actions)
    elif ev.resume_master and not st.drained:
        _become_master(params, st, ev, now_us, "resumed as MASTER after an agent restart", actions, resumed=True)
    else:
        _go_up(params, st, ev, now_us, "startup", actions)


def _on_tick(params: Params, st: InstanceState, ev: Tick, now_us: int, actions: list[Action]) -> None:
    if st.state == State.BACKUP:
        if st.master_down_at_us is not None and now_us >= st.master_down_at_us:
            _become_master(params, st, ev, now_us, st.down_reason, actions)
        return
    if st.state != State.MASTER:
        return
    if st.advert_at_us is not None and now_us >= st.advert_at_us:
        _send_advert(st, st.effective_priority, actions)
        interval = advert_interval_us(params.advert_int_cs)
        st.advert_at_us += interval
        if st.advert_at_us <= now_us:
            st.advert_at_us = now_us + interval
    if st.garp_delay_at_us is not None and now_us >= st.garp_delay_at_us:
        st.garp_delay_at_us = None
        actions.append(SendGarp(params.vips, st.garp_delay_repeat))
    if st.garp_refresh_at_us is not None and now_us >= st.garp_refresh_at_us:
        st.garp_refresh_at_us = now_us + params.garp.master_refresh_ms * 1000
        actions.append(SendGarp(params.vips, params.garp.master_refresh_repeat))


def _on_advert(params: Params, st: InstanceState, ev: Advert, now_us: int, actions: list[Action]) -> None:
    if ev.priority == 0:
        st.stats["pri_zero_rcvd"] += 1
    if st.state == State.BACKUP:
        _backup_rx(params, st, ev, now_us)
    elif st.state == State.MASTER:
        _master_rx(params, st, ev, now_us, actions)


def _backup_rx(params: Params, st: InstanceState, ev: Advert, now_us: int) -> None:
    if ev.priority == 0:
        st.down_reason = f"priority 0 advert from {ev.src}"
        if not st.drained:
            st.master_down_at_us = now_us + skew_time_us(st.effective_priority, st.master_adver_int_cs, params.version)
        return
    st.master_address = ev.src
    st.master_priority = ev.priority
    delaying = params.preempt_delay_us and (st.preempt_at_us is None or st.preempt_at_us > now_us)
    if params.nopreempt or ev.priority >= st.effective_priority or delaying:
        if params.version == 3:
            st.master_adver_int_cs = ev.max_advert_int_cs
        st.down_reason = "master down timer expired"
        _arm_down_timer(params, st, now_us)
        if params.preempt_delay_us:
            if ev.priority >= st.effective_priority:
                st.preempt_at_us = None
            elif st.preempt_at_us is None:
                st.preempt_at_us = now_us + params.preempt_delay_us
        return
    # preempt: a lower-priority master is ignored and our down timer runs out
    st.down_reason = f"preempting lower priority master {ev.src} ({ev.priority} < {st.effective_priority})"


def _peer_wins(params: Params, st: InstanceState, ev: Advert) -> bool:
    if ev.priority != st.effective_priority:
        return ev.priority > st.effective_priority
    if params.primary_address is None:
        return True
    return ipaddress.ip_address(ev.src) > ipaddress.ip_address(params.primary_address)


def _master_rx(params: Params, st: InstanceState, ev: Advert, now_us: int, actions: list[Action]) -> None:
    if ev.priority == 0:
        _send_advert(st, st.effective_priority, actions)
        st.advert_at_us = now_us + advert_interval_us(params.advert_int_cs)
        return
    if ev.src == params.primary_address:
        return
    if _peer_wins(params, st, ev):
        _yield_to(params, st, ev, now_us, actions)
        return
    if _in_takeover_exchange(params, st, ev, now_us):
        # The master we have just taken over from: its last advert as it gives way, or one that crossed our
        # first. Answer it (RFC 9568, keepalived's "forcing new election"), but two masters did not persist.
        if params.lower_prio_no_advert:
            return
        _send_advert(st, st.effective_priority, actions)
        st.advert_at_us = now_us + advert_interval_us(params.advert_int_cs)
        return
    # a lower-priority (or lower-address) master still advertising after the take-over exchange: split brain;
    # re-assert at once (RFC 9568, keepalived's default) and re-announce the VIPs
    detail = f"MASTER heard {ev.src} advertising priority {ev.priority} (ours {st.effective_priority})"
    _reassert(params, st, Conflict(peer=ev.src, peer_priority=ev.priority, kind="split_brain", detail=detail),
              now_us, actions)


def _in_takeover_exchange(params: Params, st: InstanceState, ev: Advert, now_us: int) -> bool:
    """Is this lower master's advert part of our take-over? When we preempt a master, our first advert makes it
    give way, and it answers with one last advert (_yield_to); an advert it sent before ours arrived may cross
    ours. Both reach us well within one advert interval (the longer of ours and its own) of our becoming MASTER.
    A master that still advertises after that did not hear us or does not accept us: two masters persist."""
    exchange_us = advert_interval_us(max(params.advert_int_cs, ev.max_advert_int_cs))
    return st.last_transition_us is not None and now_us - st.last_transition_us <= exchange_us


def _reassert(params: Params, st: InstanceState, conflict: Conflict, now_us: int, actions: list[Action]) -> None:
    """Advert now (unless lower_prio_no_advert: keepalived's strict mode), and (rate-limited) gratuitous ARP / NA
    so that clients converge on this master."""
    actions.append(conflict)
    if not params.lower_prio_no_advert:
        _send_advert(st, st.effective_priority, actions)
        st.advert_at_us = now_us + advert_interval_us(params.advert_int_cs)
    actions += conflict_garps(params, st, now_us)


def conflict_garps(params: Params, st: InstanceState, now_us: int) -> list[Action]:
    """keepalived's garp_lower_prio_repeat GARPs now and again after garp_lower_prio_delay (rate-limited here),
    from a MASTER that re-asserts itself against a lower-priority one, and from every other MASTER of its sync
    group that holds VIPs (keepalived's vrrp_state_master_rx sends them for each member too)."""
    garp = params.garp
    if st.state != State.MASTER or not params.vips or not garp.lower_prio_repeat or \
            (st.conflict_garp_at_us is not None and now_us < st.conflict_garp_at_us):
        return []
    st.conflict_garp_at_us = now_us + CONFLICT_GARP_INTERVAL_US
    if garp.lower_prio_delay_ms:
        st.garp_delay_at_us = now_us + garp.lower_prio_delay_ms * 1000
        st.garp_delay_repeat = garp.lower_prio_repeat
    return [SendGarp(params.vips, garp.lower_prio_repeat)]


def _yield_to(params: Params, st: InstanceState, ev: Advert, now_us: int, actions: list[Action]) -> None:
    """Another master wins. One last advert at our priority tells it that we were MASTER too: after a partition
    heals, it has been MASTER for longer than the take-over exchange, so it reports the split brain and
    re-announces the VIPs, and clients that followed us converge on it at once. After an ordinary preemption
    the advert falls within its take-over exchange and is no conflict. This side cannot tell the two apart (the
    winner's advert looks the same), so it reports no conflict itself: its transition names the winner."""
    same = ev.priority == st.effective_priority
    reason = f"equal priority {ev.priority}, {ev.src} has the higher address" if same else \
        f"higher priority advert from {ev.src} ({ev.priority} vs {st.effective_priority})"
    _send_advert(st, st.effective_priority, actions)
    st.master_address = ev.src
    st.master_priority = ev.priority
    interval = ev.max_advert_int_cs if params.version == 3 else None
    _become_backup(params, st, ev, now_us, reason, actions, interval)


def _on_peer_conflict(params: Params, st: InstanceState, ev: PeerConflict, now_us: int, actions: list[Action]) -> None:
    if st.state == State.MASTER:
        _reassert(params, st, Conflict(peer=ev.src, peer_priority=ev.priority, kind=ev.kind, detail=ev.detail),
                  now_us, actions)


def _on_set_priority(params: Params, st: InstanceState, ev: SetPriority, now_us: int, actions: list[Action]) -> None:
    st.effective_priority = OWNER_PRIORITY if params.owner else max(1, min(254, ev.effective))


def _on_set_fault(params: Params, st: InstanceState, ev: SetFault, now_us: int, actions: list[Action]) -> None:
    had = bool(st.fault_reasons)
    st.fault_reasons = tuple(ev.reasons)
    if st.state in (State.INIT, State.STOP):
        return
    if st.fault_reasons and st.state != State.FAULT:
        _become_fault(params, st, ev, now_us, actions)
    elif not st.fault_reasons and had and st.state == State.FAULT:
        _go_up(params, st, ev, now_us, "fault cleared", actions)


def _on_set_drain(params: Params, st: InstanceState, ev: SetDrain, now_us: int, actions: list[Action]) -> None:
    if st.drained == ev.drained:
        return
    st.drained = ev.drained
    if ev.drained and st.state == State.MASTER:
        _send_advert(st, 0, actions)
        _become_backup(params, st, ev, now_us, "drained by operator", actions)
    elif st.state == State.BACKUP:
        _arm_down_timer(params, st, now_us)


def _on_force(params: Params, st: InstanceState, ev: ForceState, now_us: int, actions: list[Action]) -> None:
    if ev.state == State.MASTER and st.state == State.BACKUP and not st.drained:
        _become_master(params, st, ev, now_us, ev.reason, actions)
    elif ev.state == State.BACKUP and st.state == State.MASTER:
        _become_backup(params, st, ev, now_us, ev.reason, actions)


def _on_shutdown(params: Params, st: InstanceState, ev: Shutdown, now_us: int, actions: list[Action]) -> None:
    if st.state == State.STOP:
        return
    if st.state == State.MASTER:
        _send_advert(st, 0, actions)
        _leave_master(params, st, actions)
    st.master_down_at_us = st.preempt_at_us = None
    _transition(st, ev, State.STOP, "shutdown", now_us, actions)


_HANDLERS = {
    Start: _on_start, Tick: _on_tick, Advert: _on_advert, SetPriority: _on_set_priority,
    SetFault: _on_set_fault, SetDrain: _on_set_drain, ForceState: _on_force, Shutdown: _on_shutdown,
    PeerConflict: _on_peer_conflict,
}
