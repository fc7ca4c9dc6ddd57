"""The VRRP part of `hanode status --json`: plain dicts built from the engine (pure)."""

from __future__ import annotations

from hanode.vrrp.engine import Engine, Instance
from hanode.vrrp.repeat import Lateness
from hanode.vrrp.timers import master_down_interval_us, skew_time_us
from hanode.vrrp.track import ScriptHealth, file_status, resolved_weight


def _seconds_ago(now_us: int, then_us: int | None) -> float | None:
    return None if then_us is None else round((now_us - then_us) / 1e6, 3)


def instance_status(engine: Engine, name: str, inst: Instance, now_us: int) -> dict:
    cfg, st = inst.config, inst.state
    group = engine.config.sync_group_of(name)
    return {
        "state": st.state.value,
        "priority": cfg.priority,
        "effective_priority": st.effective_priority,
        "virtual_router_id": cfg.virtual_router_id,
        "version": cfg.version,
        "family": f"ipv{cfg.family}",
        "interface": cfg.interface,
        "source_address": inst.params.primary_address,
        "unicast_peers": list(cfg.unicast_peers),
        "advert_int": cfg.advert_int_cs / 100,
        "master_address": st.master_address,
        "master_priority": st.master_priority,
        "vips": [v.text() for v in cfg.vips],
        "excluded_vips": [v.text() for v in cfg.excluded_vips],
        "fault_reasons": list(st.fault_reasons),
        "drained": st.drained,
        "nopreempt": cfg.nopreempt,
        "sync_group": group.name if group else None,
        "timers": _timers(inst),
        "last_transition": {"state": st.state.value, "reason": st.last_reason,
                            "seconds_ago": _seconds_ago(now_us, st.last_transition_us)},
        "trackers": _trackers(engine, name),
        "peers": {src: {"priority": p.priority, "seconds_ago": _seconds_ago(now_us, p.last_seen_us),
                        "checksum_form": p.checksum_form} for src, p in inst.peers.items()},
        "conflicts": {"count": inst.conflicts, "last": inst.last_conflict},
        "stats": dict(st.stats),
    }


def _timers(inst: Instance) -> dict:
    st, version = inst.state, inst.config.version
    return {
        "master_adver_int_ms": st.master_adver_int_cs * 10,
        "skew_time_ms": round(skew_time_us(st.effective_priority, st.master_adver_int_cs, version) / 1000, 3),
        "master_down_interval_ms": round(master_down_interval_us(st.effective_priority, st.master_adver_int_cs, version,
                                                                 inst.params.down_timer_adverts) / 1000, 3),
    }


def _trackers(engine: Engine, name: str) -> dict:
    """The instance's trackers with its sync group's (what it really tracks)."""
    cfg = engine.tracked_config(name)
    interfaces = [{"name": t.name, "weight": t.weight, "weight_reverse": t.weight_reverse,
                   "up": engine.interfaces.get(t.name).up if t.name in engine.interfaces else False}
                  for t in cfg.track_interfaces]
    scripts = []
    for tracked in cfg.track_scripts:
        weight, reverse = resolved_weight(tracked, engine.config.vrrp_scripts[tracked.name])
        health = engine.health.get(tracked.name, ScriptHealth())
        scripts.append({"name": tracked.name, "weight": weight, "weight_reverse": reverse,
                        "ok": health.ok, "last_exit": health.last_exit, "last_error": health.last_error})
    processes = []
    for ref in cfg.track_processes:
        weight, reverse = resolved_weight(ref, engine.config.vrrp_track_processes[ref.name])
        processes.append({"name": ref.name, "weight": weight, "weight_reverse": reverse,
                          "up": engine.process_up.get(ref.name, False), "running": engine.process_counts.get(ref.name)})
    files = []
    for ref in cfg.track_files:
        weight, reverse = resolved_weight(ref, engine.config.track_files[ref.name])
        value = engine.file_values.get(ref.name, 0)
        files.append({"name": ref.name, "weight": weight, "weight_reverse": reverse, "value": value,
                      "status": file_status(weight, value, reverse)})
    return {"interfaces": interfaces, "scripts": scripts, "processes": processes, "files": files}


def _foreign(entry: dict, now_us: int) -> dict:
    public = {k: v for k, v in entry.items() if k != "last_seen_us"}
    return {**public, "seconds_ago": _seconds_ago(now_us, entry.get("last_seen_us"))}


def jitter_status(late: Lateness | None) -> dict | None:
    """How late the instance's adverts left (vrrp/runner.py measures it), in ms."""
    if not late:
        return None
    return {"last": round(late.last_us / 1000, 3), "max": round(late.max_us / 1000, 3),
            "mean": round(late.sum_us / late.count / 1000, 3)}


def engine_summary(engine: Engine, now_us: int) -> dict:
    """Everything but the instances."""
    return {
        "sync_groups": {name: {"state": engine.group_states.get(name).value if name in engine.group_states else "INIT",
                               "members": list(group.group)}
                        for name, group in engine.config.vrrp_sync_groups.items()},
        "vrrp": {"stats": dict(engine.global_stats),
                 "foreign_vrids": [_foreign(e, now_us) for e in engine.foreign.values()]},
    }


def engine_status(engine: Engine, now_us: int) -> dict:
    return {
        "instances": {name: instance_status(engine, name, inst, now_us) for name, inst in engine.instances.items()},
        **engine_summary(engine, now_us),
    }
