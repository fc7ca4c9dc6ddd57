"""Slot allocation for the nftables schedulers (pure).

A service's scheduler picks a slot in 0..size-1 (`numgen inc mod size` for rr/wrr, `jhash ... mod size` for
sh/dh) and a map sends each slot to one destination. A destination owns `slot_count(scheduler, weight)`
slots: its weight for wrr/sh/dh, one for rr (zero when its weight is 0). Which slots it owns does not change
the split: every destination gets count/size of the new connections.

The table keeps the slots as runs: (first, last, owner), inclusive, one interval element of the map each.
A change touches only what it must, so one weight change costs O(1) map elements whatever the number of
destinations, and the size (the rule's modulus) moves by the difference:
- grow by k: one run appended at the end of the space (merged into the last run when that is the owner's);
- shrink by k: the owner's highest k slots are freed; the last k slots of the space are then moved into the
  freed slots that lie below the new size, so the space stays 0..size-1 with no hole;
- 0 removes every slot of the owner.
A moved run that lands next to a run of the same owner is merged with it. Changes are journaled
(removed runs, added runs), net: a run added then removed within one journal never reaches the kernel.
`build` gives the layout a rebuild from scratch gives (owners sorted, one run each); `rebuild` moves an
existing table there through the same journal. A table whose runs outnumber its owners by far
(`fragmented`) is rebuilt by the backend; that is rare (it takes many shrinks of large weights).
"""

from __future__ import annotations

from typing import Hashable, Iterable, Mapping

Run = tuple[int, int, Hashable]          # (first slot, last slot, owner)


class SlotError(ValueError):
    """A slot layout that is not one space 0..size-1 of runs (overlap, hole)."""


def slot_count(scheduler: str, weight: int) -> int:
    """Slots a destination of `weight` owns: rr schedules every live destination once per round."""
    if weight <= 0:
        return 0
    return 1 if scheduler == "rr" else weight


class SlotTable:
    """The runs are kept in plain dicts of ints (first -> last, last -> first, first -> owner, owner -> firsts
    as a tuple of ints), not as one object per run: a table of 10,000 runs adds no object the garbage
    collector has to walk, which a long-running agent would pay for on every full collection."""

    __slots__ = ("_last", "_first", "_owner", "_firsts", "_count", "size", "_added", "_removed")

    def __init__(self) -> None:
        self._last: dict[int, int] = {}              # first slot of a run -> its last slot
        self._first: dict[int, int] = {}             # last slot of a run -> its first slot
        self._owner: dict[int, Hashable] = {}        # first slot of a run -> owner
        self._firsts: dict[Hashable, tuple[int, ...]] = {}   # owner -> first slots of its runs
        self._count: dict[Hashable, int] = {}
        self.size = 0
        self._added: set[Run] = set()
        self._removed: set[Run] = set()

    # ----- construction ------------------------------------------------------------------------

    @classmethod
    def build(cls, counts: Mapping[Hashable, int]) -> SlotTable:
        """The layout of a rebuild from scratch: owners in sorted order, one run each (journal empty)."""
        table = cls()
        table._place_all(_layout(counts))
        table.take_changes()
        return table

    @classmethod
    def from_runs(cls, runs: Iterable[Run]) -> SlotTable:
        """A table holding exactly `runs` (as read back from the kernel); SlotError unless they cover
        0..size-1 once."""
        table = cls()
        expected = 0
        for first, last, owner in sorted(runs, key=lambda run: run[0]):
            if last < first:
                raise SlotError(f"run {first}-{last} is empty")
            if first != expected:
                raise SlotError(f"slot {expected} is missing" if first > expected else f"slot {first} is mapped twice")
            table._index((first, last, owner))
            expected = last + 1
        table.size = expected
        return table

    # ----- queries ---------------------------------------------------------------------------------

    def count(self, owner: Hashable) -> int:
        return self._count.get(owner, 0)

    def counts(self) -> dict[Hashable, int]:
        return dict(self._count)

    def runs(self) -> list[Run]:
        return [self._run(first) for first in sorted(self._last)]

    def owner(self, slot: int) -> Hashable:
        """The owner of one slot (for tests and diagnostics: O(runs))."""
        for first, last in self._last.items():
            if first <= slot <= last:
                return self._owner[first]
        raise KeyError(slot)

    @property
    def fragmented(self) -> bool:
        return len(self._last) > 2 * len(self._count) + 64

    # ----- changes -----------------------------------------------------------------------------------

    def set_count(self, owner: Hashable, count: int) -> None:
        """Gives `owner` exactly `count` slots, touching O(|change|) runs."""
        if count < 0:
            raise ValueError(f"slot count of {owner!r} must be >= 0, got {count}")
        have = self.count(owner)
        if count > have:
            self._grow(owner, count - have)
        elif count < have:
            self._shrink(owner, have - count)

    def rebuild(self, counts: Mapping[Hashable, int]) -> None:
        """Moves to the layout `build(counts)` gives; runs already in place are not touched."""
        for run in self.runs():
            self._remove(run)
        self.size = 0
        self._place_all(_layout(counts))

    def take_changes(self) -> tuple[list[Run], list[Run]]:
        """(removed runs, added runs) since the last call, net and sorted; clears the journal."""
        removed, added = sorted(self._removed, key=_run_start), sorted(self._added, key=_run_start)
        self._removed, self._added = set(), set()
        return removed, added

    # ----- internals ---------------------------------------------------------------------------------

    def _place_all(self, runs: list[Run]) -> None:
        for run in runs:
            self._add(run)
        self.size = runs[-1][1] + 1 if runs else 0

    def _grow(self, owner: Hashable, k: int) -> None:
        first = self.size
        self.size += k
        self._place(first, first + k - 1, owner)

    def _shrink(self, owner: Hashable, k: int) -> None:
        new_size = self.size - k
        tail = self._tail_runs(new_size)
        holes = self._free_top(owner, k, new_size)
        pieces = []
        for run in tail:
            first, last, who = run
            if who == owner:
                continue                     # its tail slots were just freed
            self._remove(run)
            if first < new_size:
                self._add((first, new_size - 1, who))
                first = new_size
            pieces.append((first, last, who))
        self.size = new_size
        self._fill(holes, sorted(pieces, key=_run_start))

    def _tail_runs(self, start: int) -> list[Run]:
        """The runs holding slots start..size-1, walking down from the end of the space."""
        runs = []
        slot = self.size - 1
        while slot >= start:
            run = self._run(self._first[slot])
            runs.append(run)
            slot = run[0] - 1
        return runs

    def _free_top(self, owner: Hashable, k: int, new_size: int) -> list[tuple[int, int]]:
        """Frees the owner's highest k slots; returns the freed intervals below new_size (to be filled)."""
        holes = []
        for run in [self._run(first) for first in sorted(self._firsts[owner], reverse=True)]:
            if k == 0:
                break
            first, last, _owner = run
            take = min(k, last - first + 1)
            k -= take
            self._remove(run)
            if take <= last - first:
                self._add((first, last - take, owner))
            freed_first = last - take + 1
            if freed_first < new_size:
                holes.append((freed_first, min(last, new_size - 1)))
        return sorted(holes)

    def _fill(self, holes: list[tuple[int, int]], pieces: list[Run]) -> None:
        """Moves the pieces (in order) into the holes (in order); both hold the same number of slots."""
        hole_iter = iter(holes)
        hole_first, hole_last = next(hole_iter, (0, -1))
        for first, last, who in pieces:
            while first <= last:
                if hole_first > hole_last:
                    hole_first, hole_last = next(hole_iter)
                length = min(last - first, hole_last - hole_first) + 1
                self._place(hole_first, hole_first + length - 1, who)
                hole_first += length
                first += length

    def _place(self, first: int, last: int, owner: Hashable) -> None:
        """Adds a run, merged with an adjacent run of the same owner on either side."""
        left = self._first.get(first - 1)
        if left is not None and self._owner[left] == owner:
            self._remove((left, first - 1, owner))
            first = left
        right = self._last.get(last + 1)
        if right is not None and self._owner[last + 1] == owner:
            self._remove((last + 1, right, owner))
            last = right
        self._add((first, last, owner))

    def _run(self, first: int) -> Run:
        return first, self._last[first], self._owner[first]

    def _index(self, run: Run) -> None:
        first, last, owner = run
        self._last[first] = last
        self._first[last] = first
        self._owner[first] = owner
        self._firsts[owner] = self._firsts.get(owner, ()) + (first,)
        self._count[owner] = self._count.get(owner, 0) + last - first + 1

    def _add(self, run: Run) -> None:
        self._index(run)
        if run in self._removed:
            self._removed.discard(run)
        else:
            self._added.add(run)

    def _remove(self, run: Run) -> None:
        first, last, owner = run
        del self._last[first]
        del self._first[last]
        del self._owner[first]
        left = self._count[owner] - (last - first + 1)
        if left:
            self._count[owner] = left
            self._firsts[owner] = tuple(f for f in self._firsts[owner] if f != first)
        else:
            del self._count[owner]
            del self._firsts[owner]
        if run in self._added:
            self._added.discard(run)
        else:
            self._removed.add(run)


def _run_start(run: Run) -> int:
    return run[0]


def _layout(counts: Mapping[Hashable, int]) -> list[Run]:
    runs = []
    start = 0
    for owner in sorted(counts):
        count = counts[owner]
        if count > 0:
            runs.append((start, start + count - 1, owner))
            start += count
    return runs
