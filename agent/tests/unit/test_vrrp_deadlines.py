"""hanode.vrrp.deadlines: the lazy earliest-deadline heap against a brute-force scan of every instance."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hanode.vrrp.deadlines import Deadlines


def test_a_deadline_moved_later_costs_nothing_until_it_comes_up():
    real = {"a": 100, "b": 200}
    queue = Deadlines()
    for name, at in real.items():
        queue.lower(name, at)
    real["a"] = 300                       # moved later: not reported
    assert queue.peek(real.get) == (200, "b")   # the stale entry of "a" was re-filed on the way
    assert queue.pop_due(250, real.get) == ["b"]
    assert queue.pop_due(1000, real.get) == ["a"]
    assert queue.peek(real.get) is None


def test_a_deadline_moved_earlier_is_reported_and_wins():
    real = {"a": 500}
    queue = Deadlines()
    queue.lower("a", 500)
    real["a"] = 50
    queue.lower("a", 50)
    assert queue.peek(real.get) == (50, "a")
    assert len(queue) == 1


def test_no_deadline_and_forgotten_instances_leave_the_queue():
    real = {"a": 10, "b": None}
    queue = Deadlines()
    queue.lower("a", 10)
    queue.lower("b", None)
    real["a"] = None
    assert queue.peek(real.get) is None and len(queue) == 0
    queue.lower("a", 5)
    queue.forget("a")
    assert queue.peek({"a": 5}.get) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.one_of(st.none(), st.integers(0, 1000)),
                          st.booleans(), st.integers(0, 1000)), max_size=60))
def test_pop_due_finds_exactly_what_a_scan_finds(steps):
    """Random moves (reported only when earlier, as the engine does), then pop_due at random times."""
    real: dict[str, int | None] = {}
    queue = Deadlines()
    for name, at, check, now in steps:
        before = real.get(name)
        real[name] = at
        if before is None or at is None or at < before:
            queue.lower(name, at)
        if check:
            expected = sorted(n for n, t in real.items() if t is not None and t <= now)
            due = queue.pop_due(now, real.get)
            assert sorted(due) == expected
            for n in due:           # stepped: the engine files them again with their new deadline
                real[n] = now + 1 + hash(n) % 7
                queue.lower(n, real[n])
    top = queue.peek(real.get)
    live = [(t, n) for n, t in real.items() if t is not None]
    assert (top[0] if top else None) == (min(live)[0] if live else None)
