"""An asyncio event loop on a virtual clock, for unit tests of timing without the wall clock.

loop.time() is VirtualClock.now_s. Real I/O still works: sockets, pipes and subprocesses are polled without
blocking. When nothing is ready and the loop would sleep until its next timer, the clock jumps straight to that
timer instead, so `asyncio.timeout(0.3)` fires after exactly 0.3 virtual seconds and no time passes for real.

That jump is only right when nothing real is still on its way. While a test waits for something real (a script
to start, a peer to answer), it holds the clock (`with clock.held():`): the loop then waits for I/O only, and
virtual time stands still.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
from typing import Any, Awaitable, Callable, Iterator, TypeVar

T = TypeVar("T")
HELD_IO_GUARD_S = 30.0  # a held clock waits this long at most for real I/O: a hang guard, never a measurement


class VirtualClock:
    def __init__(self, start_s: float = 1000.0):
        self.now_s = start_s
        self.holds = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Virtual time stands still inside: the loop waits for real I/O instead of jumping to its next timer."""
        self.holds += 1
        try:
            yield
        finally:
            self.holds -= 1


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, clock: VirtualClock):
        super().__init__()
        self.clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if self.clock.holds or timeout is None:
            ready = super().select(HELD_IO_GUARD_S)
            if not ready:
                raise RuntimeError(f"virtual clock: nothing happened for {HELD_IO_GUARD_S:g} s of real time while "
                                   "the loop waited for I/O (held clock, or no timer left)")
            return ready
        self.clock.now_s += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock):
        super().__init__(_VirtualSelector(clock))
        self.clock = clock

    def time(self) -> float:
        return self.clock.now_s


def run_virtual(main: Callable[[VirtualClock], Awaitable[T]], clock: VirtualClock | None = None) -> T:
    """Runs main(clock) to completion on a VirtualTimeLoop."""
    clock = clock or VirtualClock()
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(clock)) as runner:
        return runner.run(main(clock))


def on_readable(fd: int) -> Awaitable[Any]:
    """A future that completes when fd becomes readable (a pipe, a FIFO, a pidfd)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def ready() -> None:
        loop.remove_reader(fd)
        if not done.done():
            done.set_result(None)
    loop.add_reader(fd, ready)
    return done
