"""Entry point of the VRRP process: `python -m hanode.vrrp.child --fd N` (started by the supervisor)."""

from __future__ import annotations

from hanode.daemon.imports import asyncio_without_tls

asyncio_without_tls()

import asyncio  # noqa: E402 - after asyncio_without_tls()
import logging  # noqa: E402
import selectors  # noqa: E402
import sys  # noqa: E402

from hanode.daemon.child_main import ChildProcess, run_child  # noqa: E402
from hanode.daemon.fork import inherited_config  # noqa: E402
from hanode.daemon.pwait import precise_selector  # noqa: E402
from hanode.lvs.state_file import load_state, save_state, state_path  # noqa: E402
from hanode.vrrp.runner import VrrpRunner  # noqa: E402

log = logging.getLogger("hanode.vrrp")


def drained_path(control_socket: str | None) -> str | None:
    """Instances an operator drained, kept next to the control socket (beside the real servers' lvs-drained):
    a restarted VRRP process (or agent) keeps them drained until they are enabled."""
    return state_path(control_socket, "vrrp-drained")


def parse_sent(message: dict):
    """The config a message carries, parsed here (a reload's, or any config of a process that was not forked from
    the supervisor). The parser's modules are imported then: a VRRP process that runs the config it inherited
    never needs them."""
    # pylint: disable=import-outside-toplevel
    from hanode.config.host import HostCaps
    from hanode.config.parse import parse_config
    from hanode.lvs import caps

    config, _problems = parse_config(message["config"], default_router_id=message.get("router_id", "hanode"),
                                     host=HostCaps.from_facts(caps.gather()))
    return config


class VrrpChild(ChildProcess):
    name = "vrrp"

    def __init__(self, writer: asyncio.StreamWriter):
        super().__init__(writer)
        self.runner: VrrpRunner | None = None
        self.drained: set[str] = set()
        self.drained_file: str | None = None

    async def configure(self, message: dict) -> None:
        # this host's capabilities (VMAC drivers, iproute2's names for routes and rules), as the parent's check had
        config = inherited_config(message.get("digest"))   # forked from the supervisor: its copy (shared pages)
        if config is None:
            if message.get("config") is None:
                raise RuntimeError(f"config {message.get('digest')} was neither sent nor inherited")
            config = parse_sent(message)
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
            kept = self._keep_drained(self.drained | targets if action == "drain" else self.drained - targets,
                                      always=True)
            self.runner.drain(names, action == "drain")
            if not kept:
                return {"ok": True, "warning": f"done, but not kept for a restart: cannot write {self.drained_file}"}
            return {"ok": True}
        return {"ok": False, "error": f"unknown control action {action!r}"}

    def _keep_drained(self, drained: set[str], always: bool = False) -> bool:
        """False when the file could not be written (the drain holds in memory; status lists the file)."""
        if always or drained != self.drained:
            self.drained = drained
            return save_state(self.drained_file, "drained", sorted(drained))
        return True


def select_selector() -> selectors.BaseSelector:
    """A timeout in microseconds: epoll (asyncio's default) rounds up to whole milliseconds, which made every
    advert and down timer fire up to 1 ms late (measured: see docs/benchmarks.md). epoll_pwait2 where there is
    one, else select() (this process holds a handful of descriptors, far below its limit of 1024); see
    daemon/pwait.py. The kernel's slack on a long timeout is handled where precision matters, for takeovers
    (vrrp/runner.py, FINAL_WAIT_US)."""
    return precise_selector()


if __name__ == "__main__":
    sys.exit(run_child(VrrpChild, selector=select_selector))
