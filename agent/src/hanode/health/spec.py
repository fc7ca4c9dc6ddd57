"""What each configured check does, fully resolved from the load-balancer model (pure).

keepalived's inheritance: delay_loop per check, else per real server, else the virtual server's; warmup
defaults to delay_loop; alpha per real server, else the virtual server's; connect_ip / connect_port default
to the real server's address and port; MISC_CHECK's timeout defaults to delay_loop and its user to the
global script_user. A `CheckSpec` is hashable: two equal specs are the same check, which is how a reload
decides which checks keep their state.
"""

from __future__ import annotations

from dataclasses import dataclass

from hanode.health.hysteresis import Timing
from hanode.lvs.model import Check, LvsConfig, RealServer, SslConfig, VirtualServer


@dataclass(frozen=True, slots=True)
class Probe:
    """Everything a check adapter needs for one run."""
    type: str
    address: str
    port: int | None
    family: int                       # 4 or 6
    timeout_ms: int                   # connect_timeout (each network step), or misc_timeout for MISC_CHECK
    check: Check                      # type-specific options (urls, payload, dns_name, ...)
    bind_address: str | None = None
    bind_port: int | None = None
    virtualhost: str | None = None    # HTTP Host header (check's, else the virtual server's)
    user: str | None = None           # MISC_CHECK: run as (check's user, else script_user)
    secure: bool = True               # MISC_CHECK: enable_script_security (its path checked before every run)
    bind_if: str | None = None        # SO_BINDTODEVICE
    fwmark: int | None = None         # SO_MARK
    ssl: SslConfig | None = None      # SSL_GET: the SSL block (client certificate, key, CA)
    rs_weight: int = 1                # FILE_CHECK: the real server's weight its file's value moves


@dataclass(frozen=True, slots=True)
class CheckSpec:
    vs: str                           # VirtualServer.name
    rs: str                           # real_server_name()
    index: int                        # position among the real server's checks
    probe: Probe
    timing: Timing
    alpha: bool
    log_all_failures: bool = False    # every failed run logged, not only the one that takes the check DOWN

    @property
    def definition(self) -> tuple:
        """What must be equal for a reload to keep this check's state."""
        return (self.vs, self.rs, self.probe, self.timing, self.alpha, self.log_all_failures)


def delay_loop_ms(vs: VirtualServer, rs: RealServer, check: Check) -> int:
    for value in (check.delay_loop_ms, rs.delay_loop_ms):
        if value is not None:
            return value
    return vs.delay_loop_ms


def timing_of(vs: VirtualServer, rs: RealServer, check: Check) -> Timing:
    loop_ms = delay_loop_ms(vs, rs, check)
    if check.type == "FILE_CHECK":   # keepalived reads the file at start and on every change: no retry, no warmup
        return Timing(delay_loop_ms=loop_ms, retry=0, delay_before_retry_ms=0, warmup_ms=0)
    return Timing(delay_loop_ms=loop_ms, retry=check.retry, delay_before_retry_ms=check.delay_before_retry_ms,
                  warmup_ms=loop_ms if check.warmup_ms is None else check.warmup_ms)


def probe_of(vs: VirtualServer, rs: RealServer, check: Check, script_user: str | None = None,
             secure: bool = True, ssl: SslConfig | None = None) -> Probe:
    address = check.connect_ip or rs.address
    port = check.connect_port if check.connect_port is not None else rs.port
    if port is None and vs.fwmark is None:
        port = vs.port
    if check.type == "MISC_CHECK":
        timeout_ms = check.misc_timeout_ms if check.misc_timeout_ms is not None else delay_loop_ms(vs, rs, check)
    else:
        timeout_ms = check.connect_timeout_ms
    return Probe(type=check.type, address=address, port=port, family=6 if ":" in address else 4,
                 timeout_ms=timeout_ms, check=check, bind_address=check.bindto, bind_port=check.bind_port,
                 virtualhost=check.virtualhost or vs.virtualhost,
                 user=(check.user or script_user) if check.type == "MISC_CHECK" else None, secure=secure,
                 bind_if=check.bind_if, fwmark=check.fwmark, ssl=ssl if check.type == "SSL_GET" else None,
                 rs_weight=rs.weight if check.type == "FILE_CHECK" else 1)


def check_specs(config: LvsConfig, script_user: str | None = None, secure: bool = True) -> list[CheckSpec]:
    specs = []
    timings: dict[Timing, Timing] = {}   # one Timing object per distinct value (thousands of servers share one)
    for vs in config.virtual_servers:
        for rs, rs_name in zip(vs.real_servers, vs.real_server_names):   # the names made once, shared
            rs_alpha = vs.alpha if rs.alpha is None else rs.alpha
            for index, check in enumerate(rs.checks):
                # keepalived: a checker's own alpha, else its real server's; a FILE_CHECK's state is known at once
                alpha = False if check.type == "FILE_CHECK" else rs_alpha if check.alpha is None else check.alpha
                log_all = config.log_all_failures if check.log_all_failures is None else check.log_all_failures
                probe = probe_of(vs, rs, check, script_user, secure, config.ssl)
                timing = timing_of(vs, rs, check)
                timing = timings.setdefault(timing, timing)
                specs.append(CheckSpec(vs.name, rs_name, index, probe, timing, alpha, log_all))
    return specs


def format_ms(duration_ms: int) -> str:
    """'2 s', '0.5 s', '1.25 s' for failure reasons."""
    return f"{duration_ms / 1000:g} s"
