"""The load-balancer state as the kernel holds it (pure).

Services are keyed the way IPVS keys them: (family, protocol, address, port) for address services and
(family, fwmark) for firewall-mark services. For a fwmark service the key carries protocol="",
address="" and port=0, whatever the config said (IPVS itself stores TCP there and ignores it).
Both backends dump into and apply from these values, and plan.py diffs them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Mapping, NamedTuple

FWD_METHODS = ("NAT", "DR", "TUN")

# IPVS service flags that a user sets (IP_VS_SVC_F_*); the kernel-internal HASHED bit (0x2) is never kept.
SVC_F_PERSISTENT = 0x0001
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED1 = 0x0008          # sh-fallback / mh-fallback
SVC_F_SCHED2 = 0x0010          # sh-port / mh-port
SVC_F_SCHED3 = 0x0020
SVC_F_USER_MASK = SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3
# keepalived's scheduler-flag keywords and the bit each sets (sh-/mh- ones only with that scheduler)
SCHED_FLAGS = {"flag-1": SVC_F_SCHED1, "flag-2": SVC_F_SCHED2, "flag-3": SVC_F_SCHED3,
               "sh-fallback": SVC_F_SCHED1, "sh-port": SVC_F_SCHED2, "mh-fallback": SVC_F_SCHED1, "mh-port": SVC_F_SCHED2}

# IPVS tunnel types and encapsulation checksum flags (IP_VS_CONN_F_TUNNEL_TYPE_*, IP_VS_TUNNEL_ENCAP_FLAG_*)
TUN_TYPES = {"ipip": 0, "gue": 1, "gre": 2}
TUN_CSUM = {"nocsum": 0, "csum": 1, "remcsum": 2}


def canonical_address(text: str) -> str:
    """'2001:DB8:0::1' -> '2001:db8::1'; raises ValueError for anything that is not an address."""
    return str(ipaddress.ip_address(text))


@dataclass(frozen=True, order=True)
class ServiceKey:
    family: int                 # 4 or 6
    protocol: str               # "TCP" | "UDP"; "" for fwmark services
    address: str                # canonical text; "" for fwmark services
    port: int                   # 0 for fwmark services
    fwmark: int = 0             # 0 for address services

    @staticmethod
    def for_address(family: int, protocol: str, address: str, port: int) -> ServiceKey:
        return ServiceKey(family, protocol.upper(), canonical_address(address), port, 0)

    @staticmethod
    def for_fwmark(family: int, fwmark: int) -> ServiceKey:
        return ServiceKey(family, "", "", 0, fwmark)

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark} IPv{self.family}"
        host = f"[{self.address}]" if self.family == 6 else self.address
        return f"{self.protocol} {host}:{self.port}"


@dataclass(frozen=True)
class Service:
    key: ServiceKey
    scheduler: str = "wlc"
    flags: int = 0                       # SVC_F_* bits a user sets (persistent, one-packet, sched flags)
    timeout_s: int = 0                   # persistence timeout; 0 when not persistent
    netmask: int | None = None           # persistence granularity as a prefix length; None: the family's full length
    pe_name: str = ""                    # persistence engine ("sip"); "" for none

    @property
    def prefixlen(self) -> int:
        return self.netmask if self.netmask is not None else (32 if self.key.family == 4 else 128)

    def normalized(self) -> Service:
        """The same service as a dump returns it: netmask explicit (full length unless persistent: it only
        matters for persistence), no timeout unless persistent, internal flag bits dropped."""
        flags = self.flags & SVC_F_USER_MASK
        if not flags & SVC_F_PERSISTENT:
            return Service(self.key, self.scheduler, flags, 0, 32 if self.key.family == 4 else 128, self.pe_name)
        return Service(self.key, self.scheduler, flags, self.timeout_s, self.prefixlen, self.pe_name)


class DestKey(NamedTuple):
    """Destinations are tuples: 10,000 of them compare, hash and sort at C speed in plan()."""
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


class Dest(NamedTuple):
    key: DestKey
    weight: int = 1
    fwd_method: str = "NAT"             # one of FWD_METHODS
    u_thresh: int = 0                   # uthreshold: no new connections above this many (0: no limit)
    l_thresh: int = 0                   # lthreshold: ... until they fall below this many
    tun_type: int = 0                   # TUN only: TUN_TYPES value (0: ipip)
    tun_port: int = 0                   # TUN gue: the GUE destination port
    tun_flags: int = 0                  # TUN gue/gre: TUN_CSUM value


class Entry(NamedTuple):
    """One service and its destinations: `service, dests = state[key]`."""
    service: Service
    dests: dict[DestKey, Dest]


KernelState = dict[ServiceKey, Entry]


def entry(service: Service, dests: list[Dest] | tuple[Dest, ...] = ()) -> Entry:
    return Entry(service.normalized(), {d.key: d for d in dests})


def normalized(state: Mapping[ServiceKey, Entry]) -> KernelState:
    return {key: Entry(e.service.normalized(), dict(e.dests)) for key, e in state.items()}


def dest_count(state: Mapping[ServiceKey, Entry]) -> int:
    return sum(len(e.dests) for e in state.values())
