"""The checker's 20 ms grid: the timer wheel's ticks (scheduler.TimerWheel). The fast path's timeout sweeps
and the loop-lag watch wake on the same grid points, so they share the wheel's wakeups (each wakeup of its
own costs the checker ~100 us of CPU here)."""

from __future__ import annotations

TICK_MS = 20
HALF_TICK_MS = TICK_MS // 2
TICKS_PER_S = 1000 // TICK_MS


def tick_ahead(now_s: float, ticks: int) -> float:
    """The time (in the loop's seconds) of the grid point `ticks` ticks after the last one at or before now_s."""
    return (int(now_s * TICKS_PER_S) + ticks) / TICKS_PER_S
