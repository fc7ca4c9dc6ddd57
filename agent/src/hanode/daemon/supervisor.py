"""`hanode run`: the parent process. Loads and validates config, serves the control socket, supervises the
VRRP process (restart with keepalived's back-off: at once after 60 s of uptime, else 1, 2, 4 ... 60 s),
reloads on SIGHUP, and stops everything cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import time
from typing import Any, AsyncIterator

from hanode import __version__
from hanode.config.load import LoadedConfig, load_config
from hanode.config.problems import ConfigError
from hanode.control.server import ControlServer, SocketInUse
from hanode.daemon.child import Child

log = logging.getLogger("hanode.supervisor")

SCHEMA_VERSION = 1
APPLY_TIMEOUT_S = 30.0
HANG_TIMEOUT_S = 5.0
LONG_RUN_S = 60.0
EVENT_HISTORY = 1000


def restart_delay_s(ran_s: float, failures: int) -> float:
    """keepalived's respawn policy: immediately after a long run, else 1, 2, 4 ... capped at 60 s."""
    if ran_s > LONG_RUN_S:
        return 0.0
    return float(min(60, 2 ** max(0, failures - 1)))


class Supervisor:
    def __init__(self, loaded: LoadedConfig, log_level: str = "info"):
        self.loaded = loaded
        self.path = loaded.path
        self.log_level = log_level
        self.generation = 1
        self.applied: dict[str, Any] = {}
        self.last_reload: dict[str, Any] | None = None
        self.started_at = time.time()
        self.stop_event = asyncio.Event()
        self.reload_lock = asyncio.Lock()
        self.apply_waiters: dict[int, asyncio.Future] = {}
        self.vrrp = Child("vrrp", "hanode.vrrp.child", self._on_message, log_level)
        self.instance_states: dict[str, str] = {}
        self.cached_status: dict[str, Any] = {}
        self.events: collections.deque = collections.deque(maxlen=EVENT_HISTORY)
        self.event_seq = 0
        self.subscribers: list[asyncio.Queue] = []
        self.failures = 0
        self.control = ControlServer(loaded.config.control_socket, self.handle)

    # main ---------------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        try:
            await self.control.start()
        except (SocketInUse, OSError) as exc:
            log.error("cannot serve the control socket: %s", exc)
            return 1
        log.info("hanode %s starting: config %s (%s), control socket %s", __version__, self.path,
                 self.loaded.digest[:12], self.loaded.config.control_socket)
        try:
            await self._start_vrrp(resume={})
            tasks = [loop.create_task(self._supervise()), loop.create_task(self._watchdog())]
            await self.stop_event.wait()
            log.info("stopping")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.vrrp.stop()
        finally:
            await self.control.close()
        log.info("stopped")
        return 0

    async def _start_vrrp(self, resume: dict[str, str]) -> None:
        await self.vrrp.start()
        await self._apply(self.loaded, resume)

    async def _apply(self, loaded: LoadedConfig, resume: dict[str, str] | None = None) -> None:
        """Sends the config to the VRRP process and waits until it reports it applied."""
        generation = self.generation
        future = asyncio.get_running_loop().create_future()
        self.apply_waiters[generation] = future
        self.vrrp.send({"type": "config", "config": loaded.raw, "digest": loaded.digest, "generation": generation,
                        "router_id": loaded.config.router_id, "resume": resume or {}})
        try:
            await asyncio.wait_for(future, APPLY_TIMEOUT_S)
        finally:
            self.apply_waiters.pop(generation, None)

    async def _supervise(self) -> None:
        while True:
            code = await self.vrrp.wait()
            if self.stop_event.is_set() or self.vrrp.stopping:
                return
            ran_s = time.monotonic() - self.vrrp.started_at
            self.failures = 0 if ran_s > LONG_RUN_S else self.failures + 1
            delay = restart_delay_s(ran_s, self.failures)
            self.vrrp.restarts += 1
            log.error("vrrp process exited with status %s after %.1f s; restarting in %.0f s", code, ran_s, delay)
            self.publish({"event": "process_restart", "process": "vrrp", "exit_status": code, "ran_s": round(ran_s, 3),
                          "delay_s": delay, "resume": dict(self.instance_states)})
            await self.vrrp.close()
            await asyncio.sleep(delay)
            try:
                await self._start_vrrp(resume=dict(self.instance_states))
            except (asyncio.TimeoutError, ConnectionError, OSError) as exc:
                log.error("vrrp process did not come back: %s", exc)

    async def _watchdog(self) -> None:
        """A child that stops sending heartbeats is hung: kill it, _supervise restarts it."""
        while True:
            await asyncio.sleep(1.0)
            silent_s = time.monotonic() - self.vrrp.last_heartbeat
            if self.vrrp.running and silent_s > HANG_TIMEOUT_S:
                log.error("vrrp process sent no heartbeat for %.1f s: killing it", silent_s)
                self.publish({"event": "process_hung", "process": "vrrp", "silent_s": round(silent_s, 3)})
                self.vrrp.proc.kill()
                self.vrrp.last_heartbeat = time.monotonic()

    # messages from the children -----------------------------------------------------------------

    def _on_message(self, child: Child, message: dict) -> None:
        kind = message.get("type")
        if kind == "applied":
            self.applied = {"digest": message.get("digest"), "generation": message.get("generation"), "at": time.time()}
            future = self.apply_waiters.get(message.get("generation"))
            if future and not future.done():
                future.set_result(message)
        elif kind == "event":
            message.pop("type", None)
            if message.get("event") == "transition":
                self.instance_states[message["instance"]] = message["to"]
            self.publish(message)

    def publish(self, event: dict) -> None:
        self.event_seq += 1
        event = {"seq": self.event_seq, "ts": event.pop("ts", time.time()), **event}
        self.events.append(event)
        for queue in self.subscribers:
            queue.put_nowait(event)

    # reload -------------------------------------------------------------------------------------

    async def reload(self) -> dict:
        async with self.reload_lock:
            try:
                loaded = load_config(self.path)
            except ConfigError as exc:
                errors = [str(p) for p in exc.problems]
                self.last_reload = {"ok": False, "at": time.time(), "errors": errors}
                log.error("reload refused, keeping the running config: %s", "; ".join(errors))
                self.publish({"event": "reload", "ok": False, "errors": errors})
                return {"ok": False, "errors": errors, "digest": self.loaded.digest}
            changed = loaded.digest != self.loaded.digest
            if loaded.config.control_socket != self.loaded.config.control_socket:
                log.warning("control_socket changed: takes effect at the next start, not on reload")
            if changed:
                self.generation += 1
                self.loaded = loaded
                await self._apply(loaded)
            self.last_reload = {"ok": True, "at": time.time(), "changed": changed, "digest": loaded.digest}
            log.info("reload: %s (%s)", "applied" if changed else "no change", loaded.digest[:12])
            self.publish({"event": "reload", "ok": True, "changed": changed, "digest": loaded.digest})
            return {"ok": True, "changed": changed, "digest": loaded.digest, "generation": self.generation}

    # control requests ---------------------------------------------------------------------------

    def handle(self, request: dict):
        cmd = request["cmd"]
        if cmd == "events":
            return self._events(request)
        handlers = {"status": self.status_reply, "reload": self.reload, "ping": self._ping,
                    "drain": self._control, "enable": self._control}
        if cmd not in handlers:
            return _error(f"unknown command {cmd!r} (known: {', '.join(sorted(handlers) + ['events'])})")
        return handlers[cmd](request) if cmd in ("drain", "enable") else handlers[cmd]()

    async def _ping(self) -> dict:
        return {"ok": True, "pid": os.getpid(), "version": __version__}

    async def _control(self, request: dict) -> dict:
        try:
            reply = await self.vrrp.request({"type": "control", "action": request["cmd"],
                                             "instances": request.get("instances")}, 5.0)
        except (ConnectionError, asyncio.TimeoutError) as exc:
            return {"ok": False, "error": str(exc) or "the VRRP process did not answer"}
        reply.pop("type", None)
        reply.pop("id", None)
        if reply.get("ok"):
            self.publish({"event": request["cmd"], "instances": request.get("instances")})
        return reply

    async def status_reply(self) -> dict:
        return {"ok": True, "status": await self.status()}

    async def status(self) -> dict:
        try:
            reply = await self.vrrp.request({"type": "status"}, 2.0)
            self.cached_status = reply.get("status", {})
            stale = False
        except (ConnectionError, asyncio.TimeoutError):
            stale = True
        return {"schema_version": SCHEMA_VERSION, "agent": self._agent_info(stale), **self.cached_status}

    def _agent_info(self, stale: bool) -> dict:
        now = time.monotonic()
        return {
            "router_id": self.loaded.config.router_id,
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 3),
            "stale": stale,
            "config": {"path": self.path, "digest": self.loaded.digest, "generation": self.generation,
                       "applied_digest": self.applied.get("digest"), "applied_generation": self.applied.get("generation"),
                       "last_reload": self.last_reload},
            "processes": {"vrrp": {"pid": self.vrrp.pid, "running": self.vrrp.running, "restarts": self.vrrp.restarts,
                                   "uptime_s": round(now - self.vrrp.started_at, 3) if self.vrrp.running else None,
                                   "heartbeat_age_s": round(now - self.vrrp.last_heartbeat, 3)}},
        }

    async def _events(self, request: dict) -> AsyncIterator[dict]:
        since = int(request.get("since") or 0)
        queue: asyncio.Queue = asyncio.Queue()
        self.subscribers.append(queue)
        try:
            for event in list(self.events):
                if event["seq"] > since:
                    yield event
            if not request.get("follow"):
                return
            while True:
                yield await queue.get()
        finally:
            self.subscribers.remove(queue)


async def _error(message: str) -> dict:
    return {"ok": False, "error": message}


def run_agent(config_path: str, log_level: str = "info") -> int:
    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return 1
    for problem in loaded.problems.warnings:
        log.warning("%s", problem)
    return asyncio.run(Supervisor(loaded, log_level).run())
