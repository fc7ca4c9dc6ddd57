"""Entry point of the VRRP process: `python -m hanode.vrrp.child --fd N` (started by the supervisor)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import selectors
import signal
import sys
import time

from hanode.config.parse import parse_config
from hanode.daemon.ipc import encode, open_fd, read_message
from hanode.daemon.logs import setup_logging
from hanode.vrrp.runner import VrrpRunner

log = logging.getLogger("hanode.vrrp")
HEARTBEAT_S = 0.25


class VrrpChild:
    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.runner: VrrpRunner | None = None
        self.stopping = asyncio.Event()

    def send(self, message: dict) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))

    def emit(self, event: dict) -> None:
        self.send({"type": "event", "ts": time.time(), **event})

    async def heartbeat(self) -> None:
        while True:
            self.send({"type": "heartbeat", "ts": time.time()})
            await asyncio.sleep(HEARTBEAT_S)

    async def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "config":
            config, _ = parse_config(message["config"], default_router_id=message.get("router_id", "hanode"))
            if self.runner is None:
                self.runner = VrrpRunner(config, self.emit)
                await self.runner.start(message.get("resume") or {})
            else:
                await self.runner.apply(config)
            self.send({"type": "applied", "digest": message.get("digest"), "generation": message.get("generation")})
        elif kind == "status":
            self.send({"type": "reply", "id": message.get("id"), "status": self.runner.status() if self.runner else {}})
        elif kind == "control":
            self.send({"type": "reply", "id": message.get("id"), **self.control(message)})
        elif kind == "stop":
            self.stopping.set()

    def control(self, message: dict) -> dict:
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


async def amain(fd: int) -> int:
    reader, writer = await open_fd(fd)
    child = VrrpChild(writer)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, child.stopping.set)
    beat = loop.create_task(child.heartbeat())

    async def pump() -> None:
        while True:
            message = await read_message(reader)
            if message is None:
                log.warning("supervisor went away: stopping")
                child.stopping.set()
                return
            await child.handle(message)

    pumping = loop.create_task(pump())
    stop_wait = loop.create_task(child.stopping.wait())
    await asyncio.wait({pumping, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if pumping.done() and pumping.exception():
        log.error("VRRP process failed: %r", pumping.exception())
    pumping.cancel()
    if child.runner is not None:
        await child.runner.stop()
    child.send({"type": "stopped"})
    beat.cancel()
    try:
        await writer.drain()
        writer.close()
    except (ConnectionError, RuntimeError):
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="hanode-vrrp")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging(args.log_level, process="vrrp")
    # select() takes its timeout in microseconds; epoll (asyncio's default) rounds up to whole milliseconds,
    # which made every advert and down timer fire up to 1 ms late (measured: see docs/benchmarks.md). This
    # process holds a handful of descriptors, far below select()'s limit of 1024.
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())) as runner:
        return runner.run(amain(args.fd))


if __name__ == "__main__":
    sys.exit(main())
