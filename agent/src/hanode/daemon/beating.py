"""A child's heartbeat without a timer of its own: its event loop's selector beats when the loop goes to sleep
and when it wakes, and never sleeps longer than the beat period.

A loop busy with its own work (a MASTER's adverts, a checker's checks) therefore beats at no cost in wake-ups;
an idle one wakes once per beat period. A beat writes the time into the supervisor's beat page (daemon/beat.py)
and moves the dead man's switch (daemon/alarm.py) to that time plus the watchdog timeout, at most once per
half the slack between the two (no system call per loop turn), never later than the last beat plus the timeout:
the supervisor's loop wakes when the child has been silent for the timeout, and not before.

A turn of the loop that took less than QUICK_TURN of the beat period since its wake-up beat does not beat
again before it sleeps (the page would say nearly the same): one beat per wake-up, not two, on the common
path. Beats are then at most 1.05 periods apart, still well inside what the switch allows (it is moved once
half the slack is gained, so it stays at least timeout - slack / 2 = 1.25 periods ahead of the last beat)."""

from __future__ import annotations

import selectors
import time
from typing import Callable, Protocol

from hanode.daemon.pwait import PreciseEpollSelector
from hanode.daemon.served_timer import ServesTimer

QUICK_TURN = 0.05   # of the beat period (1 s by default: 50 ms)
COARSE_S = 0.001    # epoll_wait's resolution


class Page(Protocol):
    def write(self, monotonic_s: float) -> None: ...
    def limits(self) -> tuple[float, float]: ...


class Switch(Protocol):
    def arm_at(self, monotonic_s: float) -> None: ...


def rearm_due(now_s: float, armed_s: float, timeout_s: float, period_s: float) -> bool:
    """Whether a beat at now_s moves the switch (armed for armed_s) on to now_s + timeout_s: when it gained half
    the slack (timeout - period), so that the switch stays ahead of a loop that beats at least every period."""
    return now_s + timeout_s - armed_s >= (timeout_s - period_s) / 2


class _Beats:
    """The beat itself and the limit it puts on a sleep, shared by the two selectors below."""

    def _init_beats(self, page: Page, switch: Switch, clock: Callable[[], float]) -> None:
        self.page, self.switch, self.clock = page, switch, clock
        self.armed_s = float("-inf")
        self.timeout_s = 0.0
        self.beat_s = float("-inf")   # the last beat
        self.period_s = 0.0

    def beat(self, now: float | None = None) -> float:
        """Beats (at `now`, read from the clock if not given); returns the beat period."""
        if now is None:
            now = self.clock()
        self.beat_s = now
        self.page.write(now)
        timeout_s, period_s = self.page.limits()
        if timeout_s > 0:
            if timeout_s != self.timeout_s:   # a reload changed it (the supervisor armed the switch itself)
                self.timeout_s, self.armed_s = timeout_s, float("-inf")
            if rearm_due(now, self.armed_s, timeout_s, period_s):
                self.armed_s = now + timeout_s
                self.switch.arm_at(self.armed_s)
        self.period_s = period_s
        return period_s

    def _sleep_limit(self, timeout: float | None) -> tuple[float | None, bool]:
        """Before sleeping: beats unless this turn was quick. (The sleep's timeout, at most one beat period;
        whether the beat period is what limits it: no timer of the loop's comes due before it.)"""
        now = self.clock()
        period_s = self.period_s if now - self.beat_s < QUICK_TURN * self.period_s else self.beat(now)
        if period_s > 0 and (timeout is None or timeout > period_s):
            # epoll_wait rounds a timeout up to the next ms: coarse only when no timer comes within that ms
            return period_s, timeout is None or timeout > period_s + COARSE_S
        return timeout, False


class BeatingSelector(_Beats, selectors.BaseSelector):
    """Wraps the loop's selector (asyncio.SelectorEventLoop(BeatingSelector(...)))."""

    def __init__(self, inner: selectors.BaseSelector, page: Page, switch: Switch,
                 clock: Callable[[], float] = time.monotonic):
        self.inner = inner
        self._init_beats(page, switch, clock)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self.inner.select(self._sleep_limit(timeout)[0])
        self.beat()
        return ready

    def register(self, fileobj, events, data=None) -> selectors.SelectorKey:
        return self.inner.register(fileobj, events, data)

    def unregister(self, fileobj) -> selectors.SelectorKey:
        return self.inner.unregister(fileobj)

    def modify(self, fileobj, events, data=None) -> selectors.SelectorKey:
        return self.inner.modify(fileobj, events, data)

    def get_key(self, fileobj) -> selectors.SelectorKey:
        return self.inner.get_key(fileobj)

    def get_map(self):
        return self.inner.get_map()

    def close(self) -> None:
        self.inner.close()


class BeatingEpollSelector(_Beats, ServesTimer, PreciseEpollSelector):
    """The epoll_pwait2 selector (daemon/pwait.py) beating by itself: the same beats as a BeatingSelector around
    it, without the layer of calls between the loop and the wait that a wrapper costs on every wake-up (the VRRP
    process with one instance spends most of its CPU on the fixed cost of its wake-ups). It also serves one
    timer by itself (daemon/served_timer.py: the VRRP engine's deadline, without a turn of the asyncio loop)."""

    def __init__(self, pwait2, page: Page, switch: Switch, clock: Callable[[], float] = time.monotonic):
        PreciseEpollSelector.__init__(self, pwait2)
        self._init_beats(page, switch, clock)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return self.select_serving(timeout)

    def select_once(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        timeout, beat_only = self._sleep_limit(timeout)
        # a sleep that only the beat period limits needs no microseconds (nothing is due at its end): the C
        # epoll_wait of the standard selector, not the call through ctypes (an idle BACKUP's every wake-up)
        ready = self.coarse_select(timeout) if beat_only else PreciseEpollSelector.select(self, timeout)
        self.beat()
        return ready

    def coarse_select(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        return selectors.EpollSelector.select(self, timeout)


def beating_selector(inner: selectors.BaseSelector, page: Page, switch: Switch) -> selectors.BaseSelector:
    """The loop's selector, beating: an epoll_pwait2 selector (still empty) is replaced by one that beats by
    itself; any other is wrapped."""
    if type(inner) is PreciseEpollSelector and not inner.get_map():   # pylint: disable=unidiomatic-typecheck
        pwait2 = inner.pwait2
        inner.close()
        return BeatingEpollSelector(pwait2, page, switch)
    return BeatingSelector(inner, page, switch)
