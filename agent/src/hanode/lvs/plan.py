"""plan(desired, actual, owned) -> the kernel operations that turn actual into desired (pure).

Reconcile, not replay: the same plan drives IPVS and nftables. Rules:
- services in `desired` are created or edited in place; their destinations are made to match exactly;
- a service that is neither desired nor in `owned` is somebody else's: never touched;
- an owned service that is no longer desired is removed (its destinations first);
- a weight or forwarding-method change is one EditDest, never a delete and an add (connections stay);
- order is safe for the kernel and keeps services serving: AddService/EditService, AddDest, EditDest,
  DelDest, DelService. Within each group ops are sorted by key, so a plan is deterministic.
plan(x, x, owned) == [] for any x.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import compress
from operator import ne
from typing import AbstractSet, Mapping, Union

from hanode.lvs.kernel import Dest, DestKey, Entry, Service, ServiceKey


@dataclass(frozen=True)
class AddService:
    service: Service


@dataclass(frozen=True)
class EditService:
    service: Service
    before: Service


@dataclass(frozen=True)
class DelService:
    key: ServiceKey


@dataclass(frozen=True)
class AddDest:
    service: ServiceKey
    dest: Dest


@dataclass(frozen=True)
class EditDest:
    service: ServiceKey
    dest: Dest
    before: Dest


@dataclass(frozen=True)
class DelDest:
    service: ServiceKey
    dest: DestKey


Op = Union[AddService, EditService, DelService, AddDest, EditDest, DelDest]

_PHASES = (AddService, EditService, AddDest, EditDest, DelDest, DelService)


def plan(desired: Mapping[ServiceKey, Entry], actual: Mapping[ServiceKey, Entry],
         owned: AbstractSet[ServiceKey] = frozenset()) -> list[Op]:
    groups: dict[type, list[Op]] = {phase: [] for phase in _PHASES}
    for key in sorted(desired):
        want = desired[key]
        have = actual.get(key)
        if have is None:
            groups[AddService].append(AddService(want.service))
            groups[AddDest].extend(AddDest(key, d) for _dk, d in sorted(want.dests.items()))
            continue
        if want.service.normalized() != have.service.normalized():
            groups[EditService].append(EditService(want.service, have.service))
        _diff_dests(key, want.dests, have.dests, groups)
    for key in sorted(actual):
        if key in desired or key not in owned:
            continue
        groups[DelDest].extend(DelDest(key, dk) for dk in sorted(actual[key].dests))
        groups[DelService].append(DelService(key))
    return [op for phase in _PHASES for op in groups[phase]]


def _diff_dests(key: ServiceKey, want: Mapping[DestKey, Dest], have: Mapping[DestKey, Dest],
                groups: dict[type, list[Op]]) -> None:
    # One pass in C loops (map/compress), no Python frame per destination: a one-weight change among 10,000
    # costs ~1 ms here instead of ~5 with a comprehension. The same destinations in the same order (a weight
    # change: the desired state keeps the config's order and the last apply left it in place) pair up by
    # position, without hashing 10,000 keys.
    want_keys = list(want)
    before = list(have.values()) if want_keys == list(have) else list(map(have.get, want_keys))
    changed = sorted(compress(want, map(ne, before, want.values())))
    for dk in changed:
        dest = want[dk]
        old = have.get(dk)
        if old is None:
            groups[AddDest].append(AddDest(key, dest))
        else:
            groups[EditDest].append(EditDest(key, dest, old))
    kept = len(want) - before.count(None)          # destinations of `want` already in `have`
    if kept < len(have):
        for dk in sorted(have.keys() - want.keys()):
            groups[DelDest].append(DelDest(key, dk))


def describe(op: Op) -> str:
    """One line for logs and status: 'set dest TCP 198.51.100.100:80 -> 203.0.113.11:8080 weight 3 -> 5'."""
    if isinstance(op, AddService):
        return f"add service {op.service.key} {op.service.scheduler}"
    if isinstance(op, EditService):
        return f"set service {op.service.key} {_service_text(op.before)} -> {_service_text(op.service)}"
    if isinstance(op, DelService):
        return f"del service {op.key}"
    if isinstance(op, AddDest):
        return f"add dest {op.service} -> {op.dest.key} weight {op.dest.weight} {op.dest.fwd_method}"
    if isinstance(op, EditDest):
        return (f"set dest {op.service} -> {op.dest.key} weight {op.before.weight} -> {op.dest.weight}"
                + (f" {op.before.fwd_method} -> {op.dest.fwd_method}" if op.before.fwd_method != op.dest.fwd_method else ""))
    return f"del dest {op.service} -> {op.dest}"


def _service_text(service: Service) -> str:
    s = service.normalized()
    text = f"{s.scheduler} flags {s.flags:#x}"
    if s.timeout_s:
        text += f" persistent {s.timeout_s}s /{s.prefixlen}"
    return text


def apply_ops(state: Mapping[ServiceKey, Entry], ops: list[Op]) -> dict[ServiceKey, Entry]:
    """The state after `ops` (what a backend that applied them all now holds). Unchanged entries are shared."""
    out = dict(state)
    copied: set[ServiceKey] = set()

    def dests_of(key: ServiceKey) -> dict[DestKey, Dest]:
        if key not in copied:
            service, dests = out[key]
            out[key] = Entry(service, dict(dests))
            copied.add(key)
        return out[key].dests

    for op in ops:
        if isinstance(op, AddService):
            out[op.service.key] = Entry(op.service.normalized(), {})
            copied.add(op.service.key)
        elif isinstance(op, EditService):
            out[op.service.key] = Entry(op.service.normalized(), out[op.service.key].dests)
        elif isinstance(op, DelService):
            out.pop(op.key, None)
        elif isinstance(op, (AddDest, EditDest)):
            dests_of(op.service)[op.dest.key] = op.dest
        elif isinstance(op, DelDest):
            dests_of(op.service).pop(op.dest, None)
    return out


def settled(desired: Mapping[ServiceKey, Entry], actual: Mapping[ServiceKey, Entry],
            ops: list[Op]) -> dict[ServiceKey, Entry]:
    """The state after `ops = plan(desired, actual, owned)`: equal to apply_ops(actual, ops), but made of
    desired's own entries (shared, never mutated) wherever it has them. A reconciler keeps this as the
    kernel's state: the next plan then compares objects laid out together, not a dump's objects scattered
    between its parser's garbage, which made a one-change plan among 10,000 destinations 3x slower."""
    removed = {op.key for op in ops if isinstance(op, DelService)}
    out = {key: e for key, e in actual.items() if key not in removed}
    for key, e in desired.items():
        out[key] = Entry(e.service.normalized(), e.dests)
    return out
