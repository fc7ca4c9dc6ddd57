"""The kernel's IPVS connection-sync daemon, as keepalived's `lvs_sync_daemon` drives it (pure).

A director running IPVS tells its peers about the connections it schedules: the kernel's *master* sync
daemon multicasts them on an interface, the *backup* sync daemon of the other directors receives them and
adds them to their own connection table, so that a backup that becomes master forwards the established
connections to the same real servers. keepalived 2.2.7 (ipvswrapper.c, vrrp.c, vrrp_scheduler.c,
check_daemon.c) runs it like this, and so does hanode:

- with a VRRP instance to follow: the backup daemon from the start (whatever the instance's first state),
  on becoming MASTER the backup daemon stops and the master daemon starts, on leaving MASTER (to BACKUP or
  FAULT) the master daemon stops and the backup daemon starts again; at shutdown the running one stops;
- without one (`lvs_sync_daemon eth1` alone): both daemons run all the time;
- the sync id defaults to the followed instance's virtual_router_id (0 without an instance).

Here that is a reconcile: desired_daemons(config, vrrp_state) -> {state: params}, plan(desired, actual)
-> [ops]; plus the generic-netlink codec of IPVS_CMD_NEW_DAEMON / DEL_DAEMON / GET_DAEMON (pyroute2 0.9.7
knows the command numbers but carries IPVS_CMD_ATTR_DAEMON as opaque bytes). The socket is in
lvs/ipvs_syncd.py.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

MASTER, BACKUP = "master", "backup"
KERNEL_STATE = {MASTER: 1, BACKUP: 2}               # IP_VS_STATE_MASTER / IP_VS_STATE_BACKUP
STATE_FROM_KERNEL = {v: k for k, v in KERNEL_STATE.items()}

# include/uapi/linux/ip_vs.h
CMD_NEW_DAEMON, CMD_DEL_DAEMON, CMD_GET_DAEMON = 9, 10, 11
CMD_ATTR_DAEMON = 3
ATTR_STATE, ATTR_MCAST_IFN, ATTR_SYNC_ID, ATTR_SYNC_MAXLEN = 1, 2, 3, 4
ATTR_MCAST_GROUP, ATTR_MCAST_GROUP6, ATTR_MCAST_PORT, ATTR_MCAST_TTL = 5, 6, 7, 8
IFNAME_MAX = 15                                     # IP_VS_IFNAME_MAXLEN - 1
MAXLEN_MAX = 65535 - 20 - 8                         # keepalived's bound: an IPv4 UDP datagram


class SyncdError(ValueError):
    """A daemon message that cannot be decoded."""


@dataclass(frozen=True)
class SyncDaemon:
    """`lvs_sync_daemon <INTERFACE> [<VRRP_INSTANCE>] [id N] [maxlen N] [port N] [ttl N] [group ADDR]`.
    None means the kernel's default (maxlen from the MTU, port 8848, ttl 1, group 224.0.0.81 / ff02::81)."""
    interface: str
    instance: str | None = None
    sync_id: int | None = None                      # None: the instance's VRID (0 without an instance)
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class DaemonParams:
    """One running daemon as the kernel holds it (the fields the config left to the kernel are None when
    desired, and whatever the kernel chose when dumped)."""
    interface: str
    sync_id: int
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: str | None = None

    def satisfies(self, wanted: DaemonParams) -> bool:
        """Does this running daemon have every parameter `wanted` sets?"""
        if (self.interface, self.sync_id) != (wanted.interface, wanted.sync_id):
            return False
        return all(w is None or w == have for w, have in ((wanted.maxlen, self.maxlen), (wanted.port, self.port),
                                                          (wanted.ttl, self.ttl), (wanted.group, self.group)))


@dataclass(frozen=True)
class StartDaemon:
    state: str
    params: DaemonParams


@dataclass(frozen=True)
class StopDaemon:
    state: str


def params_for(config: SyncDaemon, vrid: int | None) -> DaemonParams:
    sync_id = config.sync_id if config.sync_id is not None else (vrid if config.instance is not None else 0) or 0
    return DaemonParams(config.interface, sync_id, config.maxlen, config.port, config.ttl, config.group)


def desired_daemons(config: SyncDaemon | None, vrrp_state: str | None, vrid: int | None) -> dict[str, DaemonParams]:
    """Which daemons should run for the followed instance's state ("MASTER", "BACKUP", "FAULT", None when
    not known yet). No config: none."""
    if config is None:
        return {}
    params = params_for(config, vrid)
    if config.instance is None:
        return {MASTER: params, BACKUP: params}
    return {MASTER: params} if vrrp_state == "MASTER" else {BACKUP: params}


def plan(desired: dict[str, DaemonParams], actual: dict[str, DaemonParams]) -> list[StartDaemon | StopDaemon]:
    """Stops first (a daemon no longer wanted, or running with other parameters), then starts, in keepalived's
    order: becoming master stops the backup daemon before starting the master one."""
    stops = [StopDaemon(state) for state in (BACKUP, MASTER)
             if state in actual and (state not in desired or not actual[state].satisfies(desired[state]))]
    stopped = {op.state for op in stops}
    starts = [StartDaemon(state, desired[state]) for state in (MASTER, BACKUP)
              if state in desired and (state not in actual or state in stopped)]
    return [*stops, *starts]


def describe(op: StartDaemon | StopDaemon) -> str:
    if isinstance(op, StopDaemon):
        return f"stop the {op.state} sync daemon"
    p = op.params
    extra = "".join(f" {name} {value}" for name, value in (("maxlen", p.maxlen), ("port", p.port), ("ttl", p.ttl),
                                                           ("group", p.group)) if value is not None)
    return f"start the {op.state} sync daemon on {p.interface} id {p.sync_id}{extra}"


# ----- generic-netlink attributes ------------------------------------------------------------------------------

def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length & 3)


def encode(op: StartDaemon | StopDaemon) -> tuple[int, bytes]:
    """(command, attributes) of one op: IPVS_CMD_ATTR_DAEMON nesting the daemon's attributes, as ipvsadm's
    libipvs sends them (numbers in host order, the group in network order)."""
    inner = _attr(ATTR_STATE, struct.pack("=I", KERNEL_STATE[op.state]))
    if isinstance(op, StopDaemon):
        return CMD_DEL_DAEMON, _attr(CMD_ATTR_DAEMON, inner)
    p = op.params
    inner += _attr(ATTR_MCAST_IFN, p.interface.encode() + b"\0") + _attr(ATTR_SYNC_ID, struct.pack("=I", p.sync_id))
    if p.maxlen is not None:
        inner += _attr(ATTR_SYNC_MAXLEN, struct.pack("=H", p.maxlen))
    if p.port is not None:
        inner += _attr(ATTR_MCAST_PORT, struct.pack("=H", p.port))
    if p.ttl is not None:
        inner += _attr(ATTR_MCAST_TTL, struct.pack("=B", p.ttl))
    if p.group is not None:
        group = ipaddress.ip_address(p.group)
        inner += _attr(ATTR_MCAST_GROUP if group.version == 4 else ATTR_MCAST_GROUP6, group.packed)
    return CMD_NEW_DAEMON, _attr(CMD_ATTR_DAEMON, inner)


def parse_attrs(data: bytes) -> dict[int, bytes]:
    attrs = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4 or offset + length > len(data):
            raise SyncdError(f"daemon attribute {kind & 0x3FFF} has a bad length {length}")
        attrs[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


def decode(daemon_attrs: bytes) -> tuple[str, DaemonParams]:
    """The payload of one IPVS_CMD_ATTR_DAEMON of a GET_DAEMON reply -> (state, params)."""
    return decode_attrs(parse_attrs(daemon_attrs))


def decode_attrs(a: dict[int, bytes]) -> tuple[str, DaemonParams]:
    """The same from attributes already split ({type: payload})."""
    try:
        state = STATE_FROM_KERNEL[struct.unpack("=I", a[ATTR_STATE])[0]]
        interface = a[ATTR_MCAST_IFN].split(b"\0", 1)[0].decode()
        sync_id = struct.unpack("=I", a[ATTR_SYNC_ID])[0]
    except (KeyError, struct.error, UnicodeDecodeError) as exc:
        raise SyncdError(f"daemon reply without a usable state, interface or sync id ({exc!r})") from exc
    group = None
    if ATTR_MCAST_GROUP in a and len(a[ATTR_MCAST_GROUP]) == 4:
        group = str(ipaddress.IPv4Address(a[ATTR_MCAST_GROUP]))
    elif ATTR_MCAST_GROUP6 in a and len(a[ATTR_MCAST_GROUP6]) == 16:
        group = str(ipaddress.IPv6Address(a[ATTR_MCAST_GROUP6]))

    def number(kind: int, fmt: str) -> int | None:
        raw = a.get(kind)
        return struct.unpack(fmt, raw[:struct.calcsize(fmt)])[0] if raw and len(raw) >= struct.calcsize(fmt) else None

    return state, DaemonParams(interface, sync_id, number(ATTR_SYNC_MAXLEN, "=H"), number(ATTR_MCAST_PORT, "=H"),
                               number(ATTR_MCAST_TTL, "=B"), group)
