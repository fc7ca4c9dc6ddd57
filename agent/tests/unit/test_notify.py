"""hanode.vrrp.notify: which commands a state change runs, with keepalived's arguments and order."""

from __future__ import annotations

import pytest

from pure_helpers import instance_raw, make_config
from hanode.config.model import NotifyScripts, SyncGroup
from hanode.vrrp.actions import GroupStateChanged, State, StateChanged
from hanode.vrrp.notify import group_notify, instance_notify

ALL = dict(notify_master="/etc/hanode/to-master.sh", notify_backup="'/etc/hanode/to backup.sh' --quiet",
           notify_fault="/etc/hanode/fault.sh VI_1", notify_stop="/etc/hanode/stop.sh",
           notify="/etc/hanode/notify.sh --log")


def instance(**notify):
    return make_config({"VI_1": instance_raw(**notify)}).vrrp_instances["VI_1"]


def change(new, old=State.BACKUP, priority=100):
    return StateChanged(old=old, new=new, reason="test", priority=priority)


@pytest.mark.parametrize("state, specific", [
    (State.MASTER, ["/etc/hanode/to-master.sh"]),
    (State.BACKUP, ["/etc/hanode/to backup.sh", "--quiet"]),
    (State.FAULT, ["/etc/hanode/fault.sh", "VI_1"]),
    (State.STOP, ["/etc/hanode/stop.sh"]),
])
def test_specific_script_first_then_generic_with_type_name_state_priority(state, specific):
    commands = instance_notify(instance(**ALL), change(state, priority=150))
    assert commands == [specific, ["/etc/hanode/notify.sh", "--log", "INSTANCE", "VI_1", state.value, "150"]]


def test_effective_priority_is_passed():
    commands = instance_notify(instance(notify="/etc/hanode/notify.sh"), change(State.MASTER, priority=70))
    assert commands == [["/etc/hanode/notify.sh", "INSTANCE", "VI_1", "MASTER", "70"]]


def test_only_the_configured_scripts_run():
    assert instance_notify(instance(notify_master="/bin/m"), change(State.BACKUP)) == []
    assert instance_notify(instance(notify_master="/bin/m"), change(State.MASTER)) == [["/bin/m"]]
    assert instance_notify(instance(), change(State.MASTER)) == []


def test_no_script_for_init():
    assert instance_notify(instance(**ALL), change(State.INIT, old=State.STOP)) == []


GROUP = SyncGroup(name="G1", group=("VI_1", "VI_2"),
                  notify=NotifyScripts(master="/etc/hanode/g-master.sh", generic="/etc/hanode/notify.sh"))


@pytest.mark.parametrize("state", [State.MASTER, State.BACKUP, State.FAULT])
def test_group_generic_notify_gets_priority_zero_as_keepalived_passes(state):
    commands = group_notify(GROUP, GroupStateChanged("G1", State.INIT, state, "VI_1 is " + state.value))
    generic = ["/etc/hanode/notify.sh", "GROUP", "G1", state.value, "0"]
    assert commands == ([["/etc/hanode/g-master.sh"], generic] if state == State.MASTER else [generic])


def test_group_without_config_runs_nothing():
    assert group_notify(None, GroupStateChanged("G1", State.INIT, State.MASTER, "x")) == []


def test_group_notify_from_a_parsed_config():
    config = make_config({"VI_1": instance_raw(), "VI_2": instance_raw(virtual_router_id=52)},
                         groups={"G1": {"group": ["VI_1", "VI_2"], "notify_backup": "/bin/b", "notify": "/bin/n x"}})
    commands = group_notify(config.vrrp_sync_groups["G1"], GroupStateChanged("G1", State.MASTER, State.BACKUP, "y"))
    assert commands == [["/bin/b"], ["/bin/n", "x", "GROUP", "G1", "BACKUP", "0"]]
