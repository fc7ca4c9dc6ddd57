"""The VRRP process's actions (a part of VrrpRunner): what the engine decided, done at once, in its order.

Every action is synchronous (an advert sent, VIPs added or removed through netlink, a GARP, an event, a notify
script queued); the only thing that waits is a GARP burst with a garp_interval, whose later rounds run as a task
of their own (cancelled when the VIPs go), so that it never holds back an advert."""

from __future__ import annotations

import asyncio
import functools
import logging
import shlex

from hanode.config.model import Vip, VrrpInstance
from hanode.daemon.logs import fields
from hanode.vrrp import garp
from hanode.vrrp.actions import (AddVips, Conflict, DelVips, GroupStateChanged, PriorityChanged, RxLowerPriority,
                                 SendAdvert, SendGarp, StateChanged)
from hanode.vrrp.datagram import advert_datagram, uses_ah
from hanode.vrrp.engine import InterfaceInfo, Output
from hanode.vrrp.io import now_us
from hanode.vrrp.notify import group_notify, instance_notify
from hanode.vrrp.scripts import NOTIFY_TIMEOUT_S, run_command

log = logging.getLogger("hanode.vrrp")
CONFLICT_REPORT_US = 30_000_000


def ipv6_forwarding(ifname: str) -> bool:
    """keepalived sets the NA Router flag when the interface forwards IPv6."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding", encoding="ascii") as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False


class Effects:
    """Mixed into VrrpRunner: uses its engine, sockets, netlink, plumbing, announcer, GARP pacer and timers,
    notify queue, emit() and counters."""

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
        """The advert's datagrams, made once per (instance, priority, source, destination). The MASTER's steady
        state sends one Output over and over (engine: its tick's replay): for it, the sends themselves are
        kept (advert_plans, per instance, while the Output, the sockets and the config stay the same)."""
        plan = self.advert_plans.get(output.instance)
        if plan is not None and plan[0] is output:
            _output, send, src, hop_limit, sends = plan
            for data, dst in sends:
                try:
                    send(data, dst, src, hop_limit)
                except OSError as exc:
                    self._send_failed(output, dst, exc)
            return
        cfg, src = output.config, output.params.primary_address
        sock = self.sockets.get((cfg.wire_interface, cfg.family))
        if sock is None or src is None:
            return
        hop_limit = cfg.unicast_ttl if cfg.unicast and cfg.family == 6 else None
        seq = self.engine.next_ah_seq(cfg.name) if uses_ah(cfg) else 0    # AH: one sequence number per advert
        sends = []
        for dst in cfg.unicast_peers or (cfg.multicast_group,):
            key = (cfg.name, priority, src, dst)
            data = self.datagrams.get(key)
            if seq:
                data = advert_datagram(cfg, priority, src, dst, seq)
            elif data is None:
                data = self.datagrams[key] = advert_datagram(cfg, priority, src, dst)
            sends.append((data, dst))
            try:
                sock.send(data, dst, src=src, hop_limit=hop_limit)
            except OSError as exc:
                self._send_failed(output, dst, exc)
        if not seq:
            self.advert_plans[output.instance] = (output, sock.send, src, hop_limit, sends)

    def _send_failed(self, output: Output, dst, exc: OSError) -> None:
        self.io_errors["send_err"] += 1
        log.warning("%s: cannot send advert to %s: %s", output.config.name, dst, exc)

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
