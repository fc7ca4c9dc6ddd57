"""Names, addresses and MAC addresses of a namespace lab (pure: no I/O, no randomness).

Layout of one lab whose prefix is ``hn3fa9c1``::

    namespace hn3fa9c1-sw    bridges ``lan`` and ``backend``; one veth end per host port
    namespace hn3fa9c1-n1    node 1:  eth0 on lan (198.51.100.11), eth1 on backend (203.0.113.1)
    namespace hn3fa9c1-c1    client 1: eth0 on lan (198.51.100.201)
    namespace hn3fa9c1-r1    real server 1: eth0 on backend (203.0.113.11)

The switch-side end of a host port is named ``<host>-<ifname>`` (``n1-eth0``); it only has to be
unique inside the lab's own switch namespace, so two labs never collide on interface names.

Address plan (everything not listed is free for VIPs, e.g. 198.51.100.100 or 203.0.113.254):

    lan      198.51.100.0/24  2001:db8:100::/64   nodes .11-.20, clients .201-.254
    backend  203.0.113.0/24   2001:db8:203::/64   nodes .1-.10,  real servers .11-.110

IPv6 host parts reuse the IPv4 last octet's decimal digits: 198.51.100.11 <-> 2001:db8:100::11.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IFNAME_MAX_LEN = 15  # IFNAMSIZ - 1
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,11}$")
GENERATED_PREFIX_LEAD = "hn"

NODE = "node"
CLIENT = "client"
REAL_SERVER = "real_server"
SWITCH_HOST = "sw"

_ROLE_LETTER = {NODE: "n", CLIENT: "c", REAL_SERVER: "r"}
_ROLE_MAC_BYTE = {NODE: 0x01, CLIENT: 0x02, REAL_SERVER: 0x03}
# 02 = locally administered unicast; 68:6e = "hn".
_MAC_LEAD = "02:68:6e"

MAX_NODES = 10
MAX_CLIENTS = 54
MAX_REAL_SERVERS = 100


@dataclass(frozen=True)
class Segment:
    """One L2 segment: a bridge in the switch namespace and the subnets living on it."""

    bridge: str
    ipv4_net: str
    ipv6_net: str
    _ipv4_lead: str
    _ipv6_lead: str

    def ipv4(self, last_octet: int) -> str:
        if not 1 <= last_octet <= 254:
            raise ValueError(f"{self.bridge}: host octet {last_octet} out of 1..254")
        return f"{self._ipv4_lead}{last_octet}"

    def ipv6(self, last_octet: int) -> str:
        if not 1 <= last_octet <= 254:
            raise ValueError(f"{self.bridge}: host octet {last_octet} out of 1..254")
        return f"{self._ipv6_lead}{last_octet}"

    @property
    def ipv4_prefixlen(self) -> int:
        return int(self.ipv4_net.split("/")[1])

    @property
    def ipv6_prefixlen(self) -> int:
        return int(self.ipv6_net.split("/")[1])


LAN = Segment("lan", "198.51.100.0/24", "2001:db8:100::/64", "198.51.100.", "2001:db8:100::")
BACKEND = Segment("backend", "203.0.113.0/24", "2001:db8:203::/64", "203.0.113.", "2001:db8:203::")
SEGMENTS = (LAN, BACKEND)


@dataclass(frozen=True)
class Port:
    """A host interface plugged into a bridge of the switch namespace."""

    host: str
    ifname: str
    segment: Segment
    switch_ifname: str
    mac: str
    ipv4: str
    ipv6: str

    @property
    def ipv4_cidr(self) -> str:
        return f"{self.ipv4}/{self.segment.ipv4_prefixlen}"

    @property
    def ipv6_cidr(self) -> str:
        return f"{self.ipv6}/{self.segment.ipv6_prefixlen}"


@dataclass(frozen=True)
class HostSpec:
    name: str
    role: str
    index: int
    netns: str
    ports: tuple[Port, ...]

    def port(self, ifname: str = "eth0") -> Port:
        for port in self.ports:
            if port.ifname == ifname:
                return port
        raise KeyError(f"{self.name} has no interface {ifname!r} (has {[p.ifname for p in self.ports]})")

    def port_on(self, segment: Segment) -> Port | None:
        for port in self.ports:
            if port.segment == segment:
                return port
        return None

    @property
    def ipv4(self) -> str:
        return self.ports[0].ipv4

    @property
    def ipv6(self) -> str:
        return self.ports[0].ipv6

    @property
    def mac(self) -> str:
        return self.ports[0].mac


@dataclass(frozen=True)
class Topology:
    prefix: str
    switch_netns: str
    hosts: tuple[HostSpec, ...]

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name or host.netns == name:
                return host
        raise KeyError(f"lab {self.prefix} has no host {name!r}")

    def by_role(self, role: str) -> tuple[HostSpec, ...]:
        return tuple(h for h in self.hosts if h.role == role)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of the lab, the switch last (it is deleted last)."""
        return tuple(h.netns for h in self.hosts) + (self.switch_netns,)

    def ports_on(self, segment: Segment) -> tuple[Port, ...]:
        return tuple(p for h in self.hosts for p in h.ports if p.segment == segment)

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(s for s in SEGMENTS if self.ports_on(s)) or (LAN,)


def generated_prefix(random_hex: str) -> str:
    """``hn`` + six hex digits taken from the caller's randomness (``secrets.token_hex(3)``)."""
    if not re.fullmatch(r"[0-9a-f]{6}", random_hex):
        raise ValueError(f"need six lower-case hex digits, got {random_hex!r}")
    return GENERATED_PREFIX_LEAD + random_hex


def validate_prefix(prefix: str) -> str:
    if not PREFIX_RE.match(prefix):
        raise ValueError(f"lab prefix {prefix!r} must match {PREFIX_RE.pattern}")
    return prefix


def netns_name(prefix: str, host: str) -> str:
    return f"{prefix}-{host}"


def mac_for(role: str, index: int, if_index: int) -> str:
    """02:68:6e:<role>:<index>:<interface>, e.g. node 1 eth0 -> 02:68:6e:01:01:00."""
    if not 1 <= index <= 255 or not 0 <= if_index <= 255:
        raise ValueError(f"index {index} / interface {if_index} out of range")
    return f"{_MAC_LEAD}:{_ROLE_MAC_BYTE[role]:02x}:{index:02x}:{if_index:02x}"


def _port(role: str, name: str, index: int, if_index: int, segment: Segment, octet: int) -> Port:
    ifname = f"eth{if_index}"
    switch_ifname = f"{name}-{ifname}"
    if len(switch_ifname) > IFNAME_MAX_LEN:
        raise ValueError(f"interface name {switch_ifname!r} longer than {IFNAME_MAX_LEN}")
    return Port(name, ifname, segment, switch_ifname, mac_for(role, index, if_index),
                segment.ipv4(octet), segment.ipv6(octet))


def _host(prefix: str, role: str, index: int, with_backend: bool) -> HostSpec:
    name = f"{_ROLE_LETTER[role]}{index}"
    if role == NODE:
        ports = [_port(role, name, index, 0, LAN, 10 + index)]
        if with_backend:
            ports.append(_port(role, name, index, 1, BACKEND, index))
    elif role == CLIENT:
        ports = [_port(role, name, index, 0, LAN, 200 + index)]
    else:
        ports = [_port(role, name, index, 0, BACKEND, 10 + index)]
    return HostSpec(name, role, index, netns_name(prefix, name), tuple(ports))


def build(prefix: str, nodes: int = 2, clients: int = 1, real_servers: int = 0) -> Topology:
    """The whole lab; nodes get a backend port (eth1) only when there are real servers."""
    validate_prefix(prefix)
    for what, count, limit in (("nodes", nodes, MAX_NODES), ("clients", clients, MAX_CLIENTS),
                               ("real_servers", real_servers, MAX_REAL_SERVERS)):
        if not 0 <= count <= limit:
            raise ValueError(f"{what}={count}: must be in 0..{limit}")
    hosts = [_host(prefix, NODE, i, real_servers > 0) for i in range(1, nodes + 1)]
    hosts += [_host(prefix, CLIENT, i, False) for i in range(1, clients + 1)]
    hosts += [_host(prefix, REAL_SERVER, i, False) for i in range(1, real_servers + 1)]
    return Topology(prefix, netns_name(prefix, SWITCH_HOST), tuple(hosts))
