"""Entry point of the checker process: `python -m hanode.health.child --fd N` (started by the supervisor when
the config has virtual servers). Same JSON-lines protocol as the VRRP process; a crash here never touches
VRRP: the supervisor restarts this process, which re-reads the kernel table and re-reconciles."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.daemon.ipc import encode, open_fd, read_message
from hanode.daemon.logs import setup_logging
from hanode.health.runner import CheckerRunner

log = logging.getLogger("hanode.health")
HEARTBEAT_S = 0.25  # the supervisor wants a beat within 1 s (systemd watchdog)


class CheckerChild:
    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.runner: CheckerRunner | None = None
        self.stopping = asyncio.Event()
        self.requests: set[asyncio.Task] = set()   # status/control requests in flight (strong references)

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
            await self.configure(message)
        elif kind == "status":
            try:
                status = await self.runner.status() if self.runner else {"virtual_servers": []}
            except Exception:  # noqa: BLE001 - answer anyway: the supervisor shows the last good status
                log.exception("status failed")
                status = {}
            self.send({"type": "reply", "id": message.get("id"), "status": status})
        elif kind == "control":
            try:
                reply = self.runner.control(message) if self.runner else {"ok": False,
                                                                          "error": "the checker is starting"}
            except Exception as exc:  # noqa: BLE001 - the operator gets the error, the checker goes on
                log.exception("control %s failed", message.get("action"))
                reply = {"ok": False, "error": f"internal error: {exc!r}"}
            self.send({"type": "reply", "id": message.get("id"), **reply})
        elif kind == "stop":
            self.stopping.set()

    async def configure(self, message: dict) -> None:
        try:
            # a config with thousands of real servers takes a while to parse: off the loop, which keeps beating
            config, _ = await asyncio.to_thread(parse_config, message["config"],
                                                default_router_id=message.get("router_id", "hanode"))
        except ConfigError as exc:  # the parent validated it: only a version skew gets here
            log.error("config refused by the checker: %s", "; ".join(str(p) for p in exc.problems))
            return
        if self.runner is None:
            self.runner = CheckerRunner(self.emit)
            await self.runner.start(config)
        else:
            await self.runner.apply(config)
        self.send({"type": "applied", "digest": message.get("digest"), "generation": message.get("generation")})


async def amain(fd: int) -> int:
    reader, writer = await open_fd(fd)
    child = CheckerChild(writer)
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
            # a status request must not wait behind a reload: handle each message in its own task,
            # except config and stop, which keep their order
            if message.get("type") in ("status", "control"):
                task = loop.create_task(child.handle(message))
                child.requests.add(task)
                task.add_done_callback(child.requests.discard)
            else:
                await child.handle(message)

    pumping = loop.create_task(pump())
    stop_wait = loop.create_task(child.stopping.wait())
    await asyncio.wait({pumping, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if pumping.done() and not pumping.cancelled() and pumping.exception():
        log.error("checker process failed: %r", pumping.exception())
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
    parser = argparse.ArgumentParser(prog="hanode-checker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging(args.log_level, process="checker")
    return asyncio.run(amain(args.fd))


if __name__ == "__main__":
    sys.exit(main())
