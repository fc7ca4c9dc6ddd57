"""The VRRP process's asyncio glue: sockets and netlink in, engine steps, actions out, in order.

Actions run at once, inside the callback that produced them (a timer, a readable socket, a link change), in
the engine's order: a takeover's VIPs are in the kernel and its advert is on the wire before the callback
returns, with no hop through a queue. Every action is synchronous; the only thing that waits is a GARP burst
with a garp_interval, whose later rounds run as a task of their own (cancelled when the VIPs go), so that it
never holds back an advert.

Receiving (see vrrp/io.py and vrrp/bpf.py): adverts that need action now (priority 0, and those for a VRID
this node is MASTER of) wake the loop at once; the ordinary ones a BACKUP only notes are read in batches, at
most one batch per BULK_GAP_US, and always before a takeover deadline is judged. Each packet is fed at its
kernel arrival time, in arrival order, so no deadline moves. An advert identical to the last one an instance
accepted only re-arms its timer (Engine.receive_repeat)."""

from __future__ import annotations

import asyncio
import functools
import logging
import shlex
import time
from operator import itemgetter
from typing import Callable, Iterable

from hanode.config.model import AgentConfig, Vip, VrrpInstance
from hanode.config.parse_garp import GarpPacing
from hanode.daemon.logs import fields
from hanode.daemon.parts import LazyEntries
from hanode.vrrp import garp
from hanode.vrrp.actions import (AddVips, Conflict, DelVips, GroupStateChanged, PriorityChanged, RxLowerPriority,
                                 SendAdvert, SendGarp, State, StateChanged)
from hanode.vrrp.deadlines import wake_at_us
from hanode.vrrp.engine import Engine, InterfaceInfo, Output
from hanode.vrrp.garp_pace import GarpPacer
from hanode.vrrp.linkview import LinkView
from hanode.vrrp.io import ArrivalClock, NeighbourAnnouncer, Packet, VrrpSocket
from hanode.vrrp.netlink import Netlink, watch_links
from hanode.vrrp.notify import group_notify, instance_notify
from hanode.vrrp.plumbing import Plumbing
from hanode.vrrp.datagram import advert_datagram, uses_ah
from hanode.vrrp.scripts import NOTIFY_TIMEOUT_S, NotifyQueue, ScriptResult, run_command, run_periodically
from hanode.vrrp.status import engine_summary, instance_status, jitter_status
from hanode.vrrp.tracker_io import TrackerMonitors

log = logging.getLogger("hanode.vrrp")
CONFLICT_REPORT_US = 30_000_000
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
# Without a takeover deadline pending, the ordinary adverts (the bulk sockets) are read at most once per this
# long. With one, they are read when it comes up (it cannot pass before they are: each re-arms it), so a BACKUP
# at any scale wakes about once per Master_Down_Interval minus an advert interval in steady state.
BULK_GAP_US = 20_000
BY_ARRIVAL = itemgetter(0)


def now_us() -> int:
    return time.monotonic_ns() // 1000


def ipv6_forwarding(ifname: str) -> bool:
    """keepalived sets the NA Router flag when the interface forwards IPv6."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding", encoding="ascii") as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False


class VrrpRunner:
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
        self.timer: asyncio.TimerHandle | None = None
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
        wake_us = None if upcoming is None else wake_at_us(upcoming[0], upcoming[1], now_us(), SPIN_AHEAD_US,
                                                           FINAL_WAIT_US)
        self.takeover_pending = upcoming is not None and upcoming[1]
        self._set_bulk_readers()
        if wake_us == self.timer_at_us and (self.timer is not None or wake_us is None):
            return
        if self.timer:
            self.timer.cancel()
        self.timer, self.timer_at_us = None, wake_us
        if wake_us is not None:
            self.timer = self.loop.call_at(wake_us / 1e6, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = self.timer_at_us = None
        upcoming = self.engine.next_timer()
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

    # receiving ----------------------------------------------------------------------------------

    def _on_urgent(self) -> None:
        self._read_all()

    def _on_bulk(self) -> None:
        """Ordinary adverts while no takeover is pending: read them now unless the last read was under
        BULK_GAP_US ago. Then the readers go off (the kernel queues) and the sockets are read every BULK_GAP_US
        while adverts keep coming; a read that finds none turns the readers on again."""
        wait_us = self.bulk_read_us + BULK_GAP_US - now_us()
        if wait_us <= 0:
            self._read_all()
            return
        self.bulk_gap = True
        self._set_bulk_readers()
        self.bulk_timer = self.loop.call_later(wait_us / 1e6, self._bulk_tick)

    def _bulk_tick(self) -> None:
        self.bulk_timer = None
        if self._read_all() and not self.takeover_pending:
            self.bulk_timer = self.loop.call_later(BULK_GAP_US / 1e6, self._bulk_tick)
            return
        self.bulk_gap = False
        self._set_bulk_readers()

    def _set_bulk_readers(self) -> None:
        reading = not self.takeover_pending and not self.bulk_gap
        if reading == self.bulk_reading:
            return
        self.bulk_reading = reading
        for sock in self.sockets.values():
            if reading:
                self.loop.add_reader(sock.bulk.fileno(), self._on_bulk)
            else:
                self.loop.remove_reader(sock.bulk.fileno())

    def _read_all(self) -> int:
        """Every packet waiting on every socket, into the engine in arrival order, each at its arrival time;
        returns how many there were. Repeats only move deadlines later: the timer stays as it is (it fires
        early, finds the deadline moved and is set again: Deadlines is lazy the same way)."""
        if self.engine is None:
            return 0
        packets: list[Packet] = []
        self.arrivals.begin()
        for sock in self.sockets.values():
            sock.drain(packets, self.arrivals)
        self.bulk_read_us = self.arrivals.mono_ns // 1000
        if not packets:
            return 0
        packets.sort(key=BY_ARRIVAL)
        engine = self.engine
        repeat = engine.receive_repeat
        outputs: list[Output] = []
        full = False
        last_arrival, last_ident = None, None
        for packet in packets:
            arrival, ident = packet[0], packet[1]
            if arrival == last_arrival and ident == last_ident:
                continue   # the same packet from both sockets while their filters changed
            last_arrival, last_ident = arrival, ident
            if not repeat(ident, arrival):
                full = True
                outputs += engine.receive(packet[2].received(packet), arrival, ident)
        self.clock_us = max(self.clock_us, packets[-1][0])
        if full:
            self._feed(outputs)
        return len(packets)

    def _sync_filters(self) -> None:
        """Each socket's urgent VRIDs: those its instances are MASTER of."""
        masters: dict[tuple[str, int], set[int]] = {key: set() for key in self.sockets}
        for inst in self.engine.instances.values():
            cfg = inst.config
            if inst.state.state == State.MASTER and (cfg.wire_interface, cfg.family) in masters:
                masters[(cfg.wire_interface, cfg.family)].add(cfg.virtual_router_id)
        for key, sock in self.sockets.items():
            try:
                sock.set_masters(frozenset(masters[key]))
            except OSError as exc:
                log.error("cannot set the receive filters on %s (IPv%d): %s", key[0], key[1], exc)

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

    # resources ----------------------------------------------------------------------------------

    def _sync_sockets(self, interfaces: dict[str, InterfaceInfo]) -> None:
        wanted: dict[tuple[str, int], set[str]] = {}   # (the interface adverts use, family) -> multicast groups
        ah: set[tuple[str, int]] = set()                # ... where an instance authenticates with AH
        for inst in self.config.vrrp_instances.values():
            if inst.wire_interface in interfaces:
                wanted.setdefault((inst.wire_interface, inst.family), set()).add(inst.multicast_group)
                if uses_ah(inst):
                    ah.add((inst.wire_interface, inst.family))
        for key in list(self.sockets):
            sock = self.sockets[key]
            if (key not in wanted or sock.ifindex != interfaces[key[0]].index or set(sock.groups) != wanted[key]
                    or (sock.ah is not None) != (key in ah)):
                self._close_socket(self.sockets.pop(key))
        for key in set(wanted) - set(self.sockets):
            ifname, family = key
            try:
                sock = VrrpSocket(ifname, interfaces[ifname].index, family, tuple(sorted(wanted[key])), key in ah)
            except OSError as exc:
                log.error("cannot open VRRP socket on %s (IPv%d): %s", ifname, family, exc)
                continue
            self.sockets[key] = sock
            urgent, bulk = sock.filenos()
            self.loop.add_reader(urgent, self._on_urgent)
            if sock.ah is not None:
                self.loop.add_reader(sock.ah.fileno(), self._on_urgent)
            if self.bulk_reading:
                self.loop.add_reader(bulk, self._on_bulk)
        if self.engine is not None:
            self._sync_filters()

    def _close_socket(self, sock: VrrpSocket) -> None:
        for fd in sock.filenos() + ((sock.ah.fileno(),) if sock.ah is not None else ()):
            self.loop.remove_reader(fd)
        sock.close()

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

    # actions ------------------------------------------------------------------------------------

    def _execute(self, output: Output) -> None:
        action, cfg = output.action, output.config
        if isinstance(action, SendAdvert):
            self._send_advert(output, action.priority)
        elif isinstance(action, AddVips):
            self._add_vips(cfg, action.vips)
        elif isinstance(action, DelVips):
            self._stop_garp_burst(cfg.name)
            self._del_vips(cfg, action.vips)
        elif isinstance(action, SendGarp):
            self._send_garp(cfg, action.vips, action.repeat)
        elif isinstance(action, StateChanged):
            self._state_changed(output, action)
        elif isinstance(action, GroupStateChanged):
            self._group_changed(action)
        elif isinstance(action, Conflict):
            self._conflict(output, action)
        elif isinstance(action, RxLowerPriority):
            self._rx_lower_priority(output.config, action)
        elif isinstance(action, PriorityChanged):
            self.emit({"event": "priority", "instance": output.instance, "state": action.state.value,
                       "priority": action.priority, "vrid": output.config.virtual_router_id})

    def _send_advert(self, output: Output, priority: int) -> None:
        cfg, src = output.config, output.params.primary_address
        sock = self.sockets.get((cfg.wire_interface, cfg.family))
        if sock is None or src is None:
            return
        hop_limit = cfg.unicast_ttl if cfg.unicast and cfg.family == 6 else None
        seq = self.engine.next_ah_seq(cfg.name) if uses_ah(cfg) else 0    # AH: one sequence number per advert
        for dst in cfg.unicast_peers or (cfg.multicast_group,):
            key = (cfg.name, priority, src, dst)
            data = self.datagrams.get(key)
            if seq:
                data = advert_datagram(cfg, priority, src, dst, seq)
            elif data is None:
                data = self.datagrams[key] = advert_datagram(cfg, priority, src, dst)
            try:
                sock.send(data, dst, src=src, hop_limit=hop_limit)
            except OSError as exc:
                self.io_errors["send_err"] += 1
                log.warning("%s: cannot send advert to %s: %s", cfg.name, dst, exc)

    def _add_vips(self, cfg: VrrpInstance, vips: tuple[Vip, ...]) -> None:
        self.plumbing.noaccept.vips_added(cfg, vips)    # no_accept: blocked before they answer (keepalived's order)
        for vip in vips:
            try:
                self.netlink.add_vip(vip, cfg.interface)
            except OSError as exc:
                self.io_errors["netlink_err"] += 1
                log.error("%s: cannot add VIP %s: %s", cfg.name, vip.text(), exc)

    def _del_vips(self, cfg: VrrpInstance, vips: tuple[Vip, ...]) -> None:
        for vip in vips:
            if (vip.address, vip.dev or cfg.interface) in self.protected_vips:
                continue
            try:
                self.netlink.del_vip(vip, cfg.interface)
            except OSError as exc:
                self.io_errors["netlink_err"] += 1
                log.error("%s: cannot remove VIP %s: %s", cfg.name, vip.text(), exc)
        self.plumbing.noaccept.vips_removed(cfg, vips)

    def _send_garp(self, cfg: VrrpInstance, vips: tuple[Vip, ...], repeat: int) -> None:
        """A burst of `repeat` rounds: all at once without a garp_interval, else the first now and the others
        from a task, one garp_interval apart (a newer burst of the instance replaces it)."""
        self._stop_garp_burst(cfg.name)
        rounds = 1 if cfg.garp.interval_ms else repeat
        for _round in range(rounds):
            self._announce(cfg, vips)
        if repeat > rounds:
            task = self.loop.create_task(self._garp_burst(cfg, vips, repeat - rounds), name=f"garp {cfg.name}")
            self.garp_bursts[cfg.name] = task
            task.add_done_callback(functools.partial(self._garp_burst_ended, cfg.name))

    def _garp_burst_ended(self, name: str, task: asyncio.Task) -> None:
        if self.garp_bursts.get(name) is task:
            del self.garp_bursts[name]

    async def _garp_burst(self, cfg: VrrpInstance, vips: tuple[Vip, ...], rounds: int) -> None:
        for _round in range(rounds):
            await asyncio.sleep(cfg.garp.interval_ms / 1000)
            self._announce(cfg, vips)

    def _stop_garp_burst(self, name: str) -> None:
        task = self.garp_bursts.pop(name, None)
        if task is not None:
            task.cancel()
        self.pacer.drop(name)

    def _announce(self, cfg: VrrpInstance, vips: tuple[Vip, ...]) -> None:
        """One GARP / NA per VIP: now, or when the interface's garp_interval / gna_interval allows (garp_pace)."""
        interfaces = self.engine.interfaces
        bases = {v.ifname: v.base for v in cfg.vmacs}
        now = now_us()
        for vip in vips:
            iface = interfaces.get(vip.dev or cfg.interface)
            if iface is None or not iface.mac:
                continue
            key, send_now = self.pacer.submit(bases.get(iface.name, iface.name), vip.family, cfg.name,
                                              (cfg, iface, vip), now)
            if send_now:
                self._send_announcement(cfg, iface, vip)
            else:
                self._arm_pacing(key)

    def _arm_pacing(self, key: tuple[str, int]) -> None:
        if key not in self.pace_timers:
            delay_us = max(0, self.pacer.next_free_us[key] - now_us())
            self.pace_timers[key] = self.loop.call_later(delay_us / 1e6, self._paced_due, key)

    def _paced_due(self, key: tuple[str, int]) -> None:
        del self.pace_timers[key]
        waiting = self.pacer.due(key, now_us())
        if waiting is not None:
            self._send_announcement(*waiting)
        if self.pacer.waiting(key):
            self._arm_pacing(key)

    def _send_announcement(self, cfg: VrrpInstance, iface: InterfaceInfo, vip: Vip) -> None:
        mac = garp.parse_mac(iface.mac)
        try:
            if vip.family == 4:
                self.announcer.send_arp(iface.name, garp.gratuitous_arp_frame(mac, vip.address))
            else:
                router = ipv6_forwarding(iface.name)
                self.announcer.send_na(iface.index, garp.unsolicited_na(mac, vip.address, router=router))
        except OSError as exc:
            self.io_errors["send_err"] += 1
            log.warning("%s: cannot announce %s: %s", cfg.name, vip.address, exc)

    def _state_changed(self, output: Output, change: StateChanged) -> None:
        log.info("%s: %s -> %s (%s)", output.instance, change.old.value, change.new.value, change.reason,
                 extra=fields(event="transition", instance=output.instance, vrid=output.config.virtual_router_id,
                              from_state=change.old.value, to_state=change.new.value, priority=change.priority,
                              reason=change.reason))
        self.emit({"event": "transition", "instance": output.instance, "from": change.old.value,
                   "to": change.new.value, "reason": change.reason, "priority": change.priority,
                   "vrid": output.config.virtual_router_id, "resumed": change.resumed})
        self.plumbing.state_changed(output.config, change.old, change.new)
        for argv in instance_notify(output.config, change):
            self.notify.put(argv)

    def _group_changed(self, change: GroupStateChanged) -> None:
        log.info("sync group %s: %s -> %s (%s)", change.group, change.old.value, change.new.value, change.reason,
                 extra=fields(event="group_transition", group=change.group, from_state=change.old.value,
                              to_state=change.new.value, reason=change.reason))
        self.emit({"event": "group_transition", "group": change.group, "from": change.old.value,
                   "to": change.new.value, "reason": change.reason})
        for argv in group_notify(self.config.vrrp_sync_groups.get(change.group), change):
            self.notify.put(argv)

    def _rx_lower_priority(self, cfg: VrrpInstance, event: RxLowerPriority) -> None:
        """keepalived's MASTER_RX_LOWER_PRI: notify_master_rx_lower_pri runs (no arguments), the event goes out."""
        log.debug("%s: MASTER heard %s with lower priority %d", cfg.name, event.peer, event.peer_priority)
        self.emit({"event": "master_rx_lower_pri", "instance": cfg.name, "peer": event.peer,
                   "peer_priority": event.peer_priority, "priority": event.priority, "vrid": cfg.virtual_router_id})
        running = self.rx_scripts.get(cfg.name)
        if cfg.notify_master_rx_lower_pri and (running is None or running.done()):
            # its own task, not the notify queue: a run per advert while a lower master persists must not hold
            # back the state notify scripts; while one runs, the next advert starts none (no pile-up)
            self.rx_scripts[cfg.name] = self.loop.create_task(self._run_rx_script(cfg))

    async def _run_rx_script(self, cfg: VrrpInstance) -> None:
        argv = shlex.split(cfg.notify_master_rx_lower_pri)
        result = await run_command(argv, NOTIFY_TIMEOUT_S, self.config.script_user,
                                   secure=self.config.enable_script_security)
        if not result.success:
            log.warning("%s: notify_master_rx_lower_pri failed: %s", cfg.name,
                        result.error or f"exit {result.exit_code}")

    def _conflict(self, output: Output, conflict: Conflict) -> None:
        """Counted every time (engine); logged, evented and so alerted once per peer and kind every 30 s."""
        key = (output.instance, conflict.peer, conflict.kind)
        now = now_us()
        if now - self.conflicts_reported.get(key, -CONFLICT_REPORT_US) < CONFLICT_REPORT_US:
            return
        self.conflicts_reported[key] = now
        log.warning("%s: %s: %s", output.instance, conflict.kind, conflict.detail,
                    extra=fields(event="conflict", instance=output.instance, kind=conflict.kind, peer=conflict.peer,
                                 peer_priority=conflict.peer_priority, reason=conflict.detail))
        self.emit({"event": "conflict", "instance": output.instance, "peer": conflict.peer,
                   "peer_priority": conflict.peer_priority, "kind": conflict.kind, "detail": conflict.detail,
                   "vrid": output.config.virtual_router_id})
