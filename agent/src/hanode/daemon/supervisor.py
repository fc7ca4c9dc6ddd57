"""`hanode run`: the parent process. Loads and validates config, serves the control socket, supervises the
VRRP process (restart with keepalived's back-off: at once after 60 s of uptime, else 1, 2, 4 ... 60 s),
reloads on SIGHUP, and stops everything cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any, Iterable

from hanode import __version__
from hanode.config.forked_load import load_config_forked
from hanode.config.loaded import LoadedConfig
from hanode.config.problems import ConfigError
from hanode.control.protocol import CHILD_COMMANDS, Request, child_message, control_event
from hanode.control.server import ControlServer, SocketInUse, UnsafeSocketDirectory
from hanode.daemon.child import Child
from hanode.daemon.events import EventLog
from hanode.daemon.imports import release_free_heap, release_free_memory
from hanode.daemon.parts import Encoded, PackedEntries, encode_document, encode_value
from hanode.daemon.processes import ApplyFailed, Processes, apply_timeout_s
from hanode.daemon.wanted import CHILD_MODULES, NEEDS_TLS, child_wanted
from hanode.daemon.logs import fields
from hanode.ops.sd_notify import SystemdNotifier
from hanode.daemon.lifecycle import run_lifecycle_script
from hanode.ops.sinks import EventSinks

if TYPE_CHECKING:   # imported when metrics_listen is set: prometheus_client and http.server cost ~4 MB
    from hanode.ops.metrics import MetricsServer

log = logging.getLogger("hanode.supervisor")

SCHEMA_VERSION = 1
SHUTDOWN_MAIL_FLUSH_S = 5.0  # alert mail queued at shutdown (the STOP transitions) gets this long to go out


class Supervisor(Processes):
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
        self.apply_timeout_s = apply_timeout_s()
        self.reloading: dict[str, Any] | None = None   # the config being applied, while a reload runs
        self.sighup_pending = False
        self.background: set[asyncio.Task] = set()
        self.children = {name: Child(name, module, self._on_message, log_level, tls=name in NEEDS_TLS,
                                     on_alarm=self._on_alarm)
                         for name, module in CHILD_MODULES.items()}
        self.failures: dict[str, int] = dict.fromkeys(self.children, 0)
        self.cached_status: dict[str, dict] = {name: {} for name in self.children}
        self.cached_parts: dict[str, dict[str, PackedEntries]] = {name: {} for name in self.children}
        self.instance_states: dict[str, str] = {}
        self.transitions: collections.Counter = collections.Counter()
        self.control = ControlServer(loaded.config.control_socket, self.handle)
        self.sinks = EventSinks()
        self.event_log = EventLog(self.sinks.handle)
        self.systemd = SystemdNotifier()
        self.metrics: MetricsServer | None = None

    # main ---------------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
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
            await run_lifecycle_script(self.loaded.config, "startup")
            self._set_watchdog_limits()
            for name in self.children:
                if child_wanted(name, self.loaded):
                    await self._start_first(name)
            self._applied_without_children(self.loaded, self.generation)
            self.systemd.ready(self._summary())
            helpers = []   # the watchdog itself is each child's alarm (Processes._on_alarm): no loop of its own
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
            await run_lifecycle_script(self.loaded.config, "shutdown")
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
                from hanode.ops.metrics import MetricsServer
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
            now = time.monotonic()
            if not any(c.late(now) for c in self.children.values() if c.running):
                self.systemd.watchdog()

    # messages from the children -----------------------------------------------------------------

    def _on_message(self, child: Child, message: dict) -> None:
        kind = message.get("type")
        if kind == "applied":
            if not message.get("error"):
                child.applied_generation = message.get("generation")
            future = self.apply_waiters.get((child.name, message.get("generation")))
            if future and not future.done():
                future.set_result(message)
        elif kind == "event":
            message.pop("type", None)
            if message.get("event") == "transition":
                self.instance_states[message["instance"]] = message["to"]
                self.transitions[message["instance"]] += 1
                self.systemd.status(self._summary())
                self.relay_states()
            self.publish(message)

    def publish(self, event: dict) -> None:
        self.event_log.publish(event)

    # reload -------------------------------------------------------------------------------------

    def _on_sighup(self) -> None:
        """SIGHUP: reload in a task whose failure is logged and shown in status, never lost. Signals that
        arrive while a reload waits for its turn are merged into it (it reads the file when it starts)."""
        if self.sighup_pending:
            return
        self.sighup_pending = True
        task = asyncio.get_running_loop().create_task(self._reload_on_signal())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _reload_on_signal(self) -> None:
        # systemd's Type=notify-reload sends SIGHUP and waits for RELOADING=1 ... READY=1 whatever the outcome
        # (applied, nothing changed, refused): without them `systemctl reload` would hang.
        self.systemd.reloading()
        try:
            await self.reload(notify=False)
        except Exception as exc:  # noqa: BLE001 - the agent runs on with the config it has
            log.exception("reload after SIGHUP failed")
            self.last_reload = {"ok": False, "at": time.time(), "errors": [f"internal error: {exc!r}"]}
        finally:
            self.systemd.ready(self._summary())

    async def reload(self, notify: bool = True) -> dict:
        """All or nothing: every child applies the new config, or every child goes back to the running one.
        notify: RELOADING=1 / READY=1 around a change (the SIGHUP path sends them around every reload)."""
        async with self.reload_lock:
            self.sighup_pending = False
            try:
                loaded = load_config_forked(self.path)
            except ConfigError as exc:
                return self._reload_refused([str(p) for p in exc.problems])
            if loaded.config.control_socket != self.loaded.config.control_socket:
                log.warning("control_socket changed: takes effect at the next start, not on reload")
            if loaded.digest == self.loaded.digest:
                return self._reloaded(changed=False)
            if notify:
                self.systemd.reloading()
            try:
                await self._switch_to(loaded)
            except ApplyFailed as exc:
                return await self._roll_back(loaded, exc)
            finally:
                if notify:
                    self.systemd.ready(self._summary())
                release_free_memory()
            return self._reloaded(changed=True)

    async def _switch_to(self, loaded: LoadedConfig) -> None:
        self.generation += 1
        self.reloading = {"generation": self.generation, "digest": loaded.digest, "started": time.monotonic()}
        try:
            await self._configure_outputs(loaded)
            await self._apply(loaded, self.generation)
        finally:
            self.reloading = None
        self.loaded = loaded
        self._set_watchdog_limits()

    async def _roll_back(self, failed: LoadedConfig, exc: ApplyFailed) -> dict:
        """The child that failed is killed (it restarts with the running config and its VRRP states); every
        other one gets the running config again, under a new generation."""
        errors = [str(exc)]
        log.error("reload failed: %s; every process goes back to config %s", exc, self.loaded.digest[:12],
                  extra=fields(event="reload", ok=False, rolled_back=True))
        self.children[exc.child].kill()
        self.generation += 1
        await self._configure_outputs(self.loaded)
        try:
            await self._apply(self.loaded, self.generation, skip=frozenset({exc.child}))
        except ApplyFailed as again:
            errors.append(f"while going back: {again}")
            log.error("while going back to config %s: %s; restarting it", self.loaded.digest[:12], again)
            self.children[again.child].kill()
        self.last_reload = {"ok": False, "at": time.time(), "errors": errors, "rolled_back": True,
                            "digest": self.loaded.digest, "failed_digest": failed.digest}
        self.publish({"event": "reload", "ok": False, "rolled_back": True, "errors": errors,
                      "digest": self.loaded.digest, "failed_digest": failed.digest})
        return {"ok": False, "errors": errors, "rolled_back": True, "digest": self.loaded.digest,
                "generation": self.generation}

    def _reload_refused(self, errors: list[str]) -> dict:
        self.last_reload = {"ok": False, "at": time.time(), "errors": errors}
        log.error("reload refused, keeping the running config: %s", "; ".join(errors),
                  extra=fields(event="reload", ok=False))
        self.publish({"event": "reload", "ok": False, "errors": errors})
        return {"ok": False, "errors": errors, "digest": self.loaded.digest}

    def _reloaded(self, changed: bool) -> dict:
        digest = self.loaded.digest
        self.last_reload = {"ok": True, "at": time.time(), "changed": changed, "digest": digest}
        log.info("reload: %s (%s)", "applied" if changed else "no change", digest[:12],
                 extra=fields(event="reload", ok=True, changed=changed, digest=digest))
        self.publish({"event": "reload", "ok": True, "changed": changed, "digest": digest})
        return {"ok": True, "changed": changed, "digest": digest, "generation": self.generation}

    # control requests ---------------------------------------------------------------------------

    def handle(self, request: Request):
        """A request the protocol has checked: only its declared fields are read."""
        if request.cmd == "events":
            return self.event_log.stream(request.get("since"), request.get("follow"))
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

    async def status_reply(self) -> Encoded:
        """{"ok": true, "status": ...}, written from the children's parts as they are (daemon/parts.py)."""
        out = await self._status_json(bytearray(b'{"ok": true, "status": '))
        out += b"}"
        release_free_heap()
        return Encoded(out)

    async def status(self) -> dict:
        return json.loads(await self._status_json(bytearray()))

    async def _status_json(self, out: bytearray) -> bytearray:
        """Each child reports its own part (VRRP: instances...; checker: virtual_servers), asked at the same
        time; a child that is restarting, or late (it missed a beat: frozen or busy; Child.late), is
        shown from its last report, flagged stale, without waiting for it."""
        names = [name for name, child in self.children.items() if child.running or child_wanted(name, self.loaded)]
        answers = await asyncio.gather(*(self._child_status(name) for name in names))
        merged: dict[str, Any] = {}
        parts: dict[str, Iterable[tuple[str, bytes | memoryview]]] = {}
        unsaved = []
        for name in names:
            part = self.cached_status[name]
            merged.update((key, value) for key, value in part.items() if key != "state_files")
            parts.update(self.cached_parts[name])
            unsaved += [dict(entry, process=name) for entry in part.get("state_files", ())]
        if "instances" not in parts:
            parts["instances"] = [(name, encode_value(inst)) for name, inst in merged.get("instances", {}).items()]
        merged.setdefault("instances", {})
        agent = self._agent_info([name for name, fresh in zip(names, answers) if not fresh])
        agent["state_files"] = sorted(unsaved, key=lambda entry: entry["path"])
        document = {"schema_version": SCHEMA_VERSION, "agent": agent}
        document.update((key, value) for key, value in merged.items() if key not in document)
        return encode_document(document, parts, self._instance_extra, out)

    def _instance_extra(self, key: str, name: str) -> dict[str, Any]:
        """What the supervisor adds to each instance's entry: the state changes it counted (across restarts)."""
        return {"transitions": self.transitions[name]} if key == "instances" else {}

    async def _child_status(self, name: str) -> bool:
        """Refreshes the child's cached part of status; False when it could not (the part is stale)."""
        child = self.children[name]
        if child.beating and child.late(time.monotonic()):
            return False
        try:
            reply = await child.request({"type": "status"}, 2.0)
        except (ConnectionError, asyncio.TimeoutError):
            return False
        self.cached_status[name] = reply.get("status", {})
        self.cached_parts[name] = reply.get("parts") or {}
        return True

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
                       "last_reload": self.last_reload, "reloading": self._reloading_status(now)},
            "processes": {name: {"pid": child.pid, "running": child.running, "restarts": child.restarts,
                                 "uptime_s": round(now - child.started_at, 3) if child.running else None,
                                 "heartbeat_age_s": round(now - child.last_heartbeat, 3) if child.running else None,
                                 "applied_generation": child.applied_generation if child.running else None}
                          for name, child in self.children.items() if child.running or child.restarts},
            "alerts": self.sinks.status()["mail"],
            "events": {"published": self.event_log.seq, "fifo": self.sinks.status()["fifo"]},
            "control": self.control.status(),
        }

    def _reloading_status(self, now: float) -> dict | None:
        if self.reloading is None:
            return None
        generation = self.reloading["generation"]
        return {"generation": generation, "digest": self.reloading["digest"],
                "seconds": round(now - self.reloading["started"], 3),
                "waiting_for": sorted(name for name, gen in self.apply_waiters if gen == generation)}


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


def run_agent(loaded: LoadedConfig, log_level: str = "info") -> int:
    for problem in loaded.problems.warnings:
        log.warning("%s", problem)
    release_free_memory()
    return asyncio.run(Supervisor(loaded, log_level).run())
