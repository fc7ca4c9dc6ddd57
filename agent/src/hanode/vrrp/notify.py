"""keepalived's notify scripts: which commands a state change runs, with keepalived's arguments (pure)."""

from __future__ import annotations

import shlex

from hanode.config.model import NotifyScripts, SyncGroup, VrrpInstance
from hanode.vrrp.actions import GroupStateChanged, State, StateChanged

_BY_STATE = {State.MASTER: "master", State.BACKUP: "backup", State.FAULT: "fault", State.STOP: "stop"}


def _commands(notify: NotifyScripts, kind: str, name: str, state: State, priority: int) -> list[list[str]]:
    commands = []
    specific = getattr(notify, _BY_STATE[state], None) if state in _BY_STATE else None
    if specific:
        commands.append(shlex.split(specific))
    if notify.generic and state in _BY_STATE:
        commands.append(shlex.split(notify.generic) + [kind, name, state.value, str(priority)])
    return commands


def instance_notify(instance: VrrpInstance, change: StateChanged) -> list[list[str]]:
    """argv lists to run, in order: the state's own script first, then `notify INSTANCE NAME STATE PRIORITY`."""
    return _commands(instance.notify, "INSTANCE", instance.name, change.new, change.priority)


def group_notify(group: SyncGroup | None, change: GroupStateChanged) -> list[list[str]]:
    """keepalived passes priority 0 for a group: `notify GROUP NAME STATE 0`."""
    return _commands(group.notify, "GROUP", change.group, change.new, 0) if group else []
