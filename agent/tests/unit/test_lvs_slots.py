"""The nftables slot allocator (lvs/slots.py): every kind of change touches O(change) slot runs, and after
any sequence of changes each destination owns exactly its slot count, the space is 0..N-1 with no hole,
the split over one round equals a rebuild's, and the journal replayed on the old runs gives the new ones
(what the kernel holds after the batch)."""

from __future__ import annotations

import collections
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hanode.lvs.slots import SlotError, SlotTable, slot_count

OWNERS = [f"r{i:02d}" for i in range(12)]


def check(table: SlotTable, counts: dict) -> None:
    """The invariants, checked from the runs alone."""
    want = {o: c for o, c in counts.items() if c > 0}
    runs = table.runs()
    assert table.size == sum(want.values())
    rebuilt = SlotTable.from_runs(runs)                 # raises on holes / overlaps: the space is 0..N-1
    assert rebuilt.size == table.size
    owned = collections.Counter()
    for first, last, owner in runs:
        owned[owner] += last - first + 1
    assert dict(owned) == want == table.counts()
    owners = [owner for _first, _last, owner in runs]
    for left, right in zip(owners, owners[1:]):
        assert left != right, f"adjacent runs of {left} were not merged: {runs}"
    by_slot = [owner for first, last, owner in runs for _slot in range(last - first + 1)]   # slot -> owner
    rebuilt_by_slot = [owner for first, last, owner in SlotTable.build(want).runs()
                       for _slot in range(last - first + 1)]
    assert len(by_slot) == table.size == len(rebuilt_by_slot)
    assert collections.Counter(by_slot) == collections.Counter(rebuilt_by_slot)   # one round: a rebuild's split


def replay(runs: list, removed: list, added: list) -> list:
    """What the kernel holds after deleting `removed` and adding `added` (the batch's order)."""
    held = set(runs)
    assert set(removed) <= held, f"deleting runs the kernel does not hold: {set(removed) - held}"
    held -= set(removed)
    assert not set(added) & held, "adding a run the kernel already holds"
    return sorted(held | set(added))


def touched(table: SlotTable) -> int:
    removed, added = table.take_changes()
    return len(removed) + len(added)


def test_slot_counts_per_scheduler():
    assert [slot_count("wrr", w) for w in (0, 1, 7)] == [0, 1, 7]
    assert [slot_count("rr", w) for w in (0, 1, 7)] == [0, 1, 1]
    assert [slot_count(s, 3) for s in ("sh", "dh")] == [3, 3]
    assert slot_count("wrr", -1) == 0


def test_build_is_the_rebuild_layout_owners_sorted_one_run_each():
    table = SlotTable.build({"b": 2, "a": 3, "z": 0, "c": 1})
    assert table.runs() == [(0, 2, "a"), (3, 4, "b"), (5, 5, "c")]
    assert table.size == 6 and table.take_changes() == ([], [])


def test_grow_appends_one_run_at_the_end():
    table = SlotTable.build({"a": 3, "b": 2, "c": 1})
    table.set_count("a", 5)
    assert table.take_changes() == ([], [(6, 7, "a")])
    assert table.size == 8
    check(table, {"a": 5, "b": 2, "c": 1})


def test_grow_merges_into_the_owners_last_run():
    table = SlotTable.build({"a": 1, "b": 2})
    table.set_count("b", 4)
    assert table.take_changes() == ([(1, 2, "b")], [(1, 4, "b")])


def test_a_new_owner_is_appended():
    table = SlotTable.build({"a": 2})
    table.set_count("n", 3)
    assert table.take_changes() == ([], [(2, 4, "n")])


def test_shrink_of_the_last_owner_only_cuts_its_run():
    table = SlotTable.build({"a": 3, "b": 2, "c": 4})
    table.set_count("c", 1)
    assert table.take_changes() == ([(5, 8, "c")], [(5, 5, "c")])
    assert table.size == 6


def test_shrink_in_the_middle_moves_the_last_slots_into_the_holes():
    table = SlotTable.build({"a": 3, "b": 2, "c": 4})         # a 0-2, b 3-4, c 5-8
    table.set_count("a", 1)                                     # frees 1-2; slots 7-8 (c) move there
    removed, added = table.take_changes()
    assert removed == [(0, 2, "a"), (5, 8, "c")]
    assert added == [(0, 0, "a"), (1, 2, "c"), (5, 6, "c")]
    assert table.size == 7
    check(table, {"a": 1, "b": 2, "c": 4})


def test_zero_removes_the_owner_entirely():
    table = SlotTable.build({"a": 2, "b": 2, "c": 2})
    table.set_count("a", 0)
    removed, added = table.take_changes()
    assert removed == [(0, 1, "a"), (4, 5, "c")] and added == [(0, 1, "c")]
    assert "a" not in table.counts() and table.count("a") == 0
    check(table, {"b": 2, "c": 2})


def test_rr_one_slot_each_up_down_and_back():
    weights = {o: 1 for o in OWNERS}
    table = SlotTable.build({o: slot_count("rr", w) for o, w in weights.items()})
    table.set_count("r03", slot_count("rr", 9))                 # 1 -> 9 is no change for rr
    assert table.take_changes() == ([], [])
    table.set_count("r03", slot_count("rr", 0))
    assert touched(table) <= 3
    table.set_count("r03", slot_count("rr", 4))
    assert table.take_changes() == ([], [(11, 11, "r03")])
    check(table, {o: 1 for o in OWNERS})


def test_one_change_among_10000_touches_a_constant_number_of_runs():
    counts = {f"d{i:05d}": 1 + i % 3 for i in range(10_000)}
    table = SlotTable.build(counts)
    for owner, count in (("d05000", 7), ("d05000", 1), ("d00001", 0), ("d09999", 5), ("d00002", 2), ("d04000", 0)):
        delta = abs(count - table.count(owner))
        table.set_count(owner, count)
        assert touched(table) <= 4 * delta + 4, owner
        counts[owner] = count
    check(table, counts)


def test_changes_in_one_journal_are_net():
    table = SlotTable.build({"a": 2, "b": 2})
    table.set_count("a", 5)
    table.set_count("a", 2)                                     # back where it was
    assert table.take_changes() == ([], [])


def test_rebuild_touches_only_runs_out_of_place():
    table = SlotTable.build({"a": 2, "b": 2, "c": 2})
    table.set_count("a", 1)
    table.take_changes()
    table.rebuild({"a": 1, "b": 2, "c": 2})
    removed, added = table.take_changes()
    assert table.runs() == [(0, 0, "a"), (1, 2, "b"), (3, 4, "c")]
    assert (0, 0, "a") not in removed + added                  # already in place
    check(table, {"a": 1, "b": 2, "c": 2})


def test_from_runs_reads_back_a_kernel_layout_and_refuses_holes_and_overlaps():
    table = SlotTable.from_runs([(2, 4, "b"), (0, 1, "a"), (5, 5, "a")])
    assert table.size == 6 and table.counts() == {"a": 3, "b": 3}
    with pytest.raises(SlotError, match="slot 2 is missing"):
        SlotTable.from_runs([(0, 1, "a"), (3, 4, "b")])
    with pytest.raises(SlotError, match="slot 1 is mapped twice"):
        SlotTable.from_runs([(0, 2, "a"), (1, 4, "b")])
    with pytest.raises(SlotError, match="slot 0 is missing"):
        SlotTable.from_runs([(1, 2, "a")])
    with pytest.raises(ValueError, match="must be >= 0"):
        table.set_count("a", -1)


def test_changes_on_a_table_read_back_from_the_kernel():
    table = SlotTable.from_runs([(0, 1, "a"), (2, 2, "b"), (3, 4, "a")])     # a in two runs
    table.set_count("a", 1)
    table.set_count("c", 2)
    check(table, {"a": 1, "b": 1, "c": 2})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 8), min_size=1, max_size=12),
       st.lists(st.tuples(st.integers(0, 11), st.integers(0, 9)), max_size=40),
       st.integers(1, 6))
def test_any_sequence_of_changes_keeps_every_invariant(initial, changes, per_journal):
    counts = {OWNERS[i]: c for i, c in enumerate(initial)}
    table = SlotTable.build(counts)
    kernel = table.runs()
    for step, (index, count) in enumerate(changes):
        owner = OWNERS[index]
        table.set_count(owner, count)
        counts[owner] = count
        check(table, counts)
        if step % per_journal == 0:                               # several changes per batch, like a reconcile
            removed, added = table.take_changes()
            assert not set(removed) & set(added)
            kernel = replay(kernel, removed, added)
            assert kernel == table.runs()
    removed, added = table.take_changes()
    assert replay(kernel, removed, added) == table.runs()


def test_long_random_runs_stay_bounded_with_the_backends_rebuild_rule():
    rng = random.Random(7)
    owners = [f"d{i:03d}" for i in range(200)]
    counts = {o: rng.randint(1, 50) for o in owners}
    table = SlotTable.build(counts)
    rebuilds = 0
    for _step in range(5000):
        owner = rng.choice(owners)
        counts[owner] = rng.choice([0, rng.randint(1, 50)])
        table.set_count(owner, counts[owner])
        if table.fragmented:
            table.rebuild(counts)
            rebuilds += 1
        table.take_changes()
        assert len(table.runs()) <= 2 * len(table.counts()) + 64
    check(table, counts)
    assert rebuilds < 50, rebuilds
