"""The VRRP process's asyncio glue: sockets and netlink in, engine steps, actions out, in order.

Actions run at once, inside the callback that produced them (a timer, a readable socket, a link change), in
the engine's order: a takeover's VIPs are in the kernel and its advert is on the wire before the callback
returns, with no hop through a queue. Every action is synchronous; the only thing that waits is a GARP burst
with a garp_interval, whose later rounds run as a task of their own (cancelled when the VIPs go), so that it
never holds back an advert."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Callable, Iterable

from hanode.config.model import AgentConfig, Vip, VrrpInstance
from hanode.daemon.logs import fields
from hanode.vrrp import garp
from hanode.vrrp.actions import (AddVips, Conflict, DelVips, GroupStateChanged, SendAdvert, SendGarp,
                                 StateChanged)
from hanode.vrrp.engine import Engine, InterfaceInfo, Output
from hanode.vrrp.io import NeighbourAnnouncer, VrrpSocket, multicast_group
from hanode.vrrp.netlink import Netlink, watch_links
from hanode.vrrp.notify import group_notify, instance_notify
from hanode.vrrp.packet import AUTH_NONE, AUTH_PASS, Advert, encode_advert, encode_ipv4, password_bytes
from hanode.vrrp.scripts import NotifyQueue, ScriptResult, run_periodically
from hanode.vrrp.status import engine_status

log = logging.getLogger("hanode.vrrp")
CONFLICT_REPORT_US = 30_000_000
# A VRRP deadline (advert, Master_Down) wakes the loop this much early; the rest is waited in a busy loop, so
# that the wake-up's own latency (the kernel's timer and scheduler, the event loop: 0.2-0.3 ms measured in the
# lab) is not added to the deadline. Costs this much CPU per timer that fires (0.3% on a 0.1 s advert_int).
SPIN_AHEAD_US = 300


# An advert's VRRP message depends only on these arguments (priority, addresses, source...): a master sends the
# same bytes every advert_int, so they are encoded once (IPv4's header, with its ident, is made per packet).
encoded_advert = functools.lru_cache(maxsize=256)(encode_advert)


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
        self.engine: Engine | None = None
        self.sockets: dict[tuple[str, int], VrrpSocket] = {}
        self.script_tasks: dict[str, asyncio.Task] = {}
        self.garp_bursts: dict[str, asyncio.Task] = {}   # instance -> later rounds of its GARP burst
        self.notify = NotifyQueue(config.script_user)
        self.links_changed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.timer: asyncio.TimerHandle | None = None
        self.protected_vips: set[tuple[str, str]] = set()
        self.ip_ident = 0
        self.io_errors: dict[str, int] = {"send_err": 0, "netlink_err": 0}
        self.jitter: dict[str, dict[str, float]] = {}
        self.conflicts_reported: dict[tuple[str, str, str], int] = {}
        self.clock_us = 0      # the latest time given to the engine: its clock never goes back

    def _now(self, at_us: int | None = None) -> int:
        """Now (or `at_us`, a packet's arrival), never earlier than a time already given to the engine."""
        self.clock_us = max(self.clock_us, now_us() if at_us is None else at_us)
        return self.clock_us

    # lifecycle ----------------------------------------------------------------------------------

    async def start(self, resume: dict[str, str] | None = None, drained: Iterable[str] = ()) -> None:
        """Starts the engine; `drained` instances start drained (an operator's drain kept across a restart)."""
        await self.netlink.open()
        interfaces = await self.netlink.interfaces()
        self.engine = Engine(self.config, interfaces)
        self._feed(self.engine.drain(sorted(drained), True, self._now()))
        self._protect_owner_addresses(interfaces)
        self._remove_stale_vips(resume or {})
        self._sync_sockets(interfaces)
        self.notify.start()
        self.tasks = [self.loop.create_task(watch_links(self.links_changed)),
                      self.loop.create_task(self._link_worker())]
        self._sync_script_tasks()
        self._feed(self.engine.start(self._now(), resume))

    async def stop(self) -> None:
        """Priority-0 adverts and VIP removal for every MASTER, then notify_stop scripts, then close."""
        if self.engine is not None:
            self._feed(self.engine.shutdown(self._now()))
        for task in (*self.script_tasks.values(), *self.garp_bursts.values()):
            task.cancel()
        await self.notify.drain(10.0)
        await self.notify.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, *self.script_tasks.values(), *self.garp_bursts.values(),
                             return_exceptions=True)
        if self.timer:
            self.timer.cancel()
        for sock in self.sockets.values():
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self.announcer.close()
        self.netlink.close()

    async def apply(self, config: AgentConfig) -> None:
        self.config = config
        self.notify.user = config.script_user
        self._feed(self.engine.reconfigure(config, self._now()))
        self._sync_sockets(self.engine.interfaces)
        self._sync_script_tasks()

    def drain(self, names: list[str] | None, drained: bool) -> None:
        self._feed(self.engine.drain(names, drained, self._now()))

    def status(self) -> dict:
        status = engine_status(self.engine, now_us()) if self.engine else {"instances": {}}
        status.setdefault("vrrp", {})["io_errors"] = dict(self.io_errors)
        for name, inst in status["instances"].items():
            entry = self.jitter.get(name)
            inst["advert_jitter_ms"] = {"last": round(entry["last"], 3), "max": round(entry["max"], 3),
                                        "mean": round(entry["sum"] / entry["count"], 3)} if entry else None
        return status

    # engine plumbing ----------------------------------------------------------------------------

    def _feed(self, outputs: list[Output]) -> None:
        for output in outputs:
            try:
                self._execute(output)
            except Exception as exc:  # noqa: BLE001 - one failed action must not stop VRRP
                log.error("%s: %s failed: %s", output.instance, type(output.action).__name__, exc)
        self._rearm()

    def _rearm(self) -> None:
        if self.timer:
            self.timer.cancel()
            self.timer = None
        deadline = self.engine.next_deadline() if self.engine else None
        if deadline is not None:
            self.timer = self.loop.call_at((deadline - SPIN_AHEAD_US) / 1e6, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        deadline = self.engine.next_deadline()
        if deadline is not None and now_us() < deadline:
            while now_us() < deadline:
                pass
            for sock in list(self.sockets.values()):   # what arrived meanwhile comes first (kernel arrival time)
                self._on_readable(sock)
        now = self._now()
        for name, inst in self.engine.instances.items():
            due = inst.state.advert_at_us
            if due is not None and due <= now:
                self._record_jitter(name, now - due)
        self._feed(self.engine.tick(now))

    def _record_jitter(self, name: str, late_us: int) -> None:
        """How late the advert timer fired: the advert interval's jitter as the network sees it."""
        entry = self.jitter.setdefault(name, {"last": 0.0, "max": 0.0, "sum": 0.0, "count": 0})
        late_ms = late_us / 1000
        entry["last"] = late_ms
        entry["max"] = max(entry["max"], late_ms)
        entry["sum"] += late_ms
        entry["count"] += 1

    def _on_readable(self, sock: VrrpSocket) -> None:
        outputs: list[Output] = []
        for packet, arrival_us in sock.receive_all():
            outputs += self.engine.receive(packet, self._now(arrival_us))
        self._feed(outputs)

    def _on_script(self, name: str, result: ScriptResult) -> None:
        before = self.engine.health.get(name)
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
            self._report_link_changes(self.engine.interfaces, interfaces)
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
        wanted = {(i.interface, i.family) for i in self.config.vrrp_instances.values() if i.interface in interfaces}
        for key in list(self.sockets):
            if key not in wanted or self.sockets[key].ifindex != interfaces[key[0]].index:
                sock = self.sockets.pop(key)
                self.loop.remove_reader(sock.fileno())
                sock.close()
        for key in wanted - set(self.sockets):
            ifname, family = key
            try:
                sock = VrrpSocket(ifname, interfaces[ifname].index, family)
            except OSError as exc:
                log.error("cannot open VRRP socket on %s (IPv%d): %s", ifname, family, exc)
                continue
            self.sockets[key] = sock
            self.loop.add_reader(sock.fileno(), self._on_readable, sock)

    def _sync_script_tasks(self) -> None:
        used = {t.name for i in self.config.vrrp_instances.values() for t in i.track_scripts}
        for name in list(self.script_tasks):
            script = self.config.vrrp_scripts.get(name)
            task = self.script_tasks[name]
            if name not in used or getattr(task, "hanode_script", None) != script:
                task.cancel()
                del self.script_tasks[name]
        for name in used - set(self.script_tasks):
            script = self.config.vrrp_scripts[name]
            user = script.user or self.config.script_user
            task = self.loop.create_task(run_periodically(
                script.script, script.interval_ms / 1000, script.timeout_ms / 1000, user,
                lambda result, name=name: self._on_script(name, result)))
            task.hanode_script = script  # type: ignore[attr-defined]
            self.script_tasks[name] = task

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

    def _send_advert(self, output: Output, priority: int) -> None:
        cfg, src = output.config, output.params.primary_address
        sock = self.sockets.get((cfg.interface, cfg.family))
        if sock is None or src is None:
            return
        auth = cfg.authentication
        advert = Advert(version=cfg.version, vrid=cfg.virtual_router_id, priority=priority,
                        max_advert_int_cs=cfg.advert_int_cs, addresses=tuple(v.address for v in cfg.vips),
                        auth_type=AUTH_PASS if auth else AUTH_NONE,
                        auth_data=password_bytes(auth.auth_pass) if auth else b"")
        for dst in cfg.unicast_peers or (multicast_group(cfg.family),):
            payload = encoded_advert(advert, family=cfg.family, src=src, dst=dst, v3_checksum_as_v2=cfg.v3_checksum_as_v2)
            try:
                if cfg.family == 4:
                    self.ip_ident = self.ip_ident % 65535 + 1
                    sock.send(encode_ipv4(payload, src=src, dst=dst, ident=self.ip_ident), dst)
                else:
                    sock.send(payload, dst, src=src)
            except OSError as exc:
                self.io_errors["send_err"] += 1
                log.warning("%s: cannot send advert to %s: %s", cfg.name, dst, exc)

    def _add_vips(self, cfg: VrrpInstance, vips: tuple[Vip, ...]) -> None:
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

    def _announce(self, cfg: VrrpInstance, vips: tuple[Vip, ...]) -> None:
        interfaces = self.engine.interfaces
        for vip in vips:
            iface = interfaces.get(vip.dev or cfg.interface)
            if iface is None or not iface.mac:
                continue
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
