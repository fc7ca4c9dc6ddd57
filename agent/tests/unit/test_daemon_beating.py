"""A child's heartbeat (hanode.daemon.beating, hanode.daemon.beat): its loop's selector beats when it sleeps and
wakes, sleeps no longer than the beat period, and moves the supervisor's dead man's switch on without a system
call per loop turn, never past the last beat plus the watchdog timeout. Fake clock, fake selector."""

from __future__ import annotations

import os
import select
import selectors

import pytest

from hanode.daemon.alarm import Alarm
from hanode.daemon.beat import BeatPage, beat_period_s, late_after_s
from hanode.daemon.beating import BeatingSelector, rearm_due
from pure_helpers import fake_pwait2


class FakeSelector(selectors.BaseSelector):
    """Waits by moving the fake clock on by the timeout it is given (or `wake_after`, when earlier)."""

    def __init__(self, clock: list[float]):
        self.clock, self.waits, self.wake_after = clock, [], None

    def select(self, timeout=None):
        self.waits.append(timeout)
        waited = timeout if self.wake_after is None or (timeout is not None and timeout < self.wake_after) \
            else self.wake_after
        self.clock[0] += waited or 0
        return []

    def register(self, fileobj, events, data=None):
        raise NotImplementedError

    def unregister(self, fileobj):
        raise NotImplementedError

    def get_map(self):
        return {}


class Switch:
    def __init__(self):
        self.armed: list[float] = []

    def arm_at(self, monotonic_s: float) -> None:
        self.armed.append(monotonic_s)


@pytest.fixture(name="page")
def fixture_page():
    page, fd = BeatPage.create()
    os.close(fd)
    yield page
    page.close()


@pytest.mark.parametrize("timeout_s, systemd_s, period_s", [
    (2.0, None, 1.0),     # the default watchdog_timeout: half of it
    (30.0, None, 15.0),
    (0.5, None, 0.25),
    (2.0, 5.0, 1.0),      # WatchdogSec=10 (pings every 5 s): the watchdog's half is shorter
    (6.0, 0.5, 0.5),      # pings every 0.5 s: a frozen child must hold them back within a second
])
def test_the_beat_period_follows_the_watchdog_and_systemd(timeout_s, systemd_s, period_s):
    assert beat_period_s(timeout_s, systemd_s) == period_s
    assert late_after_s(period_s) == period_s + 0.5


def test_an_idle_loop_sleeps_one_beat_period_at_a_time_and_beats_before_and_after(page):
    clock = [100.0]
    inner, switch = FakeSelector(clock), Switch()
    page.set_limits(2.0, 1.0)
    beating = BeatingSelector(inner, page, switch, clock=lambda: clock[0])
    beating.select(None)        # no timer at all: one beat period
    beating.select(5.0)         # a timer 5 s away: one beat period
    beating.select(0.25)        # a timer sooner: its own timeout
    assert inner.waits == [1.0, 1.0, 0.25]
    assert page.read() == clock[0] == 102.25


def test_the_switch_stays_ahead_of_a_live_loop_and_is_moved_at_most_once_per_half_slack(page):
    clock = [100.0]
    inner, switch = FakeSelector(clock), Switch()
    page.set_limits(2.0, 1.0)
    beating = BeatingSelector(inner, page, switch, clock=lambda: clock[0])
    for _turn in range(400):    # a busy loop: a wake-up every 10 ms for 4 s
        inner.wake_after = 0.01
        beating.select(None)
        assert switch.armed[-1] > clock[0] + 1.0, "the switch came within a beat period of going off"
        assert switch.armed[-1] <= page.read() + 2.0, "the switch was set past the last beat plus the timeout"
    assert len(switch.armed) <= 4 / 0.5 + 1   # (timeout - period) / 2 = 0.5 s between moves, not 800 calls


def test_a_reload_that_changes_the_timeout_moves_the_switch_at_the_next_beat(page):
    clock = [100.0]
    inner, switch = FakeSelector(clock), Switch()
    page.set_limits(30.0, 15.0)
    beating = BeatingSelector(inner, page, switch, clock=lambda: clock[0])
    beating.select(0.001)
    assert switch.armed == [pytest.approx(130.0)]
    page.set_limits(2.0, 1.0)
    beating.select(0.001)       # its next beat (waking at 100.002; the quick turn before did not beat) moves
    assert switch.armed[1:] == [pytest.approx(102.002)]   # the switch in, to the new timeout


class CountingPage:
    """The real page, with every beat written noted."""

    def __init__(self, page: BeatPage):
        self.page, self.written = page, []

    def write(self, monotonic_s: float) -> None:
        self.written.append(monotonic_s)
        self.page.write(monotonic_s)

    def limits(self) -> tuple[float, float]:
        return self.page.limits()


def test_a_quick_turn_beats_once_on_waking_and_a_slow_one_before_sleeping_too(page):
    clock = [100.0]
    inner, switch, counting = FakeSelector(clock), Switch(), CountingPage(page)
    page.set_limits(2.0, 1.0)
    beating = BeatingSelector(inner, counting, switch, clock=lambda: clock[0])
    beating.select(0.1)         # the first sleep beats before and after
    assert counting.written == [100.0, 100.1]
    for _turn in range(10):     # quick turns (under 5% of the 1 s beat period): a beat per wake-up only
        clock[0] += 0.001       # the turn's work
        beating.select(0.1)
    assert len(counting.written) == 2 + 10
    assert page.read() == clock[0]
    clock[0] += 0.2             # a slow turn: the page must not keep its wake-up time while it sleeps
    slept_at = clock[0]
    beating.select(0.1)
    assert counting.written[-2:] == [slept_at, pytest.approx(slept_at + 0.1)]


@pytest.mark.parametrize("now, armed, due", [
    (100.0, 102.0, False),   # just moved
    (100.49, 102.0, False),
    (100.5, 102.0, True),    # gained half the slack (0.5 s): moved
    (100.0, float("-inf"), True),
])
def test_rearm_due(now, armed, due):
    assert rearm_due(now, armed, 2.0, 1.0) is due


def test_the_alarm_is_a_real_timerfd_that_goes_off_only_when_not_moved_on():
    """Absolute CLOCK_MONOTONIC times far in the past and the future: no clock read, no wait."""
    alarm = Alarm()
    try:
        alarm.arm_at(1.0)           # in the past ...
        alarm.arm_at(2.0 ** 40)     # ... but moved on before the loop looked: does not go off
        assert select.select([alarm], [], [], 0)[0] == []
        alarm.arm_at(1.0)           # in the past: goes off at once
        assert select.select([alarm], [], [], 5)[0] == [alarm]
        assert alarm.consume() == 1 and alarm.consume() == 0
        assert select.select([alarm], [], [], 0)[0] == []
    finally:
        alarm.close()


def test_the_epoll_selector_that_beats_by_itself_beats_as_the_wrapper_does(page):
    from hanode.daemon.beating import BeatingEpollSelector   # pylint: disable=import-outside-toplevel
    clock, waits = [100.0], []
    counting, switch = CountingPage(page), Switch()
    page.set_limits(2.0, 1.0)
    beating = BeatingEpollSelector(fake_pwait2(clock, waits), counting, switch, clock=lambda: clock[0])
    coarse: list = []

    def coarse_select(timeout):   # the standard epoll_wait, on the fake clock
        coarse.append(timeout)
        clock[0] += timeout
        return []
    beating.coarse_select = coarse_select
    try:
        beating.select(None)      # no timer: one beat period (epoll_wait), a beat before and after
        beating.select(5.0)       # a quick turn: the wake-up's beat only
        beating.select(0.25)      # a timer before the beat period: its timeout to the microsecond (epoll_pwait2)
        assert coarse == [1.0, 1.0]
        assert waits == [pytest.approx(0.25)]
        assert counting.written == [100.0, pytest.approx(101.0), pytest.approx(102.0), pytest.approx(102.25)]
        assert switch.armed[-1] == pytest.approx(104.0)   # the last beat gained under half the slack
    finally:
        beating.close()


def test_the_epoll_selector_that_beats_by_itself_reports_what_is_ready(page):
    from hanode.daemon.beating import BeatingEpollSelector   # pylint: disable=import-outside-toplevel
    from hanode.daemon.pwait import _pwait2   # pylint: disable=import-outside-toplevel
    pwait2 = _pwait2()
    if pwait2 is None:
        pytest.skip("no epoll_pwait2 in this C library")
    page.set_limits(2.0, 1.0)
    beating = BeatingEpollSelector(pwait2, page, Switch())
    reader, writer = os.pipe()
    try:
        beating.register(reader, selectors.EVENT_READ, "data")
        assert beating.select(0) == []
        os.write(writer, b"x")
        [(key, events)] = beating.select(0.5)    # epoll_pwait2
        assert (key.fd, key.data, events) == (reader, "data", selectors.EVENT_READ)
        [(key, events)] = beating.select(None)   # the beat period: epoll_wait
        assert (key.fd, key.data, events) == (reader, "data", selectors.EVENT_READ)
        assert page.read() > 0
    finally:
        beating.close()
        os.close(reader)
        os.close(writer)


def test_a_precise_selector_beats_by_itself_and_any_other_is_wrapped(page):
    from hanode.daemon.beating import BeatingEpollSelector, beating_selector   # pylint: disable=import-outside-toplevel
    from hanode.daemon.pwait import precise_selector   # pylint: disable=import-outside-toplevel
    inner = precise_selector()
    chosen = beating_selector(inner, page, Switch())
    try:
        if isinstance(inner, selectors.SelectSelector):
            assert isinstance(chosen, BeatingSelector) and chosen.inner is inner
        else:
            assert isinstance(chosen, BeatingEpollSelector)
    finally:
        chosen.close()
    other = selectors.PollSelector()
    wrapped = beating_selector(other, page, Switch())
    assert isinstance(wrapped, BeatingSelector) and wrapped.inner is other
    wrapped.close()
