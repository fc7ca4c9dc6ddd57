"""The checker process's asyncio glue: checks -> health -> desired kernel state -> reconcile.

- Reconcile (never replay) through lvs.reconciler: at start, on every health change, on reload, on an
  operator command, every lb_reconcile_interval (with a fresh dump of the kernel) and one second after any
  failed apply. Health changes that arrive together are applied together.
- Real-server and quorum changes become events (in order) and run notify_up / notify_down / quorum_up /
  quorum_down one after another, in that same order, as the script user with a clean environment.
- A restarted checker reads the kernel table first: servers it finds in the table start UP, the others
  DOWN, and all are checked again within their warmup, so a restart neither flaps servers nor re-adds
  failed ones.
- Operator drain (rs_disable) puts a real server at weight 0 and survives reloads; the control and status
  answers are health/answer.py's.
- ha_suspend: while any service has it, this host's addresses are followed over netlink (health/addrwatch.py)
  and the checks of a service none of whose addresses is local probe nothing (health/suspend.py decides); the
  kernel table is left as it is, as keepalived 2.2.7 leaves its IPVS service and real servers.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import shlex
import time
from itertools import repeat
from typing import Callable, Iterable, Mapping

from hanode.config.model import AgentConfig
from hanode.health.addrwatch import HaSuspend
from hanode.health.answer import (DISABLED_REASON, UP, Answers, load_drained,  # noqa: F401
                                  save_drained)
from hanode.health.grid import tick_ahead
from hanode.health.scheduler import Scheduler, ServerKey
from hanode.health.spec import check_specs
from hanode.lvs.backend import BackendError, open_backend
from hanode.lvs.desired import QuorumState, RsHealth, desired_state, desired_update, service_key
from hanode.lvs.kernel import KernelState
from hanode.lvs.model import LvsConfig, RealServer, VirtualServer, kernel_dest_key, real_server_name
from hanode.lvs.reconciler import Reconciler
from hanode.lvs.state_file import state_path
from hanode.vrrp.scripts import NotifyQueue

log = logging.getLogger("hanode.health")

THREAD_ABOVE_SERVERS = 500     # desired_state() for more real servers than this runs in a worker thread
LAG_WARN_MS = 500              # the event loop was held this long: logged (checks and heartbeats were late)
LAG_TICKS = 5                  # the loop lag is sampled every ~0.1 s, on the checker's 20 ms grid
LAG_WINDOW_S = 60.0            # status shows the longest stall of the last minute
RETRY_MS = 1000                 # after a failed apply (or a backend that would not open)


def settle_heap() -> None:
    """After (re)building the config's objects: collect once, then freeze what is left so that the
    collector's full passes never walk the thousands of long-lived config and check objects again
    (a full pass over them held the loop for most of a second with 8,000 real servers)."""
    gc.collect()
    gc.freeze()


def health_snapshot(servers: Iterable[ServerKey], cache: Mapping[ServerKey, RsHealth],
                    disabled: Iterable[ServerKey] = ()) -> dict[ServerKey, RsHealth]:
    """What desired_state() reads (a copy: it may run in a thread): each server's health, UP until it is
    checked, and the servers an operator disabled at weight 0 while up. C loops: it runs on every change."""
    servers = list(servers)
    out = dict(zip(servers, map(cache.get, servers, repeat(UP))))
    for key in disabled:
        health = out.get(key)
        if health is not None and health.up:
            out[key] = RsHealth(True, 0, DISABLED_REASON)
    return out


def owned_state_path(control_socket: str | None) -> str | None:
    """Where the reconciler remembers the services it owns: next to this agent's control socket."""
    return state_path(control_socket, "lvs-owned")


class CheckerRunner(Answers):
    def __init__(self, emit: Callable[[dict], None], backend_opener=open_backend):
        self.emit = emit
        self.backend_opener = backend_opener
        self.config: AgentConfig | None = None
        self.lvs = LvsConfig()
        self.servers: dict[ServerKey, tuple[VirtualServer, RealServer]] = {}
        self.scheduler = Scheduler(on_change=self._on_health_change)
        self.reconciler: Reconciler | None = None
        self.backend = None
        self.backend_error: str | None = None
        self.lock = asyncio.Lock()
        self.dirty = asyncio.Event()
        self.quorum: dict[str, QuorumState] = {}
        self.desired: KernelState | None = None        # the last desired state, for the config in self.lvs
        self.changed: set[ServerKey] = set()             # servers whose health changed since it was computed
        self.known: dict[ServerKey, RsHealth] = {}
        self.disabled: set[ServerKey] = set()
        self.resumed: set[str] = set()          # services found in the kernel at start: no initial quorum event
        self.notify: NotifyQueue | None = None
        self.loop_task: asyncio.Task | None = None
        self.lag_task: asyncio.Task | None = None
        self.lags: collections.deque = collections.deque(maxlen=600)   # (monotonic s, ms) of notable stalls
        self.reconciles = 0
        self.errors = 0
        self.last_ok_at: float | None = None
        self.last_dump_at = 0.0
        self.ha_suspend = HaSuspend(self.scheduler)

    # lifecycle ----------------------------------------------------------------------------------

    async def start(self, config: AgentConfig) -> None:
        self._set_config(config)
        self.disabled = load_drained(self._drained_path()) & self.servers.keys()
        if self.disabled:
            log.info("%d real servers stay disabled by operator: %s", len(self.disabled),
                     ", ".join(f"{rs} of {vs}" for vs, rs in sorted(self.disabled)))
        self.notify = NotifyQueue(config.script_user, secure=config.enable_script_security)
        self.notify.start()
        specs = await asyncio.to_thread(check_specs, self.lvs, config.script_user, config.enable_script_security)
        resume: dict[ServerKey, bool] = {}
        if await self._open_backend():
            resume = await self._resume_from_kernel()
        self.scheduler.apply(specs, resume, keys=self.servers)
        self.known = self._all_health()
        await self.ha_suspend.follow(self.lvs.virtual_servers)   # before the first check: a suspended service
        self.scheduler.start()
        await self._reconcile(refresh=False)
        settle_heap()
        loop = asyncio.get_running_loop()
        self.loop_task = loop.create_task(self._reconcile_loop())
        self.lag_task = loop.create_task(self._watch_lag())
        log.info("checker started: %d virtual servers, %d real servers, %d checks, backend %s",
                 len(self.lvs.virtual_servers), len(self.servers), len(self.scheduler.slots),
                 self.backend.name if self.backend else f"unavailable ({self.backend_error})")

    async def apply(self, config: AgentConfig) -> None:
        """Reload: keeps unchanged checks' state, operator drains, and quorum states; reconciles at once."""
        specs = await asyncio.to_thread(check_specs, config.sections.get("lvs") or LvsConfig(), config.script_user,
                                        config.enable_script_security)
        # from here to the scheduler's update nothing awaits: a reconcile never sees the new config with the
        # old checks (a new alpha server would count as up)
        old_lvs = self.lvs
        self._set_config(config)
        if self.notify is not None:
            self.notify.user, self.notify.secure = config.script_user, config.enable_script_security
        counts = self.scheduler.apply(specs, keys=self.servers)
        await self.ha_suspend.follow(self.lvs.virtual_servers)
        log.info("checker reload: checks kept %(kept)d, changed %(changed)d, added %(added)d, removed %(removed)d",
                 counts)
        if self.disabled - self.servers.keys():
            self.disabled &= self.servers.keys()
            save_drained(self._drained_path(), self.disabled)
        names = {vs.name for vs in self.lvs.virtual_servers}
        for vs in old_lvs.virtual_servers:
            if vs.name not in names:
                self._omega(vs)
                self.quorum.pop(vs.name, None)
        self._report_changes(self._all_health())
        if old_lvs.backend != self.lvs.backend and self.reconciler is not None:
            async with self.lock:
                log.info("lb_backend changed from %s to %s: moving the services", old_lvs.backend, self.lvs.backend)
                await self.reconciler.cleanup(keep=False)
                await self._close_backend()
        elif old_lvs.lvs_timeouts != self.lvs.lvs_timeouts and self.lvs.lvs_timeouts and self.backend is not None:
            try:
                await self.backend.set_timeouts(*self.lvs.lvs_timeouts)
            except Exception as exc:  # noqa: BLE001 - the services still apply; the log says what failed
                log.error("lvs_timeouts: %s", exc)
        await self._reconcile(refresh=False)
        settle_heap()

    async def stop(self) -> None:
        for task in (self.loop_task, self.lag_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.scheduler.stop()
        await self.ha_suspend.close()
        for vs in self.lvs.virtual_servers:
            self._omega(vs)
        async with self.lock:
            if self.reconciler is not None:
                result = await self.reconciler.cleanup(keep=self.lvs.keep_on_stop)
                if not result.ok:
                    log.error("could not remove the load-balancer rules: %s", "; ".join(result.errors))
            await self._close_backend()
        if self.notify is not None:
            await self.notify.drain(10.0)
            await self.notify.stop()

    def _set_config(self, config: AgentConfig) -> None:
        self.config = config
        self.desired = None                              # a new config: the next desired state is computed in full
        self.lvs = config.sections.get("lvs") or LvsConfig()
        self.servers = {(vs.name, name): (vs, rs)   # the virtual server's names (made once), not copies of them
                        for vs in self.lvs.virtual_servers for rs, name in zip(vs.real_servers, vs.real_server_names)}

    # backend ------------------------------------------------------------------------------------

    async def _open_backend(self) -> bool:
        if self.reconciler is not None:
            return True
        try:
            self.backend = await self.backend_opener(self.lvs)
        except BackendError as exc:
            if str(exc) != self.backend_error:
                log.error("load-balancer backend unavailable: %s", exc)
            self.backend_error = str(exc)
            return False
        self.backend_error = None
        socket_path = self.config.control_socket if self.config else None
        self.reconciler = Reconciler(self.backend, state_path=owned_state_path(socket_path))
        return True

    async def _close_backend(self) -> None:
        if self.backend is not None:
            try:
                await self.backend.close()
            except Exception as exc:  # noqa: BLE001 - closing must not stop the shutdown
                log.warning("closing the %s backend: %s", self.backend.name, exc)
        self.backend = self.reconciler = None

    async def _resume_from_kernel(self) -> dict[ServerKey, bool]:
        """After a restart the kernel table says which servers were up: resume from it."""
        try:
            async with self.lock:
                actual = await self.reconciler.dump()
        except Exception as exc:  # noqa: BLE001 - no resume then: keepalived's initial states
            log.warning("cannot read the kernel table at start: %s", exc)
            return {}
        resume = {}
        for vs in self.lvs.virtual_servers:
            entry = actual.get(service_key(vs))
            if entry is None:
                continue
            self.resumed.add(vs.name)
            for rs in vs.real_servers:
                dest, key = entry.dests.get(kernel_dest_key(vs, rs)), (vs.name, real_server_name(rs))
                # weight 0 is down (inhibit_on_failure), unless an operator drained the server
                resume[key] = dest is not None and (dest.weight > 0 or key in self.disabled)
        if resume:
            log.info("resuming from the kernel table: %d of %d real servers in service",
                     sum(resume.values()), len(resume))
        return resume

    # health -------------------------------------------------------------------------------------

    def _all_health(self) -> dict[ServerKey, RsHealth]:
        return health_snapshot(self.servers, self.scheduler.health_cache)

    def _health_map(self) -> dict[ServerKey, RsHealth]:
        return health_snapshot(self.servers, self.scheduler.health_cache, self.disabled)

    def _on_health_change(self, server: ServerKey) -> None:
        self.changed.add(server)
        health = self.scheduler.health_cache.get(server)
        if health is not None:
            self._report_changes({server: health})
        self.dirty.set()

    def _report_changes(self, current: dict[ServerKey, RsHealth]) -> None:
        """Events, logs and notify scripts for real servers whose health differs from what was reported.
        A server seen for the first time (start, added by a reload) is reported by nothing."""
        for key, health in current.items():
            before = self.known.get(key)
            self.known[key] = health
            if before is None or key not in self.servers:
                continue
            if before.up == health.up:
                if before.weight != health.weight:
                    log.info("real server %s of %s: misc_dynamic weight %s", key[1], key[0], health.weight)
                continue
            _vs, rs = self.servers[key]
            if health.up:
                log.info("real server %s of %s UP", key[1], key[0])
            else:
                log.warning("real server %s of %s DOWN: %s", key[1], key[0], health.reason)
            self.emit({"event": "real_server", "virtual_server": key[0], "real_server": key[1], "up": health.up,
                       "state": "up" if health.up else "down", "reason": health.reason,
                       "weight": rs.weight if health.weight is None else health.weight})
            self._script(rs.notify_up if health.up else rs.notify_down)

    def _quorum_changes(self, quorum: dict[str, QuorumState]) -> None:
        for vs in self.lvs.virtual_servers:
            new = quorum.get(vs.name)
            old = self.quorum.get(vs.name)
            if new is None:
                continue
            if old is None:
                if new.up or vs.name in self.resumed:
                    continue  # first evaluation: report only a quorum that is not there
            elif old.up == new.up:
                continue
            (log.info if new.up else log.warning)("virtual server %s quorum %s (live weight %d, quorum %d)%s",
                                                  vs.name, "up" if new.up else "DOWN", new.live_weight, vs.quorum,
                                                  ", sorry server in" if new.sorry_active else "")
            self.emit({"event": "quorum", "virtual_server": vs.name, "up": new.up, "state": "up" if new.up else "down",
                       "weight": new.live_weight, "quorum": vs.quorum, "sorry_server_active": new.sorry_active})
            self._script(vs.quorum_up if new.up else vs.quorum_down)

    def _omega(self, vs: VirtualServer) -> None:
        """keepalived's omega: quorum_down runs when a service with quorum goes away (reload or stop)."""
        state = self.quorum.get(vs.name)
        if vs.omega and vs.quorum_down and state is not None and state.up:
            self._script(vs.quorum_down)

    def _script(self, command: str | None) -> None:
        if command and self.notify is not None:
            self.notify.put(shlex.split(command))

    # reconcile ----------------------------------------------------------------------------------

    async def _reconcile(self, refresh: bool) -> bool:
        async with self.lock:
            lvs = self.lvs
            desired_quorum = self._desired_update()
            self.desired = None         # until the new one is kept: whatever fails meanwhile, the next is in full
            if desired_quorum is not None:
                desired, quorum = desired_quorum
            elif len(self.servers) < THREAD_ABOVE_SERVERS:
                desired, quorum = desired_state(lvs, self._health_map(), self.quorum)
            else:  # thousands of servers: computed off the loop, which keeps beating and checking
                desired, quorum = await asyncio.to_thread(desired_state, lvs, self._health_map(), dict(self.quorum))
            if lvs is not self.lvs:   # a reload came in meanwhile: its own reconcile follows
                return True
            self._quorum_changes(quorum)
            self.quorum, self.desired = quorum, desired
            if not await self._open_backend():
                return False
            result = await self.reconciler.reconcile(desired, refresh=refresh)
            self.reconciles += 1
            if refresh:
                self.last_dump_at = time.monotonic()
            if result.ok:
                self.last_ok_at = time.time()
            else:
                self.errors += len(result.errors)
                log.error("kernel update failed (%d errors), retrying in %.0f s: %s", len(result.errors),
                          RETRY_MS / 1000, "; ".join(result.errors[:3]))
            return result.ok

    def _desired_update(self) -> tuple[KernelState, dict[str, QuorumState]] | None:
        """The desired state from the last one and the servers changed since (health, operator): None when
        it must be computed in full (first time, new config, a sorry server's quorum at stake)."""
        changed, self.changed = self.changed, set()
        if self.desired is None:
            return None
        changed &= self.servers.keys()
        health = health_snapshot(changed, self.scheduler.health_cache, self.disabled)
        return desired_update(self.lvs, self.desired, self.quorum, health, [self.servers[key] for key in changed])

    async def _reconcile_loop(self) -> None:
        failed = False
        while True:
            wait_ms = min(RETRY_MS, self.lvs.reconcile_interval_ms) if failed else self.lvs.reconcile_interval_ms
            try:
                async with asyncio.timeout(wait_ms / 1000):
                    await self.dirty.wait()
                refresh = failed
            except TimeoutError:
                refresh = True
            self.dirty.clear()
            try:
                failed = not await self._reconcile(refresh)
            except Exception:  # noqa: BLE001 - keep reconciling; the error is logged with its traceback
                log.exception("reconcile failed")
                failed = True

    async def _watch_lag(self) -> None:
        """How long the event loop was held (checks and heartbeats wait meanwhile): status and a warning."""
        loop = asyncio.get_running_loop()
        while True:
            before, cpu_before = loop.time(), time.thread_time()
            due = tick_ahead(before, LAG_TICKS)     # 80 to 100 ms ahead, on the grid the sweeps share
            await asyncio.sleep(due - before)
            lag_ms = round((loop.time() - due) * 1000)
            if lag_ms >= 20:
                self.lags.append((time.monotonic(), lag_ms))
            if lag_ms >= LAG_WARN_MS:
                busy_ms = round((time.thread_time() - cpu_before) * 1000)
                log.warning("the checker's event loop was held for %d ms (%d ms of it computing%s); checks ran late",
                            lag_ms, busy_ms, "" if busy_ms > lag_ms / 2 else ", the rest waiting for a CPU")

    def _recent_lag_ms(self) -> int:
        since = time.monotonic() - LAG_WINDOW_S
        return max((lag for at, lag in self.lags if at >= since), default=0)
