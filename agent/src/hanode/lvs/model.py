"""keepalived's virtual_server half as frozen dataclasses: the contract between config parsing (config/parse_lvs.py),
the planner and kernel backends (lvs/), and the health checker (health/). Durations carry their unit."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from hanode.config.model import TrackFile
from hanode.lvs.conntrackd import ConntrackSync
from hanode.lvs.kernel import TUN_CSUM, TUN_TYPES, Dest, DestKey
from hanode.lvs.syncd import SyncDaemon

CHECK_TYPES = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "PING_CHECK", "UDP_CHECK", "DNS_CHECK", "SMTP_CHECK",
               "FILE_CHECK")
HTTP_PROTOCOLS = ("1.0", "1.1", "1.0C")       # keepalived's http_protocol: 1.1 and 1.0C add Connection: close
LB_ALGOS = ("rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq", "lblc", "lblcr", "mh")
LB_KINDS = ("NAT", "DR", "TUN")
PROTOCOLS = ("TCP", "UDP", "SCTP")
BACKENDS = ("auto", "ipvs", "nftables")


@dataclass(frozen=True, slots=True)
class UrlCheck:
    path: str = "/"
    status_codes: tuple[tuple[int, int], ...] = ((200, 299),)  # inclusive ranges; keepalived's default is 2xx
    digest: str | None = None  # md5 hex of the body, as keepalived's genhash prints
    virtualhost: str | None = None             # Host header (and SNI) of this url, before the check's
    regex: str | None = None                   # the body must match (regex_no_match: must not)
    regex_no_match: bool = False
    regex_min_offset: int = 0                  # the match must start at or after this body offset
    regex_max_offset: int | None = None        # ... and at or before this one
    regex_options: tuple[str, ...] = ()        # keepalived's PCRE2 option names (health/regex.py maps them)


@dataclass(frozen=True, slots=True)
class Check:
    type: str                                  # one of CHECK_TYPES
    connect_ip: str | None = None              # default: the real server's address
    connect_port: int | None = None            # default: the real server's port
    bindto: str | None = None
    bind_port: int | None = None
    connect_timeout_ms: int = 5000
    retry: int = 1                             # keepalived: retries after the first failure before declaring DOWN
    delay_before_retry_ms: int = 1000
    warmup_ms: int | None = None               # random delay before the first check (keepalived: up to delay_loop)
    delay_loop_ms: int | None = None           # per-check override of the real server's / virtual server's delay_loop
    bind_if: str | None = None                 # SO_BINDTODEVICE (needed for an IPv6 link-local connect_ip)
    fwmark: int | None = None                  # SO_MARK on the check's packets
    alpha: bool | None = None                  # None: the real server's alpha
    log_all_failures: bool | None = None       # None: the global checker_log_all_failures
    # HTTP_GET / SSL_GET
    urls: tuple[UrlCheck, ...] = ()
    virtualhost: str | None = None
    sni: str | None = None                     # SSL_GET: TLS server name (keepalived: enable_sni / tls_servername)
    http_protocol: str = "1.0"                 # one of HTTP_PROTOCOLS
    enable_sni: bool = False                   # SSL_GET: send the url's / check's / service's virtualhost as SNI
    # MISC_CHECK
    misc_path: str | None = None
    misc_timeout_ms: int | None = None
    misc_dynamic: bool = False                 # exit 2..255 sets the weight to exit-2
    user: str | None = None
    # UDP_CHECK
    payload: bytes | None = None
    require_reply: bool = False
    reply_data: bytes | None = None            # require_reply's expected reply: its first bytes must match
    reply_mask: bytes | None = None            # bits set: not compared (keepalived's X nibbles)
    min_reply_length: int = 0                  # with reply_data: the reply's length must be within these
    max_reply_length: int = 255
    # DNS_CHECK
    dns_type: str = "SOA"
    dns_name: str = "."
    # SMTP_CHECK
    helo_name: str | None = None
    # FILE_CHECK: the track_files entry it names, its weight (None: the track_file's) and reverse
    track_file: TrackFile | None = None
    file_weight: int | None = None
    file_reverse: bool = False


@dataclass(frozen=True, slots=True)
class Tunnel:
    """keepalived's `lvs_method TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`."""
    type: str = "ipip"
    port: int = 0                              # gue only (required there)
    csum: str = "nocsum"                       # gue and gre (remcsum: gue only)


@dataclass(frozen=True, slots=True)
class SorryServer:
    address: str
    port: int | None = None
    inhibit: bool = False
    lvs_method: str | None = None              # sorry_server_lvs_method; None: the virtual server's lb_kind
    tunnel: Tunnel | None = None               # with lvs_method TUN; None: the virtual server's


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One kernel service of a virtual_server_group: an address and port (a range is one member per address) or
    a fwmark."""
    family: int
    address: str | None = None
    port: int = 0
    fwmark: int | None = None


@dataclass(frozen=True, slots=True)
class RealServer:
    address: str
    port: int | None = None                    # None for fwmark services (keepalived allows a port anyway)
    weight: int = 1
    inhibit_on_failure: bool | None = None     # None: the virtual server's setting
    notify_up: str | None = None
    notify_down: str | None = None
    checks: tuple[Check, ...] = ()             # all must pass (keepalived: every checker of a real server)
    delay_loop_ms: int | None = None           # per real server override
    alpha: bool | None = None                  # None: the virtual server's setting
    lvs_method: str | None = None              # None: the virtual server's lb_kind
    tunnel: Tunnel | None = None               # with lvs_method TUN; None: the virtual server's
    uthreshold: int = 0                        # IPVS: no new connections above this many (0: no limit)
    lthreshold: int = 0                        # ... until they fall below this many

    @property
    def family(self) -> int:
        return 6 if ":" in self.address else 4


@dataclass(frozen=True)
class VirtualServer:
    address: str | None = None                 # address + port, or fwmark
    port: int | None = None
    fwmark: int | None = None
    protocol: str = "TCP"
    lb_algo: str = "wlc"                       # keepalived's default scheduler
    lb_kind: str = "NAT"
    persistence_timeout_s: int | None = None
    persistence_granularity: str | None = None
    delay_loop_ms: int = 60_000                # keepalived's default delay_loop is 60 s
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: str | None = None
    quorum_down: str | None = None
    sorry_server: SorryServer | None = None
    inhibit_on_failure: bool = False
    alpha: bool = False                        # servers start DOWN and must pass a check first
    omega: bool = False                        # run quorum_down when the service is removed
    ops: bool = False                          # one-packet scheduling (UDP)
    virtualhost: str | None = None
    smtp_alert: bool | None = None
    tunnel: Tunnel | None = None               # lb_kind TUN's options (keepalived: lvs_method TUN type ...)
    sched_flags: tuple[str, ...] = ()          # keepalived's flag-1..3, sh-port, sh-fallback, mh-port, mh-fallback
    persistence_engine: str | None = None      # IPVS persistence engine ("sip")
    ha_suspend: bool = False                   # checks wait while none of the service's addresses is local
    group: str | None = None                   # `virtual_server group NAME`: the services are the group's members
    members: tuple[GroupMember, ...] = ()      # the group's members, resolved when the config is read
    real_servers: tuple[RealServer, ...] = ()

    @property
    def family(self) -> int:
        if self.address is not None:
            return 6 if ":" in self.address else 4
        if self.members:
            return self.members[0].family
        return self.real_servers[0].family if self.real_servers else 4

    @cached_property
    def name(self) -> str:
        """How status, logs and events name the service: '198.51.100.100:80/TCP', 'fwmark 7/TCP' or
        'group web/TCP'."""
        if self.group is not None:
            return f"group {self.group}/{self.protocol}"
        if self.fwmark is not None:
            return f"fwmark {self.fwmark}/{self.protocol}"
        host = f"[{self.address}]" if ":" in (self.address or "") else self.address
        return f"{host}:{self.port}/{self.protocol}"

    @cached_property
    def real_server_names(self) -> tuple[str, ...]:
        """real_server_name() of each real server, in order (computed once: 10,000 of them are named on
        every health change)."""
        return tuple(map(real_server_name, self.real_servers))

    @cached_property
    def configured_dests(self) -> tuple[Dest, ...]:
        """Each real server as the kernel holds it while it is up at its configured weight, in order. Made
        once: a desired state shares these objects, so the planner finds the unchanged ones by identity."""
        return tuple(configured_dest(self, rs) for rs in self.real_servers)


def rs_dest_key(vs: VirtualServer, rs: RealServer) -> DestKey:
    """A real server's kernel destination: its address and port, else the virtual server's port (a group's
    member gives its own: member_dest())."""
    return DestKey(rs.address, rs.port if rs.port is not None else (vs.port or 0))


def kernel_dest_key(vs: VirtualServer, rs: RealServer) -> DestKey:
    """The real server's destination in the virtual server's (first) kernel service."""
    if vs.members:
        return member_dest(vs.members[0], configured_dest(vs, rs)).key
    return rs_dest_key(vs, rs)


def forwarding(method: str, tunnel: Tunnel | None) -> dict:
    """The Dest fields of a forwarding method and its tunnel options."""
    if method != "TUN" or tunnel is None:
        return {"fwd_method": method}
    return {"fwd_method": method, "tun_type": TUN_TYPES[tunnel.type], "tun_port": tunnel.port,
            "tun_flags": TUN_CSUM[tunnel.csum]}


def configured_dest(vs: VirtualServer, rs: RealServer, weight: int | None = None) -> Dest:
    """A real server as the kernel holds it while it is up (at `weight`, default its configured one)."""
    method = rs.lvs_method or vs.lb_kind
    return Dest(rs_dest_key(vs, rs), rs.weight if weight is None else weight, u_thresh=rs.uthreshold,
                l_thresh=rs.lthreshold, **forwarding(method, rs.tunnel or vs.tunnel))


def sorry_dest(vs: VirtualServer, weight: int) -> Dest:
    sorry = vs.sorry_server
    key = DestKey(sorry.address, sorry.port if sorry.port is not None else (vs.port or 0))
    return Dest(key, weight, **forwarding(sorry.lvs_method or vs.lb_kind, sorry.tunnel or vs.tunnel))


def member_dest(member: GroupMember, dest: Dest) -> Dest:
    """A destination of a group's virtual server in one member's service, as keepalived's ipvs_group_cmd sets
    it: NAT keeps the real server's port (none given: the member's); DR and TUN cannot change ports, so they
    take the member's port (0 for a fwmark member)."""
    port = dest.key.port
    if dest.fwd_method != "NAT":
        port = member.port
    elif port == 0 and member.fwmark is None:
        port = member.port
    return dest if port == dest.key.port else dest._replace(key=DestKey(dest.key.address, port))


def real_server_name(rs: RealServer) -> str:
    host = f"[{rs.address}]" if ":" in rs.address else rs.address
    return f"{host}:{rs.port}" if rs.port is not None else host


@dataclass(frozen=True)
class SslConfig:
    """keepalived's SSL block: the client certificate (and its key, its password) and CA of every SSL_GET."""
    certificate: str | None = None
    key: str | None = None
    ca: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class LvsConfig:
    backend: str = "auto"
    keep_on_stop: bool = False                 # keepalived -I: leave the kernel rules when the agent stops
    reconcile_interval_ms: int = 10_000
    ssl: SslConfig | None = None
    log_all_failures: bool = False             # keepalived's global checker_log_all_failures
    virtual_servers: tuple[VirtualServer, ...] = field(default_factory=tuple)
    lvs_timeouts: tuple[int | None, int | None, int | None] | None = None   # tcp, tcpfin, udp seconds (IPVS)


@dataclass(frozen=True)
class ConnSyncConfig:
    """Connections that survive a failover: `lvs_sync_daemon` (IPVS) and `conntrack_sync` (nftables)."""
    lvs_sync_daemon: SyncDaemon | None = None
    conntrack_sync: ConntrackSync | None = None
