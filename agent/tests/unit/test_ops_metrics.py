"""Prometheus rendering (ops/metrics.py): a status document in, text exposition out, read back with the
Prometheus client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hanode.ops.metrics import render_metrics
from hanode.vrrp.fsm import COUNTERS

KEEPALIVED_COUNTERS = ("advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
                       "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype",
                       "authtype_mismatch", "auth_failure", "pri_zero_rcvd", "pri_zero_sent")

STATUS = {
    "schema_version": 1,
    "agent": {"router_id": "lb1", "version": "0.1.0", "uptime_s": 12.5,
              "processes": {"vrrp": {"running": True, "restarts": 2}, "checker": {"running": False, "restarts": 5}},
              "config": {"last_reload": {"ok": False, "errors": ["x: bad"]}},
              "alerts": {"pending": 3, "sent": 7, "failed_attempts": 4, "retries": 4, "dropped": 1},
              "events": {"published": 99}},
    "instances": {
        "VI_1": {"state": "MASTER", "priority": 150, "virtual_router_id": 51, "family": "ipv4", "interface": "eth0",
                 "master_priority": 150, "fault_reasons": [], "effective_priority": 140, "transitions": 3,
                 "conflicts": {"count": 2}, "advert_jitter_ms": {"last": 1.5, "max": 12.0, "mean": 2.0},
                 "stats": {name: index for index, name in enumerate(COUNTERS, start=1)}},
        "VI_2": {"state": "FAULT", "priority": 100, "virtual_router_id": 52, "family": "ipv6", "interface": "eth1",
                 "master_priority": None, "fault_reasons": ["interface eth1 down", "script chk_web failing"], "effective_priority": 100, "transitions": 1,
                 "conflicts": {"count": 0}, "advert_jitter_ms": None, "stats": {}},
    },
    "vrrp": {"stats": {"unknown_vrid": 17}},
    "virtual_servers": [{"name": "198.51.100.100:80/TCP", "diff": [{"op": "add"}], "sorry_server_active": True,
                         "quorum": {"state": "down", "quorum": 4, "hysteresis": 0, "live_weight": 3, "threshold": 4},
                         "real_servers": [{"name": "203.0.113.11:80", "health": "up", "kernel_weight": 3, "weight": 3,
                                           "last_check": {"latency_ms": 4.0}},
                                          {"name": "203.0.113.12:80", "health": "down", "kernel_weight": None,
                                           "weight": 2},
                                          {"name": "203.0.113.13:80", "health": "disabled", "kernel_weight": None,
                                           "weight": 1}]},
                        {"name": "198.51.100.101:80/TCP", "diff": [], "sorry_server_active": False,
                         "quorum": {"state": None, "quorum": 1, "hysteresis": 0, "live_weight": None, "threshold": None},
                         "real_servers": []}],
    "lvs": {"reconciles": 8, "errors": 1, "last_success_age_s": 2.5, "last_duration_ms": 30, "checks": 3,
            "check_runs": 120, "check_failures": 7, "check_late_ms": {"p50": 2, "p99": 250, "max": 1800},
            "check_late_starts": {"over_100ms": 5, "over_1000ms": 2}, "loop_lag_ms": 40},
}


def _parse(status: dict) -> dict[str, tuple[str, dict]]:
    """{family: (type, {(sample name, sorted labels): value})}"""
    out = {}
    for family in text_string_to_metric_families(render_metrics(status).decode()):
        out[family.name] = (family.type, {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples})
    return out


def _value(parsed, name, sample=None, /, **labels):
    return parsed[name][1][(sample or name, tuple(sorted(labels.items())))]


VI_1 = {"vrrp_instance": "VI_1", "vrid": "51", "family": "ipv4", "interface": "eth0"}
VI_2 = {"vrrp_instance": "VI_2", "vrid": "52", "family": "ipv6", "interface": "eth1"}


def test_instance_families():
    parsed = _parse(STATUS)
    for state in ("INIT", "BACKUP", "MASTER", "FAULT", "STOP"):
        assert _value(parsed, "hanode_vrrp_state", **VI_1, state=state) == (state == "MASTER")
        assert _value(parsed, "hanode_vrrp_state", **VI_2, state=state) == (state == "FAULT")
    assert _value(parsed, "hanode_vrrp_priority", **VI_1) == 150
    assert _value(parsed, "hanode_vrrp_effective_priority", **VI_1) == 140
    assert parsed["hanode_vrrp_transitions"][0] == "counter"
    assert _value(parsed, "hanode_vrrp_transitions", "hanode_vrrp_transitions_total", **VI_1) == 3
    assert _value(parsed, "hanode_vrrp_conflicts", "hanode_vrrp_conflicts_total", **VI_1) == 2
    assert _value(parsed, "hanode_vrrp_advert_jitter_seconds", **VI_1, stat="last") == 0.0015
    assert _value(parsed, "hanode_vrrp_advert_jitter_seconds", **VI_1, stat="max") == 0.012
    assert _value(parsed, "hanode_vrrp_advert_jitter_seconds", **VI_2, stat="max") == 0
    assert _value(parsed, "hanode_vrrp_unknown_vrid_packets", "hanode_vrrp_unknown_vrid_packets_total") == 17
    assert _value(parsed, "hanode_vrrp_master_priority", **VI_1) == 150
    assert _value(parsed, "hanode_vrrp_master_priority", **VI_2) == -1


def test_fault_reasons_one_series_each_and_none_outside_fault():
    parsed = _parse(STATUS)
    assert parsed["hanode_vrrp_fault_reason"][1] == {
        ("hanode_vrrp_fault_reason", tuple(sorted({**VI_2, "reason": reason}.items()))): 1.0
        for reason in ("interface eth1 down", "script chk_web failing")}


def test_every_keepalived_counter_per_instance():
    parsed = _parse(STATUS)
    assert set(KEEPALIVED_COUNTERS) <= set(COUNTERS)
    for index, name in enumerate(COUNTERS, start=1):
        family = f"hanode_vrrp_{name}"
        assert parsed[family][0] == "counter"
        assert _value(parsed, family, f"{family}_total", **VI_1) == index
        assert _value(parsed, family, f"{family}_total", **VI_2) == 0


def test_agent_process_and_alert_families():
    parsed = _parse(STATUS)
    assert _value(parsed, "hanode_agent_info", router_id="lb1", version="0.1.0") == 1
    assert _value(parsed, "hanode_agent_uptime_seconds") == 12.5
    assert _value(parsed, "hanode_process_up", process="vrrp") == 1
    assert _value(parsed, "hanode_process_up", process="checker") == 0
    assert _value(parsed, "hanode_process_restarts", "hanode_process_restarts_total", process="checker") == 5
    assert _value(parsed, "hanode_config_last_reload_ok") == 0
    assert parsed["hanode_alert_queue"][0] == "gauge" and _value(parsed, "hanode_alert_queue") == 3
    for key, value in (("sent", 7), ("failed_attempts", 4), ("retries", 4), ("dropped", 1)):
        assert _value(parsed, f"hanode_alert_mail_{key}", f"hanode_alert_mail_{key}_total") == value
    assert _value(parsed, "hanode_events", "hanode_events_total") == 99


def test_load_balancer_families():
    parsed = _parse(STATUS)
    vs = "198.51.100.100:80/TCP"
    assert _value(parsed, "hanode_lvs_real_server_up", virtual_server=vs, real_server="203.0.113.11:80") == 1
    assert _value(parsed, "hanode_lvs_real_server_up", virtual_server=vs, real_server="203.0.113.12:80") == 0
    assert _value(parsed, "hanode_lvs_real_server_weight", virtual_server=vs, real_server="203.0.113.11:80") == 3
    assert _value(parsed, "hanode_lvs_real_server_weight", virtual_server=vs, real_server="203.0.113.12:80") == -1
    assert _value(parsed, "hanode_lvs_check_latency_seconds", virtual_server=vs, real_server="203.0.113.11:80") == 0.004
    assert _value(parsed, "hanode_lvs_diff_entries", virtual_server=vs) == 1
    assert _value(parsed, "hanode_lvs_reconciles", "hanode_lvs_reconciles_total") == 8
    assert _value(parsed, "hanode_lvs_sync_errors", "hanode_lvs_sync_errors_total") == 1
    assert _value(parsed, "hanode_lvs_sync_lag_seconds") == 2.5
    assert _value(parsed, "hanode_lvs_last_reconcile_seconds") == 0.03
    for rs, health in (("203.0.113.11:80", "up"), ("203.0.113.12:80", "down"), ("203.0.113.13:80", "disabled")):
        for value in ("up", "down", "disabled"):
            assert _value(parsed, "hanode_lvs_real_server_health", virtual_server=vs, real_server=rs,
                          health=value) == (value == health)
    assert _value(parsed, "hanode_lvs_real_server_configured_weight", virtual_server=vs, real_server="203.0.113.12:80") == 2


def test_quorum_and_sorry_server_families():
    parsed = _parse(STATUS)
    vs, fresh = "198.51.100.100:80/TCP", "198.51.100.101:80/TCP"
    assert _value(parsed, "hanode_lvs_quorum_up", virtual_server=vs) == 0
    assert _value(parsed, "hanode_lvs_live_weight", virtual_server=vs) == 3
    assert _value(parsed, "hanode_lvs_quorum", virtual_server=vs) == 4
    assert _value(parsed, "hanode_lvs_sorry_server_active", virtual_server=vs) == 1
    assert _value(parsed, "hanode_lvs_sorry_server_active", virtual_server=fresh) == 0
    # Before its first evaluation a service has no quorum state: no series rather than a false "down".
    assert [labels for (_name, labels) in parsed["hanode_lvs_quorum_up"][1]] == [(("virtual_server", vs),)]


def test_checker_schedule_families():
    parsed = _parse(STATUS)
    assert _value(parsed, "hanode_lvs_checks") == 3
    assert _value(parsed, "hanode_lvs_check_runs", "hanode_lvs_check_runs_total") == 120
    assert _value(parsed, "hanode_lvs_check_failures", "hanode_lvs_check_failures_total") == 7
    assert _value(parsed, "hanode_lvs_check_start_late_seconds", quantile="0.5") == 0.002
    assert _value(parsed, "hanode_lvs_check_start_late_seconds", quantile="0.99") == 0.25
    assert _value(parsed, "hanode_lvs_check_start_late_seconds", quantile="1") == 1.8
    assert _value(parsed, "hanode_lvs_check_late_starts", "hanode_lvs_check_late_starts_total", over_seconds="0.1") == 5
    assert _value(parsed, "hanode_lvs_check_late_starts", "hanode_lvs_check_late_starts_total", over_seconds="1") == 2
    assert _value(parsed, "hanode_lvs_checker_loop_lag_seconds") == 0.04


def test_a_bare_document_still_renders():
    """While the VRRP process restarts the document may be thin: the page renders, with zeros."""
    parsed = _parse({"schema_version": 1, "agent": {}, "instances": {}})
    assert _value(parsed, "hanode_alert_queue") == 0
    assert parsed["hanode_vrrp_state"][1] == {}


def test_label_values_are_escaped():
    status = {"agent": {"router_id": 'odd "name"\\ with\nnewline', "version": "1"}, "instances": {}}
    parsed = _parse(status)
    assert _value(parsed, "hanode_agent_info", router_id='odd "name"\\ with\nnewline', version="1") == 1
