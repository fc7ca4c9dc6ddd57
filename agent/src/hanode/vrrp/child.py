"""Entry point of the VRRP process: `python -m hanode.vrrp.child --fd N` (started by the supervisor)."""

from __future__ import annotations

import asyncio
import logging
import selectors
import sys

from hanode.config.parse import parse_config
from hanode.daemon.child_main import ChildProcess, run_child
from hanode.lvs.state_file import load_state, save_state, state_path
from hanode.vrrp.runner import VrrpRunner

log = logging.getLogger("hanode.vrrp")


def drained_path(control_socket: str | None) -> str | None:
    """Instances an operator drained, kept next to the control socket (beside the real servers' lvs-drained):
    a restarted VRRP process (or agent) keeps them drained until they are enabled."""
    return state_path(control_socket, "vrrp-drained")


class VrrpChild(ChildProcess):
    name = "vrrp"

    def __init__(self, writer: asyncio.StreamWriter):
        super().__init__(writer)
        self.runner: VrrpRunner | None = None
        self.drained: set[str] = set()
        self.drained_file: str | None = None

    async def configure(self, message: dict) -> None:
        config, _problems = parse_config(message["config"], default_router_id=message.get("router_id", "hanode"))
        self.drained_file = drained_path(config.control_socket)
        if self.runner is None:
            self.drained = load_state(self.drained_file, "drained", str) & set(config.vrrp_instances)
            if self.drained:
                log.info("instances drained by an operator before this start stay drained: %s",
                         ", ".join(sorted(self.drained)))
            self.runner = VrrpRunner(config, self.emit)
            await self.runner.start(message.get("resume") or {}, drained=self.drained)
        else:
            await self.runner.apply(config)
            self._keep_drained(self.drained & set(config.vrrp_instances))
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
            targets = set(self.runner.engine.instances) if names is None else set(names)
            self._keep_drained(self.drained | targets if action == "drain" else self.drained - targets, always=True)
            self.runner.drain(names, action == "drain")
            return {"ok": True}
        return {"ok": False, "error": f"unknown control action {action!r}"}

    def _keep_drained(self, drained: set[str], always: bool = False) -> None:
        if always or drained != self.drained:
            self.drained = drained
            save_state(self.drained_file, "drained", sorted(drained))


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
