"""Trackers: vrrp_script rise/fall, and effective priority / FAULT reasons of an instance."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from hanode.config.model import SyncGroup, TrackFile, TrackProcess, VrrpInstance, VrrpScript

OWNER_PRIORITY = 255
FILE_FAULT = -254     # a track_file's value times its weight at or below this: FAULT (keepalived)
FILE_MAX = 253


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


@dataclass(frozen=True)
class Observed:
    """What the process and file trackers last saw: a quorum per vrrp_track_process, a value per track_file."""
    processes: Mapping[str, TrackProcess] = field(default_factory=dict)
    process_up: Mapping[str, bool] = field(default_factory=dict)
    files: Mapping[str, TrackFile] = field(default_factory=dict)
    file_values: Mapping[str, int] = field(default_factory=dict)


def file_status(weight: int, value: int, reverse: bool = False) -> int | None:
    """keepalived's track_file rule: weight 0 -> a non-zero value is a failure (None); otherwise value * weight,
    capped at 253, and FAULT (None) at -254 or below. Reversed (`weight N reverse`): weight 0 -> a zero value is
    the failure; otherwise -value * weight (keepalived's weight_multiplier -1)."""
    if weight == 0:
        return None if bool(value) != reverse else 0
    status = value * weight * (-1 if reverse else 1)
    return None if status <= FILE_FAULT else min(FILE_MAX, status)


def resolved_weight(ref, spec=None) -> tuple[int, bool]:
    """A tracker reference's weight and reverse flag: the reference's own where it gives them, else the tracker's
    (keepalived: `track_script { NAME weight N }` keeps the vrrp_script's reverse unless it says reverse or
    noreverse)."""
    weight = spec.weight if ref.weight is None else ref.weight
    reverse = ref.weight_reverse if ref.weight_reverse is not None else bool(spec and spec.weight_reverse)
    return weight, reverse


def evaluate(instance: VrrpInstance, links_up: Mapping[str, bool], scripts: Mapping[str, VrrpScript],
             health: Mapping[str, ScriptHealth], observed: Observed | None = None) -> Tracking:
    """keepalived's rules: weight 0 -> FAULT on failure; weight > 0 added while OK; weight < 0 added while failed
    (a track_file: its value times the weight, see file_status). A reversed weight turns each round: weight 0 ->
    FAULT while OK; weight > 0 subtracted while OK; weight < 0 subtracted (so added) while failed."""
    delta = 0
    faults: list[str] = []
    pending: list[str] = []
    if observed is not None:
        delta, faults = _processes_and_files(instance, observed)
    if not instance.dont_track_primary and not links_up.get(instance.interface, False):
        faults.append(f"interface {instance.interface} down")
    faults += _own_links(instance, links_up)
    if instance.unicast_fault_no_peer and not instance.unicast_peers:
        faults.append("unicast without any peers (unicast_fault_no_peer)")
    for tracked in instance.track_interfaces:
        up = links_up.get(tracked.name, False)
        if _faulted(tracked.weight, tracked.weight_reverse, up):
            faults.append(f"tracked interface {tracked.name} {'up (reverse)' if up else 'down'}")
        delta += _weighted(tracked.weight, up, tracked.weight_reverse)
    for tracked in instance.track_scripts:
        weight, reverse = resolved_weight(tracked, scripts[tracked.name])
        ok = health.get(tracked.name, ScriptHealth()).ok
        if ok is None:
            pending.append(tracked.name)
            continue
        if _faulted(weight, reverse, ok):
            faults.append(f"script {tracked.name} {'succeeded (reverse)' if ok else 'failed'}")
        delta += _weighted(weight, ok, reverse)
    if instance.priority == OWNER_PRIORITY:
        effective = OWNER_PRIORITY
    else:
        effective = max(1, min(254, instance.priority + delta))
    return Tracking(effective_priority=effective, fault_reasons=tuple(faults), pending=tuple(pending))


def _processes_and_files(instance: VrrpInstance, observed: Observed) -> tuple[int, list[str]]:
    delta, faults = 0, []
    for ref in instance.track_processes:
        weight, reverse = resolved_weight(ref, observed.processes[ref.name])
        up = observed.process_up.get(ref.name, False)
        if _faulted(weight, reverse, up):
            faults.append(f"tracked process {ref.name}: {'quorum reached (reverse)' if up else 'quorum lost'}")
        delta += _weighted(weight, up, reverse)
    for ref in instance.track_files:
        value = observed.file_values.get(ref.name, 0)
        status = _file_status_of(ref, observed.files[ref.name], value)
        if status is None:
            faults.append(f"tracked file {ref.name}: value {value}")
        else:
            delta += status
    return delta, faults


def with_group_trackers(instance: VrrpInstance, group: SyncGroup | None, scripts: Mapping[str, VrrpScript],
                        files: Mapping[str, TrackFile], owner_in_group: bool = False) -> VrrpInstance:
    """A sync group member as keepalived tracks it: the group's trackers added to its own; without the group's
    sync_group_tracking_weight, the member's own weights go (keepalived's vrrp_complete_instance: a weighted
    interface counts with weight 0, a weighted script is ignored, a track_file left at its default weight 1
    counts with weight 0 and one with another weight is ignored; track_process weights are kept, as keepalived
    keeps them). With an address owner (priority 255) among the members, the group's own trackers count with
    weight 0 (keepalived's sync_group_tracking_init: "Cannot have weighted track ... with member having priority
    255")."""
    if group is None:
        return instance
    if owner_in_group:
        group = replace(group, track_interfaces=tuple(replace(t, weight=0) for t in group.track_interfaces),
                        track_scripts=tuple(replace(t, weight=0) for t in group.track_scripts),
                        track_processes=tuple(replace(t, weight=0) for t in group.track_processes),
                        track_files=tuple(replace(t, weight=0) for t in group.track_files))
    own_if, own_sc, own_files = instance.track_interfaces, instance.track_scripts, instance.track_files
    if not group.tracking_weight:
        own_if = tuple(replace(t, weight=0) for t in own_if)
        own_sc = tuple(t for t in own_sc if (scripts[t.name].weight if t.weight is None else t.weight) == 0)
        own_files = tuple(replace(t, weight=0) for t in own_files
                          if (files[t.name].weight if t.weight is None else t.weight) in (0, 1))
    return replace(instance, track_interfaces=_merged(own_if, group.track_interfaces),
                   track_scripts=_merged(own_sc, group.track_scripts),
                   track_processes=_merged(instance.track_processes, group.track_processes),
                   track_files=_merged(own_files, group.track_files))


def _merged(own: tuple, group: tuple) -> tuple:
    """keepalived: a tracker on both the instance and its group counts once, with the group's weight (unless the
    instance's is 0)."""
    by_name = {t.name: t for t in own}
    for tracked in group:
        mine = by_name.get(tracked.name)
        if mine is None or mine.weight != 0:
            by_name[tracked.name] = tracked
    return tuple(by_name.values())


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


def _weighted(weight: int, ok: bool, reverse: bool = False) -> int:
    if weight > 0 and ok:
        return -weight if reverse else weight
    if weight < 0 and not ok:
        return -weight if reverse else weight
    return 0


def _faulted(weight: int, reverse: bool, ok: bool) -> bool:
    """A weight-0 tracker puts the instance in FAULT when it fails, or, reversed, when it succeeds."""
    return weight == 0 and ok == reverse


def _file_status_of(ref, spec: TrackFile, value: int) -> int | None:
    weight, reverse = resolved_weight(ref, spec)
    return file_status(weight, value, reverse)


def parse_file_value(data: bytes) -> int | None:
    """A track_file's contents as keepalived reads them (strtol, base 0): leading blanks, a sign, 0x hex, 0 octal
    or decimal digits, anything after them ignored; no number at all is 0. None: out of range (keepalived
    ignores the read and keeps the last value)."""
    text = data[:127].decode("ascii", errors="replace").lstrip(" \t\n\r\f\v")
    sign = -1 if text[:1] == "-" else 1
    text = text[1:] if text[:1] in ("-", "+") else text
    base, digits = 10, "0123456789"
    if text[:2].lower() == "0x" and text[2:3].lower() in "0123456789abcdef" and text[2:3]:
        base, digits, text = 16, "0123456789abcdef", text[2:]
    elif text[:1] == "0":
        base, digits = 8, "01234567"
    end = 0
    while end < len(text) and text[end].lower() in digits:
        end += 1
    value = sign * int(text[:end], base) if end else 0
    return value if -2**31 <= value <= 2**31 else None
