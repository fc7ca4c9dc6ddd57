"""Connection-tracking sync for the nftables backend with Debian's conntrackd (pure: config text, files,
and the commands of each VRRP state).

The nftables backend DNATs with conntrack, so a connection survives a failover when the new master's
conntrack table holds its entry. conntrackd (conntrack-tools) replicates the table between directors in
FT-FW mode (reliable, acknowledged, over a dedicated link); hanode writes its config, runs it as a child
of the checker process and switches it on the followed VRRP instance's transitions exactly as conntrackd's
documented keepalived integration (doc/sync/primary-backup.sh) does:

    MASTER   -c commit the external cache (the master's connections) into the kernel table
             -f flush the internal and external caches
             -R resync the internal cache with the kernel table
             -B send a bulk update to the backups
    BACKUP   -t shorten the kernel's conntrack timers (entries this node no longer forwards age out)
             -n request a resync from the master
    FAULT    -t

(the script's `-s` "is conntrackd running?" check and restart is hanode's process supervision).
Several agents on one machine (namespace labs) each get their own config, UNIX socket, lock and log
file, named after the agent's control socket.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

TRANSPORTS = ("multicast", "udp")
DEFAULT_GROUP = "225.0.0.50"
DEFAULT_PORT = 3780
PROTOCOLS = ("TCP", "UDP", "SCTP")
COMMANDS = {"MASTER": (("-c",), ("-f",), ("-R",), ("-B",)),
            "BACKUP": (("-t",), ("-n",)),
            "FAULT": (("-t",),)}
WHAT = {"-c": "commit the external cache", "-f": "flush the caches", "-R": "resync with the kernel table",
        "-B": "bulk-send to the backups", "-t": "shorten the kernel timers", "-n": "request a resync"}


@dataclass(frozen=True)
class ConntrackSync:
    """The `conntrack_sync` config block."""
    interface: str
    instance: str
    transport: str = "multicast"
    group: str = DEFAULT_GROUP                      # multicast: the IPv4 group
    port: int = DEFAULT_PORT                        # multicast: conntrackd's `Group`; udp: its `Port`
    peer: str | None = None                         # udp: the other director's address on the sync link


@dataclass(frozen=True)
class Files:
    config: str
    socket: str
    lock: str
    log: str


def files_for(control_socket: str) -> Files:
    """'/run/hanode/agent.sock' -> /run/hanode/agent.conntrackd.{conf,ctl,lock,log}."""
    stem = control_socket[:-5] if control_socket.endswith(".sock") else control_socket
    return Files(f"{stem}.conntrackd.conf", f"{stem}.conntrackd.ctl", f"{stem}.conntrackd.lock",
                 f"{stem}.conntrackd.log")


def commands_for(state: str | None) -> tuple[tuple[str, ...], ...]:
    """The client commands for entering `state` (an unknown state is a BACKUP, as the instance starts)."""
    return COMMANDS.get(state or "BACKUP", COMMANDS["BACKUP"])


def render(sync: ConntrackSync, files: Files, local_address: str) -> str:
    """conntrackd.conf for FT-FW over the sync link; `local_address` is the sync interface's own address."""
    local = ipaddress.ip_address(local_address)
    if sync.transport == "multicast":
        transport = [
            "Multicast {",
            f"    IPv4_address {sync.group}",
            f"    Group {sync.port}",
            f"    IPv4_interface {local}",
            f"    Interface {sync.interface}",
        ]
    else:
        peer = ipaddress.ip_address(sync.peer or "")
        v = "IPv4" if peer.version == 4 else "IPv6"
        transport = [
            "UDP {",
            f"    {v}_address {local}",
            f"    {v}_Destination_Address {peer}",
            f"    Port {sync.port}",
            f"    Interface {sync.interface}",
        ]
    transport += ["    SndSocketBuffer 1249280", "    RcvSocketBuffer 1249280", "    Checksum on", "}"]
    ignore_v4 = sorted({"127.0.0.1"} | ({str(local)} if local.version == 4 else set()))
    ignore_v6 = sorted({"::1"} | ({str(local)} if local.version == 6 else set()))
    lines = [
        "# Written by hanode (conntrack_sync); changes are overwritten.",
        "Sync {",
        "  Mode FTFW {",
        "    ResendQueueSize 131072",
        "    ACKWindowSize 300",
        "    DisableExternalCache Off",
        "  }",
        *("  " + line for line in transport),
        "}",
        "General {",
        "  Systemd off",
        "  HashSize 32768",
        "  HashLimit 131072",
        f"  LogFile {files.log}",
        "  Syslog off",
        f"  LockFile {files.lock}",
        "  UNIX {",
        f"    Path {files.socket}",
        "  }",
        "  NetlinkBufferSize 2097152",
        "  NetlinkBufferSizeMaxGrowth 8388608",
        "  Filter From Userspace {",
        "    Protocol Accept {",
        *(f"      {proto}" for proto in PROTOCOLS),
        "    }",
        "    Address Ignore {",
        *(f"      IPv4_address {a}" for a in ignore_v4),
        *(f"      IPv6_address {a}" for a in ignore_v6),
        "    }",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


# While a new master has not committed the external cache yet, a packet of an established connection has no
# conntrack entry: with loose tracking (the kernel default) it would become a NEW connection, be DNATed by the
# scheduler to any real server (which answers with a reset), or, coming back from a real server, be
# forwarded un-NATed (the client answers with a reset). This table drops such mid-stream TCP packets instead:
# TCP retransmits them once the commit has put the entries in place.
GUARD_TABLE = "hanode_ctsync"


def guard_script(install: bool) -> str:
    """nft script adding (or removing) the guard table."""
    if not install:
        return f"delete table inet {GUARD_TABLE}\n"
    return "\n".join([
        f"add table inet {GUARD_TABLE}",
        f"delete table inet {GUARD_TABLE}",           # replaced whole, in the same transaction
        f"table inet {GUARD_TABLE} {{",
        "  chain prerouting {",
        "    type filter hook prerouting priority -150; policy accept;",
        "    meta l4proto tcp ct state new tcp flags & (syn | rst) == 0 counter drop comment \"mid-stream, not committed yet\"",
        "  }",
        "}",
    ]) + "\n"
