"""keepalived's per-interface GARP / NA pacing: vrrp_garp_interval and vrrp_gna_interval (the default of every
interface an instance uses) and garp_groups (keepalived's garp_group blocks: intervals of their own for one
`interface`, or shared by several `interfaces` whose messages then go out one timeline, as one switch sees them).
hanode.vrrp.garp_pace spaces the messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hanode.config.problems import Problems, Reader, join

SECTION = "garp_pacing"
MAX_S = 1.0


@dataclass(frozen=True)
class GarpGroup:
    interfaces: tuple[str, ...]
    garp_interval_us: int = 0
    gna_interval_us: int = 0
    shared: bool = False        # `interfaces`: one timeline for all of them


@dataclass(frozen=True)
class GarpPacing:
    garp_interval_us: int = 0       # vrrp_garp_interval
    gna_interval_us: int = 0        # vrrp_gna_interval
    groups: tuple[GarpGroup, ...] = ()


def _interval_us(reader: Reader, key: str) -> int:
    return round(reader.number(key, 0, 0, MAX_S) * 1_000_000)


def parse(reader: Reader, problems: Problems, config, host=None) -> GarpPacing:  # pylint: disable=unused-argument
    groups = reader.items("garp_groups", lambda v, p: _group(v, p, problems))
    seen: dict[str, int] = {}
    for index, group in enumerate(groups):
        for name in group.interfaces:
            if name in seen:
                problems.error(join("garp_groups", index), f"interface {name} is already in garp_groups[{seen[name]}]")
            seen[name] = index
    return GarpPacing(_interval_us(reader, "vrrp_garp_interval"), _interval_us(reader, "vrrp_gna_interval"), groups)


def _group(value: Any, path: str, problems: Problems) -> GarpGroup | None:
    reader = Reader(value, path, problems)
    if not reader.ok:
        return None
    one = reader.string("interface", None)
    many = reader.items("interfaces", lambda v, p: str(v))
    garp_us, gna_us = _interval_us(reader, "garp_interval"), _interval_us(reader, "gna_interval")
    reader.finish()
    if (one is None) == (not many):
        problems.error(path, "needs one of interface or interfaces (keepalived: only one per block)")
        return None
    if not garp_us and not gna_us:
        problems.error(path, "sets neither garp_interval nor gna_interval (keepalived drops such a group)")
        return None
    return GarpGroup(interfaces=(one,) if one else many, garp_interval_us=garp_us, gna_interval_us=gna_us,
                     shared=bool(many))
