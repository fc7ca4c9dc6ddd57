"""What every supervised process shares: the JSON-lines protocol with the supervisor, heartbeats, and a
clean stop. A child class answers config, status and control; `run_child` is its `main()`."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import selectors
import signal
import time
from typing import Callable

from hanode.daemon.alarm import Alarm
from hanode.daemon.beat import BeatPage
from hanode.daemon.beating import beating_selector
from hanode.daemon.imports import release_free_heap, release_free_memory
from hanode.daemon.ipc import encode, open_fd, read_message
from hanode.daemon.logs import setup_logging
from hanode.daemon.parts import LazyEntries, lazy_values
from hanode.lvs.state_file import unsaved

CONCURRENT = ("status", "control")  # answered while a reload is still being applied
PART_YIELD_EVERY = 256   # a status of thousands of entries lets the process's own work run meanwhile

log = logging.getLogger("hanode.child")


class ChildProcess:
    """One supervised process. Subclasses implement configure() (which creates or updates `runner`),
    status() and control(); on stop, the runner (anything with an async stop()) is stopped."""

    name = "child"

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.runner = None
        self.stopping = asyncio.Event()
        self.requests: set[asyncio.Task] = set()  # status/control requests in flight (strong references)

    def send(self, message: dict) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))

    def emit(self, event: dict) -> None:
        message = {"type": "event", "ts": time.time()}
        message.update((key, value) for key, value in event.items() if key not in message)
        self.send(message)

    def applied(self, message: dict) -> None:
        self.send({"type": "applied", "digest": message.get("digest"), "generation": message.get("generation")})

    def heartbeat(self) -> None:
        """The first beat, as a message: imports done, loop running. The others are the loop's own (its selector
        writes them into the supervisor's beat page: daemon/beating.py)."""
        self.send({"type": "heartbeat", "ts": time.time()})

    async def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "config":
            try:
                await self.configure(message)
                release_free_memory()
            except Exception as exc:  # noqa: BLE001 - the supervisor rolls every process back
                log.exception("%s: applying config generation %s failed", self.name, message.get("generation"))
                self.send({"type": "applied", "digest": message.get("digest"), "generation": message.get("generation"),
                           "error": f"{type(exc).__name__}: {exc}"})
                if self.runner is None:
                    raise  # nothing runs: exit, the supervisor restarts this process
        elif kind == "status":
            await self.answer_status(message.get("id"))
        elif kind == "control":
            try:
                reply = await self.control(message)
            except Exception as exc:  # noqa: BLE001 - the operator gets the error, the process goes on
                log.exception("%s: control %s failed", self.name, message.get("action"))
                reply = {"ok": False, "error": f"internal error: {exc!r}"}
            answer = {"type": "reply", "id": message.get("id")}
            answer.update((key, value) for key, value in reply.items() if key not in answer)
            self.send(answer)
        elif kind == "vrrp_states":
            self.vrrp_states(message.get("states") or {})
        elif kind == "stop":
            self.stopping.set()

    async def answer_status(self, request_id: int | None) -> None:
        """The status, its LazyEntries and LazyItems (at any depth) sent one entry at a time (a `part` message
        each, daemon/parts.py), then the reply with the rest (those places empty there, their paths in
        `parts`). Checks, adverts and heartbeats run between every PART_YIELD_EVERY parts."""
        lazy: list[str] = []
        try:
            status = await self.status()
            sent = 0
            for path, holder, key, value in lazy_values(status):
                named = isinstance(value, LazyEntries)
                for name, entry in value.items() if named else zip(itertools.repeat(None), value):
                    part = {"type": "part", "id": request_id, "key": path, "value": entry}
                    if named:
                        part["name"] = name
                    self.send(part)
                    sent += 1
                    if sent % PART_YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                holder[key] = {} if named else []
                lazy.append(path)
        except Exception:  # noqa: BLE001 - answer anyway: the supervisor shows the last good status
            log.exception("%s: status failed", self.name)
            status, lazy = {}, []
        status["state_files"] = unsaved()   # files it could not write (the supervisor lists them in agent)
        self.send({"type": "reply", "id": request_id, "status": status, "parts": lazy})
        release_free_heap()

    async def configure(self, message: dict) -> None:
        raise NotImplementedError

    def vrrp_states(self, states: dict[str, str]) -> None:
        """Every VRRP instance's state, relayed by the supervisor (only the checker follows them)."""

    async def status(self) -> dict:
        raise NotImplementedError

    async def control(self, message: dict) -> dict:
        raise NotImplementedError

    async def stop_runner(self) -> None:
        if self.runner is not None:
            await self.runner.stop()


async def serve(child_class: type[ChildProcess], fd: int) -> int:
    """Until the supervisor says stop, goes away, or SIGTERM: then stops the runner and says so."""
    reader, writer = await open_fd(fd)
    child = child_class(writer)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, child.stopping.set)
    child.heartbeat()

    async def pump() -> None:
        while True:
            message = await read_message(reader)
            if message is None:
                log.warning("%s: supervisor went away: stopping", child.name)
                child.stopping.set()
                return
            if message.get("type") in CONCURRENT:
                task = loop.create_task(child.handle(message))
                child.requests.add(task)
                task.add_done_callback(child.requests.discard)
            else:  # config and stop keep their order
                await child.handle(message)

    pumping = loop.create_task(pump())
    stop_wait = loop.create_task(child.stopping.wait())
    await asyncio.wait({pumping, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if pumping.done() and not pumping.cancelled() and pumping.exception():
        log.error("%s process failed: %r", child.name, pumping.exception())
    pumping.cancel()
    await child.stop_runner()
    child.send({"type": "stopped"})
    try:
        await writer.drain()
        writer.close()
    except (ConnectionError, RuntimeError):
        pass
    return 0


def run_child(child_class: type[ChildProcess],
              selector: Callable[[], selectors.BaseSelector] = selectors.DefaultSelector) -> int:
    """main() of a child process: `python -m MODULE --fd N --beat-fd B --alarm-fd A --log-level L`. Its event
    loop runs on `selector`, wrapped so that it beats (daemon/beating.py)."""
    parser = argparse.ArgumentParser(prog=f"hanode-{child_class.name}")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--beat-fd", type=int, required=True, help="the supervisor's beat page (a memfd)")
    parser.add_argument("--alarm-fd", type=int, required=True, help="the supervisor's dead man's switch (a timerfd)")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when we stop
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging(args.log_level, process=child_class.name)
    beating = beating_selector(selector(), BeatPage(args.beat_fd), Alarm(args.alarm_fd))
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(beating)) as runner:
        return runner.run(serve(child_class, args.fd))
