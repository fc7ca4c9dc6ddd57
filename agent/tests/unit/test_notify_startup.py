"""Notifications and start-up settings (keepalived 2.2.7): MASTER_RX_LOWER_PRI and priority change outputs of
the engine, their notify FIFO lines, down_timer_adverts in Master_Down_Interval, and the config keys with their
defaults (instance, then sync group, then top level)."""

from __future__ import annotations

import copy

import pytest

from pure_helpers import PEER4, instance_raw, make_config, wire_advert
from test_engine import MASTER, Harness, actions
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.ops.fifo import keepalived_line
from hanode.vrrp.actions import PriorityChanged, RxLowerPriority, SendGarp, State
from hanode.vrrp.timers import master_down_interval_us


def test_a_master_hearing_a_lower_priority_reports_it_every_time():
    h = Harness(make_config({"VI_1": instance_raw(priority=200)}), resume=MASTER)
    h.run_for(1_500_000)
    assert actions(h.rx(wire_advert(PEER4, 100)), RxLowerPriority) == [RxLowerPriority(PEER4, 100, 200)]
    assert actions(h.rx(wire_advert(PEER4, 100)), RxLowerPriority) == [RxLowerPriority(PEER4, 100, 200)]
    assert actions(h.rx(wire_advert(PEER4, 0)), RxLowerPriority) == []       # a master leaving is no claim
    assert actions(h.rx(wire_advert(PEER4, 250)), RxLowerPriority) == []     # a higher one wins
    assert h.state() == State.BACKUP


def test_priority_changes_are_reported_only_when_asked():
    def run(notify: bool):
        config = make_config({"VI_1": instance_raw(priority=150, notify_priority_changes=notify,
                                                   track_files=[{"name": "f", "weight": -1}])},
                             track_files={"f": {"file": "/run/f"}})
        h = Harness(config, resume=MASTER)
        h.take(h.engine.trackers_observed(h.clock.now_us, file_values={"f": 0}))
        return actions(h.take(h.engine.trackers_observed(h.clock.now_us, file_values={"f": 30})), PriorityChanged)
    assert run(True) == [PriorityChanged(State.MASTER, 120)]
    assert run(False) == []


@pytest.mark.parametrize("event, line", [
    ({"event": "priority", "instance": "VI_1", "state": "MASTER", "priority": 90},
     'INSTANCE "VI_1" MASTER_PRIORITY 90'),
    ({"event": "priority", "instance": "VI_1", "state": "FAULT", "priority": 90},
     'INSTANCE "VI_1" BACKUP_PRIORITY 90'),
    ({"event": "master_rx_lower_pri", "instance": "VI_1", "priority": 150, "peer": PEER4},
     'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150'),
])
def test_fifo_lines_are_keepalived_s(event, line):
    assert keepalived_line(event) == line


def test_down_timer_adverts_replaces_the_rfc_s_three():
    assert master_down_interval_us(100, 100, 2) == 3_000_000 + 609_375
    assert master_down_interval_us(100, 100, 2, down_timer_adverts=1) == 1_000_000 + 609_375


def test_a_backup_takes_over_after_down_timer_adverts_intervals():
    h = Harness(make_config({"VI_1": instance_raw(priority=100, down_timer_adverts=1)}))
    h.run_for(1_609_374)
    assert h.state() == State.BACKUP
    h.run_for(1)
    assert h.state() == State.MASTER


def parse(raw):
    return parse_config(copy.deepcopy({"router_id": "a", **raw}))[0]


def test_defaults_come_from_the_instance_then_its_group_then_the_top_level():
    config = parse({"vrrp_notify_priority_changes": True, "vrrp_down_timer_adverts": 5, "vrrp_instances": {
        "A": instance_raw(virtual_router_id=1, notify_priority_changes=False, down_timer_adverts=2),
        "B": instance_raw(virtual_router_id=2), "C": instance_raw(virtual_router_id=3)},
        "vrrp_sync_groups": {"G": {"group": ["C"], "notify_priority_changes": False}}})
    got = {n: (i.notify_priority_changes, i.down_timer_adverts) for n, i in config.vrrp_instances.items()}
    assert got == {"A": (False, 2), "B": (True, 5), "C": (False, 5)}


def test_start_up_keys_and_their_defaults():
    startup = parse({"startup_script": "/bin/true", "shutdown_script": "/bin/true x", "shutdown_script_timeout": 3,
                     "vrrp_startup_delay": 5.5}).sections["startup"]
    assert (startup.startup_script, startup.startup_script_timeout_ms) == ("/bin/true", 10_000)
    assert (startup.shutdown_script, startup.shutdown_script_timeout_ms) == ("/bin/true x", 3000)
    assert startup.vrrp_startup_delay_ms == 5500
    ops = parse({"notify_fifo": "/run/n.fifo", "notify_fifo_script": "/bin/cat"}).sections["ops"]
    assert ops.notify_fifo_script == "/bin/cat"


@pytest.mark.parametrize("raw, where", [
    ({"startup_script_timeout": 0}, "startup_script_timeout"),
    ({"shutdown_script_timeout": 1001}, "shutdown_script_timeout"),
    ({"notify_fifo_script": "/bin/cat"}, "notify_fifo_script"),
    ({"vrrp_down_timer_adverts": 101}, "vrrp_down_timer_adverts"),
    ({"vrrp_startup_delay": -1}, "vrrp_startup_delay"),
    ({"vrrp_instances": {"VI_1": instance_raw(down_timer_adverts=0)}}, "vrrp_instances.VI_1.down_timer_adverts"),
])
def test_bad_values_name_their_field(raw, where):
    with pytest.raises(ConfigError) as err:
        parse(raw)
    assert where in [p.path for p in err.value.problems]


def test_lower_priority_advert_sends_garp_lower_prio_repeat_now_and_after_the_delay():
    h = Harness(make_config({"VI_1": instance_raw(priority=200, garp_lower_prio_repeat=2, garp_lower_prio_delay=3,
                                                  garp_master_delay=0)}), resume=MASTER)
    h.run_for(1_500_000)
    garps = actions(h.rx(wire_advert(PEER4, 100)), SendGarp)
    assert [g.repeat for g in garps] == [2]
    assert [g.repeat for g in actions(h.run_for(2_999_000), SendGarp)] == []
    assert [g.repeat for g in actions(h.run_for(1_000), SendGarp)] == [2]


def test_garp_lower_prio_repeat_zero_and_strict_mode_send_none():
    h = Harness(make_config({"VI_1": instance_raw(priority=200, garp_lower_prio_repeat=0)}), resume=MASTER)
    h.run_for(1_500_000)
    assert actions(h.rx(wire_advert(PEER4, 100)), SendGarp) == []
    strict = make_config({"VI_1": instance_raw(priority=200, strict_mode=True, garp_lower_prio_repeat=3)})
    assert strict.vrrp_instances["VI_1"].garp.lower_prio_repeat == 0


def test_the_priority_trackers_give_before_the_start_is_not_a_change():
    config = make_config({"VI_1": instance_raw(priority=150, notify_priority_changes=True,
                                               track_files=[{"name": "f", "weight": -1}])},
                         track_files={"f": {"file": "/run/f"}})
    h = Harness(config, start=False)
    assert actions(h.take(h.engine.trackers_observed(h.clock.now_us, file_values={"f": 30})), PriorityChanged) == []
    h.take(h.engine.start(h.clock.now_us))
    assert h.engine.instances["VI_1"].state.effective_priority == 120
