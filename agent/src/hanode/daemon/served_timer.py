"""One timer that the event loop's selector serves by itself, without a turn of the asyncio loop (the VRRP
process's engine deadline: a MASTER's advert timer, a BACKUP's Master_Down).

With one instance the VRRP process's CPU is the fixed cost of its wake-ups, and asyncio's share of a wake-up
that only serves a timer (a TimerHandle made and filed in its heap per deadline, the turn of _run_once that
pops it, the Handle and context around the callback) is about what a bare Python loop costs in all. Here the
selector holds the deadline: its select() waits for it as well as for the descriptors and asyncio's own
timeout, and when it wakes for the deadline alone it runs the callback at once and waits again, returning to
asyncio only when the loop has work of its own (descriptors ready, a callback or timer of the loop's due, or one
the callback added). When descriptors are ready together with the deadline, the deadline is handed to the loop
as one more ready key, after the descriptors', so the callbacks run in asyncio's order (I/O first, then timers).

The loop's own state is read through its private _ready, _scheduled and _stopping (CPython's
BaseEventLoop); served_call_at() falls back to the loop's call_at for any other selector."""

from __future__ import annotations

import asyncio
import selectors
from typing import Callable


class ServedHandle:
    """The served timer (as asyncio.TimerHandle: cancel() before it runs and it does not)."""

    __slots__ = ("owner", "when", "callback", "cancelled")

    def __init__(self, owner: "ServesTimer", when: float, callback: Callable[[], None]):
        self.owner, self.when, self.callback, self.cancelled = owner, when, callback, False

    def cancel(self) -> None:
        self.cancelled = True
        if self.owner.timer is self:
            self.owner.timer = None


class ServesTimer:
    """Mixed into a selector whose select_once(timeout) waits (and beats) once and returns what is ready, with
    clock() the loop's clock (time.monotonic)."""

    timer: ServedHandle | None = None
    loop: asyncio.AbstractEventLoop | None = None
    clock: Callable[[], float]

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop this selector serves (whose ready queue and timers say when to return to it)."""
        self.loop = loop
        self.fired: ServedHandle | None = None
        # handed to the loop as a ready descriptor: its reader runs the deadline's callback (_fire)
        self.timer_key = selectors.SelectorKey(None, -1, selectors.EVENT_READ,
                                               (asyncio.Handle(self._fire, (), loop), None))

    def call_at(self, when: float, callback: Callable[[], None]) -> ServedHandle:
        """As loop.call_at, for the one served timer (it replaces any earlier one)."""
        if self.timer is not None:
            self.timer.cancelled = True
        self.timer = ServedHandle(self, when, callback)
        return self.timer

    def _fire(self) -> None:
        handle, self.fired = self.fired, None
        if handle is not None and not handle.cancelled:
            handle.callback()

    def select_once(self, timeout: float | None) -> list:
        raise NotImplementedError

    def select_serving(self, timeout: float | None) -> list:
        """select(): waits for the descriptors, asyncio's timeout and the served timer, serving the timer here
        while the loop has nothing else to do."""
        if self.timer is None:
            return self.select_once(timeout)
        end = None if timeout is None else self.clock() + timeout
        loop = self.loop
        while True:
            handle = self.timer
            limit = end
            if handle is not None and (limit is None or handle.when < limit):
                limit = handle.when
            ready = self.select_once(None if limit is None else max(0.0, limit - self.clock()))
            now = self.clock()
            handle = self.timer
            if handle is None or now < handle.when:
                if ready or handle is None or (end is not None and now >= end):
                    return ready
                continue   # woke before the deadline (a signal): wait the rest
            self.timer = None
            if ready or loop._ready or loop._stopping:   # pylint: disable=protected-access
                self.fired = handle
                ready.append((self.timer_key, selectors.EVENT_READ))
                return ready
            scheduled = loop._scheduled   # pylint: disable=protected-access
            mark = len(scheduled), scheduled[0] if scheduled else None
            try:
                handle.callback()
            except Exception as exc:  # noqa: BLE001 - as asyncio's Handle: reported, the loop goes on
                loop.call_exception_handler({"message": f"Exception in served timer callback {handle.callback!r}",
                                             "exception": exc})
                return []
            if (loop._ready or loop._stopping   # pylint: disable=protected-access
                    or (len(scheduled), scheduled[0] if scheduled else None) != mark
                    or (end is not None and self.clock() >= end)):
                return []


def served_call_at(loop: asyncio.AbstractEventLoop) -> Callable[[float, Callable[[], None]], object]:
    """call_at for the loop's one hot timer: its selector's, when it serves one; else the loop's own."""
    selector = getattr(loop, "_selector", None)
    if isinstance(selector, ServesTimer):
        if selector.loop is not loop:
            selector.attach(loop)
        return selector.call_at
    return loop.call_at
