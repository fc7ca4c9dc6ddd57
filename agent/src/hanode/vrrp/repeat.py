"""Steps whose outcome is already known, applied without running the state machine again (pure).

At scale two events dominate: a BACKUP's ordinary advert (10,000 a second at 1,000 instances and 0.1 s) and a
MASTER's advert timer. Both repeat themselves: the same advert from the same master re-arms Master_Down again;
the same timer sends the same advert again. The state machine stays the only authority on what a step does:
after a real step, the functions here step a copy once more at other times and keep a replay only when the
copy shows the next identical event would change nothing but the times (and counters). The engine applies a
replay while the instance still has the very state, config and params objects that step left (any other step
replaces the state object, a reload the config, a link change the params).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hanode.vrrp import fsm
from hanode.vrrp.actions import SendAdvert, State


@dataclass
class Lateness:
    """How late a MASTER's advert timer was served (µs): last, largest, sum and count, for status."""
    last_us: int = 0
    max_us: int = 0
    sum_us: int = 0
    count: int = 0

    def add(self, late_us: int) -> None:
        self.last_us = late_us
        self.max_us = max(self.max_us, late_us)
        self.sum_us += late_us
        self.count += 1


@dataclass
class AdvertRepeat:
    """What the instance's last accepted advert did, again: count it, note the peer, re-arm Master_Down."""
    name: str
    inst: Any                      # engine.Instance
    state: fsm.InstanceState
    config: Any                    # config.model.VrrpInstance
    params: fsm.Params
    peer: Any                      # engine.Peer
    down_after_us: int | None      # Master_Down = arrival + this; None: the advert leaves it alone


@dataclass
class TickRepeat:
    """What the MASTER's last advert timer did, again: the same advert, the timer one interval on."""
    state: fsm.InstanceState
    config: Any
    params: fsm.Params
    output: Any                    # engine.Output of the SendAdvert
    interval_us: int
    counted: tuple[tuple[str, int], ...]


def _changes(before: fsm.InstanceState, after: fsm.InstanceState) -> set[str]:
    a, b = vars(before), vars(after)
    return {key for key, value in a.items() if b[key] != value}


def advert_down_after(params: fsm.Params, st: fsm.InstanceState, event: fsm.Advert,
                      now_us: int) -> tuple[bool, int | None]:
    """Whether the advert that left `st` at now_us, arriving again later, does the same moved in time; and
    then Master_Down's offset from the arrival (None: untouched). Only a BACKUP with no preempt delay running
    and a priority above 0 qualifies; the fsm has the last word (a step 1 µs later may move Master_Down by
    exactly 1 µs and nothing else)."""
    if st.state != State.BACKUP or event.priority == 0 or st.preempt_at_us is not None:
        return False, None
    probe, actions = fsm.step(params, st, event, now_us + 1)
    changed = _changes(st, probe)
    if actions or changed - {"master_down_at_us"}:
        return False, None
    if not changed:
        return True, None
    if st.master_down_at_us is None or probe.master_down_at_us != st.master_down_at_us + 1:
        return False, None
    return True, st.master_down_at_us - now_us


def tick_counted(params: fsm.Params, st: fsm.InstanceState, action: Any,
                 interval_us: int) -> tuple[tuple[str, int], ...] | None:
    """For a MASTER whose advert timer just sent `action`: the counters the next advert timer bumps, when it
    does nothing else than send the same advert and move the timer one interval on, wherever it is served in
    [advert_at, advert_at + interval) (stepped at both ends); None otherwise."""
    if st.state != State.MASTER or st.advert_at_us is None or not isinstance(action, SendAdvert):
        return None
    due = st.advert_at_us
    counted = None
    for at in (due, due + interval_us - 1):
        probe, actions = fsm.step(params, st, fsm.Tick(), at)
        if actions != [action] or probe.advert_at_us != due + interval_us or _changes(st, probe) - {"advert_at_us", "stats"}:
            return None
        delta = tuple((key, probe.stats[key] - st.stats.get(key, 0)) for key in probe.stats
                      if probe.stats[key] != st.stats.get(key, 0))
        if counted is not None and delta != counted:
            return None
        counted = delta
    return counted
