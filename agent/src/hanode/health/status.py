"""The checker's part of `hanode status --json`: `virtual_servers` and `lvs` (pure).

Per virtual server: its identity and scheduler, the backend, quorum, sorry server, each real server with
its configured weight, the weight the kernel holds (None: not in the table), its health ("up", "down",
"disabled" by an operator), the last check result and the failure reason; and `diff`, the operations that
would bring the kernel to the desired state (empty when in sync).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from hanode.health.hysteresis import CheckResult
from hanode.lvs.desired import RsHealth
from hanode.lvs.kernel import DestKey, Entry
from hanode.lvs.model import RealServer, VirtualServer, real_server_name


@dataclass(frozen=True, slots=True)
class CheckView:
    type: str
    up: bool
    retry_it: int
    reason: str | None
    last: CheckResult | None
    last_at: float | None
    runs: int


def result_json(check_type: str, result: CheckResult | None, at: float | None) -> dict | None:
    if result is None:
        return None
    return {"type": check_type, "ok": result.ok, "latency_ms": round(result.latency_us / 1000, 3),
            "at": round(at, 3) if at is not None else None, "reason": result.reason}


def real_server_status(rs: RealServer, dest_key: DestKey, health: RsHealth, disabled: bool,
                       checks: list[CheckView], actual: Entry | None) -> dict:
    dest = actual.dests.get(dest_key) if actual is not None else None
    latest = max((c for c in checks if c.last_at is not None), key=lambda c: c.last_at, default=None)
    state = "disabled" if disabled else ("up" if health.up else "down")
    return {
        "name": real_server_name(rs),
        "address": rs.address,
        "port": rs.port,
        "weight": rs.weight,
        "dynamic_weight": health.weight,
        "kernel_weight": dest.weight if dest is not None else None,
        "health": state,
        "failure_reason": health.reason if not health.up else None,
        "last_check": result_json(latest.type, latest.last, latest.last_at) if latest else None,
        "checks": [{"type": c.type, "state": "up" if c.up else "down", "retries": c.retry_it, "runs": c.runs,
                    "reason": c.reason, "last": result_json(c.type, c.last, c.last_at)} for c in checks],
    }


def virtual_server_status(vs: VirtualServer, backend: str | None, quorum, servers: Sequence[dict],
                          actual: Entry | None, diff: list[str], checks_suspended: bool = False,
                          up: int | None = None) -> dict:
    """`servers`: each real server's status (real_server_status), or a LazyItems making them when sent; then
    `up` counts those whose health is "up" (else it is counted from `servers`)."""
    if up is None:
        up = sum(1 for s in servers if s["health"] == "up")
    quorum_up = bool(quorum.up) if quorum is not None else None
    sorry = vs.sorry_server
    summary = f"{up}/{len(servers)} real servers up, quorum {'up' if quorum_up else 'DOWN'}"
    if quorum is not None and quorum.sorry_active:
        summary += ", sorry server active"
    if checks_suspended:
        summary += ", checks suspended (ha_suspend: its address is not on this host)"
    if diff:
        summary += f", {len(diff)} differences with the kernel"
    return {
        "name": vs.name,
        "address": vs.address,
        "port": vs.port,
        "fwmark": vs.fwmark,
        "group": vs.group,
        "protocol": vs.protocol,
        "lb_algo": vs.lb_algo,
        "lb_kind": vs.lb_kind,
        "backend": backend,
        "in_kernel": actual is not None,
        "quorum": {"state": None if quorum_up is None else ("up" if quorum_up else "down"), "quorum": vs.quorum,
                   "hysteresis": vs.hysteresis, "live_weight": getattr(quorum, "live_weight", None),
                   "threshold": getattr(quorum, "threshold", None)},
        "sorry_server": _sorry_name(sorry),
        "sorry_server_active": bool(quorum is not None and quorum.sorry_active),
        "checks_suspended": checks_suspended,
        "summary": summary,
        "real_servers": servers,
        "diff": diff,
    }


def _sorry_name(sorry) -> str | None:
    if sorry is None:
        return None
    return f"{sorry.address}:{sorry.port}" if sorry.port is not None else sorry.address


def lvs_status(backend: str | None, backend_error: str | None, reconciles: int, errors: int,
               last: Mapping | None, last_success_age_s: float | None, checks: int, check_stats: Mapping,
               other_diff: list[str], loop_lag_ms: int = 0) -> dict:
    return {
        "backend": backend,
        "backend_error": backend_error,
        "reconciles": reconciles,
        "errors": errors,
        "last_reconcile": dict(last) if last else None,
        "last_duration_ms": (last or {}).get("duration_ms"),
        "last_success_age_s": last_success_age_s,
        "checks": checks,
        **check_stats,
        "diff_other": other_diff,       # owned services no longer configured, still in the kernel
        "loop_lag_ms": loop_lag_ms,     # longest stall of the checker's event loop in the last minute
    }
