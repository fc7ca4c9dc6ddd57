"""interface_up_down_delays, pure: the link state the instances see, given the kernel's and each interface's
delays. A change is shown once it has lasted its delay; one that goes back before is never shown (keepalived's
debouncing). An interface is shown as it is when first seen and when it has no delays."""

from __future__ import annotations

from typing import Mapping


class LinkDebounce:
    def __init__(self, delays_us: Mapping[str, tuple[int, int]]):
        self.delays_us = dict(delays_us)       # name -> (down delay, up delay)
        self.shown: dict[str, bool] = {}
        self.pending: dict[str, tuple[bool, int]] = {}   # name -> (the state waiting, when it is shown)

    def apply(self, links_up: Mapping[str, bool], now_us: int) -> dict[str, bool]:
        """The kernel's states now -> the states to show."""
        for name in [n for n in self.shown if n not in links_up]:
            self.shown.pop(name)
            self.pending.pop(name, None)
        for name, up in links_up.items():
            self._one(name, up, now_us)
        return dict(self.shown)

    def _one(self, name: str, up: bool, now_us: int) -> None:
        delays = self.delays_us.get(name)
        if delays is None or name not in self.shown or up == self.shown[name]:
            self.shown[name] = up
            self.pending.pop(name, None)
            return
        delay_us = delays[1] if up else delays[0]
        waiting = self.pending.get(name)
        if waiting is None or waiting[0] != up:
            waiting = self.pending[name] = (up, now_us + delay_us)
        if now_us >= waiting[1]:
            self.shown[name] = up
            del self.pending[name]

    def next_deadline_us(self) -> int | None:
        return min((at for _up, at in self.pending.values()), default=None)
