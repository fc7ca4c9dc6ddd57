"""Trackers: vrrp_script rise/fall, and effective priority / FAULT reasons of an instance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from hanode.config.model import VrrpInstance, VrrpScript

OWNER_PRIORITY = 255


@dataclass(frozen=True)
class ScriptHealth:
    ok: bool | None = None   # None until the first result
    streak: int = 0          # consecutive results against the current state
    last_exit: int | None = None
    last_error: str | None = None


def initial_health(script: VrrpScript) -> ScriptHealth:
    return ScriptHealth(ok=False) if script.init_fail else ScriptHealth()


def observe(health: ScriptHealth, script: VrrpScript, success: bool, exit_code: int | None = None,
            error: str | None = None) -> ScriptHealth:
    """One result: the first one decides; later, `rise` successes or `fall` failures in a row flip it."""
    if health.ok is None:
        return ScriptHealth(ok=success, streak=0, last_exit=exit_code, last_error=error)
    if success == health.ok:
        return ScriptHealth(ok=health.ok, streak=0, last_exit=exit_code, last_error=error)
    streak = health.streak + 1
    needed = script.rise if success else script.fall
    if streak >= needed:
        return ScriptHealth(ok=success, streak=0, last_exit=exit_code, last_error=error)
    return ScriptHealth(ok=health.ok, streak=streak, last_exit=exit_code, last_error=error)


@dataclass(frozen=True)
class Tracking:
    effective_priority: int
    fault_reasons: tuple[str, ...]
    pending: tuple[str, ...]  # scripts without a first result (the instance waits in INIT)


def evaluate(instance: VrrpInstance, links_up: Mapping[str, bool], scripts: Mapping[str, VrrpScript],
             health: Mapping[str, ScriptHealth]) -> Tracking:
    """keepalived's rules: weight 0 -> FAULT on failure; weight > 0 added while OK; weight < 0 added while failed."""
    delta = 0
    faults: list[str] = []
    pending: list[str] = []
    if not instance.dont_track_primary and not links_up.get(instance.interface, False):
        faults.append(f"interface {instance.interface} down")
    faults += _own_links(instance, links_up)
    if instance.unicast_fault_no_peer and not instance.unicast_peers:
        faults.append("unicast without any peers (unicast_fault_no_peer)")
    for tracked in instance.track_interfaces:
        up = links_up.get(tracked.name, False)
        if tracked.weight == 0 and not up:
            faults.append(f"tracked interface {tracked.name} down")
        delta += _weighted(tracked.weight, up)
    for tracked in instance.track_scripts:
        script = scripts[tracked.name]
        weight = script.weight if tracked.weight is None else tracked.weight
        ok = health.get(tracked.name, ScriptHealth()).ok
        if ok is None:
            pending.append(tracked.name)
            continue
        if weight == 0 and not ok:
            faults.append(f"script {tracked.name} failed")
        delta += _weighted(weight, ok)
    if instance.priority == OWNER_PRIORITY:
        effective = OWNER_PRIORITY
    else:
        effective = max(1, min(254, instance.priority + delta))
    return Tracking(effective_priority=effective, fault_reasons=tuple(faults), pending=tuple(pending))


def _own_links(instance: VrrpInstance, links_up: Mapping[str, bool]) -> list[str]:
    """The VMACs / ipvlan the agent makes for the instance (keepalived tracks them as it tracks the interface)."""
    if instance.dont_track_primary:
        return []
    faults = []
    for kind, name in [("VMAC", v.ifname) for v in instance.vmacs] + \
            ([("ipvlan", instance.ipvlan.ifname)] if instance.ipvlan else []):
        if name not in links_up:
            faults.append(f"{kind} {name} missing")
        elif not links_up[name]:
            faults.append(f"{kind} {name} down")
    return faults


def _weighted(weight: int, ok: bool) -> int:
    if weight > 0 and ok:
        return weight
    if weight < 0 and not ok:
        return weight
    return 0
