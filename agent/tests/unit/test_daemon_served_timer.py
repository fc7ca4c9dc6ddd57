"""The timer a beating epoll selector serves by itself (hanode.daemon.served_timer): on a real asyncio loop over
the real selector (epoll_pwait2), it runs its callback at its deadline without a turn of the loop, and keeps the
loop's order and promptness: descriptors ready together with the deadline first, then the deadline; work the
callback gives the loop (call_soon, an earlier call_later) done before the next deadline; a failing callback
reported and the loop going on."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from hanode.daemon.beat import BeatPage
from hanode.daemon.beating import BeatingEpollSelector
from hanode.daemon.pwait import _pwait2
from hanode.daemon.served_timer import served_call_at


class Switch:
    def arm_at(self, monotonic_s: float) -> None:
        pass


class CountingLoop(asyncio.SelectorEventLoop):
    """Counts its turns (what a served deadline saves)."""

    turns = 0

    def _run_once(self):
        self.turns += 1
        super()._run_once()


@pytest.fixture(name="loop")
def fixture_loop():
    pwait2 = _pwait2()
    if pwait2 is None:
        pytest.skip("no epoll_pwait2 in this C library")
    page, fd = BeatPage.create()
    os.close(fd)
    page.set_limits(2.0, 1.0)
    loop = CountingLoop(BeatingEpollSelector(pwait2, page, Switch()))
    yield loop
    loop.close()
    page.close()


def test_deadlines_are_served_at_their_time_without_a_turn_of_the_loop(loop):
    call_at = served_call_at(loop)
    fired: list[tuple[float, float]] = []
    done = loop.create_future()

    def tick():
        fired.append((due[0], time.monotonic()))
        if len(fired) == 20:
            done.set_result(None)
            return
        due[0] += 0.005
        call_at(due[0], tick)

    due = [time.monotonic() + 0.005]
    call_at(due[0], tick)
    loop.run_until_complete(done)
    assert len(fired) == 20
    assert all(at >= deadline for deadline, at in fired), "a deadline served before its time"
    assert loop.turns < 10, f"{loop.turns} turns of the loop for 20 served deadlines"


def test_a_cancelled_deadline_does_not_run_and_a_new_one_replaces_the_old(loop):
    call_at = served_call_at(loop)
    ran = []
    first = call_at(time.monotonic() + 0.01, lambda: ran.append("cancelled"))
    first.cancel()
    call_at(time.monotonic() + 0.02, lambda: ran.append("replaced"))
    call_at(time.monotonic() + 0.03, lambda: ran.append("last"))
    loop.run_until_complete(asyncio.sleep(0.1))
    assert ran == ["last"]


def test_a_descriptor_ready_with_the_deadline_runs_first(loop):
    call_at = served_call_at(loop)
    order = []
    reader, writer = os.pipe()
    try:
        loop.add_reader(reader, lambda: order.append(("read", os.read(reader, 1))))
        call_at(time.monotonic() + 0.02, lambda: order.append(("deadline", None)))
        os.write(writer, b"x")
        time.sleep(0.04)   # both are due before the loop next waits
        loop.run_until_complete(asyncio.sleep(0.05))
        assert order == [("read", b"x"), ("deadline", None)]
        loop.remove_reader(reader)
    finally:
        os.close(reader)
        os.close(writer)


def test_a_reader_that_moves_the_deadline_cancels_the_due_one(loop):
    call_at = served_call_at(loop)
    order = []
    reader, writer = os.pipe()
    timer = [None]

    def read():
        os.read(reader, 1)
        order.append("read")
        timer[0].cancel()
        timer[0] = call_at(time.monotonic() + 0.02, lambda: order.append("moved"))

    try:
        loop.add_reader(reader, read)
        timer[0] = call_at(time.monotonic() + 0.01, lambda: order.append("old"))
        os.write(writer, b"x")
        time.sleep(0.02)
        loop.run_until_complete(asyncio.sleep(0.06))
        assert order == ["read", "moved"]
        loop.remove_reader(reader)
    finally:
        os.close(reader)
        os.close(writer)


def test_work_a_deadline_gives_the_loop_is_done_before_the_next_deadline(loop):
    call_at = served_call_at(loop)
    order = []

    def first():
        loop.call_soon(order.append, "soon")
        loop.call_later(0.01, order.append, "later")
        order.append("first")
        call_at(time.monotonic() + 0.2, lambda: order.append("second"))

    call_at(time.monotonic() + 0.01, first)
    loop.run_until_complete(asyncio.sleep(0.3))
    assert order == ["first", "soon", "later", "second"]


def test_a_failing_deadline_is_reported_and_the_loop_goes_on(loop):
    call_at = served_call_at(loop)
    reported, ran = [], []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["exception"]))

    def fails():
        call_at(time.monotonic() + 0.01, lambda: ran.append("next"))
        raise ValueError("boom")

    call_at(time.monotonic() + 0.01, fails)
    loop.run_until_complete(asyncio.sleep(0.1))
    assert [str(exc) for exc in reported] == ["boom"]
    assert ran == ["next"]


def test_other_loops_use_their_own_call_at():
    loop = asyncio.new_event_loop()
    try:
        assert served_call_at(loop) == loop.call_at
        ran = []
        served_call_at(loop)(loop.time() + 0.01, lambda: ran.append(1))
        loop.run_until_complete(asyncio.sleep(0.05))
        assert ran == [1]
    finally:
        loop.close()
