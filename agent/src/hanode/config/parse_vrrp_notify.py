"""Notifications and start-up (keepalived's keywords, checked with field paths):

- per instance: notify_master_rx_lower_pri, notify_priority_changes (default: its sync group's, else the top-level
  vrrp_notify_priority_changes), down_timer_adverts (default: the top-level vrrp_down_timer_adverts, else 3);
- per sync group: notify_priority_changes;
- top level (the `startup` section): startup_script / startup_script_timeout, shutdown_script /
  shutdown_script_timeout (run by the supervisor before the VRRP and checker processes start and after they
  stop, as keepalived runs them), vrrp_startup_delay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from hanode.config.model import SyncGroup, VrrpInstance
from hanode.config.problems import Problems, Reader

SECTION = "startup"
SCRIPT_TIMEOUT_S = 10          # keepalived's default for both
DOWN_TIMER_ADVERTS = (1, 100)


@dataclass(frozen=True)
class StartupConfig:
    startup_script: str | None = None
    startup_script_timeout_ms: int = SCRIPT_TIMEOUT_S * 1000
    shutdown_script: str | None = None
    shutdown_script_timeout_ms: int = SCRIPT_TIMEOUT_S * 1000
    vrrp_startup_delay_ms: int = 0


def instance_fields(reader: Reader) -> dict[str, Any]:
    """The instance's own keys; None where the default comes from its group or the top level (resolve())."""
    return {"notify_master_rx_lower_pri": reader.string("notify_master_rx_lower_pri", None),
            "notify_priority_changes": reader.boolean("notify_priority_changes", None),
            "down_timer_adverts": reader.integer("down_timer_adverts", None, *DOWN_TIMER_ADVERTS)}


def resolve(reader: Reader, instances: Mapping[str, VrrpInstance],
            groups: Mapping[str, SyncGroup]) -> dict[str, VrrpInstance]:
    """Each instance's defaults, as keepalived's vrrp_complete_instance sets them."""
    notify_default = reader.boolean("vrrp_notify_priority_changes", False)
    adverts_default = reader.integer("vrrp_down_timer_adverts", 3, *DOWN_TIMER_ADVERTS)
    group_of = {member: group for group in groups.values() for member in group.group}
    resolved = {}
    for name, inst in instances.items():
        notify = inst.notify_priority_changes
        if notify is None:
            group = group_of.get(name)
            notify = group.notify_priority_changes if group and group.notify_priority_changes is not None \
                else notify_default
        adverts = inst.down_timer_adverts if inst.down_timer_adverts is not None else adverts_default
        if inst.strict_mode and adverts != 3:   # keepalived: "down_timer_adverts is incompatible with strict mode"
            reader.problems.warn(f"vrrp_instances.{name}.down_timer_adverts", "is reset to 3 by strict_mode, as "
                                                                              "keepalived resets it")
            adverts = 3
        resolved[name] = replace(inst, notify_priority_changes=notify, down_timer_adverts=adverts)
    return resolved


def _script(reader: Reader, key: str) -> str | None:
    return reader.string(key, None)


def parse(reader: Reader, problems: Problems, config, host=None) -> StartupConfig:  # pylint: disable=unused-argument
    return StartupConfig(
        startup_script=_script(reader, "startup_script"),
        startup_script_timeout_ms=round(reader.number("startup_script_timeout", SCRIPT_TIMEOUT_S, 1, 1000) * 1000),
        shutdown_script=_script(reader, "shutdown_script"),
        shutdown_script_timeout_ms=round(reader.number("shutdown_script_timeout", SCRIPT_TIMEOUT_S, 1, 1000) * 1000),
        vrrp_startup_delay_ms=round(reader.number("vrrp_startup_delay", 0, 0, 3600) * 1000),
    )
