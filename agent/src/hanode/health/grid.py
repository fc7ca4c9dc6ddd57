"""The checker's 20 ms grid for its periodic chores: the fast path's timeout sweeps and the loop-lag watch wake
on the same grid points, so they share their wakeups (each wakeup of its own costs the checker ~100 us of CPU
here). The checks themselves start on their own due times, to the millisecond (health/duequeue.py)."""

from __future__ import annotations

TICK_MS = 20
TICKS_PER_S = 1000 // TICK_MS


def tick_ahead(now_s: float, ticks: int) -> float:
    """The time (in the loop's seconds) of the grid point `ticks` ticks after the last one at or before now_s."""
    return (int(now_s * TICKS_PER_S) + ticks) / TICKS_PER_S
