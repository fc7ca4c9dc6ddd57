"""The VRRP process's asyncio glue: sockets and netlink in, engine steps, actions out, in order.

Actions run at once, inside the callback that produced them (a timer, a readable socket, a link change), in
the engine's order: a takeover's VIPs are in the kernel and its advert is on the wire before the callback
returns, with no hop through a queue (vrrp/effects.py). Receiving: vrrp/receiving.py. Here: the lifecycle
(start, reload, stop), the one event-loop timer at the engine's next deadline, and the trackers' callbacks."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Callable, Iterable

from hanode.config.model import AgentConfig
from hanode.config.parse_garp import GarpPacing
from hanode.daemon.logs import fields
from hanode.daemon.parts import LazyEntries
from hanode.daemon.served_timer import served_call_at
from hanode.vrrp.actions import State, StateChanged
from hanode.vrrp.deadlines import wake_at_us
from hanode.vrrp.effects import Effects
from hanode.vrrp.engine import Engine, InterfaceInfo, Output
from hanode.vrrp.garp_pace import GarpPacer
from hanode.vrrp.linkview import LinkView
from hanode.vrrp.io import ArrivalClock, NeighbourAnnouncer, VrrpSocket, now_us
from hanode.vrrp.netlink import Netlink, watch_links
from hanode.vrrp.plumbing import Plumbing
from hanode.vrrp.receiving import Receiving
from hanode.vrrp.scripts import NotifyQueue, ScriptResult, run_periodically
from hanode.vrrp.status import engine_summary, instance_status, jitter_status
from hanode.vrrp.tracker_io import TrackerMonitors

log = logging.getLogger("hanode.vrrp")
# A takeover deadline (a BACKUP's Master_Down) wakes the loop this much early; the rest is waited in a busy
# loop, so that the wake-up's own latency (the kernel's timer and scheduler, the event loop: 0.2-0.3 ms measured
# in the lab) is not added to the failover time. Only takeovers: a MASTER's advert timer is served without it
# (0.2-0.3 ms late, against a Master_Down_Interval of 3 advert intervals), and in steady state no takeover
# deadline ever comes due, so the busy loop costs nothing there.
SPIN_AHEAD_US = 300
# The kernel lets a select() timeout expire late by up to 0.1% of its length (select_estimate_accuracy): 3.6 ms
# on a VRRPv2 Master_Down_Interval. A takeover's wait is therefore cut this much short, and the rest waited
# with a short timeout (late by 0.1% of it: 20 µs). keepalived's timerfd gets the default 50 µs.
FINAL_WAIT_US = 20_000


class VrrpRunner(Receiving, Effects):
    """One per VRRP process: the engine, its sockets and netlink, and the tasks around them."""

    def __init__(self, config: AgentConfig, emit: Callable[[dict], None]):
        self.config = config
        self.emit = emit
        self.loop = asyncio.get_running_loop()
        self.netlink = Netlink()
        self.announcer = NeighbourAnnouncer()
        self.plumbing = Plumbing(config, self._netlink_talk, self._netlink_dump, self._announce)
        self.engine: Engine | None = None
        self.sockets: dict[tuple[str, int], VrrpSocket] = {}
        self.script_tasks: dict[str, asyncio.Task] = {}
        self.garp_bursts: dict[str, asyncio.Task] = {}   # instance -> later rounds of its GARP burst
        self.notify = NotifyQueue(config.script_user, secure=config.enable_script_security)
        self.links_changed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.timer = None      # the engine's next deadline: served by the loop's selector when it can
        self.call_at = served_call_at(self.loop)
        self.timer_at_us: int | None = None
        self.protected_vips: set[tuple[str, str]] = set()
        self.io_errors: dict[str, int] = {"send_err": 0, "netlink_err": 0}
        self.conflicts_reported: dict[tuple[str, str, str], int] = {}
        self.clock_us = 0      # the latest time given to the engine: its clock never goes back
        self.arrivals = ArrivalClock()
        self.bulk_read_us = 0  # when the bulk sockets were last read
        self.bulk_reading = False   # the bulk sockets' readers are on (no takeover pending, not in a gap)
        self.bulk_gap = False       # read lately: the next read waits for BULK_GAP_US (bulk_timer)
        self.bulk_timer: asyncio.TimerHandle | None = None
        self.takeover_pending = False
        self.datagrams: dict[tuple, bytes] = {}   # (instance, priority, source, destination) -> advert to send
        self.advert_plans: dict[str, tuple] = {}  # instance -> its last SendAdvert Output and its sends: effects.py
        self.trackers: TrackerMonitors | None = None    # vrrp_track_processes, track_files
        self.rx_scripts: dict[str, asyncio.Task] = {}   # instance -> its notify_master_rx_lower_pri run
        self.start_timer: asyncio.TimerHandle | None = None     # vrrp_startup_delay
        self.links = LinkView(self.loop, now_us, self._links_shown)   # interface_up_down_delays
        self.pacer = GarpPacer(config.sections.get("garp_pacing") or GarpPacing())
        self.pace_timers: dict[tuple[str, int], asyncio.TimerHandle] = {}   # paced timeline -> its next send

    def _netlink_talk(self, message: bytearray) -> int:
        return self.netlink.requests.talk(message)

    def _netlink_dump(self, kind: int) -> list[bytes]:
        return self.netlink.requests.dump(kind)

    def _now(self, at_us: int | None = None) -> int:
        """Now (or `at_us`, a packet's arrival), never earlier than a time already given to the engine."""
        self.clock_us = max(self.clock_us, now_us() if at_us is None else at_us)
        return self.clock_us

    # lifecycle ----------------------------------------------------------------------------------

    async def start(self, resume: dict[str, str] | None = None, drained: Iterable[str] = ()) -> None:
        """Starts the engine; `drained` instances start drained (an operator's drain kept across a restart)."""
        await self.netlink.open()
        await self.plumbing.start(resume or {})    # VMACs first: the interface dump, sockets and VIPs find them
        self.links.configure(self.config)
        interfaces = self.links.show(await self.netlink.interfaces())
        self.engine = Engine(self.config, interfaces)
        self._feed(self.engine.drain(sorted(drained), True, self._now()))
        self._protect_owner_addresses(interfaces)
        self._remove_stale_vips(resume or {})
        self._sync_sockets(interfaces)
        self.notify.start()
        self.tasks = [self.loop.create_task(watch_links(self.links_changed)),
                      self.loop.create_task(self._link_worker())]
        self._sync_script_tasks()
        self.trackers = TrackerMonitors(self.loop, self.engine, now_us, self.emit, self._trackers_observed)
        self.trackers.sync(self.config, initial=True)
        delay_ms = self.config.sections["startup"].vrrp_startup_delay_ms if "startup" in self.config.sections else 0
        if delay_ms:
            log.info("vrrp_startup_delay: the instances start in %.3f s", delay_ms / 1000)
            self.start_timer = self.loop.call_later(delay_ms / 1000, self._start_engine, resume)
        else:
            self._start_engine(resume)

    def _start_engine(self, resume: dict[str, str] | None) -> None:
        self.start_timer = None
        self._feed(self.engine.start(self._now(), resume))

    async def stop(self) -> None:
        """Priority-0 adverts and VIP removal for every MASTER, then notify_stop scripts, then close."""
        if self.engine is not None:
            self._feed(self.engine.shutdown(self._now()))
        for task in (*self.script_tasks.values(), *self.garp_bursts.values(), *self.rx_scripts.values()):
            task.cancel()
        if self.trackers is not None:
            self.trackers.close()
        for handle in self.pace_timers.values():
            handle.cancel()
        await self.notify.drain(10.0)
        await self.notify.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, *self.script_tasks.values(), *self.garp_bursts.values(),
                             *self.rx_scripts.values(), return_exceptions=True)
        for handle in (self.timer, self.bulk_timer, self.start_timer):
            if handle:
                handle.cancel()
        for sock in self.sockets.values():
            self._close_socket(sock)
        await self.plumbing.stop()
        self.links.close()
        self.announcer.close()
        self.netlink.close()

    async def apply(self, config: AgentConfig) -> None:
        self.config = config
        self.notify.user, self.notify.secure = config.script_user, config.enable_script_security
        self.datagrams.clear()
        self.advert_plans.clear()
        self._read_all()
        self.links.configure(config)
        pacing = config.sections.get("garp_pacing") or GarpPacing()
        if pacing != self.pacer.pacing:
            for handle in self.pace_timers.values():
                handle.cancel()
            self.pace_timers.clear()
            self.pacer = GarpPacer(pacing)
        if await self.plumbing.prepare(config):     # new VMACs: the engine and the VIPs must know them
            self._feed(self.engine.set_interfaces(self.links.show(await self.netlink.interfaces()), self._now()))
        self._feed(self.engine.reconfigure(config, self._now()))
        await self.plumbing.applied(config, {name: inst.state.state for name, inst in self.engine.instances.items()})
        self._sync_sockets(self.engine.interfaces)
        self._sync_script_tasks()
        self.trackers.sync(config, initial=False)

    def drain(self, names: list[str] | None, drained: bool) -> None:
        self._read_all()
        self._feed(self.engine.drain(names, drained, self._now()))

    def status(self) -> dict:
        if self.engine is None:
            return {"instances": {}, "vrrp": {"io_errors": dict(self.io_errors)}}
        self._read_all()   # what already arrived counts (status is computed on request, not kept per packet)
        at_us = now_us()
        # each instance made when it is sent, not all at once (daemon/parts.py)
        status = {"instances": LazyEntries(self.engine.instances, functools.partial(self._instance_status, at_us=at_us)),
                  **engine_summary(self.engine, at_us)}
        status["vrrp"]["io_errors"] = dict(self.io_errors)
        status["vrrp"]["static"] = self.plumbing.static_status()
        return status

    def _instance_status(self, name: str, at_us: int) -> dict:
        inst = self.engine.instances[name]
        entry = instance_status(self.engine, name, inst, at_us)
        self.plumbing.annotate(name, entry)
        entry["advert_jitter_ms"] = jitter_status(inst.advert_late)
        return entry

    # engine plumbing ----------------------------------------------------------------------------

    def _feed(self, outputs: list[Output]) -> None:
        masters_changed = False
        for output in outputs:
            try:
                self._execute(output)
            except Exception as exc:  # noqa: BLE001 - one failed action must not stop VRRP
                log.error("%s: %s failed: %s", output.instance, type(output.action).__name__, exc)
            if isinstance(output.action, StateChanged) and State.MASTER in (output.action.old, output.action.new):
                masters_changed = True
        if masters_changed:
            self._sync_filters()
        self._rearm()

    def _rearm(self) -> None:
        """One event-loop timer, at the engine's next deadline (deadlines.wake_us: a takeover's early); kept as it
        is when that did not change, which is the common case (a BACKUP's deadlines move later, lazily)."""
        upcoming = self.engine.next_timer() if self.engine else None
        if upcoming is None:
            wake_us = None
        elif upcoming[1]:
            wake_us = wake_at_us(upcoming[0], True, now_us(), SPIN_AHEAD_US, FINAL_WAIT_US)
        else:
            wake_us = upcoming[0]   # an advert timer: at its deadline (wake_at_us)
        self.takeover_pending = upcoming is not None and upcoming[1]
        self._set_bulk_readers()
        if wake_us == self.timer_at_us and (self.timer is not None or wake_us is None):
            return
        if self.timer:
            self.timer.cancel()
        self.timer, self.timer_at_us = None, wake_us
        if wake_us is not None:
            self.timer = self.call_at(wake_us / 1e6, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = self.timer_at_us = None
        # armed for an advert timer (the MASTER's steady state): no takeover to judge. Everything that makes a
        # takeover the next deadline goes through _feed() and _rearm(), which set takeover_pending.
        upcoming = self.engine.next_timer() if self.takeover_pending else None
        if upcoming is not None and upcoming[1]:
            self._read_all()   # the adverts that wait on the bulk sockets come first, at their arrival times
            upcoming = self.engine.next_timer()
            if upcoming is None or not upcoming[1] or now_us() < upcoming[0] - SPIN_AHEAD_US:
                self._rearm()   # moved by those adverts (the steady state), or not yet close enough
                return
            while now_us() < upcoming[0]:
                pass
            self._read_all()   # what arrived up to the deadline comes first (kernel arrival time)
        self._feed(self.engine.tick(self._now()))

    def _on_script(self, name: str, result: ScriptResult) -> None:
        before = self.engine.health.get(name)
        self._read_all()
        self._feed(self.engine.script_result(name, result.success, self._now(), result.exit_code, result.error))
        after = self.engine.health.get(name)
        if before is None or before.ok != after.ok:
            state = "ok" if after.ok else "failed"
            log.info("script %s %s%s", name, state, f" ({result.error})" if result.error else "",
                     extra=fields(event="tracker", tracker="script", name=name, state=state, reason=result.error))
            self.emit({"event": "tracker", "tracker": "script", "name": name, "state": state,
                       "exit_code": result.exit_code, "error": result.error})

    async def _link_worker(self) -> None:
        while True:
            await self.links_changed.wait()
            await asyncio.sleep(0.005)
            self.links_changed.clear()
            try:
                interfaces = await self.netlink.interfaces()
            except Exception as exc:  # noqa: BLE001 - keep the engine running; retried on the next event
                log.error("interface dump failed: %s", exc)
                continue
            self._links_shown(self.links.show(interfaces))

    def _links_shown(self, interfaces: dict[str, InterfaceInfo]) -> None:
        """A new view of the interfaces (a link change, or a delayed one come due)."""
        self._report_link_changes(self.engine.interfaces, interfaces)
        self._read_all()
        self._sync_sockets(interfaces)
        self._feed(self.engine.set_interfaces(interfaces, self._now()))

    def _report_link_changes(self, old: dict[str, InterfaceInfo], new: dict[str, InterfaceInfo]) -> None:
        for name in sorted(set(old) | set(new)):
            was = old.get(name).up if name in old else None
            now = new.get(name).up if name in new else None
            if was != now and name in self._tracked_interfaces():
                state = "up" if now else ("down" if now is False else "gone")
                log.info("interface %s %s", name, state, extra=fields(event="tracker", tracker="interface",
                                                                      name=name, state=state))
                self.emit({"event": "tracker", "tracker": "interface", "name": name, "state": state})

    def _tracked_interfaces(self) -> set[str]:
        names = set()
        for inst in self.config.vrrp_instances.values():
            names.add(inst.interface)
            names.update(t.name for t in inst.track_interfaces)
        return names

    def _sync_script_tasks(self) -> None:
        used = {t.name for i in self.config.vrrp_instances.values() for t in i.track_scripts}
        for name in list(self.script_tasks):
            script = self.config.vrrp_scripts.get(name)
            task = self.script_tasks[name]
            if name not in used or script is None or getattr(task, "hanode_script", None) != self._script_identity(script):
                task.cancel()
                del self.script_tasks[name]
        for name in used - set(self.script_tasks):
            script = self.config.vrrp_scripts[name]
            user = script.user or self.config.script_user
            task = self.loop.create_task(run_periodically(
                script.script, script.interval_ms / 1000, script.timeout_ms / 1000, user,
                lambda result, name=name: self._on_script(name, result), secure=self.config.enable_script_security))
            task.hanode_script = self._script_identity(script)  # type: ignore[attr-defined]
            self.script_tasks[name] = task

    def _trackers_observed(self, **observed) -> None:
        self._read_all()
        self._feed(self.engine.trackers_observed(self._now(), **observed))

    def _script_identity(self, script) -> tuple:
        """What a running vrrp_script task was started with: a reload that changes any of it restarts the task."""
        return (script, script.user or self.config.script_user, self.config.enable_script_security)

    def _protect_owner_addresses(self, interfaces: dict[str, InterfaceInfo]) -> None:
        """An address owner's VIP is the interface's own address: never remove what was there before us."""
        for inst in self.config.vrrp_instances.values():
            if inst.is_owner:
                for vip in inst.vips:
                    dev = vip.dev or inst.interface
                    if dev in interfaces and vip.address in interfaces[dev].ipv4:
                        self.protected_vips.add((vip.address, dev))

    def _remove_stale_vips(self, resume: dict[str, str]) -> None:
        for name, inst in self.config.vrrp_instances.items():
            if inst.is_owner or resume.get(name) == "MASTER":
                continue
            for vip in inst.vips + inst.excluded_vips:
                try:
                    if self.netlink.del_vip(vip, inst.interface):
                        log.warning("%s: removed stale VIP %s left on %s (this node is not MASTER)",
                                    name, vip.address, vip.dev or inst.interface)
                except OSError as exc:
                    log.error("%s: cannot remove stale VIP %s: %s", name, vip.address, exc)
