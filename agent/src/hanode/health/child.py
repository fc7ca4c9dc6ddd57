"""Entry point of the checker process: `python -m hanode.health.child --fd N` (started by the supervisor when
the config has virtual servers). Same JSON-lines protocol as the VRRP process; a crash here never touches
VRRP: the supervisor restarts this process, which re-reads the kernel table and re-reconciles."""

from __future__ import annotations

import asyncio
import sys

from hanode.daemon.fork import inherited_config
from hanode.config.problems import ConfigError
from hanode.daemon.child_main import ChildProcess, run_child
from hanode.health.connsync import ConnSync
from hanode.health.runner import CheckerRunner


class CheckerChild(ChildProcess):
    name = "checker"

    def __init__(self, writer: asyncio.StreamWriter):
        super().__init__(writer)
        self.runner: CheckerRunner | None = None
        self.connsync = ConnSync(self.emit)

    async def status(self) -> dict:
        status = await self.runner.status() if self.runner else {"virtual_servers": []}
        sync = self.connsync.status()
        if sync is not None:
            status["connection_sync"] = sync
        return status

    def vrrp_states(self, states: dict[str, str]) -> None:
        self.connsync.set_states(states)

    async def stop_runner(self) -> None:
        await super().stop_runner()
        await self.connsync.stop()

    async def control(self, message: dict) -> dict:
        return self.runner.control(message) if self.runner else {"ok": False, "error": "the checker is starting"}

    async def configure(self, message: dict) -> None:
        config = inherited_config(message.get("digest"))   # forked from the supervisor: its copy (shared pages)
        try:
            # a config with thousands of real servers takes a while to parse: off the loop, which keeps beating
            if config is None:
                if message.get("config") is None:
                    raise RuntimeError(f"config {message.get('digest')} was neither sent nor inherited")
                # the parser only here: a forked checker (the usual case) never parses (~0.1 MB of imports)
                from hanode.config.parse import parse_config  # pylint: disable=import-outside-toplevel
                config, _problems = await asyncio.to_thread(parse_config, message["config"],
                                                            default_router_id=message.get("router_id", "hanode"))
        except ConfigError as exc:  # the parent validated it: only a version skew gets here
            raise RuntimeError("config refused by the checker: " + "; ".join(str(p) for p in exc.problems)) from None
        if self.runner is None:
            self.runner = CheckerRunner(self.emit)
            await self.runner.start(config)
        else:
            await self.runner.apply(config)
        await self.connsync.apply(config)
        self.applied(message)


if __name__ == "__main__":
    sys.exit(run_child(CheckerChild))
