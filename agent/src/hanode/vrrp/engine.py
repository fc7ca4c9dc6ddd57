"""All VRRP instances of one agent: packet dispatch, timers, reload (trackers and sync groups: sync_group.py).
Pure: no I/O, no clock.

The runner feeds it received packets, link and script results, and the time; it returns Outputs, each an
action for the I/O shell together with the instance config it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from hanode.config.model import AgentConfig, VrrpInstance
from hanode.vrrp import fsm
from hanode.vrrp.accept import check_advert, check_ttl
from hanode.vrrp.actions import Action, AddVips, Conflict, DelVips, RxLowerPriority, SendGarp, State, StateChanged
from hanode.vrrp.deadlines import Deadlines
from hanode.vrrp.repeat import AdvertRepeat, Lateness, TickRepeat, advert_down_after, tick_counted
from hanode.vrrp.ah import check_ah
from hanode.vrrp.packet import PacketError, decode_advert, password_bytes
from hanode.vrrp.output import Output
from hanode.vrrp.sync_group import SyncGroups
from hanode.vrrp.timers import advert_interval_us
from hanode.vrrp.track import ScriptHealth, initial_health, observe


@dataclass(frozen=True)
class InterfaceInfo:
    name: str
    index: int = 0
    up: bool = False
    mac: str = ""
    ipv4: tuple[str, ...] = ()
    ipv6_link_local: str | None = None


@dataclass(frozen=True)
class Received:
    interface: str
    family: int
    src: str
    dst: str
    ttl: int | None
    payload: bytes
    ah: bytes = b""          # an AH advert: its IPv4 header and AH header (hanode.vrrp.ah); payload is the VRRP message


@dataclass
class Peer:
    priority: int
    last_seen_us: int
    checksum_form: str


@dataclass
class Instance:
    config: VrrpInstance
    params: fsm.Params
    state: fsm.InstanceState
    own_faults: tuple[str, ...] = ()
    peers: dict[str, Peer] = field(default_factory=dict)
    conflicts: int = 0
    last_conflict: dict | None = None
    advert_late: Lateness | None = None
    repeat_ident: object = None   # under which Engine._repeats holds this instance's AdvertRepeat
    tick_repeat: TickRepeat | None = None
    ah_seq: int = 0               # AH: the last sequence number sent or accepted (keepalived's ipsecah_counter)


def primary_address(cfg: VrrpInstance, iface: InterfaceInfo | None) -> str | None:
    """keepalived's source address: unicast_src_ip, else the interface's first non-VIP address."""
    if cfg.unicast_src_ip:
        return cfg.unicast_src_ip
    if iface is None:
        return None
    if cfg.family == 6:
        return iface.ipv6_link_local
    vips = {v.address for v in cfg.vips + cfg.excluded_vips}
    return next((a for a in iface.ipv4 if a not in vips), None)


def build_params(cfg: VrrpInstance, iface: InterfaceInfo | None) -> fsm.Params:
    return fsm.Params(
        name=cfg.name, vrid=cfg.virtual_router_id, version=cfg.version, base_priority=cfg.priority,
        advert_int_cs=cfg.advert_int_cs, nopreempt=cfg.nopreempt, preempt_delay_us=cfg.preempt_delay_ms * 1000,
        primary_address=primary_address(cfg, iface), vips=cfg.vips + cfg.excluded_vips, garp=cfg.garp,
        down_timer_adverts=cfg.down_timer_adverts, lower_prio_no_advert=cfg.lower_prio_no_advert)


def identity(cfg: VrrpInstance) -> tuple:
    """What makes an instance the same router on the wire; anything else can change in place."""
    return (cfg.interface, cfg.family, cfg.virtual_router_id, cfg.version, cfg.unicast_src_ip)


class Engine(SyncGroups):
    def __init__(self, config: AgentConfig, interfaces: Mapping[str, InterfaceInfo] | None = None,
                 check_unicast_src: bool = False, replays: bool = True):
        """replays=False: every event goes through the state machine (repeat.py's replays off: the reference
        the tests compare them with)."""
        self.config = config
        self.replays = replays
        self.interfaces: dict[str, InterfaceInfo] = dict(interfaces or {})
        self.check_unicast_src = check_unicast_src
        self.instances: dict[str, Instance] = {}
        self.health: dict[str, ScriptHealth] = {n: initial_health(s) for n, s in config.vrrp_scripts.items()}
        self.process_up: dict[str, bool] = {}    # vrrp_track_process -> quorum (hanode.vrrp.proctrack)
        self.file_values: dict[str, int] = {}    # track_file -> the integer read from it
        self.process_counts: dict[str, int] = {}  # vrrp_track_process -> matching processes running (status only)
        self.tracked: dict[str, tuple] = {}   # name -> (config, config with its sync group's trackers)
        self.group_states: dict[str, State] = {}
        self.global_stats: dict[str, int] = {"packet_len_err": 0, "unknown_vrid": 0}
        self.foreign: dict[tuple[str, int], dict] = {}
        self.started = False
        self.resume: dict[str, str] = {}
        self.want_master: set[str] = set()  # sync group members held in BACKUP (keepalived's wantstate MASTER)
        self.deadlines = Deadlines()
        self.advert_grid: dict[int, int] = {}   # advert interval (µs) -> a time on which MASTERs of it send
        self._repeats: dict[object, AdvertRepeat] = {}   # ident of an instance's last accepted advert -> replay
        for name, cfg in config.vrrp_instances.items():
            self.instances[name] = self._new_instance(cfg)
        self._index_instances()

    # construction -------------------------------------------------------------------------------

    def _new_instance(self, cfg: VrrpInstance) -> Instance:
        params = build_params(cfg, self.interfaces.get(cfg.interface))
        return Instance(config=cfg, params=params, state=fsm.new_state(params))

    def _index_instances(self) -> None:
        """Which instance a packet belongs to: (interface, family, VRID), as the kernel delivers it (the interface
        adverts use: a VMAC's own unless vmac_xmit_base)."""
        self.by_key = {(i.config.wire_interface, i.config.family, i.config.virtual_router_id): n
                       for n, i in self.instances.items()}
        self._order = {name: index for index, name in enumerate(self.instances)}

    def _earliest(self, name: str) -> int | None:
        inst = self.instances.get(name)
        return None if inst is None else inst.state.earliest_deadline()

    # stepping -----------------------------------------------------------------------------------

    def _step(self, name: str, event: fsm.Event, now_us: int, propagate: bool = True) -> list[Output]:
        inst = self.instances[name]
        inst.state, actions = fsm.step(inst.params, inst.state, event, now_us)
        if inst.state.state == State.MASTER and inst.state.advert_at_us is not None:
            self._align_advert(inst, now_us)
        self.deadlines.lower(name, self._earliest(name))
        outputs = [Output(name, a, inst.config, inst.params) for a in actions]
        for action in actions:
            if isinstance(action, StateChanged):
                self.want_master.discard(name)
            if isinstance(action, Conflict):
                inst.conflicts += 1
                inst.last_conflict = {"peer": action.peer, "priority": action.peer_priority, "kind": action.kind,
                                      "detail": action.detail}
        if propagate:
            for action in actions:
                if isinstance(action, StateChanged):
                    outputs += self._sync_group(name, action, now_us)
            if any(isinstance(a, Conflict) for a in actions) and any(isinstance(a, SendGarp) for a in actions):
                outputs += self._group_garps(name, now_us)
        outputs += self._group_states(name, now_us)
        return outputs

    def _align_advert(self, inst: Instance, now_us: int) -> None:
        """MASTERs with the same advert interval send on one grid, so that they are served by one wake-up (and
        their adverts leave in one batch). The fsm restarts an advert timer from the moment of a takeover, of
        an answer to a priority-0 advert or of a re-assertion, which scatters 1,000 instances over the whole
        interval at scale (258 wake-ups a second measured at 200 instances / 0.1 s instead of 10). The next
        advert moves to the grid point before it, never after: one interval is shortened, once; a BACKUP never
        sees a longer one."""
        st = inst.state
        interval = advert_interval_us(inst.params.advert_int_cs)
        anchor = self.advert_grid.setdefault(interval, st.advert_at_us)
        grid = anchor + (st.advert_at_us - anchor) // interval * interval
        if now_us < grid < st.advert_at_us:
            st.advert_at_us = grid

    # tracking -----------------------------------------------------------------------------------

    # inputs -------------------------------------------------------------------------------------

    def start(self, now_us: int, resume: Mapping[str, str] | None = None) -> list[Output]:
        self.started = True
        self.resume = dict(resume or {})
        return self._retrack(now_us)

    def set_interfaces(self, interfaces: Mapping[str, InterfaceInfo], now_us: int) -> list[Output]:
        self.interfaces = dict(interfaces)
        for inst in self.instances.values():
            inst.params = build_params(inst.config, self.interfaces.get(inst.config.interface))
        return self._retrack(now_us)

    def script_result(self, name: str, success: bool, now_us: int, exit_code: int | None = None,
                      error: str | None = None) -> list[Output]:
        script = self.config.vrrp_scripts.get(name)
        if script is None:
            return []
        self.health[name] = observe(self.health.get(name, initial_health(script)), script, success, exit_code, error)
        return self._retrack(now_us)

    def trackers_observed(self, now_us: int, process_up: Mapping[str, bool] | None = None,
                          file_values: Mapping[str, int] | None = None,
                          process_counts: Mapping[str, int] | None = None) -> list[Output]:
        """New quorums of vrrp_track_processes and values of track_files (only those that changed need be given)."""
        self.process_counts.update(process_counts or {})
        self.process_up.update(process_up or {})
        self.file_values.update(file_values or {})
        return self._retrack(now_us)

    def receive(self, rx: Received, now_us: int, ident: object = None) -> list[Output]:
        """One received packet, at its arrival time. `ident`: what identifies this very packet (its bytes and
        interface); an accepted advert is remembered under it for receive_repeat()."""
        if len(rx.payload) < 2:
            self.global_stats["packet_len_err"] += 1
            return []
        vrid = rx.payload[1]
        name = self.by_key.get((rx.interface, rx.family, vrid))
        if name is None:
            self._record_foreign(rx, vrid, now_us)
            return []
        inst = self.instances[name]
        if rx.src == inst.params.primary_address:
            return []
        too_far = check_ttl(inst.config, rx.ttl)
        if too_far:
            self._count(inst, too_far.counter)
            return []
        try:
            advert = decode_advert(rx.payload, family=rx.family, src=rx.src, dst=rx.dst)
            ah_seq = self._check_ah(inst, rx)
        except PacketError as exc:
            self._count(inst, exc.counter)
            return []
        # keepalived's skip_check_adv_addr: a BACKUP skips the address check of its master's adverts
        follows = (inst.config.skip_check_adv_addr and inst.state.state == State.BACKUP
                   and rx.src == inst.state.master_address)
        rejection = check_advert(inst.config, advert, ttl=rx.ttl, src=rx.src, dst=rx.dst,
                                 check_unicast_src=self.check_unicast_src, check_addresses=not follows)
        if rejection:
            self._count(inst, rejection.counter)
            return self._rejected_while_master(name, inst, rejection, rx, advert, now_us)
        self._count(inst, "advert_rcvd")
        inst.ah_seq = max(inst.ah_seq, ah_seq)
        peer = inst.peers[rx.src] = Peer(priority=advert.priority, last_seen_us=now_us, checksum_form=advert.checksum_form)
        down_at = inst.state.master_down_at_us
        was_master = inst.state.state == State.MASTER
        event = fsm.Advert(rx.src, advert.priority, advert.max_advert_int_cs)
        outputs = self._step(name, event, now_us)
        if was_master and advert.priority and inst.state.state == State.MASTER:
            outputs.append(Output(name, RxLowerPriority(rx.src, advert.priority, inst.state.effective_priority),
                                  inst.config, inst.params))
        if inst.state.master_down_at_us != down_at:
            self.want_master.discard(name)  # it follows a master (or a priority-0 advert) again
        if ident is not None and self.replays:
            self._remember(name, inst, ident, event, peer, outputs, now_us)
        return outputs

    @staticmethod
    def _check_ah(inst: Instance, rx: Received) -> int:
        """An AH advert for an AH instance: its sequence number once its AH holds (0: no AH either side).
        keepalived's order: an AH header where none is expected, or none where one is, is authtype_mismatch."""
        auth = inst.config.authentication
        want = auth is not None and auth.auth_type == "AH"
        if bool(rx.ah) != want:
            raise PacketError("authtype_mismatch", "an AH advert, this instance does not use AH" if rx.ah
                              else "no AH header, this instance uses AH")
        if not want:
            return 0
        header_len = (rx.ah[0] & 0x0F) * 4
        return check_ah(rx.ah[:header_len], rx.ah[header_len:], rx.payload, src=rx.src,
                        key=password_bytes(auth.auth_pass), unicast=inst.config.unicast, last_seq=inst.ah_seq)

    def next_ah_seq(self, name: str) -> int:
        """The sequence number of an AH instance's next advert (one above any sent or accepted)."""
        inst = self.instances[name]
        inst.ah_seq += 1
        return inst.ah_seq

    def receive_repeat(self, ident: object, now_us: int) -> bool:
        """An advert identical to the last one an instance accepted (same bytes, same interface), while nothing
        else happened to the instance: it does what that one did, at its own arrival time (a BACKUP re-arms
        Master_Down, counts it, notes the peer). False when that does not hold: use receive()."""
        repeat = self._repeats.get(ident)
        if repeat is None:
            return False
        inst = repeat.inst
        st = inst.state
        if st is not repeat.state or inst.config is not repeat.config or inst.params is not repeat.params:
            return False
        st.stats["advert_rcvd"] += 1
        repeat.peer.last_seen_us = now_us
        if repeat.down_after_us is not None:
            st.master_down_at_us = now_us + repeat.down_after_us   # later: the deadline heap is lazy
            if self.want_master:
                self.want_master.discard(repeat.name)
        return True

    def _remember(self, name: str, inst: Instance, ident: object, event: fsm.Advert, peer: Peer,
                  outputs: list[Output], now_us: int) -> None:
        """Keeps the accepted advert's replay when the same advert later would do the same (repeat.py)."""
        self._forget_repeat(inst)
        if outputs:
            return
        repeatable, down_after = advert_down_after(inst.params, inst.state, event, now_us)
        if repeatable:
            inst.repeat_ident = ident
            self._repeats[ident] = AdvertRepeat(name, inst, inst.state, inst.config, inst.params, peer, down_after)

    def _forget_repeat(self, inst: Instance) -> None:
        if inst.repeat_ident is not None:
            self._repeats.pop(inst.repeat_ident, None)
            inst.repeat_ident = None

    def _rejected_while_master(self, name: str, inst: Instance, rejection, rx: Received, advert, now_us: int) -> list[Output]:
        """A MASTER hearing our VRID with another VIP set: a VRID collision or a misconfigured peer."""
        if rejection.counter != "addr_list_err" or rejection.from_stranger or inst.state.state != State.MASTER:
            return []
        event = fsm.PeerConflict(src=rx.src, priority=advert.priority, kind="vrid_collision",
                                 detail=f"VRID {advert.vrid} advertised by {rx.src} with another address list: {rejection.message}")
        return self._step(name, event, now_us)

    @staticmethod
    def _count(inst: Instance, counter: str) -> None:
        inst.state.stats[counter] = inst.state.stats.get(counter, 0) + 1

    def _record_foreign(self, rx: Received, vrid: int, now_us: int) -> None:
        self.global_stats["unknown_vrid"] += 1
        entry = self.foreign.setdefault((rx.interface, vrid), {"interface": rx.interface, "vrid": vrid, "count": 0})
        entry.update(src=rx.src, family=rx.family, last_seen_us=now_us)
        entry["count"] += 1

    def tick(self, now_us: int) -> list[Output]:
        """Steps every instance with a deadline at or before now_us (in config order)."""
        due = self.deadlines.pop_due(now_us, self._earliest)
        if len(due) > 1:
            due.sort(key=self._order.__getitem__)
        outputs: list[Output] = []
        for name in due:
            inst = self.instances[name]
            st = inst.state
            if st.advert_at_us is not None and st.advert_at_us <= now_us:
                if inst.advert_late is None:
                    inst.advert_late = Lateness()
                inst.advert_late.add(now_us - st.advert_at_us)
                if self._replay_tick(inst, now_us):
                    outputs.append(inst.tick_repeat.output)
                    self.deadlines.lower(name, self._earliest(name))
                    continue
            if not self._held_in_backup(name, inst, now_us):
                stepped = self._step(name, fsm.Tick(), now_us)
                outputs += stepped
                inst.tick_repeat = None
                if self.replays and len(stepped) == 1 and stepped[0].instance == name:
                    counted = tick_counted(inst.params, inst.state, stepped[0].action,
                                           advert_interval_us(inst.params.advert_int_cs))
                    if counted is not None:
                        inst.tick_repeat = TickRepeat(inst.state, inst.config, inst.params, stepped[0],
                                                      advert_interval_us(inst.params.advert_int_cs), counted)
            self.deadlines.lower(name, self._earliest(name))
        return outputs

    @staticmethod
    def _replay_tick(inst: Instance, now_us: int) -> bool:
        """The MASTER's advert timer, when its last one's replay holds (repeat.py) and it is the only deadline
        due: the same advert, the timer one interval on."""
        replay, st = inst.tick_repeat, inst.state
        if (replay is None or st is not replay.state or inst.config is not replay.config
                or inst.params is not replay.params or now_us >= st.advert_at_us + replay.interval_us):
            return False
        for at in (st.master_down_at_us, st.garp_delay_at_us, st.garp_refresh_at_us):   # the advert's only
            if at is not None and at <= now_us:
                return False
        st.advert_at_us += replay.interval_us
        for key, count in replay.counted:
            st.stats[key] += count
        return True

    def next_deadline(self) -> int | None:
        top = self.deadlines.peek(self._earliest)
        return None if top is None else top[0]

    def next_timer(self) -> tuple[int, bool] | None:
        """(the next deadline, whether it is a BACKUP's Master_Down: a takeover, whose timing is failover time)."""
        top = self.deadlines.peek(self._earliest)
        if top is None:
            return None
        st = self.instances[top[1]].state
        return top[0], st.state == State.BACKUP and st.master_down_at_us == top[0]

    def drain(self, names: list[str] | None, drained: bool, now_us: int) -> list[Output]:
        outputs: list[Output] = []
        for name in list(self.instances) if names is None else names:
            if name in self.instances:
                outputs += self._step(name, fsm.SetDrain(drained), now_us)
        return outputs

    def shutdown(self, now_us: int, names: list[str] | None = None) -> list[Output]:
        outputs: list[Output] = []
        for name in list(self.instances) if names is None else names:
            outputs += self._step(name, fsm.Shutdown(), now_us, propagate=False)
        return outputs

    # reload -------------------------------------------------------------------------------------

    def reconfigure(self, config: AgentConfig, now_us: int) -> list[Output]:
        """Keeps the state of instances whose identity did not change; the rest stop or start."""
        outputs: list[Output] = []
        old_instances = self.instances
        gone = [n for n, i in old_instances.items()
                if n not in config.vrrp_instances or identity(i.config) != identity(config.vrrp_instances[n])]
        outputs += self.shutdown(now_us, gone)
        for name in gone:
            self.resume.pop(name, None)  # a new router on the wire starts as BACKUP
        # a script keeps its last result across a reload (even with a new command or timing) until it reports
        # again: forgetting it would clear its FAULT or weight for one interval and flap the instance
        self.health = {n: self.health[n] if n in self.health else initial_health(s)
                       for n, s in config.vrrp_scripts.items()}
        self.config = config
        self.tracked.clear()
        self.process_up = {n: u for n, u in self.process_up.items() if n in config.vrrp_track_processes}
        self.file_values = {n: v for n, v in self.file_values.items() if n in config.track_files}
        self.instances = {}
        for name, cfg in config.vrrp_instances.items():
            old = old_instances.get(name)
            if old is None or name in gone:
                self.instances[name] = self._new_instance(cfg)
            else:
                self.instances[name] = old
                outputs += self._update_in_place(name, old, cfg, now_us)
        self._index_instances()
        self._repeats.clear()
        self.deadlines.clear()
        for name, inst in self.instances.items():
            inst.repeat_ident = inst.tick_repeat = None
            self.deadlines.lower(name, self._earliest(name))
        self.want_master = {n for n in self.want_master if n in self.instances and n not in gone}
        self.group_states = {g: s for g, s in self.group_states.items() if g in config.vrrp_sync_groups}
        return outputs + self._retrack(now_us)

    def _update_in_place(self, name: str, inst: Instance, cfg: VrrpInstance, now_us: int) -> list[Output]:
        """Same router on the wire: keep the state; a MASTER adds or removes only the VIPs that changed."""
        old_vips = inst.params.vips
        inst.config = cfg
        inst.params = build_params(cfg, self.interfaces.get(cfg.interface))
        if inst.state.state != State.MASTER:
            if cfg.version == 2:  # v2 times the master with its own advert_int (v3 adopts the master's)
                inst.state.master_adver_int_cs = cfg.advert_int_cs
            return []
        inst.state.master_adver_int_cs = cfg.advert_int_cs
        added = tuple(v for v in inst.params.vips if v not in old_vips)
        removed = tuple(v for v in old_vips if v not in inst.params.vips)
        actions: list[Action] = []
        if removed:
            actions.append(DelVips(removed))
        if added:
            actions += [AddVips(added), SendGarp(added, cfg.garp.master_repeat)]
        return [Output(name, a, cfg, inst.params) for a in actions]
