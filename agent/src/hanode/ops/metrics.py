"""Prometheus text endpoint (off unless metrics_listen is set): families built from the status document."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from hanode.vrrp.fsm import COUNTERS

log = logging.getLogger("hanode.metrics")
STATES = ("INIT", "BACKUP", "MASTER", "FAULT", "STOP")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _agent(status: dict) -> Iterable[Metric]:
    agent = status.get("agent", {})
    info = GaugeMetricFamily("hanode_agent_info", "Agent version and router id", labels=["version", "router_id"])
    info.add_metric([str(agent.get("version")), str(agent.get("router_id"))], 1)
    yield info
    yield GaugeMetricFamily("hanode_agent_uptime_seconds", "Seconds since the agent started", value=agent.get("uptime_s", 0))
    up = GaugeMetricFamily("hanode_process_up", "1 when the supervised process runs", labels=["process"])
    restarts = CounterMetricFamily("hanode_process_restarts", "Restarts of a supervised process", labels=["process"])
    for name, proc in (agent.get("processes") or {}).items():
        up.add_metric([name], 1 if proc.get("running") else 0)
        restarts.add_metric([name], proc.get("restarts", 0))
    yield up
    yield restarts
    reload_ok = (agent.get("config") or {}).get("last_reload") or {}
    yield GaugeMetricFamily("hanode_config_last_reload_ok", "0 when the last reload was refused",
                            value=0 if reload_ok and not reload_ok.get("ok") else 1)


# Every per-instance family carries these labels. `vrrp_instance`, not `instance`: Prometheus gives its own
# `instance` label (the scrape target) to every series and would rename ours to `exported_instance`.
INSTANCE_LABELS = ["vrrp_instance", "vrid", "family", "interface"]
HEALTH = ("up", "down", "disabled")
BAD_AUTH = ("auth_failure", "authtype_mismatch", "invalid_authtype")


def _instance_labels(name: str, inst: dict) -> list[str]:
    return [name, str(inst.get("virtual_router_id", "")), str(inst.get("family", "")), str(inst.get("interface", ""))]


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


def _counter(name: str, doc: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels or [])


def _vrrp(status: dict) -> Iterable[Metric]:
    labels = INSTANCE_LABELS
    state = _gauge("hanode_vrrp_state", "1 for the instance's current state", labels + ["state"])
    fault = _gauge("hanode_vrrp_fault_reason", "1 for each reason the instance is in FAULT", labels + ["reason"])
    prio = _gauge("hanode_vrrp_priority", "Configured priority", labels)
    eff = _gauge("hanode_vrrp_effective_priority", "Priority after trackers", labels)
    master_prio = _gauge("hanode_vrrp_master_priority", "Priority of the current master (-1: unknown)", labels)
    transitions = _counter("hanode_vrrp_transitions", "State transitions", labels)
    conflicts = _counter("hanode_vrrp_conflicts", "Other masters heard while MASTER (split brain / VRID collision)",
                         labels)
    lateness = _gauge("hanode_vrrp_advert_jitter_seconds", "Advert timer lateness (jitter): last and max",
                      labels + ["stat"])
    counters = {name: _counter(f"hanode_vrrp_{name}", f"keepalived counter {name}", labels) for name in COUNTERS}
    for name, inst in sorted((status.get("instances") or {}).items()):
        values = _instance_labels(name, inst)
        for value in STATES:
            state.add_metric(values + [value], 1 if inst.get("state") == value else 0)
        for reason in inst.get("fault_reasons") or []:
            fault.add_metric(values + [str(reason)], 1)
        prio.add_metric(values, inst.get("priority", 0))
        eff.add_metric(values, inst.get("effective_priority", 0))
        master = inst.get("master_priority")
        master_prio.add_metric(values, -1 if master is None else master)
        transitions.add_metric(values, inst.get("transitions", 0))
        conflicts.add_metric(values, (inst.get("conflicts") or {}).get("count", 0))
        jitter = inst.get("advert_jitter_ms") or {}
        for stat in ("last", "max"):
            lateness.add_metric(values + [stat], (jitter.get(stat) or 0) / 1000)
        for counter, family in counters.items():
            family.add_metric(values, (inst.get("stats") or {}).get(counter, 0))
    yield from (state, fault, prio, eff, master_prio, transitions, conflicts, lateness, *counters.values())
    vrrp = status.get("vrrp") or {}
    yield CounterMetricFamily("hanode_vrrp_unknown_vrid_packets", "Adverts for VRIDs not configured here",
                              value=(vrrp.get("stats") or {}).get("unknown_vrid", 0))


def _real_servers(status: dict) -> Iterable[Metric]:
    labels = ["virtual_server", "real_server"]
    up = _gauge("hanode_lvs_real_server_up", "1 when the real server passes its checks", labels)
    health = _gauge("hanode_lvs_real_server_health", "1 for the real server's health (up, down, disabled)",
                    labels + ["health"])
    weight = _gauge("hanode_lvs_real_server_weight", "Weight in the kernel (-1: not in the kernel)", labels)
    configured = _gauge("hanode_lvs_real_server_configured_weight", "Configured weight", labels)
    latency = _gauge("hanode_lvs_check_latency_seconds", "Latency of the last check", labels)
    for vs in status.get("virtual_servers") or []:
        for rs in vs.get("real_servers") or []:
            values = [str(vs.get("name")), str(rs.get("name"))]
            up.add_metric(values, 1 if rs.get("health") == "up" else 0)
            for value in HEALTH:
                health.add_metric(values + [value], 1 if rs.get("health") == value else 0)
            kernel_weight = rs.get("kernel_weight")
            weight.add_metric(values, -1 if kernel_weight is None else kernel_weight)
            configured.add_metric(values, rs.get("weight", 0))
            latency.add_metric(values, ((rs.get("last_check") or {}).get("latency_ms") or 0) / 1000)
    yield from (up, health, weight, configured, latency)


def _virtual_servers(status: dict) -> Iterable[Metric]:
    labels = ["virtual_server"]
    diff = _gauge("hanode_lvs_diff_entries", "Differences between desired and kernel state", labels)
    quorum_up = _gauge("hanode_lvs_quorum_up", "1 while the live weight reaches quorum (absent before the first "
                       "evaluation)", labels)
    live = _gauge("hanode_lvs_live_weight", "Sum of the weights of the live real servers", labels)
    quorum = _gauge("hanode_lvs_quorum", "Configured quorum (minimum live weight)", labels)
    sorry = _gauge("hanode_lvs_sorry_server_active", "1 while traffic goes to the sorry server", labels)
    for vs in status.get("virtual_servers") or []:
        values = [str(vs.get("name"))]
        diff.add_metric(values, len(vs.get("diff") or []))
        q = vs.get("quorum") or {}
        if q.get("state") is not None:
            quorum_up.add_metric(values, 1 if q["state"] == "up" else 0)
        live.add_metric(values, q.get("live_weight") or 0)
        quorum.add_metric(values, q.get("quorum") or 0)
        sorry.add_metric(values, 1 if vs.get("sorry_server_active") else 0)
    yield from (diff, quorum_up, live, quorum, sorry)


def _lvs(status: dict) -> Iterable[Metric]:
    yield from _real_servers(status)
    yield from _virtual_servers(status)
    lvs = status.get("lvs") or {}
    yield CounterMetricFamily("hanode_lvs_reconciles", "Kernel reconciles", value=lvs.get("reconciles", 0))
    yield CounterMetricFamily("hanode_lvs_sync_errors", "Failed kernel operations", value=lvs.get("errors", 0))
    yield GaugeMetricFamily("hanode_lvs_sync_lag_seconds", "Seconds since the kernel was last known in sync",
                            value=lvs.get("last_success_age_s") or 0)
    yield GaugeMetricFamily("hanode_lvs_last_reconcile_seconds", "Duration of the last reconcile",
                            value=(lvs.get("last_duration_ms") or 0) / 1000)
    if lvs:
        yield from _checker(lvs)


def _checker(lvs: dict) -> Iterable[Metric]:
    yield GaugeMetricFamily("hanode_lvs_checks", "Health checks scheduled", value=lvs.get("checks", 0))
    yield CounterMetricFamily("hanode_lvs_check_runs", "Health checks run", value=lvs.get("check_runs", 0))
    yield CounterMetricFamily("hanode_lvs_check_failures", "Health checks failed", value=lvs.get("check_failures", 0))
    late = _gauge("hanode_lvs_check_start_late_seconds", "How late checks started, over the last 1000 starts",
                  ["quantile"])
    for quantile, key in (("0.5", "p50"), ("0.99", "p99"), ("1", "max")):
        late.add_metric([quantile], ((lvs.get("check_late_ms") or {}).get(key) or 0) / 1000)
    yield late
    late_starts = _counter("hanode_lvs_check_late_starts", "Checks that started later than `over_seconds`",
                           ["over_seconds"])
    for key, count in sorted((lvs.get("check_late_starts") or {}).items()):
        late_starts.add_metric([f"{int(key.removeprefix('over_').removesuffix('ms')) / 1000:g}"], count)
    yield late_starts
    yield GaugeMetricFamily("hanode_lvs_checker_loop_lag_seconds", "Longest stall of the checker's event loop "
                            "in the last minute", value=(lvs.get("loop_lag_ms") or 0) / 1000)


def _alerts(status: dict) -> Iterable[Metric]:
    alerts = (status.get("agent") or {}).get("alerts") or {}
    yield GaugeMetricFamily("hanode_alert_queue", "Alert mails waiting to be sent", value=alerts.get("pending", 0))
    for key in ("sent", "failed_attempts", "retries", "dropped"):
        yield CounterMetricFamily(f"hanode_alert_mail_{key}", f"Alert mails: {key.replace('_', ' ')}",
                                  value=alerts.get(key, 0))
    events = (status.get("agent") or {}).get("events") or {}
    yield CounterMetricFamily("hanode_events", "Events published on the event stream", value=events.get("published", 0))


class _Snapshot:
    def __init__(self, status: dict):
        self.status = status

    def collect(self) -> Iterable[Metric]:
        for part in (_agent, _vrrp, _lvs, _alerts):
            yield from part(self.status)


def render_metrics(status: dict) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(status))
    return generate_latest(registry)


class MetricsServer:
    def __init__(self, host: str, port: int, status: Callable[[], Awaitable[dict]]):
        self.host, self.port, self.status = host, port, status
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, self.host, self.port)
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def close(self) -> None:
        if self.server:
            self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass
            parts = request.decode(errors="replace").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                body, code, kind = render_metrics(await self.status()), "200 OK", CONTENT_TYPE
            else:
                body, code, kind = b"only /metrics here\n", "404 Not Found", "text/plain"
            writer.write(f"HTTP/1.1 {code}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
