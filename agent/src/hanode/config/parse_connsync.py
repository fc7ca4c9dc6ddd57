"""`lvs_sync_daemon` (keepalived's global_defs keyword, for the IPVS backend) and `conntrack_sync` (conntrackd,
for the nftables backend): connections that survive a failover. Every problem with its field path.

    lvs_sync_daemon: {interface: eth1, instance: VI_1, id: 51, maxlen: 1472, port: 8848, ttl: 1, group: 224.0.0.81}
    conntrack_sync:  {interface: eth1, instance: VI_1, transport: multicast, group: 225.0.0.50, port: 3780}
                     {interface: eth1, instance: VI_1, transport: udp, peer: 203.0.113.2, port: 3780}

A config may carry both (one file for a fleet whose nodes differ in kernels): the one for the backend in
use runs. Having only the other one is an error, since the connections would not survive.
"""

from __future__ import annotations

import ipaddress
import string

from hanode.config.host import HostCaps
from hanode.config.model import AgentConfig
from hanode.config.problems import Problems, Reader
from hanode.lvs import syncd
from hanode.lvs.conntrackd import DEFAULT_GROUP, DEFAULT_PORT, TRANSPORTS, ConntrackSync
from hanode.lvs.model import ConnSyncConfig, LvsConfig
from hanode.lvs.syncd import SyncDaemon

SECTION = "connsync"
KEYS = ("lvs_sync_daemon", "conntrack_sync")


def parse(reader: Reader, problems: Problems, config: AgentConfig, host: HostCaps | None = None) -> ConnSyncConfig:
    lvs = _sub(reader, "lvs_sync_daemon", problems, lambda r: _lvs_sync_daemon(r, config))
    ct = _sub(reader, "conntrack_sync", problems, lambda r: _conntrack_sync(r, config))
    section = ConnSyncConfig(lvs, ct)
    if (lvs or ct) and not problems.errors:
        _check_backend(config.sections.get("lvs") or LvsConfig(), section, problems, host)
    return section


def _sub(reader: Reader, key: str, problems: Problems, parse_block):
    if not reader.has(key) or reader.raw(key) is None:
        reader.used.add(key)
        return None
    sub = Reader(reader.mapping(key), reader.at(key), problems)
    if not sub.ok:
        return None
    value = parse_block(sub)
    sub.finish()
    return value


def _interface(reader: Reader) -> str | None:
    name = reader.string("interface")
    if name is not None and (len(name) > syncd.IFNAME_MAX or "/" in name or " " in name):
        reader.problems.error(reader.at("interface"), f"{name!r} is not an interface name (1..15 characters)")
        return None
    return name


def _instance(reader: Reader, config: AgentConfig, required: bool) -> str | None:
    name = reader.string("instance", None)
    if name is None:
        if required:
            reader.problems.error(reader.at("instance"), "is required: the VRRP instance whose state it follows")
        return None
    if name not in config.vrrp_instances:
        known = ", ".join(sorted(config.vrrp_instances)) or "none"
        reader.problems.error(reader.at("instance"), f"no vrrp_instances.{name} (configured: {known})")
        return None
    return name


def _multicast(reader: Reader, key: str, default: str | None, v4_only: bool = False) -> str | None:
    text = reader.string(key, default)
    if text is None:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        reader.problems.error(reader.at(key), f"{text!r} is not an IP address")
        return None
    if not address.is_multicast or (v4_only and address.version != 4):
        reader.problems.error(reader.at(key), f"{text} is not an IPv4 multicast address" if v4_only
                              else f"{text} is not a multicast address")
        return None
    return str(address)


def _lvs_sync_daemon(reader: Reader, config: AgentConfig) -> SyncDaemon | None:
    interface = _interface(reader)
    instance = _instance(reader, config, required=False)
    fields = dict(sync_id=reader.integer("id", None, 0, 255), maxlen=reader.integer("maxlen", None, 1, syncd.MAXLEN_MAX),
                  port=reader.integer("port", None, 1, 65535), ttl=reader.integer("ttl", None, 1, 255),
                  group=_multicast(reader, "group", None))
    if interface is None:
        return None
    return SyncDaemon(interface, instance, **fields)


def _conntrack_sync(reader: Reader, config: AgentConfig) -> ConntrackSync | None:
    interface = _interface(reader)
    if interface is not None and all(c in string.hexdigits for c in interface):
        reader.problems.error(reader.at("interface"), f"{interface!r}: conntrackd's config parser reads a name made "
                              "of hex digits only as an address; rename the interface")
        interface = None
    instance = _instance(reader, config, required=True)
    transport = reader.string("transport", "multicast", TRANSPORTS)
    group = _multicast(reader, "group", DEFAULT_GROUP, v4_only=True)
    port = reader.integer("port", DEFAULT_PORT, 1, 65535)
    peer = _peer(reader, transport)
    if interface is None or instance is None or group is None or (transport == "udp" and peer is None):
        return None
    return ConntrackSync(interface, instance, transport, group, port, peer)


def _peer(reader: Reader, transport: str) -> str | None:
    text = reader.string("peer", None)
    if transport == "multicast":
        if text is not None:
            reader.problems.error(reader.at("peer"), "is for transport udp (multicast reaches every peer)")
        return None
    if text is None:
        reader.problems.error(reader.at("peer"), "is required with transport udp: the other director's address")
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        reader.problems.error(reader.at("peer"), f"{text!r} is not an IP address")
        return None


def _check_backend(lvs: LvsConfig, section: ConnSyncConfig, problems: Problems, host: HostCaps | None) -> None:
    """The sync for the backend that will run: `auto` as the host's kernel decides (host capabilities passed in)."""
    backend, why = lvs.backend, "lb_backend is set"
    if backend == "auto":
        if host is None:
            if (section.lvs_sync_daemon is None) != (section.conntrack_sync is None):
                only = "lvs_sync_daemon" if section.lvs_sync_daemon is not None else "conntrack_sync"
                problems.warn(only, "lb_backend auto: whether this suits the backend is not checked, this host's "
                                    "capabilities are unknown here (the agent checks them on the host when it starts)")
            return
        backend, why = host.auto_backend()
    if backend == "nftables" and section.lvs_sync_daemon is not None and section.conntrack_sync is None:
        problems.error("lvs_sync_daemon", f"drives the IPVS sync daemon, but the backend here is nftables ({why}): "
                       "add conntrack_sync (conntrackd) so that connections survive a failover")
    if backend == "ipvs" and section.conntrack_sync is not None and section.lvs_sync_daemon is None:
        problems.error("conntrack_sync", f"is for the nftables backend, but the backend here is IPVS ({why}): "
                       "add lvs_sync_daemon so that connections survive a failover")
