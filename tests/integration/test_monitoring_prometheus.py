"""The monitoring mixin proven against the lab: a real Prometheus (Debian's package) in a client namespace
scrapes three agents' metrics_listen addresses with the mixin's alerts and recording rules rendered for a
fast lab (tests/integration/helpers_monitoring.py FAST_VALUES). Each alert's condition is provoked for real
(a failed reload, a tracked interface down, a flapping instance, a partition between two masters, forged
adverts, a real server stopped, the checker stalled, an agent killed, the targets gone) and the test waits,
through Prometheus's own HTTP API, for the alert to fire and then to resolve. Then every query of the Grafana
dashboard runs against the same Prometheus and must return series.

The time each alert took to fire and to resolve is printed (MEASURE lines) and written to
tests/output/monitoring-alert-times.json."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from hanode.control.client import request
from hanode.lab.procs import wait_for
from helpers_checker import GATEWAY, real_server, virtual_server
from helpers_monitoring import JOB, MIXIN, Prometheus, load_mixin_module
from helpers_ops import new_lab
from helpers_vrrp import (PASSWORD, VIP4, add_track_link, agent_config, instance, rewrite_config, send_packets,
                          status, wait_state)

pytestmark = pytest.mark.netns

METRICS_PORT = 9650
VS_ADDRESS = "198.51.100.120"
OUTPUT = Path(__file__).resolve().parents[2] / "tests" / "output" / "monitoring-alert-times.json"


class Timings:
    def __init__(self):
        self.rows: list[dict] = []
        # Alerts that count over a window (flap_window, bad_packet_window, checker_window: 20 s here) resolve
        # once the provocation has left it; checked at the end: (alert, labels, cured at, row).
        self.windowed: list[tuple[str, dict, float, dict]] = []

    def add(self, alert: str, condition: str, fired_s: float, resolved_s: float | None = None) -> dict:
        row = {"alert": alert, "condition": condition, "fired_s": round(fired_s, 2),
               "resolved_s": None if resolved_s is None else round(resolved_s, 2)}
        self.rows.append(row)
        return row

    def report(self) -> None:
        for row in self.rows:
            print(f"MEASURE {row['alert']:<30} fired {row['fired_s']:5.1f} s  resolved {row['resolved_s']:5.1f} s"
                  f"  ({row['condition']})")
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(json.dumps({"values": "tests/integration/helpers_monitoring.py FAST_VALUES",
                                      "alerts": self.rows}, indent=2) + "\n")


def _configs(lab) -> dict:
    n1, n2, n3 = lab.nodes
    r1, r2, r3 = lab.real_servers
    auth = {"authentication": {"auth_type": "PASS", "auth_pass": PASSWORD}}

    def listen(host) -> str:
        return f"{host.ipv4}:{METRICS_PORT}"
    return {
        "n1": agent_config("n1", {"VI_1": instance(51, 150, **auth)}, metrics_listen=listen(n1)),
        "n2": agent_config("n2", {"VI_1": instance(51, 100, **auth)}, metrics_listen=listen(n2)),
        "n3": agent_config("n3", {"VI_2": instance(52, 100, vips=("198.51.100.102",), version=3, advert_int=0.5,
                                                   track_interfaces=[{"name": "trk0", "weight": 0}])},
                           metrics_listen=listen(n3), watchdog_timeout=30, lb_backend="nftables",
                           virtual_servers=[virtual_server([real_server(r1), real_server(r2)], address=VS_ADDRESS,
                                                           quorum=2, sorry_server={"address": r3.ipv4, "port": 8080})]),
    }


def _reload(handle) -> dict:
    return request(str(handle.socket_path), {"cmd": "reload"}, timeout_s=60)


def test_every_alert_fires_and_resolves_in_a_real_prometheus_and_every_dashboard_query_returns_series(lab_factory):
    lab = new_lab(lab_factory, nodes=3, clients=1, real_servers=3, real_server_gateway=GATEWAY)
    n1, n2, n3 = lab.nodes
    (c1,) = lab.clients
    r1, r2, r3 = lab.real_servers
    servers = {host.name: lab.start_http_server(host) for host in (r1, r2, r3)}
    add_track_link(lab, n3, "trk0")
    configs = _configs(lab)
    agents = {"n1": lab.start_agent(n1, configs["n1"], timeout=20), "n2": lab.start_agent(n2, configs["n2"]),
              "n3": lab.start_agent(n3, configs["n3"], timeout=20)}
    target = {name: f"{host.ipv4}:{METRICS_PORT}" for name, host in zip(("n1", "n2", "n3"), lab.nodes)}
    prometheus = Prometheus(lab, c1, sorted(target.values())).start()
    timings = Timings()
    try:
        wait_state(agents["n1"], "MASTER", "VI_1", timeout=20)
        wait_state(agents["n3"], "MASTER", "VI_2", timeout=20)
        wait_for(lambda: [rs["health"] for rs in status(agents["n3"])["virtual_servers"][0]["real_servers"]]
                 == ["up", "up"], 20, what="both real servers up on n3")
        prometheus.wait_targets_up(3)
        wait_for(lambda: prometheus.query("vrid:hanode_vrrp_masters:sum") and not prometheus.api("alerts")["alerts"],
                 30, interval=0.2, what="rules evaluated and no alert active on the healthy lab")
        _vrrp_alerts(lab, prometheus, agents, configs, target, timings)
        _lvs_alerts(lab, prometheus, agents, servers, target, timings)
        _agent_alerts(lab, prometheus, agents, configs, target, timings)
        _dashboard_queries_return_series(prometheus)
        _absent(prometheus, target, timings)
    finally:
        prometheus.stop()
        timings.report()
    assert {row["alert"] for row in timings.rows} == {
        rule["alert"] for group in yaml.safe_load((MIXIN / "alerts.yaml").read_text())["groups"]
        for rule in group["rules"]}


def _fire_and_resolve(prometheus, timings, alert, condition, provoke, cure, **labels) -> None:
    started = time.monotonic()
    provoke()
    fired_s = prometheus.wait_firing(alert, started, **labels)
    cured = time.monotonic()
    cure()
    timings.add(alert, condition, fired_s, prometheus.wait_resolved(alert, cured, **labels))


def _flap(lab, handle) -> None:
    """trk0 down until VI_2 is in FAULT, up until it is MASTER again: three transitions."""
    lab.link_set(handle.host, "trk0", False)
    wait_state(handle, "FAULT", "VI_2")
    lab.link_set(handle.host, "trk0", True)
    wait_state(handle, "MASTER", "VI_2")


def _vrrp_alerts(lab, prometheus, agents, configs, target, timings) -> None:
    n1, n2, n3 = lab.nodes
    (c1,) = lab.clients
    bad = dict(configs["n2"], vrrp_instances={"VI_1": dict(configs["n2"]["vrrp_instances"]["VI_1"], prority=1)})

    def refuse() -> None:
        rewrite_config(agents["n2"], bad)
        assert not _reload(agents["n2"])["ok"]

    def accept() -> None:
        rewrite_config(agents["n2"], configs["n2"])
        assert _reload(agents["n2"])["ok"]
    _fire_and_resolve(prometheus, timings, "HanodeReloadFailed", "n2 reloaded a config with an unknown key",
                      refuse, accept, instance=target["n2"])

    # A tracked interface down: the only member of VRID 52 goes to FAULT, so nobody is its master.
    started = time.monotonic()
    lab.link_set(n3, "trk0", False)
    fault_s = prometheus.wait_firing("HanodeVRRPFault", started, instance=target["n3"], vrrp_instance="VI_2")
    fault = prometheus.firing("HanodeVRRPFault", instance=target["n3"], vrrp_instance="VI_2")
    assert fault["labels"]["reason"] == "tracked interface trk0 down", fault
    assert fault["annotations"]["summary"] == f"VI_2 on {target['n3']} is in FAULT: tracked interface trk0 down"
    no_master_s = prometheus.wait_firing("HanodeVRRPNoMaster", started, vrid="52")
    cured = time.monotonic()
    lab.link_set(n3, "trk0", True)
    timings.add("HanodeVRRPFault", "n3's tracked interface trk0 down (VI_2)", fault_s,
                prometheus.wait_resolved("HanodeVRRPFault", cured, instance=target["n3"], vrrp_instance="VI_2"))
    timings.add("HanodeVRRPNoMaster", "VRID 52's only member in FAULT", no_master_s,
                prometheus.wait_resolved("HanodeVRRPNoMaster", cured, vrid="52"))

    # The same interface going down and up again: VI_2 flaps.
    started = time.monotonic()
    _flap(lab, agents["n3"])
    _flap(lab, agents["n3"])
    labels = {"instance": target["n3"], "vrrp_instance": "VI_2"}
    flap_s = prometheus.wait_firing("HanodeVRRPFlapping", started, **labels)
    row = timings.add("HanodeVRRPFlapping", "trk0 down and up twice more on n3", flap_s)
    timings.windowed.append(("HanodeVRRPFlapping", labels, time.monotonic(), row))

    # Two masters: n1 and n2 cannot hear each other.
    _fire_and_resolve(prometheus, timings, "HanodeVRRPSplitBrain", "partition between n1 and n2 (VRID 51)",
                      lambda: lab.partition(n1, n2), lab.heal, vrid="51")

    # Forged adverts from the client: a wrong password, another address list, a bad TTL, a short packet.
    started = time.monotonic()
    sent = send_packets(lab, c1, ["password", "addresses", "ttl", "short"], vrid=51, vips=[VIP4], src=c1.ipv4,
                        password=PASSWORD, count=3)
    assert len(sent.splitlines()) == 12
    cured = time.monotonic()
    for alert, condition in (("HanodeVRRPAuthFailures", "3 adverts with a wrong password from c1"),
                             ("HanodeVRRPVRIDCollision", "3 adverts for VRID 51 with another address list"),
                             ("HanodeVRRPBadPackets", "3 adverts with TTL 64 and 3 too short")):
        labels = {"instance": target["n2"], "vrid": "51"}
        fired_s = prometheus.wait_firing(alert, started, **labels)
        timings.windowed.append((alert, labels, cured, timings.add(alert, condition, fired_s)))


def _lvs_alerts(lab, prometheus, agents, servers, target, timings) -> None:
    r2 = lab.real_servers[1]
    vs = f"{VS_ADDRESS}:80/TCP"
    started = time.monotonic()
    servers["r2"].stop()
    rs_s = prometheus.wait_firing("HanodeRealServerDown", started, instance=target["n3"], real_server=f"{r2.ipv4}:8080")
    quorum_s = prometheus.wait_firing("HanodeVirtualServerQuorumLost", started, instance=target["n3"], virtual_server=vs)
    cured = time.monotonic()
    servers["r2"] = lab.start_http_server(r2)
    timings.add("HanodeRealServerDown", "r2's HTTP server stopped", rs_s,
                prometheus.wait_resolved("HanodeRealServerDown", cured, instance=target["n3"]))
    timings.add("HanodeVirtualServerQuorumLost", "quorum 2 with one of two weight-1 servers up (sorry server on)",
                quorum_s, prometheus.wait_resolved("HanodeVirtualServerQuorumLost", cured, instance=target["n3"]))

    # The checker stalled for 3 s (as a paused VM or a starved process): every check starts late once.
    checker = status(agents["n3"])["agent"]["processes"]["checker"]["pid"]
    started = time.monotonic()
    os.kill(checker, signal.SIGSTOP)
    try:
        time.sleep(3)  # the stall itself, not a wait for a condition
    finally:
        os.kill(checker, signal.SIGCONT)
    cured = time.monotonic()
    labels = {"instance": target["n3"]}
    fired_s = prometheus.wait_firing("HanodeCheckerBehindSchedule", started, **labels)
    row = timings.add("HanodeCheckerBehindSchedule", "n3's checker process stopped for 3 s", fired_s)
    timings.windowed.append(("HanodeCheckerBehindSchedule", labels, cured, row))
    assert status(agents["n3"])["agent"]["processes"]["checker"]["pid"] == checker  # stalled, not restarted


def _agent_alerts(lab, prometheus, agents, configs, target, timings) -> None:
    n1 = lab.nodes[0]

    def kill() -> None:
        agents["n1"].kill()
        wait_state(agents["n2"], "MASTER", "VI_1")

    def restart() -> None:
        agents["n1"] = lab.start_agent(n1, configs["n1"], timeout=20)
    _fire_and_resolve(prometheus, timings, "HanodeAgentDown", "n1's agent killed (SIGKILL); n2 took over",
                      kill, restart, instance=target["n1"])
    wait_state(agents["n1"], "MASTER", "VI_1", timeout=20)
    for alert, labels, cured, row in timings.windowed:
        row["resolved_s"] = round(prometheus.wait_resolved(alert, cured, timeout=60, **labels), 2)


def _dashboard_queries_return_series(prometheus) -> None:
    dashboard = json.loads((MIXIN / "dashboards" / "hanode-fleet.json").read_text())
    queries = load_mixin_module("check_dashboard").queries(dashboard, {"$job": JOB})
    empty = [f"{where}: {expr}" for where, expr in queries if not prometheus.query(expr)]
    assert not empty, "dashboard queries without series:\n  " + "\n  ".join(empty)
    print(f"MEASURE dashboard: {len(queries)} queries, each returned series")


def _absent(prometheus, target, timings) -> None:
    _fire_and_resolve(prometheus, timings, "HanodeAgentsAbsent", "every target removed from file_sd",
                      lambda: prometheus.set_targets([]), lambda: prometheus.set_targets(sorted(target.values())),
                      job=JOB)
