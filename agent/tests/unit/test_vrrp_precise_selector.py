"""The VRRP process's selector never hands the kernel a long select() timeout: the kernel may overshoot one
by 0.1% of its length (3.6 ms on a VRRPv2 Master_Down_Interval). Long waits end FINAL_WAIT_S early, and the
loop then waits out the rest with a short timeout."""

from __future__ import annotations

import pytest

from hanode.vrrp.child import FINAL_WAIT_S, PreciseSelector


@pytest.fixture
def asked():
    seen: list[float | None] = []
    selector = PreciseSelector()
    selector._select = lambda r, w, x, timeout=None: (seen.append(timeout), ([], [], []))[1]
    yield selector, seen
    selector.close()


@pytest.mark.parametrize("timeout, passed", [
    (3.609375, 3.609375 - FINAL_WAIT_S),      # v2 Master_Down_Interval: woken 20 ms early
    (1.0, 1.0 - FINAL_WAIT_S),
    (0.03, FINAL_WAIT_S),                     # never below the final wait itself
    (FINAL_WAIT_S, FINAL_WAIT_S),             # the final wait: as asked
    (0.001, 0.001),
    (0, 0),
    (None, None),                             # no timer: wait for I/O only
])
def test_long_waits_are_cut_to_leave_a_short_final_wait(asked, timeout, passed):
    selector, seen = asked
    selector.select(timeout)
    assert seen == [pytest.approx(passed) if passed is not None else None]


def test_the_loop_still_fires_a_timer_on_time_after_the_early_wake():
    import asyncio
    from hanode.vrrp.child import select_loop
    loop = select_loop()
    try:
        fired: list[float] = []
        when = loop.time() + 0.05
        loop.call_at(when, lambda: (fired.append(loop.time()), loop.stop()))
        loop.run_forever()
        assert fired and fired[0] >= when
    finally:
        loop.close()
        asyncio.set_event_loop(None)
