"""The interfaces as the VRRP engine sees them: the kernel's, with interface_up_down_delays applied
(vrrp/debounce.py). A VMAC inherits the delays of the interface it sits on, as in keepalived. When a delayed
change comes due, `on_due(interfaces)` is called with the new view."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Callable

from hanode.config.model import AgentConfig
from hanode.vrrp.debounce import LinkDebounce
from hanode.vrrp.engine import InterfaceInfo


def delays_of(config: AgentConfig) -> dict[str, tuple[int, int]]:
    delays = dict(config.sections.get("interface_up_down_delays") or {})
    for inst in config.vrrp_instances.values():
        for vmac in inst.vmacs:
            if vmac.base in delays and vmac.ifname not in delays:
                delays[vmac.ifname] = delays[vmac.base]
    return delays


class LinkView:
    def __init__(self, loop: asyncio.AbstractEventLoop, clock_us: Callable[[], int],
                 on_due: Callable[[dict[str, InterfaceInfo]], None]):
        self.loop, self.clock_us, self.on_due = loop, clock_us, on_due
        self.debounce = LinkDebounce({})
        self.raw: dict[str, InterfaceInfo] = {}
        self.timer: asyncio.TimerHandle | None = None

    def configure(self, config: AgentConfig) -> None:
        delays = delays_of(config)
        if delays != self.debounce.delays_us:
            shown = self.debounce.shown
            self.debounce = LinkDebounce(delays)
            self.debounce.shown.update(shown)

    def show(self, interfaces: dict[str, InterfaceInfo]) -> dict[str, InterfaceInfo]:
        self.raw = interfaces
        shown = self.debounce.apply({name: info.up for name, info in interfaces.items()}, self.clock_us())
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        at_us = self.debounce.next_deadline_us()
        if at_us is not None:
            self.timer = self.loop.call_later(max(0, at_us - self.clock_us()) / 1e6, self._due)
        return {name: info if shown[name] == info.up else replace(info, up=shown[name])
                for name, info in interfaces.items()}

    def _due(self) -> None:
        self.timer = None
        self.on_due(self.show(self.raw))

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
