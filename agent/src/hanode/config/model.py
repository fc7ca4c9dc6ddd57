"""The agent's validated configuration: frozen dataclasses with units in the names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Vip:
    address: str
    prefixlen: int
    family: int  # 4 or 6
    dev: str | None = None
    label: str | None = None
    scope: str | None = None
    broadcast: str | None = None
    use_vmac: bool = False  # keepalived's `use_vmac` word: this address gets a VMAC of its own on its dev

    def text(self) -> str:
        parts = [f"{self.address}/{self.prefixlen}"]
        for word, value in (("dev", self.dev), ("label", self.label), ("scope", self.scope), ("brd", self.broadcast)):
            if value:
                parts.append(f"{word} {value}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class TrackedInterface:
    name: str
    weight: int = 0  # 0: down means FAULT
    weight_reverse: bool = False  # keepalived's `weight N reverse`: the effect turned round (hanode.vrrp.track)


@dataclass(frozen=True, slots=True)
class TrackedScript:
    name: str
    weight: int | None = None  # None: the vrrp_script's own weight
    weight_reverse: bool | None = None  # None: the vrrp_script's own


@dataclass(frozen=True, slots=True)
class VrrpScript:
    name: str
    script: str
    interval_ms: int = 1000
    timeout_ms: int = 1000
    weight: int = 0
    rise: int = 1
    fall: int = 1
    user: str | None = None
    init_fail: bool = False
    weight_reverse: bool = False


@dataclass(frozen=True, slots=True)
class TrackedRef:
    """An instance's (or sync group's) track_process / track_file entry."""
    name: str
    weight: int | None = None  # None: the tracker's own weight
    weight_reverse: bool | None = None  # None: the tracker's own


@dataclass(frozen=True, slots=True)
class TrackProcess:
    """vrrp_track_process: how many running processes match, against a quorum (hanode.vrrp.proctrack)."""
    name: str
    process: str                    # the comm (at most 15 characters) or, with full_command, argv[0]
    params: tuple[str, ...] = ()    # the arguments after it (param_match says how they compare)
    param_match: str = "none"       # none | exact | initial | partial (keepalived's)
    full_command: bool = False
    weight: int = 0
    quorum: int = 1
    quorum_max: int | None = None   # None: no upper bound
    fork_delay_ms: int = 0          # quorum gained: reported this much later (delay sets both)
    terminate_delay_ms: int = 0     # quorum lost: reported this much later
    weight_reverse: bool = False


@dataclass(frozen=True, slots=True)
class TrackFile:
    """track_file (vrrp_track_file): the integer in a file, times the weight, added to the priority."""
    name: str
    file: str
    weight: int = 1
    init_value: int | None = None   # init_file: written at start when the file is missing (or always: overwrite)
    init_overwrite: bool = False
    weight_reverse: bool = False


@dataclass(frozen=True, slots=True)
class Authentication:
    auth_type: str  # "PASS" or "AH" (hanode.vrrp.ah)
    auth_pass: str


@dataclass(frozen=True, slots=True)
class NotifyScripts:
    master: str | None = None
    backup: str | None = None
    fault: str | None = None
    stop: str | None = None
    generic: str | None = None  # `notify`: called with TYPE NAME STATE PRIORITY


@dataclass(frozen=True, slots=True)
class GarpSettings:
    master_delay_ms: int = 5000     # garp_master_delay: second burst after this
    master_repeat: int = 5          # garp_master_repeat: GARPs per burst
    master_refresh_ms: int = 0      # garp_master_refresh: periodic refresh while MASTER (0 = off)
    master_refresh_repeat: int = 1  # garp_master_refresh_repeat
    interval_ms: int = 0            # garp_interval: delay between GARPs of one burst
    lower_prio_repeat: int = 5      # garp_lower_prio_repeat: GARPs when a MASTER hears a lower priority (0: none)
    lower_prio_delay_ms: int = 5000  # garp_lower_prio_delay: their second burst after this (0: none)


@dataclass(frozen=True, slots=True)
class Vmac:
    """A macvlan (private mode) the agent creates for an instance: keepalived's use_vmac / use_vmac_addr."""
    ifname: str
    mac: str        # 00:00:5e:00:01:VRID (IPv4), 00:00:5e:00:02:VRID (IPv6), or the MAC given
    base: str       # the interface it sits on
    family: int     # IPv4: IPv6 off on it; IPv6: a link-local address, no address generated from the MAC


@dataclass(frozen=True, slots=True)
class Ipvlan:
    """An L2 ipvlan the agent creates for an instance: keepalived's use_ipvlan."""
    ifname: str
    base: str
    address: str | None = None      # with its prefix length: "198.51.100.5/24"
    mode: str = "bridge"            # bridge | private | vepa


@dataclass(frozen=True, slots=True)
class VrrpInstance:
    name: str
    interface: str
    virtual_router_id: int
    priority: int = 100
    advert_int_cs: int = 100
    version: int = 2
    family: int = 4
    initial_state: str = "BACKUP"
    nopreempt: bool = False
    preempt_delay_ms: int = 0
    unicast_src_ip: str | None = None
    unicast_peers: tuple[str, ...] = ()
    authentication: Authentication | None = None
    vips: tuple[Vip, ...] = ()
    excluded_vips: tuple[Vip, ...] = ()
    track_interfaces: tuple[TrackedInterface, ...] = ()
    track_scripts: tuple[TrackedScript, ...] = ()
    track_processes: tuple[TrackedRef, ...] = ()
    track_files: tuple[TrackedRef, ...] = ()
    dont_track_primary: bool = False
    notify: NotifyScripts = field(default_factory=NotifyScripts)
    garp: GarpSettings = field(default_factory=GarpSettings)
    v3_checksum_as_v2: bool = False
    smtp_alert: bool | None = None
    # virtual MAC / ipvlan (hanode.config.parse_vrrp_net); VIPs that go on them name them as their dev
    vmac: Vmac | None = None
    vmac_xmit_base: bool = False
    address_vmacs: tuple[Vmac, ...] = ()    # use_vmac_addr and the `use_vmac` word of an address
    ipvlan: Ipvlan | None = None
    garp_extra_if_ms: int = 0
    garp_extra_if_all: bool = False
    # multicast group and unicast peers
    mcast_dst_ip: str = ""                  # vrrp_mcast_group4/6 unless the instance sets it ("": RFC's group)
    check_unicast_src: bool = False
    unicast_fault_no_peer: bool = False
    unicast_ttl: int | None = None
    # added on MASTER, removed on leaving it (hanode.config.iproute / iprule)
    virtual_routes: tuple[Any, ...] = ()
    virtual_rules: tuple[Any, ...] = ()
    # notifications and timers (hanode.config.parse_vrrp_notify)
    notify_master_rx_lower_pri: str | None = None   # run when a MASTER hears a lower priority advert
    notify_priority_changes: bool = False           # effective priority changes go to the notify FIFO
    down_timer_adverts: int = 3                     # Master_Down_Interval = this many adverts + Skew_Time
    # strict and accept mode (hanode.config.parse_vrrp_strict)
    strict_mode: bool = False
    accept: bool = True                     # False: traffic to the VIPs dropped while MASTER (hanode.vrrp.noaccept)
    promote_secondaries: bool = False
    skip_check_adv_addr: bool = False
    lower_prio_no_advert: bool = False      # a MASTER does not answer a lower priority's advert (strict: always)

    @property
    def unicast(self) -> bool:
        return bool(self.unicast_peers)

    @property
    def multicast_group(self) -> str:
        return self.mcast_dst_ip or ("224.0.0.18" if self.family == 4 else "ff02::12")

    @property
    def wire_interface(self) -> str:
        """Where adverts are sent and received: the VMAC (unless vmac_xmit_base), the ipvlan, or the interface."""
        if self.vmac and not self.vmac_xmit_base:
            return self.vmac.ifname
        if self.ipvlan:
            return self.ipvlan.ifname
        return self.interface

    @property
    def vmacs(self) -> tuple[Vmac, ...]:
        return ((self.vmac,) if self.vmac else ()) + self.address_vmacs

    @property
    def is_owner(self) -> bool:
        return self.priority == 255


@dataclass(frozen=True, slots=True)
class SyncGroup:
    name: str
    group: tuple[str, ...]
    notify: NotifyScripts = field(default_factory=NotifyScripts)
    smtp_alert: bool | None = None
    # trackers of the group: every member tracks them (weight 0 unless tracking_weight)
    track_interfaces: tuple[TrackedInterface, ...] = ()
    track_scripts: tuple[TrackedScript, ...] = ()
    track_processes: tuple[TrackedRef, ...] = ()
    track_files: tuple[TrackedRef, ...] = ()
    tracking_weight: bool = False   # sync_group_tracking_weight
    notify_priority_changes: bool | None = None     # its members' default


@dataclass(frozen=True, slots=True)
class AgentConfig:
    router_id: str
    control_socket: str = "/run/hanode/agent.sock"
    script_user: str | None = None
    enable_script_security: bool = True
    vrrp_scripts: dict[str, VrrpScript] = field(default_factory=dict)
    vrrp_instances: dict[str, VrrpInstance] = field(default_factory=dict)
    vrrp_sync_groups: dict[str, SyncGroup] = field(default_factory=dict)
    vrrp_track_processes: dict[str, TrackProcess] = field(default_factory=dict)
    track_files: dict[str, TrackFile] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)  # parsed sections owned by other subsystems (lvs, alerts...)

    def sync_group_of(self, instance: str) -> SyncGroup | None:
        for group in self.vrrp_sync_groups.values():
            if instance in group.group:
                return group
        return None
