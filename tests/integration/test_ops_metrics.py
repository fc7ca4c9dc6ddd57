"""The Prometheus endpoint (issue 5): off unless metrics_listen is set; when set, scraped from inside the node's
namespace and parsed with the Prometheus client's own parser, its numbers are the status document's."""

from __future__ import annotations

import os
import signal

import pytest

from hanode.lab.procs import wait_for
from helpers_checker import GATEWAY, real_server, virtual_server
from helpers_ops import assert_status_schema, listeners, mail_settings, new_lab, scrape
from helpers_vrrp import agent_config, instance, rewrite_config, status, wait_state

pytestmark = pytest.mark.netns

# keepalived's per-instance counters, by the names its users know (keepalived's stats / JSON dump).
KEEPALIVED_COUNTERS = ("advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
                       "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype",
                       "authtype_mismatch", "auth_failure", "pri_zero_rcvd", "pri_zero_sent")
STATES = ("INIT", "BACKUP", "MASTER", "FAULT", "STOP")


def _one(metrics: dict, name: str, /, **labels) -> float:
    found = [value for _name, sample_labels, value in metrics[name]["samples"] if sample_labels == labels]
    assert len(found) == 1, (name, labels, metrics[name]["samples"])
    return found[0]


def test_metrics_endpoint_parsed_by_prometheus_client_matches_status(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1, real_servers=2, real_server_gateway=GATEWAY)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    r1, r2 = lab.real_servers
    lab.start_http_server(r1, port=8080)  # r2 serves nothing: down
    # n1: metrics on, alert mail towards a mail server that is down (the queue and its counters move).
    # n2: no metrics_listen; its VRID 60 is foreign to n1.
    config = agent_config("n1", {"VI_1": instance(51, 150, version=3, advert_int=0.3),
                                 "VI_2": instance(52, 90, version=3, advert_int=0.3, vips=("198.51.100.102",))},
                          metrics_listen="127.0.0.1:9650", **mail_settings(c1, "n1"),
                          lb_backend="nftables", virtual_servers=[virtual_server([real_server(r1), real_server(r2)])])
    a1 = lab.start_agent(n1, config, timeout=20)
    a2 = lab.start_agent(n2, agent_config("n2", {"VI_9": instance(60, 100, version=3, advert_int=0.3,
                                                                  vips=("198.51.100.109",))}))
    wait_state(a1, "MASTER", "VI_1", timeout=10)
    wait_state(a1, "MASTER", "VI_2", timeout=10)
    wait_state(a2, "MASTER", "VI_9", timeout=10)
    # A VRRP process restart shows in the process metrics (nothing else runs VRID 51/52: it resumes as MASTER).
    os.kill(status(a1)["agent"]["processes"]["vrrp"]["pid"], signal.SIGKILL)
    wait_for(lambda: (p := status(a1)["agent"]["processes"]["vrrp"])["restarts"] == 1 and p["running"], 15,
             what="the VRRP process restart")
    wait_state(a1, "MASTER", "VI_1", timeout=10)
    wait_for(lambda: status(a1)["agent"]["alerts"]["failed_attempts"] >= 2, 10, what="failed mail attempts")
    wait_for(lambda: (status(a1)["instances"]["VI_1"]["advert_jitter_ms"] or {}).get("max") is not None, 5,
             what="advert timer jitter measured")

    def checked() -> bool:
        current = status(a1)
        servers = current["virtual_servers"][0]["real_servers"]
        return ([rs["health"] for rs in servers] == ["up", "down"] and current["lvs"]["reconciles"] >= 1
                and servers[0]["last_check"] is not None)
    wait_for(checked, 20, what="both real servers checked and the kernel reconciled")

    before = status(a1)
    metrics = scrape(lab, n1)
    after = status(a1)

    def between(path: list[str], value: float, scale: float = 1.0) -> None:
        low, high = before, after
        for key in path:
            low, high = low[key], high[key]
        assert low * scale <= value <= high * scale, (path, low, value, high)

    assert_status_schema(before)
    types = {name: family["type"] for name, family in metrics.items()}
    info = metrics["hanode_agent_info"]["samples"]
    assert info == [("hanode_agent_info", {"version": before["agent"]["version"], "router_id": "n1"}, 1.0)]
    for name, vrid in (("VI_1", "51"), ("VI_2", "52")):
        inst_before = before["instances"][name]
        labels = {"vrrp_instance": name, "vrid": vrid, "family": "ipv4", "interface": "eth0"}
        for state in STATES:
            assert _one(metrics, "hanode_vrrp_state", **labels, state=state) == (1.0 if state == "MASTER" else 0.0)
        assert _one(metrics, "hanode_vrrp_priority", **labels) == inst_before["priority"]
        assert _one(metrics, "hanode_vrrp_effective_priority", **labels) == inst_before["effective_priority"]
        transitions = _one(metrics, "hanode_vrrp_transitions", **labels)
        assert transitions == inst_before["transitions"] == 3  # INIT->BACKUP->MASTER; INIT->MASTER after the restart
        assert _one(metrics, "hanode_vrrp_conflicts", **labels) == 0
        for counter in KEEPALIVED_COUNTERS:
            assert types[f"hanode_vrrp_{counter}"] == "counter"
            between(["instances", name, "stats", counter], _one(metrics, f"hanode_vrrp_{counter}", **labels))
        assert _one(metrics, "hanode_vrrp_advert_sent", **labels) > 0
        last = _one(metrics, "hanode_vrrp_advert_jitter_seconds", **labels, stat="last")
        worst = _one(metrics, "hanode_vrrp_advert_jitter_seconds", **labels, stat="max")
        assert 0 <= last <= worst < 1.0
        assert worst >= inst_before["advert_jitter_ms"]["max"] / 1000
    assert types["hanode_vrrp_state"] == types["hanode_vrrp_priority"] == "gauge"
    assert types["hanode_vrrp_transitions"] == types["hanode_process_restarts"] == "counter"
    # Processes.
    assert _one(metrics, "hanode_process_restarts", process="vrrp") == 1
    assert _one(metrics, "hanode_process_up", process="vrrp") == 1
    # Foreign VRIDs (n2's VRID 60) are counted once per agent, not per instance.
    between(["vrrp", "stats", "unknown_vrid"], _one(metrics, "hanode_vrrp_unknown_vrid_packets"))
    assert _one(metrics, "hanode_vrrp_unknown_vrid_packets") > 0
    # The alert queue: the mail server is down, mail waits and attempts fail.
    between(["agent", "alerts", "pending"], _one(metrics, "hanode_alert_queue"))
    assert _one(metrics, "hanode_alert_queue") >= 1
    for key in ("sent", "failed_attempts", "retries", "dropped"):
        between(["agent", "alerts", key], _one(metrics, f"hanode_alert_mail_{key}"))
    assert _one(metrics, "hanode_alert_mail_failed_attempts") >= 2
    between(["agent", "events", "published"], _one(metrics, "hanode_events"))
    assert _one(metrics, "hanode_config_last_reload_ok") == 1
    # The load balancer: per real server health, kernel weight and check latency; the kernel sync.
    assert _one(metrics, "hanode_process_up", process="checker") == 1
    assert _one(metrics, "hanode_process_restarts", process="checker") == 0
    vs = "198.51.100.100:80/TCP"
    up, down = f"{r1.ipv4}:8080", f"{r2.ipv4}:8080"
    assert _one(metrics, "hanode_lvs_real_server_up", virtual_server=vs, real_server=up) == 1
    assert _one(metrics, "hanode_lvs_real_server_up", virtual_server=vs, real_server=down) == 0
    assert _one(metrics, "hanode_lvs_real_server_weight", virtual_server=vs, real_server=up) == 1
    assert _one(metrics, "hanode_lvs_real_server_weight", virtual_server=vs, real_server=down) == -1  # not in the kernel
    assert 0 < _one(metrics, "hanode_lvs_check_latency_seconds", virtual_server=vs, real_server=up) < 5
    assert _one(metrics, "hanode_lvs_diff_entries", virtual_server=vs) == 0
    assert _one(metrics, "hanode_lvs_real_server_health", virtual_server=vs, real_server=down, health="down") == 1
    assert _one(metrics, "hanode_lvs_quorum_up", virtual_server=vs) == 1
    assert _one(metrics, "hanode_lvs_sorry_server_active", virtual_server=vs) == 0
    assert _one(metrics, "hanode_lvs_checks") == 2
    between(["lvs", "check_runs"], _one(metrics, "hanode_lvs_check_runs"))
    assert _one(metrics, "hanode_lvs_check_late_starts", over_seconds="1") == after["lvs"]["check_late_starts"]["over_1000ms"]
    between(["lvs", "reconciles"], _one(metrics, "hanode_lvs_reconciles"))
    assert _one(metrics, "hanode_lvs_sync_errors") == 0
    assert 0 <= _one(metrics, "hanode_lvs_sync_lag_seconds") < 30
    assert _one(metrics, "hanode_lvs_last_reconcile_seconds") > 0
    # Only /metrics is served.
    other = lab.run(n1, ["curl", "-sS", "--noproxy", "*", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                         "http://127.0.0.1:9650/"]).stdout
    assert other == "404"

    # Listeners: n1 only the metrics address; n2 (no metrics_listen) nothing at all.
    assert listeners(lab, n1) == ["127.0.0.1:9650"]
    assert listeners(lab, n2) == []
    # A reload without metrics_listen closes the listener.
    rewrite_config(a1, {k: v for k, v in config.items() if k != "metrics_listen"})
    a1.reload()
    wait_for(lambda: listeners(lab, n1) == [], 5, what="the metrics listener to close after the reload")
