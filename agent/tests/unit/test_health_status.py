"""The checker's part of the status JSON is a contract: field names pinned, values as an operator reads them."""

from __future__ import annotations

from hanode.health.hysteresis import CheckResult
from hanode.health.status import CheckView, lvs_status, real_server_status, virtual_server_status
from hanode.lvs.desired import QuorumState, RsHealth
from hanode.lvs.kernel import Dest, DestKey, Entry, Service, ServiceKey
from hanode.lvs.model import RealServer, SorryServer, VirtualServer, rs_dest_key

VS_FIELDS = {"name", "address", "port", "fwmark", "group", "protocol", "lb_algo", "lb_kind", "backend", "in_kernel", "quorum",
             "sorry_server", "sorry_server_active", "checks_suspended", "summary", "real_servers", "diff"}
RS_FIELDS = {"name", "address", "port", "weight", "dynamic_weight", "kernel_weight", "health", "failure_reason",
             "last_check", "checks"}
LAST_CHECK_FIELDS = {"type", "ok", "latency_ms", "at", "reason"}
QUORUM_FIELDS = {"state", "quorum", "hysteresis", "live_weight", "threshold"}
LVS_FIELDS = {"backend", "backend_error", "reconciles", "errors", "last_reconcile", "last_duration_ms",
              "last_success_age_s", "checks", "diff_other", "loop_lag_ms"}

VS = VirtualServer(address="198.51.100.100", port=80, lb_algo="wrr", quorum=2,
                   sorry_server=SorryServer("203.0.113.50", 8080),
                   real_servers=(RealServer("203.0.113.11", 8080, weight=3), RealServer("203.0.113.12", 8080)))
KEY = ServiceKey.for_address(4, "TCP", "198.51.100.100", 80)
ENTRY = Entry(Service(KEY, "wrr"), {DestKey("203.0.113.11", 8080): Dest(DestKey("203.0.113.11", 8080), 3)})


def views(ok: bool, at: float) -> list[CheckView]:
    result = CheckResult(ok, 1234, None if ok else "connection refused")
    return [CheckView("TCP_CHECK", ok, 0, result.reason, result, at, 7)]


def test_field_names_are_pinned():
    up = real_server_status(VS.real_servers[0], rs_dest_key(VS, VS.real_servers[0]), RsHealth(True), False,
                            views(True, 100.0), ENTRY)
    down = real_server_status(VS.real_servers[1], rs_dest_key(VS, VS.real_servers[1]),
                              RsHealth(False, None, "connection refused"), False, views(False, 101.0), ENTRY)
    vs = virtual_server_status(VS, "nftables", QuorumState(False, 3, 2, True), [up, down], ENTRY, [])
    assert set(vs) == VS_FIELDS
    assert set(vs["quorum"]) == QUORUM_FIELDS
    assert set(up) == RS_FIELDS and set(up["last_check"]) == LAST_CHECK_FIELDS
    lvs = lvs_status("nftables", None, 3, 0, None, 1.5, 2, {}, [])
    assert set(lvs) == LVS_FIELDS


def test_values_an_operator_reads():
    up = real_server_status(VS.real_servers[0], rs_dest_key(VS, VS.real_servers[0]), RsHealth(True), False,
                            views(True, 100.0), ENTRY)
    assert up["name"] == "203.0.113.11:8080" and up["weight"] == 3 and up["kernel_weight"] == 3
    assert up["health"] == "up" and up["failure_reason"] is None
    assert up["last_check"] == {"type": "TCP_CHECK", "ok": True, "latency_ms": 1.234, "at": 100.0, "reason": None}
    down = real_server_status(VS.real_servers[1], rs_dest_key(VS, VS.real_servers[1]),
                              RsHealth(False, None, "connection refused"), False, views(False, 101.0), ENTRY)
    assert down["kernel_weight"] is None and down["health"] == "down"
    assert down["failure_reason"] == "connection refused"
    drained = real_server_status(VS.real_servers[1], rs_dest_key(VS, VS.real_servers[1]), RsHealth(True), True,
                                 [], None)
    assert drained["health"] == "disabled" and drained["last_check"] is None and drained["kernel_weight"] is None
    vs = virtual_server_status(VS, "nftables", QuorumState(False, 3, 2, True), [up, down], ENTRY,
                               ["add dest TCP 198.51.100.100:80 -> 203.0.113.50:8080 weight 1 NAT"])
    assert vs["name"] == "198.51.100.100:80/TCP" and vs["sorry_server"] == "203.0.113.50:8080"
    assert vs["quorum"]["state"] == "down" and vs["sorry_server_active"] is True
    assert vs["summary"] == "1/2 real servers up, quorum DOWN, sorry server active, 1 differences with the kernel"
    unknown = virtual_server_status(VS, None, None, [], None, [])
    assert unknown["quorum"]["state"] is None and unknown["in_kernel"] is False
