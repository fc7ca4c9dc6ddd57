"""The earliest deadline of each VRRP instance, in one heap with at most one live entry per instance (pure).

A BACKUP re-arms its Master_Down timer on every advert: pushing a heap entry (or an event-loop timer) each
time would cost one per advert. Here an instance's entry may be *earlier* than its real deadline, never later:
a deadline that moves later (the common case) costs nothing; the entry is corrected when it reaches the top of
the heap (peek asks `actual` for the real deadline and re-files it). A deadline that moves earlier must be
reported with lower().
"""

from __future__ import annotations

import heapq
from typing import Callable

Actual = Callable[[str], "int | None"]


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._filed: dict[str, int] = {}   # instance -> its live entry (older entries in the heap are dead)

    def __len__(self) -> int:
        return len(self._filed)

    def lower(self, name: str, at_us: int | None) -> None:
        """The instance's earliest deadline is now `at_us` (None: none); files it if earlier than its entry."""
        if at_us is None:
            return
        filed = self._filed.get(name)
        if filed is None or at_us < filed:
            self._filed[name] = at_us
            heapq.heappush(self._heap, (at_us, name))

    def forget(self, name: str) -> None:
        self._filed.pop(name, None)

    def clear(self) -> None:
        self._heap.clear()
        self._filed.clear()

    def peek(self, actual: Actual) -> tuple[int, str] | None:
        """(deadline, instance) of the earliest real deadline; corrects the entries it passes."""
        heap, filed = self._heap, self._filed
        while heap:
            at_us, name = heap[0]
            if filed.get(name) != at_us:   # a dead entry: the instance was filed again since
                heapq.heappop(heap)
                continue
            real = actual(name)
            if real == at_us:
                return at_us, name
            heapq.heappop(heap)
            if real is None:
                del filed[name]
            else:
                filed[name] = real
                heapq.heappush(heap, (real, name))
        return None

    def pop_due(self, now_us: int, actual: Actual) -> list[str]:
        """Every instance whose real deadline is <= now_us, removed (file them again after stepping them)."""
        due = []
        while (top := self.peek(actual)) is not None and top[0] <= now_us:
            heapq.heappop(self._heap)
            del self._filed[top[1]]
            due.append(top[1])
        return due


def wake_at_us(deadline_us: int, takeover: bool, now_us: int, spin_us: int, final_wait_us: int) -> int:
    """When the loop wakes for a deadline. An advert timer: at the deadline. A takeover (failover time): spin_us
    early, the rest busy-waited; and when that is more than final_wait_us away, first final_wait_us before it,
    because the kernel may overshoot a long select() timeout by 0.1% of its length (that wake re-arms the short
    rest, and reads the adverts waiting, which usually move the deadline on anyway)."""
    if not takeover:
        return deadline_us
    spin_at = deadline_us - spin_us
    return spin_at - final_wait_us if spin_at - now_us > final_wait_us else spin_at
