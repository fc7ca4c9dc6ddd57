"""hanode.vrrp.fsm: every state-machine rule of shared/reference/vrrp.md, driven through fsm.step with a fake clock."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from pure_helpers import HIGH4, LOW4, OWN4, PEER4, VIP4, VIP6
from hanode.config.model import GarpSettings, Vip
from hanode.vrrp import fsm
from hanode.vrrp.actions import AddVips, Conflict, DelVips, SendAdvert, SendGarp, State, StateChanged
from hanode.vrrp.fsm import (Advert, ForceState, SetDrain, SetFault, SetPriority, Shutdown, Start, Tick, new_state,
                             step)
from hanode.vrrp.timers import master_down_interval_us, skew_time_us

T0 = 1_000_000_000
SECOND = 1_000_000
VIPS = (Vip(VIP4, 24, 4), Vip("198.51.100.101", 24, 4, label="eth0:vip"))


def params(**kw) -> fsm.Params:
    base = dict(name="VI_1", vrid=51, version=2, base_priority=100, advert_int_cs=100, primary_address=OWN4,
                vips=VIPS, garp=GarpSettings())
    base.update(kw)
    return fsm.Params(**base)


def started(p: fsm.Params, now: int = T0, **event) -> tuple[fsm.InstanceState, list]:
    return step(p, new_state(p), Start(**event), now)


def run(p: fsm.Params, st: fsm.InstanceState, events: list[tuple[int, object]]) -> tuple[fsm.InstanceState, list]:
    """Feeds (time, event) pairs in order; returns the last state and all actions."""
    actions: list = []
    for now, event in events:
        st, out = step(p, st, event, now)
        actions += out
    return st, actions


def as_master(p: fsm.Params, now: int = T0) -> fsm.InstanceState:
    st, _actions = started(p, now, resume_master=True)
    assert st.state == State.MASTER
    return st


def as_backup(p: fsm.Params, now: int = T0) -> fsm.InstanceState:
    st, _actions = started(p, now)
    assert st.state == State.BACKUP
    return st


def changes(actions: list) -> list[tuple[State, State]]:
    return [(a.old, a.new) for a in actions if isinstance(a, StateChanged)]


def adverts(actions: list) -> list[int]:
    return [a.priority for a in actions if isinstance(a, SendAdvert)]


# start-up ------------------------------------------------------------------------------------------

def test_owner_becomes_master_at_once_with_advert_vips_and_garp():
    p = params(base_priority=255)
    st, actions = started(p)
    assert st.state == State.MASTER
    assert actions == [AddVips(VIPS), SendAdvert(255), SendGarp(VIPS, 5),
                       StateChanged(State.INIT, State.MASTER, actions[-1].reason, 255)]
    assert "owner" in actions[-1].reason
    assert st.master_down_at_us is None
    assert st.advert_at_us == T0 + SECOND
    assert st.master_address == OWN4
    assert st.stats["become_master"] == 1 and st.stats["advert_sent"] == 1


@pytest.mark.parametrize("version, priority, interval_cs, down_us", [
    (2, 100, 100, 3_609_375),
    (3, 200, 10, 321_875),
    (2, 254, 300, 9_007_812),
    (3, 1, 100, 3_996_093),
])
def test_others_start_as_backup_with_master_down_timer(version, priority, interval_cs, down_us):
    p = params(version=version, base_priority=priority, advert_int_cs=interval_cs)
    st, actions = started(p)
    assert st.state == State.BACKUP
    assert actions == [StateChanged(State.INIT, State.BACKUP, "startup", priority)]
    assert st.master_down_at_us == T0 + down_us
    assert st.advert_at_us is None


def test_start_is_ignored_once_started():
    p = params()
    st = as_backup(p)
    st2, actions = step(p, st, Start(), T0 + 5)
    assert actions == [] and st2.master_down_at_us == st.master_down_at_us


def test_step_never_mutates_its_input():
    p = params()
    st = new_state(p)
    snapshot = (st.state, dict(st.stats), st.master_down_at_us)
    st2, _actions = step(p, st, Start(), T0)
    assert (st.state, dict(st.stats), st.master_down_at_us) == snapshot
    st3, _actions = step(p, st2, Tick(), st2.master_down_at_us)
    assert st2.state == State.BACKUP and st2.stats["become_master"] == 0
    assert st3.state == State.MASTER


# BACKUP --------------------------------------------------------------------------------------------

def test_down_timer_expiry_makes_master():
    p = params()
    st = as_backup(p)
    due = st.master_down_at_us
    st, actions = step(p, st, Tick(), due - 1)
    assert st.state == State.BACKUP and actions == []
    st, actions = step(p, st, Tick(), due)
    assert st.state == State.MASTER
    assert actions[:3] == [AddVips(VIPS), SendAdvert(100), SendGarp(VIPS, 5)]
    assert changes(actions) == [(State.BACKUP, State.MASTER)]
    assert actions[-1].reason == "master down timer expired"
    assert st.advert_at_us == due + SECOND


@pytest.mark.parametrize("version, interval_cs", [(2, 100), (3, 100), (3, 25)])
def test_backup_receiving_priority_zero_sets_down_timer_to_skew_time(version, interval_cs):
    p = params(version=version, advert_int_cs=interval_cs)
    st = as_backup(p)
    now = T0 + 200_000
    st, actions = step(p, st, Advert(PEER4, 0, interval_cs), now)
    skew = skew_time_us(100, interval_cs, version)
    assert actions == []
    assert st.master_down_at_us == now + skew
    assert st.stats["pri_zero_rcvd"] == 1
    st, actions = step(p, st, Tick(), now + skew)
    assert st.state == State.MASTER
    assert f"priority 0 advert from {PEER4}" in actions[-1].reason


@pytest.mark.parametrize("own, peer, nopreempt, resets", [
    (100, 150, False, True),    # higher: accepted
    (100, 100, False, True),    # equal: accepted (a BACKUP does not tie-break)
    (150, 100, False, False),   # preempt on, lower: discarded, the down timer runs out
    (150, 100, True, True),     # nopreempt: the lower-priority master is kept
    (254, 1, True, True),
])
def test_backup_advert_resets_down_timer_unless_preempting(own, peer, nopreempt, resets):
    p = params(base_priority=own, nopreempt=nopreempt)
    st = as_backup(p)
    first_due = st.master_down_at_us
    now = T0 + 2 * SECOND
    st, actions = step(p, st, Advert(PEER4, peer, 100), now)
    assert actions == []
    expected = now + master_down_interval_us(own, 100, 2) if resets else first_due
    assert st.master_down_at_us == expected
    assert st.master_address == PEER4 and st.master_priority == peer


def test_preempt_lower_priority_master_is_taken_over_when_the_timer_runs_out():
    p = params(base_priority=150)
    st = as_backup(p)
    due = st.master_down_at_us
    events = [(T0 + k * SECOND, Advert(PEER4, 100, 100)) for k in range(1, 4)]
    st, actions = run(p, st, events)
    assert st.state == State.BACKUP and actions == []
    st, actions = step(p, st, Tick(), due)
    assert st.state == State.MASTER
    assert f"preempting lower priority master {PEER4}" in actions[-1].reason


def test_nopreempt_keeps_a_lower_priority_master_forever():
    p = params(base_priority=200, nopreempt=True)
    st = as_backup(p)
    for k in range(1, 100):
        now = T0 + k * SECOND
        st, _actions = step(p, st, Advert(PEER4, 50, 100), now)
        st, actions = step(p, st, Tick(), now + SECOND - 1)
        assert st.state == State.BACKUP and actions == []


class TestPreemptDelay:
    """keepalived: the first lower-priority advert starts the delay; adverts are accepted until it passes;
    a higher or equal advert cancels it."""

    DELAY = 5 * SECOND

    def p(self):
        return params(base_priority=150, preempt_delay_us=self.DELAY)

    def test_first_lower_advert_starts_the_delay_and_adverts_are_accepted_until_it_passes(self):
        p = self.p()
        st = as_backup(p)
        t1 = T0 + SECOND
        st, _actions = step(p, st, Advert(PEER4, 100, 100), t1)
        assert st.preempt_at_us == t1 + self.DELAY
        for k in range(2, 6):   # t1+1 s .. t1+4 s: still delaying, each advert resets the down timer
            now = T0 + k * SECOND
            st, _actions = step(p, st, Advert(PEER4, 100, 100), now)
            assert st.master_down_at_us == now + master_down_interval_us(150, 100, 2)
            assert st.preempt_at_us == t1 + self.DELAY          # not restarted by later adverts
        last_accepted = T0 + 5 * SECOND
        for k in range(6, 9):   # the delay has passed: discarded, the down timer keeps running
            st, _actions = step(p, st, Advert(PEER4, 100, 100), T0 + k * SECOND)
            assert st.master_down_at_us == last_accepted + master_down_interval_us(150, 100, 2)
        st, actions = step(p, st, Tick(), st.master_down_at_us - 1)
        assert st.state == State.BACKUP
        st, actions = step(p, st, Tick(), st.master_down_at_us)
        assert st.state == State.MASTER
        assert st.preempt_at_us is None

    @pytest.mark.parametrize("peer", [150, 200])
    def test_higher_or_equal_advert_cancels_the_delay(self, peer):
        p = self.p()
        st = as_backup(p)
        st, _actions = step(p, st, Advert(PEER4, 100, 100), T0 + SECOND)
        assert st.preempt_at_us is not None
        st, _actions = step(p, st, Advert(PEER4, peer, 100), T0 + 2 * SECOND)
        assert st.preempt_at_us is None
        # the next lower advert starts a fresh delay from its own time
        st, _actions = step(p, st, Advert(PEER4, 100, 100), T0 + 3 * SECOND)
        assert st.preempt_at_us == T0 + 3 * SECOND + self.DELAY

    def test_without_delay_the_first_lower_advert_is_discarded(self):
        p = params(base_priority=150)
        st = as_backup(p)
        due = st.master_down_at_us
        st, _actions = step(p, st, Advert(PEER4, 100, 100), T0 + SECOND)
        assert st.master_down_at_us == due and st.preempt_at_us is None


def test_v3_backup_adopts_the_masters_interval():
    p = params(version=3, advert_int_cs=100)
    st = as_backup(p)
    now = T0 + SECOND
    st, _actions = step(p, st, Advert(PEER4, 200, 50), now)
    assert st.master_adver_int_cs == 50
    assert st.master_down_at_us == now + 3 * 500_000 + skew_time_us(100, 50, 3)
    # priority 0 then uses the adopted interval for Skew_Time
    st, _actions = step(p, st, Advert(PEER4, 0, 50), now + 100)
    assert st.master_down_at_us == now + 100 + skew_time_us(100, 50, 3)
    # once MASTER it advertises its own interval again
    st, _actions = step(p, st, Tick(), st.master_down_at_us)
    assert st.state == State.MASTER and st.master_adver_int_cs == 100
    assert st.advert_at_us == st.last_transition_us + SECOND


def test_v2_backup_keeps_its_own_interval():
    p = params(version=2, advert_int_cs=100)
    st = as_backup(p)
    now = T0 + SECOND
    st, _actions = step(p, st, Advert(PEER4, 200, 300), now)
    assert st.master_adver_int_cs == 100
    assert st.master_down_at_us == now + 3_609_375


def test_v3_lower_priority_advert_discarded_under_preempt_does_not_adopt_interval():
    p = params(version=3, base_priority=150)
    st = as_backup(p)
    st, _actions = step(p, st, Advert(PEER4, 100, 20), T0 + SECOND)
    assert st.master_adver_int_cs == 100


# MASTER --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [2, 3])
def test_master_receiving_higher_priority_becomes_backup_and_removes_vips(version):
    p = params(version=version)
    st = as_master(p)
    now = T0 + 500_000
    st, actions = step(p, st, Advert(PEER4, 150, 50), now)
    assert st.state == State.BACKUP
    # Deliberate (issue 5, split brain): a yielding MASTER sends one last advert at its own priority, so that a
    # winner that has been MASTER for a while (a healed partition) re-announces the VIPs and clients converge at
    # once. It reports no conflict itself: it cannot tell that from an ordinary preemption (issue 10).
    assert actions == [SendAdvert(100), DelVips(VIPS), StateChanged(State.MASTER, State.BACKUP, actions[-1].reason, 100)]
    assert "higher priority" in actions[-1].reason and PEER4 in actions[-1].reason
    assert st.advert_at_us is None and st.garp_delay_at_us is None
    assert st.master_address == PEER4 and st.master_priority == 150
    interval = 50 if version == 3 else 100
    assert st.master_adver_int_cs == interval
    assert st.master_down_at_us == now + master_down_interval_us(100, interval, version)
    assert st.stats["release_master"] == 1


@pytest.mark.parametrize("own, peer, peer_wins", [
    (HIGH4, LOW4, False),                          # 198.51.100.9 > 198.51.100.1
    (LOW4, HIGH4, True),
    ("198.51.100.9", "198.51.100.10", True),       # numeric, not text order
    ("198.51.100.10", "198.51.100.9", False),
    ("203.0.113.1", "198.51.100.2", False),        # network byte order, not host order
    ("198.51.100.2", "203.0.113.1", True),
    ("fe80::100", "fe80::ff00", True),             # unsigned bytes
    ("fe80::ff00", "fe80::100", False),
])
def test_equal_priority_tie_break_by_primary_address(own, peer, peer_wins):
    version = 3 if ":" in own else 2
    vips = (Vip(VIP6, 64, 6),) if version == 3 else VIPS
    p = params(primary_address=own, version=version, vips=vips)
    st = as_master(p)
    st, actions = step(p, st, Advert(peer, 100, 100), T0 + 2 * SECOND)
    if peer_wins:
        assert st.state == State.BACKUP
        assert "higher address" in actions[-1].reason
    else:
        assert st.state == State.MASTER
        assert adverts(actions) == [100]
        assert [a.kind for a in actions if isinstance(a, Conflict)] == ["split_brain"]


def test_master_receiving_lower_priority_reasserts_at_once():
    p = params(base_priority=200)
    st = as_master(p)
    now = T0 + SECOND + 300_000  # past the take-over exchange: two masters persist
    st, actions = step(p, st, Advert(PEER4, 100, 100), now)
    assert st.state == State.MASTER
    # split brain (issue 5): the re-assert also re-announces the VIPs, at most every CONFLICT_GARP_INTERVAL_US
    assert actions == [Conflict(PEER4, 100, "split_brain", actions[0].detail), SendAdvert(200), SendGarp(VIPS, 5)]
    assert st.advert_at_us == now + SECOND
    assert st.stats["advert_sent"] == 2
    st, actions = step(p, st, Advert(PEER4, 100, 100), now + SECOND)
    assert actions == [Conflict(PEER4, 100, "split_brain", actions[0].detail), SendAdvert(200)]
    st, actions = step(p, st, Advert(PEER4, 100, 100), now + fsm.CONFLICT_GARP_INTERVAL_US)
    assert actions[-1] == SendGarp(VIPS, 5)


@pytest.mark.parametrize("version, ours_cs, theirs_cs, exchange_us", [
    (2, 100, 100, SECOND),
    (2, 100, 300, 3 * SECOND),   # the longer of the two intervals
    (3, 10, 100, SECOND),
    (3, 50, 20, 500_000),
])
def test_a_lower_master_within_the_take_over_exchange_is_answered_but_no_split_brain(version, ours_cs, theirs_cs,
                                                                                     exchange_us):
    """Issue 10: after an ordinary preemption the preempted master's last advert (or one that crossed our first)
    arrives within one advert interval of our take-over: answered with an advert, no conflict, no extra GARP."""
    p = params(base_priority=200, version=version, advert_int_cs=ours_cs)
    st = as_backup(p)
    st, taken = step(p, st, Tick(), st.master_down_at_us)
    took_over_us = st.last_transition_us
    assert changes(taken) == [(State.BACKUP, State.MASTER)]
    for after_us in (1, exchange_us):
        st, actions = step(p, st, Advert(PEER4, 100, theirs_cs), took_over_us + after_us)
        assert actions == [SendAdvert(200)]
        assert st.advert_at_us == took_over_us + after_us + ours_cs * 10_000
    st, actions = step(p, st, Advert(PEER4, 100, theirs_cs), took_over_us + exchange_us + 1)
    assert [(a.kind, a.peer, a.peer_priority) for a in actions if isinstance(a, Conflict)] == [
        ("split_brain", PEER4, 100)]
    assert actions[1:] == [SendAdvert(200), SendGarp(VIPS, 5)]
    assert st.state == State.MASTER


def test_master_receiving_priority_zero_sends_an_advert_now():
    p = params()
    st = as_master(p)
    now = T0 + 400_000
    st, actions = step(p, st, Advert(PEER4, 0, 100), now)
    assert st.state == State.MASTER
    assert actions == [SendAdvert(100)]
    assert st.advert_at_us == now + SECOND
    assert st.stats["pri_zero_rcvd"] == 1


def test_master_ignores_its_own_advert():
    p = params()
    st = as_master(p)
    st2, actions = step(p, st, Advert(OWN4, 100, 100), T0 + 1)
    assert actions == [] and st2.state == State.MASTER


def test_shutdown_of_a_master_sends_priority_zero_then_removes_vips():
    p = params()
    st = as_master(p)
    st, actions = step(p, st, Shutdown(), T0 + SECOND)
    assert actions == [SendAdvert(0), DelVips(VIPS), StateChanged(State.MASTER, State.STOP, "shutdown", 100)]
    assert st.deadlines() == []
    assert st.stats["pri_zero_sent"] == 1 and st.stats["release_master"] == 1
    assert step(p, st, Shutdown(), T0 + 2 * SECOND)[1] == []


def test_shutdown_of_a_backup_sends_nothing():
    p = params()
    st = as_backup(p)
    st, actions = step(p, st, Shutdown(), T0 + SECOND)
    assert actions == [StateChanged(State.BACKUP, State.STOP, "shutdown", 100)]
    assert st.deadlines() == []


# FAULT ---------------------------------------------------------------------------------------------

def test_fault_from_master_sends_priority_zero_and_removes_vips():
    p = params()
    st = as_master(p)
    st, actions = step(p, st, SetFault(("interface eth0 down",)), T0 + SECOND)
    assert actions == [SendAdvert(0), DelVips(VIPS),
                       StateChanged(State.MASTER, State.FAULT, "interface eth0 down", 100)]
    assert st.deadlines() == []
    assert st.stats["pri_zero_sent"] == 1


def test_fault_from_backup_stops_the_down_timer_and_ignores_adverts():
    p = params()
    st = as_backup(p)
    st, actions = step(p, st, SetFault(("script chk failed",)), T0 + SECOND)
    assert actions == [StateChanged(State.BACKUP, State.FAULT, "script chk failed", 100)]
    assert st.deadlines() == []
    st, actions = run(p, st, [(T0 + 10 * SECOND, Tick()), (T0 + 11 * SECOND, Advert(PEER4, 0, 100)),
                              (T0 + 12 * SECOND, Advert(PEER4, 50, 100))])
    assert st.state == State.FAULT and actions == []


@pytest.mark.parametrize("priority, after", [(100, State.BACKUP), (255, State.MASTER)])
def test_fault_cleared(priority, after):
    p = params(base_priority=priority)
    st, _actions = started(p)
    st, _actions = step(p, st, SetFault(("x",)), T0 + SECOND)
    st, actions = step(p, st, SetFault(("x", "y")), T0 + 2 * SECOND)   # more reasons: still FAULT, no change
    assert actions == [] and st.state == State.FAULT
    now = T0 + 3 * SECOND
    st, actions = step(p, st, SetFault(()), now)
    assert st.state == after
    assert changes(actions) == [(State.FAULT, after)]
    assert "fault cleared" in actions[-1].reason
    if after == State.BACKUP:
        assert st.master_down_at_us == now + 3_609_375
    else:
        assert actions[:3] == [AddVips(VIPS), SendAdvert(255), SendGarp(VIPS, 5)]


def test_fault_known_before_start_starts_in_fault():
    p = params(base_priority=255)
    st, actions = step(p, new_state(p), SetFault(("interface eth0 down",)), T0)
    assert actions == [] and st.state == State.INIT
    st, actions = step(p, st, Start(), T0)
    assert st.state == State.FAULT and adverts(actions) == []


# drain / enable ------------------------------------------------------------------------------------

def test_drain_a_master_hands_over_with_priority_zero():
    p = params()
    st = as_master(p)
    st, actions = step(p, st, SetDrain(True), T0 + SECOND)
    assert actions == [SendAdvert(0), DelVips(VIPS), StateChanged(State.MASTER, State.BACKUP, "drained by operator", 100)]
    assert st.drained and st.deadlines() == []
    # drained: never takes over, whatever it hears
    st, actions = run(p, st, [(T0 + 2 * SECOND, Advert(PEER4, 0, 100)), (T0 + 3 * SECOND, Advert(PEER4, 1, 100)),
                              (T0 + 60 * SECOND, Tick())])
    assert st.state == State.BACKUP and actions == [] and st.master_down_at_us is None


def test_enable_rearms_the_down_timer():
    p = params()
    st = as_backup(p)
    st, _actions = step(p, st, SetDrain(True), T0 + SECOND)
    assert st.master_down_at_us is None
    now = T0 + 2 * SECOND
    st, actions = step(p, st, SetDrain(False), now)
    assert actions == [] and st.master_down_at_us == now + 3_609_375
    st, actions = step(p, st, Tick(), now + 3_609_375)
    assert st.state == State.MASTER


def test_drained_owner_starts_as_backup_and_sync_group_cannot_force_it():
    p = params(base_priority=255)
    st, _actions = step(p, new_state(p), SetDrain(True), T0)
    st, _actions = step(p, st, Start(resume_master=True), T0)
    assert st.state == State.BACKUP
    st, actions = step(p, st, ForceState(State.MASTER, "sync group"), T0 + 1)
    assert st.state == State.BACKUP and actions == []


# advert timer and GARP -----------------------------------------------------------------------------

def test_advert_timer_period_without_drift():
    p = params(advert_int_cs=100)
    st = as_master(p)
    rng = random.Random(7)
    sent = 0
    for k in range(1, 1001):
        late = rng.randrange(0, 50_000)          # the runner wakes up to 50 ms late
        st, actions = step(p, st, Tick(), T0 + k * SECOND + late)
        sent += len(adverts(actions))
        assert st.advert_at_us == T0 + (k + 1) * SECOND
    assert sent == 1000
    assert st.stats["advert_sent"] == 1001


def test_advert_timer_after_a_long_stall_does_not_burst():
    p = params(advert_int_cs=100)
    st = as_master(p)
    now = T0 + 10 * SECOND + 123
    st, actions = step(p, st, Tick(), now)
    assert adverts(actions) == [100]
    assert st.advert_at_us == now + SECOND


def test_advert_timer_v3_centiseconds():
    p = params(version=3, advert_int_cs=7)
    st = as_master(p)
    for k in range(1, 50):
        st, actions = step(p, st, Tick(), T0 + k * 70_000)
        assert adverts(actions) == [100]
    assert st.advert_at_us == T0 + 50 * 70_000


def test_garp_second_burst_after_master_delay_and_periodic_refresh():
    garp = GarpSettings(master_delay_ms=5000, master_repeat=5, master_refresh_ms=2000, master_refresh_repeat=2)
    p = params(garp=garp)
    st = as_backup(p)
    t = st.master_down_at_us
    st, actions = step(p, st, Tick(), t)
    assert [a for a in actions if isinstance(a, SendGarp)] == [SendGarp(VIPS, 5)]
    bursts = []
    for ms in range(100, 9100, 100):
        now = t + ms * 1000
        if any(d <= now for d in st.deadlines()):
            st, actions = step(p, st, Tick(), now)
            bursts += [(ms, a.repeat) for a in actions if isinstance(a, SendGarp)]
    assert bursts == [(2000, 2), (4000, 2), (5000, 5), (6000, 2), (8000, 2)]
    assert st.garp_delay_at_us is None


def test_no_second_burst_when_master_delay_is_zero_and_garp_stops_with_master():
    p = params(garp=GarpSettings(master_delay_ms=0))
    st = as_master(p)
    assert st.garp_delay_at_us is None and st.garp_refresh_at_us is None
    p = params()
    st = as_master(p)
    assert st.garp_delay_at_us == T0 + 5 * SECOND
    st, _actions = step(p, st, Advert(PEER4, 200, 100), T0 + SECOND)
    assert st.garp_delay_at_us is None
    assert st.deadlines() == [st.master_down_at_us]     # only the down timer is left


# priority ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("base, asked, effective", [
    (100, 300, 254), (100, -20, 1), (100, 0, 1), (100, 254, 254), (100, 120, 120), (255, 10, 255), (255, 300, 255),
])
def test_set_priority_clamps_and_never_lowers_the_owner(base, asked, effective):
    p = params(base_priority=base)
    st, _actions = step(p, new_state(p), SetPriority(asked), T0)
    assert st.effective_priority == effective


def test_master_advertises_its_effective_priority():
    p = params()
    st = as_master(p)
    st, _actions = step(p, st, SetPriority(80), T0 + 1)
    st, actions = step(p, st, Tick(), T0 + SECOND)
    assert adverts(actions) == [80]


# counters ------------------------------------------------------------------------------------------

def test_counters_over_a_full_life():
    p = params()
    st = as_backup(p)
    st, _actions = step(p, st, Advert(PEER4, 0, 100), T0 + SECOND)               # pri_zero_rcvd 1
    st, _actions = step(p, st, Tick(), st.master_down_at_us)                      # MASTER: become 1, sent 1
    t = st.last_transition_us
    st, _actions = run(p, st, [(t + k * SECOND, Tick()) for k in range(1, 4)])     # sent 4
    st, _actions = step(p, st, Advert(PEER4, 0, 100), t + 3_500_000)              # pri_zero_rcvd 2, sent 5
    st, _actions = step(p, st, Advert(PEER4, 200, 100), t + 3_600_000)            # BACKUP: release 1, yield advert: sent 6
    st, _actions = step(p, st, Tick(), st.master_down_at_us)                      # MASTER: become 2, sent 7
    st, _actions = step(p, st, Shutdown(), st.last_transition_us + 1)             # sent 8, pri_zero_sent 1, release 2
    stats = st.stats
    assert (stats["become_master"], stats["release_master"], stats["advert_sent"], stats["pri_zero_sent"],
            stats["pri_zero_rcvd"]) == (2, 2, 8, 1, 2)
    assert set(fsm.COUNTERS) <= set(stats)


def test_force_state_follows_the_sync_group_only_between_backup_and_master():
    p = params()
    st = as_backup(p)
    st, actions = step(p, st, ForceState(State.MASTER, "sync group G: VI_2 became MASTER"), T0 + 1)
    assert st.state == State.MASTER and actions[-1].reason == "sync group G: VI_2 became MASTER"
    st, actions = step(p, st, ForceState(State.BACKUP, "sync group G: VI_2 became BACKUP"), T0 + 2)
    assert st.state == State.BACKUP and DelVips(VIPS) in actions
    st, _actions = step(p, st, SetFault(("x",)), T0 + 3)
    st, actions = step(p, st, ForceState(State.MASTER, "sync"), T0 + 4)
    assert st.state == State.FAULT and actions == []


def test_params_replace_keeps_owner_property():
    assert replace(params(), base_priority=255).owner
    assert not params().owner


def test_lower_prio_no_advert_leaves_a_lower_master_unanswered_but_still_reports_it():
    """keepalived's lower_prio_no_advert (strict mode's default): no advert in answer to a lower priority, in the
    take-over exchange or after it; the split brain is still reported (and lower-priority GARPs, if any, sent)."""
    p = params(base_priority=200, lower_prio_no_advert=True, garp=GarpSettings(lower_prio_repeat=0))
    st = as_backup(p)
    st, _taken = step(p, st, Tick(), st.master_down_at_us)
    took_over_us, advert_at = st.last_transition_us, st.advert_at_us
    st, actions = step(p, st, Advert(PEER4, 100, 100), took_over_us + 1)
    assert actions == [] and st.advert_at_us == advert_at
    st, actions = step(p, st, Advert(PEER4, 100, 100), took_over_us + 2 * SECOND)
    assert [type(a) for a in actions] == [Conflict] and st.state == State.MASTER
