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
from hanode.control.protocol import CHILD_COMMANDS, Request, child_message, control_event
from hanode.control.server import ControlServer, SocketInUse, UnsafeSocketDirectory
from hanode.daemon.child import Child
from hanode.daemon.logs import fields
from hanode.ops.metrics import MetricsServer
from hanode.ops.sd_notify import SystemdNotifier
from hanode.ops.sinks import EventSinks

log = logging.getLogger("hanode.supervisor")

SCHEMA_VERSION = 1
APPLY_TIMEOUT_S = 30.0
LONG_RUN_S = 60.0
STARTUP_GRACE_S = 30.0  # a child's first heartbeat may take this long (imports on a slow or loaded host)
SHUTDOWN_MAIL_FLUSH_S = 5.0  # alert mail queued at shutdown (the STOP transitions) gets this long to go out
STALE_HEARTBEAT_S = 1.0  # a child silent this long (4 missed heartbeats) holds back systemd's WATCHDOG=1
EVENT_HISTORY = 1000

# The supervised processes. The checker (health checks + load-balancer sync) runs only when the config
# has virtual servers; VRRP always runs, so that a slow check can never delay an advert.
CHILD_MODULES = {"vrrp": "hanode.vrrp.child", "checker": "hanode.health.child"}

SUBSCRIBER_BACKLOG = 10_000  # events an `events --follow` client may fall behind before it is cut off


def child_wanted(name: str, loaded: LoadedConfig) -> bool:
    if name == "vrrp":
        return True
    lvs = loaded.config.sections.get("lvs")
    return bool(getattr(lvs, "virtual_servers", None))


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
        self.apply_waiters: dict[tuple[str, int], asyncio.Future] = {}
        self.children = {name: Child(name, module, self._on_message, log_level) for name, module in CHILD_MODULES.items()}
        self.failures: dict[str, int] = dict.fromkeys(self.children, 0)
        self.cached_status: dict[str, dict] = {name: {} for name in self.children}
        self.instance_states: dict[str, str] = {}
        self.events: collections.deque = collections.deque(maxlen=EVENT_HISTORY)
        self.event_seq = 0
        self.subscribers: list[_Subscriber] = []
        self.transitions: collections.Counter = collections.Counter()
        self.control = ControlServer(loaded.config.control_socket, self.handle)
        self.sinks = EventSinks()
        self.systemd = SystemdNotifier()
        self.metrics: MetricsServer | None = None

    # main ---------------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        try:
            await self.control.start()
        except (SocketInUse, UnsafeSocketDirectory, OSError) as exc:
            log.error("cannot serve the control socket: %s", exc)
            return 1
        log.info("hanode %s starting: config %s (%s), control socket %s", __version__, self.path,
                 self.loaded.digest[:12], self.loaded.config.control_socket)
        self.tasks: dict[str, asyncio.Task] = {}
        try:
            await self._configure_outputs(self.loaded)
            for name in self.children:
                if child_wanted(name, self.loaded):
                    await self._start_child(name, resume={})
            self.systemd.ready(self._summary())
            helpers = [loop.create_task(self._watchdog())]
            if self.systemd.watchdog_interval_s:
                helpers.append(loop.create_task(self._systemd_watchdog()))
            await self.stop_event.wait()
            log.info("stopping")
            self.systemd.stopping()
            for task in helpers + list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(*helpers, *self.tasks.values(), return_exceptions=True)
            # VRRP first: the VIPs leave before the checker removes the load-balancer rules, so a client
            # never meets this node holding the VIP without them (connection refused)
            checker_down = child_wanted("checker", self.loaded) and not self.children["checker"].running
            for name in self.children:
                await self.children[name].stop()
            if checker_down:
                await release_rules_without_checker(self.loaded)
        finally:
            await self.control.close()
            await self.sinks.close(flush_s=SHUTDOWN_MAIL_FLUSH_S)
            if self.metrics:
                await self.metrics.close()
        log.info("stopped")
        return 0

    async def _configure_outputs(self, loaded: LoadedConfig) -> None:
        """Event sinks (FIFO, mail) and the metrics listener follow the config."""
        await self.sinks.configure(loaded.config)
        listen = loaded.config.sections["ops"].metrics_listen
        current = (self.metrics.host, self.metrics.port) if self.metrics else None
        if listen != current:
            if self.metrics:
                await self.metrics.close()
                self.metrics = None
            if listen:
                server = MetricsServer(listen[0], listen[1], self.status)
                try:
                    await server.start()
                    self.metrics = server
                except OSError as exc:
                    log.error("cannot listen for metrics on %s:%d: %s", listen[0], listen[1], exc)

    def _summary(self) -> str:
        """systemd's one-line STATUS=."""
        states = ", ".join(f"{name} {state}" for name, state in sorted(self.instance_states.items()))
        return f"{states or 'no VRRP instances'}; config {self.loaded.digest[:12]}"

    async def _systemd_watchdog(self) -> None:
        """WATCHDOG=1 only while every running child beats. A frozen child holds the pings back until it beats
        again or our own watchdog has replaced it; one that cannot be killed leaves the agent to systemd."""
        while True:
            await asyncio.sleep(self.systemd.watchdog_interval_s)
            timeout_s = self.loaded.config.sections["ops"].watchdog_timeout_ms / 1000
            fresh_s = min(STALE_HEARTBEAT_S, timeout_s)
            now = time.monotonic()
            if all(now - c.last_heartbeat < fresh_s for c in self.children.values() if c.running):
                self.systemd.watchdog()

    async def _start_child(self, name: str, resume: dict[str, str]) -> None:
        child = self.children[name]
        await child.start()
        self.tasks[name] = asyncio.get_running_loop().create_task(self._supervise(name))
        await self._apply_to(name, self.loaded, resume)

    async def _stop_child(self, name: str) -> None:
        task = self.tasks.pop(name, None)
        if task:
            task.cancel()
        await self.children[name].stop()

    async def _apply_to(self, name: str, loaded: LoadedConfig, resume: dict[str, str] | None = None) -> None:
        """Sends the config to one child and waits until it reports it applied."""
        key = (name, self.generation)
        future = asyncio.get_running_loop().create_future()
        self.apply_waiters[key] = future
        self.children[name].send({"type": "config", "config": loaded.raw, "digest": loaded.digest,
                                  "generation": self.generation, "router_id": loaded.config.router_id,
                                  "resume": resume or {}})
        try:
            await asyncio.wait_for(future, APPLY_TIMEOUT_S)
        finally:
            self.apply_waiters.pop(key, None)

    async def _apply(self, loaded: LoadedConfig) -> None:
        """Starts or stops children the new config needs or not, and applies it to the running ones."""
        for name, child in self.children.items():
            wanted = child_wanted(name, loaded)
            restarting = name in self.tasks and not self.tasks[name].done()
            if wanted and not child.running and restarting:
                continue  # _supervise starts it after its back-off, with this config and the states to resume
            if wanted and not child.running:
                await self._start_child(name, resume={})
            elif not wanted and child.running:
                await self._stop_child(name)
            elif wanted:
                await self._apply_to(name, loaded)

    async def _supervise(self, name: str) -> None:
        child = self.children[name]
        while True:
            code = await child.wait()
            if self.stop_event.is_set() or child.stopping:
                return
            ran_s = time.monotonic() - child.started_at
            self.failures[name] = 0 if ran_s > LONG_RUN_S else self.failures[name] + 1
            delay = restart_delay_s(ran_s, self.failures[name])
            child.restarts += 1
            resume = dict(self.instance_states) if name == "vrrp" else {}
            event = {"event": "process_restart", "process": name, "exit_status": code, "ran_s": round(ran_s, 3),
                     "delay_s": delay}
            if child.hung_s is not None:
                event["hung_s"] = round(child.hung_s, 3)
            event["resume"] = resume
            log.error("%s process exited with status %s after %.1f s; restarting in %.0f s", name, code, ran_s, delay,
                      extra={"fields": {key: value for key, value in event.items() if key not in ("ran_s", "resume")}})
            self.publish(event)
            await child.close()
            await asyncio.sleep(delay)
            try:
                await child.start()
                await self._apply_to(name, self.loaded, resume)
            except (asyncio.TimeoutError, ConnectionError, OSError) as exc:
                log.error("%s process did not come back: %s", name, exc)

    async def _watchdog(self) -> None:
        """A child that stops sending heartbeats is hung: kill it, _supervise restarts it. A child that has not
        beaten yet gets STARTUP_GRACE_S; and when this loop itself was stalled (its own sleep overran), the
        children's heartbeats are merely unread: the round is skipped so the readers can catch up."""
        last_round = time.monotonic()
        while True:
            timeout_s = self.loaded.config.sections["ops"].watchdog_timeout_ms / 1000
            period_s = min(0.5, timeout_s / 4)
            await asyncio.sleep(period_s)
            now = time.monotonic()
            round_s, last_round = now - last_round, now
            if round_s > period_s + timeout_s / 2:
                log.warning("supervisor loop stalled for %.1f s: not judging heartbeats this round", round_s - period_s)
                continue
            for name, child in self.children.items():
                silent_s = now - child.last_heartbeat
                limit_s = timeout_s if child.beating else max(timeout_s, STARTUP_GRACE_S)
                killed_lately = child.killed_at is not None and now - child.killed_at < timeout_s
                if child.running and silent_s > limit_s and not killed_lately:
                    log.error("%s process sent no heartbeat for %.1f s: killing it", name, silent_s,
                              extra=fields(event="process_hung", process=name))
                    self.publish({"event": "process_hung", "process": name, "silent_s": round(silent_s, 3)})
                    child.killed_at, child.hung_s = now, silent_s
                    child.proc.kill()

    # messages from the children -----------------------------------------------------------------

    def _on_message(self, child: Child, message: dict) -> None:
        kind = message.get("type")
        if kind == "applied":
            if child.name == "vrrp":
                self.applied = {"digest": message.get("digest"), "generation": message.get("generation"), "at": time.time()}
            future = self.apply_waiters.get((child.name, message.get("generation")))
            if future and not future.done():
                future.set_result(message)
        elif kind == "event":
            message.pop("type", None)
            if message.get("event") == "transition":
                self.instance_states[message["instance"]] = message["to"]
                self.transitions[message["instance"]] += 1
                self.systemd.status(self._summary())
            self.publish(message)

    def publish(self, event: dict) -> None:
        self.event_seq += 1
        record = {"seq": self.event_seq, "ts": event.get("ts", time.time())}
        record.update((key, value) for key, value in event.items() if key not in ("seq", "ts"))
        self.events.append(record)
        for subscriber in list(self.subscribers):
            if not subscriber.put(record):
                self.subscribers.remove(subscriber)
        self.sinks.handle(record)

    # reload -------------------------------------------------------------------------------------

    async def reload(self) -> dict:
        async with self.reload_lock:
            try:
                loaded = load_config(self.path)
            except ConfigError as exc:
                errors = [str(p) for p in exc.problems]
                self.last_reload = {"ok": False, "at": time.time(), "errors": errors}
                log.error("reload refused, keeping the running config: %s", "; ".join(errors),
                          extra=fields(event="reload", ok=False))
                self.publish({"event": "reload", "ok": False, "errors": errors})
                return {"ok": False, "errors": errors, "digest": self.loaded.digest}
            changed = loaded.digest != self.loaded.digest
            if loaded.config.control_socket != self.loaded.config.control_socket:
                log.warning("control_socket changed: takes effect at the next start, not on reload")
            if changed:
                self.systemd.reloading()
                self.generation += 1
                self.loaded = loaded
                await self._configure_outputs(loaded)
                await self._apply(loaded)
                self.systemd.ready(self._summary())
            self.last_reload = {"ok": True, "at": time.time(), "changed": changed, "digest": loaded.digest}
            log.info("reload: %s (%s)", "applied" if changed else "no change", loaded.digest[:12],
                     extra=fields(event="reload", ok=True, changed=changed, digest=loaded.digest))
            self.publish({"event": "reload", "ok": True, "changed": changed, "digest": loaded.digest})
            return {"ok": True, "changed": changed, "digest": loaded.digest, "generation": self.generation}

    # control requests ---------------------------------------------------------------------------

    def handle(self, request: Request):
        """A request the protocol has checked: only its declared fields are read."""
        if request.cmd == "events":
            return self._events(request.get("since"), request.get("follow"))
        if request.cmd in CHILD_COMMANDS:
            return self._control(request)
        handlers = {"status": self.status_reply, "reload": self.reload, "ping": self._ping}
        return handlers[request.cmd]()

    async def _ping(self) -> dict:
        return {"ok": True, "pid": os.getpid(), "version": __version__}

    async def _control(self, request: Request) -> dict:
        """Operator commands go to the process that owns the state (VRRP or checker), as a message built from
        the request's checked fields."""
        name = CHILD_COMMANDS[request.cmd]
        try:
            reply = await self.children[name].request(child_message(request), 10.0)
        except (ConnectionError, asyncio.TimeoutError) as exc:
            return {"ok": False, "error": str(exc) or f"the {name} process did not answer"}
        answer = {key: value for key, value in reply.items() if key not in ("type", "id")}
        if answer.get("ok"):
            self.publish(control_event(request))
        return answer

    async def status_reply(self) -> dict:
        return {"ok": True, "status": await self.status()}

    async def status(self) -> dict:
        """Each child reports its own part (VRRP: instances...; checker: virtual_servers); a child that is
        restarting is shown from its last report, flagged stale."""
        merged: dict[str, Any] = {}
        stale = []
        for name, child in self.children.items():
            if not child.running and not child_wanted(name, self.loaded):
                continue
            try:
                reply = await child.request({"type": "status"}, 2.0)
                self.cached_status[name] = reply.get("status", {})
            except (ConnectionError, asyncio.TimeoutError):
                stale.append(name)
            merged.update(self.cached_status[name])
        for name, inst in merged.setdefault("instances", {}).items():
            inst["transitions"] = self.transitions[name]
        document = {"schema_version": SCHEMA_VERSION, "agent": self._agent_info(stale)}
        document.update((key, value) for key, value in merged.items() if key not in document)
        return document

    def _agent_info(self, stale: list[str]) -> dict:
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
            "processes": {name: {"pid": child.pid, "running": child.running, "restarts": child.restarts,
                                 "uptime_s": round(now - child.started_at, 3) if child.running else None,
                                 "heartbeat_age_s": round(now - child.last_heartbeat, 3) if child.running else None}
                          for name, child in self.children.items() if child.running or child.restarts},
            "alerts": self.sinks.status()["mail"],
            "events": {"published": self.event_seq, "fifo": self.sinks.status()["fifo"]},
            "control": self.control.status(),
        }

    async def _events(self, since: int, follow: bool) -> AsyncIterator[dict]:
        subscriber = _Subscriber()
        self.subscribers.append(subscriber)
        try:
            for event in list(self.events):
                if event["seq"] > since:
                    yield event
            if not follow:
                return
            while True:
                event = await subscriber.queue.get()
                if event is None:
                    yield {"ok": False, "error": f"this client read events too slowly ({SUBSCRIBER_BACKLOG} behind): "
                                                 f"reconnect with since={subscriber.last_seq}"}
                    return
                subscriber.last_seq = event["seq"]
                yield event
        finally:
            if subscriber in self.subscribers:
                self.subscribers.remove(subscriber)


class _Subscriber:
    """One `events --follow` client: a queue of events; one that falls SUBSCRIBER_BACKLOG behind is cut off (None)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict | None] = asyncio.Queue()
        self.last_seq = 0

    def put(self, event: dict) -> bool:
        """False when the subscriber is too far behind (it then gets None and is dropped)."""
        if self.queue.qsize() >= SUBSCRIBER_BACKLOG:
            self.queue.put_nowait(None)
            return False
        self.queue.put_nowait(event)
        return True


async def release_rules_without_checker(loaded: LoadedConfig) -> None:
    """Stopping while the checker is down (crashed, waiting to restart): remove the load-balancer rules it
    owned, as it would have done itself, unless lb_keep_on_stop."""
    from hanode.health.runner import owned_state_path
    from hanode.lvs.backend import BackendError, open_backend
    from hanode.lvs.reconciler import Reconciler

    lvs = loaded.config.sections.get("lvs")
    if lvs is None or lvs.keep_on_stop:
        return
    try:
        backend = await open_backend(lvs)
    except (BackendError, OSError) as exc:
        log.error("cannot remove the load-balancer rules of the stopped checker: %s", exc)
        return
    try:
        result = await Reconciler(backend, state_path=owned_state_path(loaded.config.control_socket)).cleanup(keep=False)
        if result.ok:
            log.info("removed the load-balancer rules of the checker, which was not running")
        else:
            log.error("could not remove the load-balancer rules: %s", "; ".join(result.errors))
    finally:
        await backend.close()


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
