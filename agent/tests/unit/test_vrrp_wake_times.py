"""When the VRRP process wakes for a deadline (hanode.vrrp.deadlines.wake_at_us). The kernel may overshoot a
long select() timeout by 0.1% of its length (3.6 ms on a VRRPv2 Master_Down_Interval): a takeover's long wait
ends FINAL_WAIT early and the loop waits out the rest with a short timeout, then busy-waits the last SPIN.
An advert timer is served at its deadline (no early wake, no busy wait)."""

from __future__ import annotations

import asyncio

import pytest


from hanode.vrrp.child import select_selector
from hanode.vrrp.deadlines import wake_at_us
from hanode.vrrp.runner import FINAL_WAIT_US, SPIN_AHEAD_US
from pure_helpers import fake_pwait2

NOW = 1_000_000_000


@pytest.mark.parametrize("deadline, takeover, wake", [
    (NOW + 3_609_375, True, NOW + 3_609_375 - SPIN_AHEAD_US - FINAL_WAIT_US),   # v2 Master_Down: the long wait
    (NOW + FINAL_WAIT_US, True, NOW + FINAL_WAIT_US - SPIN_AHEAD_US),          # the final wait: to the spin
    (NOW + 100, True, NOW + 100 - SPIN_AHEAD_US),                               # already inside the spin
    (NOW + 1_000_000, False, NOW + 1_000_000),                                  # an advert: on time
    (NOW - 5, False, NOW - 5),                                                  # overdue: at once
])
def test_wake_times(deadline, takeover, wake):
    assert wake_at_us(deadline, takeover, NOW, SPIN_AHEAD_US, FINAL_WAIT_US) == wake


def test_a_takeover_woken_early_then_waits_the_short_rest():
    deadline = NOW + 3_000_000
    first = wake_at_us(deadline, True, NOW, SPIN_AHEAD_US, FINAL_WAIT_US)
    second = wake_at_us(deadline, True, first, SPIN_AHEAD_US, FINAL_WAIT_US)
    assert second - first == FINAL_WAIT_US and deadline - second == SPIN_AHEAD_US


def test_the_select_loop_waits_a_timer_out_in_one_select():
    """The VRRP process's real loop on a fake clock that moves by what each select() waits: a 50 ms timer is
    waited for in one select() (microsecond timeouts, no early wake) and fires then."""
    loop = asyncio.SelectorEventLoop(select_selector())
    clock = [1000.0]
    waits: list[float | None] = []

    loop.time = lambda: clock[0]
    loop._selector.pwait2 = fake_pwait2(clock, waits)
    try:
        fired: list[float] = []
        when = loop.time() + 0.05
        loop.call_at(when, lambda: (fired.append(loop.time()), loop.stop()))
        loop.run_forever()
        assert waits == [pytest.approx(0.05)]
        assert fired == [pytest.approx(when)]
    finally:
        loop.close()
        asyncio.set_event_loop(None)
