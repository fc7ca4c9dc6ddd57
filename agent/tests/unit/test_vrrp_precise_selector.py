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
    """The VRRP process's real loop on a fake clock that moves by what each select() waits: a 50 ms timer is
    reached in a cut wait and the final one, and fires then, not at the early wake."""
    import asyncio
    from hanode.vrrp.child import select_loop
    loop = select_loop()
    clock = [1000.0]
    waits: list[float | None] = []

    def select(r, w, x, timeout=None):
        waits.append(timeout)
        clock[0] += timeout or 0
        return [], [], []
    loop.time = lambda: clock[0]
    loop._selector._select = select  # pylint: disable=protected-access
    try:
        fired: list[float] = []
        when = loop.time() + 0.05
        loop.call_at(when, lambda: (fired.append(loop.time()), loop.stop()))
        loop.run_forever()
        assert waits == [pytest.approx(0.05 - FINAL_WAIT_S), pytest.approx(FINAL_WAIT_S)]
        assert fired == [pytest.approx(when)]
    finally:
        loop.close()
        asyncio.set_event_loop(None)
