"""Entry point of the VRRP process: `python -m hanode.vrrp.child --fd N` (started by the supervisor)."""

from __future__ import annotations

import asyncio
import selectors
import sys

from hanode.config.parse import parse_config
from hanode.daemon.child_main import ChildProcess, run_child
from hanode.vrrp.runner import VrrpRunner


class VrrpChild(ChildProcess):
    name = "vrrp"

    def __init__(self, writer: asyncio.StreamWriter):
        super().__init__(writer)
        self.runner: VrrpRunner | None = None

    async def configure(self, message: dict) -> None:
        config, _problems = parse_config(message["config"], default_router_id=message.get("router_id", "hanode"))
        if self.runner is None:
            self.runner = VrrpRunner(config, self.emit)
            await self.runner.start(message.get("resume") or {})
        else:
            await self.runner.apply(config)
        self.applied(message)

    async def status(self) -> dict:
        return self.runner.status() if self.runner else {}

    async def control(self, message: dict) -> dict:
        action = message.get("action")
        names = message.get("instances")
        if self.runner is None or self.runner.engine is None:
            return {"ok": False, "error": "VRRP is not running yet"}
        unknown = [n for n in names or () if n not in self.runner.engine.instances]
        if unknown:
            return {"ok": False, "error": f"no instance named {', '.join(unknown)}"}
        if action in ("drain", "enable"):
            self.runner.drain(names, action == "drain")
            return {"ok": True}
        return {"ok": False, "error": f"unknown control action {action!r}"}


# The kernel lets a select() timeout expire late by up to 0.1% of its length (select_estimate_accuracy):
# 3.6 ms on a VRRPv2 Master_Down_Interval, measured 3.2-3.8 ms on an idle host, and 1 ms on each 1 s advert.
# keepalived's timerfd gets the default 50 us. A long wait is therefore cut FINAL_WAIT_S short: the loop wakes,
# finds nothing due and waits out the rest, which may then be late by 0.1% of FINAL_WAIT_S (20 us).
FINAL_WAIT_S = 0.02


class PreciseSelector(selectors.SelectSelector):
    def select(self, timeout: float | None = None):
        if timeout is not None and timeout > FINAL_WAIT_S:
            timeout = max(timeout - FINAL_WAIT_S, FINAL_WAIT_S)
        return super().select(timeout)


def select_loop() -> asyncio.AbstractEventLoop:
    """select() takes its timeout in microseconds; epoll (asyncio's default) rounds up to whole milliseconds,
    which made every advert and down timer fire up to 1 ms late (measured: see docs/benchmarks.md). This
    process holds a handful of descriptors, far below select()'s limit of 1024. PreciseSelector: see above."""
    return asyncio.SelectorEventLoop(PreciseSelector())


if __name__ == "__main__":
    sys.exit(run_child(VrrpChild, loop_factory=select_loop))
