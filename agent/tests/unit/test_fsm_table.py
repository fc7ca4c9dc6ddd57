"""hanode.vrrp.fsm's legal moves are one table (fsm.TRANSITIONS): no event, from any state, with any parameters and
any timers, counters or flags, leaves the instance in a state the table does not allow, and a move outside the
table is refused with an error naming state, event and target."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pure_helpers import LOW4, OWN4, PEER4, VIP6
from hanode.config.model import GarpSettings, Vip
from hanode.vrrp import fsm
from hanode.vrrp.actions import State, StateChanged

NOW_US = 5_000_000_000
ADDRESSES = st.sampled_from([OWN4, PEER4, LOW4, "198.51.100.200"])
PRIORITY = st.integers(0, 255)
INTERVAL_CS = st.integers(1, 4095)
TIMER_US = st.none() | st.integers(NOW_US - 10_000_000, NOW_US + 10_000_000)
REASONS = st.lists(st.sampled_from(["link eth0 down", "script chk failed"]), max_size=2, unique=True).map(tuple)

PARAMS = st.builds(
    fsm.Params, name=st.just("VI_1"), vrid=st.integers(1, 255), version=st.sampled_from([2, 3]),
    base_priority=st.integers(1, 255), advert_int_cs=INTERVAL_CS, nopreempt=st.booleans(),
    preempt_delay_us=st.sampled_from([0, 1_000_000]), primary_address=st.none() | st.just(OWN4),
    vips=st.sampled_from([(), (Vip("198.51.100.100", 24, 4), Vip(VIP6, 64, 6))]),
    garp=st.builds(GarpSettings, master_delay_ms=st.sampled_from([0, 5000]),
                   master_refresh_ms=st.sampled_from([0, 2000])))


def _state(instance_state: State) -> st.SearchStrategy[fsm.InstanceState]:
    return st.builds(
        fsm.InstanceState, state=st.just(instance_state), effective_priority=st.integers(1, 255),
        master_adver_int_cs=INTERVAL_CS, master_down_at_us=TIMER_US, advert_at_us=TIMER_US, preempt_at_us=TIMER_US,
        garp_delay_at_us=TIMER_US, garp_refresh_at_us=TIMER_US, master_address=st.none() | ADDRESSES,
        master_priority=st.none() | PRIORITY, fault_reasons=REASONS, drained=st.booleans(),
        conflict_garp_at_us=TIMER_US, last_transition_us=TIMER_US)


EVENT_STRATEGIES = {
    fsm.Start: st.builds(fsm.Start, resume_master=st.booleans()),
    fsm.Advert: st.builds(fsm.Advert, src=ADDRESSES, priority=PRIORITY, max_advert_int_cs=INTERVAL_CS),
    fsm.Tick: st.just(fsm.Tick()),
    fsm.SetPriority: st.builds(fsm.SetPriority, effective=st.integers(-10, 300)),
    fsm.SetFault: st.builds(fsm.SetFault, reasons=REASONS),
    fsm.SetDrain: st.builds(fsm.SetDrain, drained=st.booleans()),
    fsm.ForceState: st.builds(fsm.ForceState, state=st.sampled_from(State), reason=st.just("sync group")),
    fsm.Shutdown: st.just(fsm.Shutdown()),
    fsm.PeerConflict: st.builds(fsm.PeerConflict, src=ADDRESSES, priority=PRIORITY, kind=st.just("vrid_collision"),
                                detail=st.just("another address list")),
}
PAIRS = [(state, event) for state in State for event in fsm.EVENTS]


def test_the_table_names_every_state_and_only_known_events_and_states():
    assert set(fsm.TRANSITIONS) == set(State)
    assert set(EVENT_STRATEGIES) == set(fsm.EVENTS)
    for state, moves in fsm.TRANSITIONS.items():
        assert set(moves) <= set(fsm.EVENTS), state
        assert all(targets and targets <= set(State) for targets in moves.values()), state
    assert fsm.allowed(State.STOP, fsm.Start) == {State.STOP}  # STOP is final
    assert fsm.allowed(State.INIT, fsm.Start) == {State.BACKUP, State.MASTER, State.FAULT}  # Start always moves


@pytest.mark.parametrize("state, event_type", PAIRS, ids=[f"{s.value}-{e.__name__}" for s, e in PAIRS])
def test_no_event_drives_the_machine_outside_the_table(state, event_type):
    @settings(max_examples=40, deadline=None)
    @given(params=PARAMS, before=_state(state), event=EVENT_STRATEGIES[event_type],
           now_us=st.integers(NOW_US - 1, NOW_US + 20_000_000))
    def check(params, before, event, now_us):
        after, actions = fsm.step(params, before, event, now_us)
        legal = fsm.allowed(state, event_type)
        assert after.state in legal
        changes = [(a.old, a.new) for a in actions if isinstance(a, StateChanged)]
        assert changes == ([] if after.state == state else [(state, after.state)])
        assert before.state == state  # step() never mutates its input

    check()


def test_every_move_in_the_table_is_reachable():
    """The table is not wider than the machine: each listed target is reached by some (params, state, event)."""
    seen: set[tuple[State, type, State]] = set()
    p = fsm.Params(name="VI_1", vrid=51, version=2, base_priority=100, advert_int_cs=100, primary_address=OWN4)
    owner = fsm.Params(name="VI_1", vrid=51, version=2, base_priority=255, advert_int_cs=100, primary_address=OWN4)
    cases = [
        (p, fsm.InstanceState(), fsm.Start()), (owner, fsm.InstanceState(), fsm.Start()),
        (p, fsm.InstanceState(fault_reasons=("link down",)), fsm.Start()),
        (p, fsm.InstanceState(), fsm.Shutdown()),
        (p, fsm.InstanceState(state=State.BACKUP, master_down_at_us=NOW_US), fsm.Tick()),
        (p, fsm.InstanceState(state=State.BACKUP, master_down_at_us=NOW_US + 1), fsm.Tick()),
        (p, fsm.InstanceState(state=State.BACKUP), fsm.ForceState(State.MASTER, "sync")),
        (p, fsm.InstanceState(state=State.BACKUP, drained=True), fsm.ForceState(State.MASTER, "sync")),
        (p, fsm.InstanceState(state=State.BACKUP), fsm.SetFault(("link down",))),
        (p, fsm.InstanceState(state=State.BACKUP), fsm.SetFault(())),
        (p, fsm.InstanceState(state=State.BACKUP), fsm.Shutdown()),
        (p, fsm.InstanceState(state=State.MASTER), fsm.Advert(PEER4, 150, 100)),
        (p, fsm.InstanceState(state=State.MASTER), fsm.Advert(PEER4, 50, 100)),
        (p, fsm.InstanceState(state=State.MASTER), fsm.SetDrain(True)),
        (p, fsm.InstanceState(state=State.MASTER), fsm.SetDrain(False)),
        (p, fsm.InstanceState(state=State.MASTER), fsm.ForceState(State.BACKUP, "sync")),
        (p, fsm.InstanceState(state=State.MASTER), fsm.ForceState(State.MASTER, "sync")),
        (p, fsm.InstanceState(state=State.MASTER), fsm.SetFault(("link down",))),
        (p, fsm.InstanceState(state=State.MASTER), fsm.SetFault(())),
        (p, fsm.InstanceState(state=State.MASTER), fsm.Shutdown()),
        (p, fsm.InstanceState(state=State.FAULT, fault_reasons=("x",)), fsm.SetFault(())),
        (owner, fsm.InstanceState(state=State.FAULT, fault_reasons=("x",)), fsm.SetFault(())),
        (p, fsm.InstanceState(state=State.FAULT, fault_reasons=("x",)), fsm.SetFault(("y",))),
        (p, fsm.InstanceState(state=State.FAULT), fsm.Shutdown()),
    ]
    for params, before, event in cases:
        after, _actions = fsm.step(params, before, event, NOW_US)
        seen.add((before.state, type(event), after.state))
    listed = {(state, event, target) for state, moves in fsm.TRANSITIONS.items()
              for event, targets in moves.items() for target in targets}
    assert listed == seen


@pytest.mark.parametrize("state, event, target", [
    (State.STOP, fsm.Tick(), State.MASTER),
    (State.BACKUP, fsm.Advert(PEER4, 50, 100), State.MASTER),
    (State.MASTER, fsm.Tick(), State.MASTER),
])
def test_a_move_outside_the_table_is_refused_naming_state_event_and_target(state, event, target):
    before = fsm.InstanceState(state=state)
    with pytest.raises(fsm.IllegalTransition) as caught:
        fsm._transition(before, event, target, "planted", NOW_US, [])  # pylint: disable=protected-access
    message = str(caught.value)
    assert f"{state.value} -> {target.value}" in message and type(event).__name__ in message
    assert before.state == state
