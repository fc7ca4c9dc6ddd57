"""The VRRP process's receiving side (a part of VrrpRunner): sockets per interface and family, their filters, and
reading adverts into the engine.

Adverts that need action now (priority 0, and those for a VRID this node is MASTER of) wake the loop at once
(the urgent socket, vrrp/io.py and vrrp/bpf.py); the ordinary ones a BACKUP only notes are read in batches, at
most one batch per BULK_GAP_US, and always before a takeover deadline is judged. Each packet is fed at its
kernel arrival time, in arrival order, so no deadline moves. An advert identical to the last one an instance
accepted only re-arms its timer (Engine.receive_repeat)."""

from __future__ import annotations

import logging
from operator import itemgetter

from hanode.vrrp.actions import State
from hanode.vrrp.datagram import uses_ah
from hanode.vrrp.engine import InterfaceInfo, Output
from hanode.vrrp.io import Packet, VrrpSocket, now_us

log = logging.getLogger("hanode.vrrp")
# Without a takeover deadline pending, the ordinary adverts (the bulk sockets) are read at most once per this
# long. With one, they are read when it comes up (it cannot pass before they are: each re-arms it), so a BACKUP
# at any scale wakes about once per Master_Down_Interval minus an advert interval in steady state.
BULK_GAP_US = 20_000
BY_ARRIVAL = itemgetter(0)


class Receiving:
    """Mixed into VrrpRunner: uses its loop, engine, sockets, arrival clock, bulk-reading state and _feed()."""

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

    def _sync_sockets(self, interfaces: dict[str, InterfaceInfo]) -> None:
        self.advert_plans.clear()   # they hold the sockets they send on
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
