"""hanode.vrrp.track: vrrp_script rise/fall and keepalived's weight rules for effective priority and FAULT."""

from __future__ import annotations

import pytest

from pure_helpers import instance_raw, make_config
from hanode.config.model import VrrpScript
from hanode.vrrp.track import ScriptHealth, evaluate, initial_health, observe


def script(rise=1, fall=1, init_fail=False, weight=0) -> VrrpScript:
    return VrrpScript(name="chk", script="/bin/true", rise=rise, fall=fall, init_fail=init_fail, weight=weight)


def feed(s: VrrpScript, results: str, health: ScriptHealth | None = None) -> list[bool | None]:
    """'+' success, '-' failure; returns ok after each result."""
    health = health or initial_health(s)
    seen = []
    for r in results:
        health = observe(health, s, r == "+", exit_code=0 if r == "+" else 1)
        seen.append(health.ok)
    return seen


# rise / fall ---------------------------------------------------------------------------------------

def test_no_result_yet_is_unknown():
    assert initial_health(script()).ok is None


@pytest.mark.parametrize("first, ok", [("+", True), ("-", False)])
@pytest.mark.parametrize("rise, fall", [(1, 1), (3, 2), (5, 5)])
def test_first_result_decides(first, ok, rise, fall):
    assert feed(script(rise=rise, fall=fall), first) == [ok]


@pytest.mark.parametrize("rise, fall, results, expected", [
    (1, 1, "+-+-", [True, False, True, False]),
    (1, 3, "+--+---", [True, True, True, True, True, True, False]),       # fall 3: a success resets the count
    (3, 1, "-++-+++", [False, False, False, False, False, False, True]),  # rise 3: a failure resets the count
    (2, 2, "+--++", [True, True, False, False, True]),
    (2, 2, "+-+-+-", [True] * 6),                                          # flapping never flips with 2/2
])
def test_rise_fall_hysteresis(rise, fall, results, expected):
    assert feed(script(rise=rise, fall=fall), results) == expected


def test_init_fail_starts_failed_and_needs_rise_successes():
    s = script(rise=2, init_fail=True)
    assert initial_health(s).ok is False
    assert feed(s, "++") == [False, True]
    assert feed(s, "-+-++") == [False, False, False, False, True]


def test_observe_keeps_the_last_exit_and_error():
    health = observe(initial_health(script()), script(), False, exit_code=None, error="timed out after 1.0 s")
    assert (health.ok, health.last_exit, health.last_error) == (False, None, "timed out after 1.0 s")


# effective priority and FAULT ----------------------------------------------------------------------

SCRIPTS = {"chk_up": {"script": "/bin/true", "weight": 20}, "chk_down": {"script": "/bin/true", "weight": -30},
           "chk_fault": {"script": "/bin/true"}}


def tracked(priority=100, scripts=(), interfaces=(), **kw):
    raw = instance_raw(priority=priority, track_scripts=list(scripts) or None,
                       track_interfaces=list(interfaces) or None, **kw)
    config = make_config({"VI_1": raw}, scripts=SCRIPTS)
    return config.vrrp_instances["VI_1"], config.vrrp_scripts


def health(**ok) -> dict[str, ScriptHealth]:
    return {name: ScriptHealth(ok=value) for name, value in ok.items()}


UP = {"eth0": True, "eth1": True}


@pytest.mark.parametrize("name, ok, effective", [
    ("chk_up", True, 120),       # weight > 0: added while the script succeeds
    ("chk_up", False, 100),
    ("chk_down", True, 100),     # weight < 0: added (subtracted) while the script fails
    ("chk_down", False, 70),
])
def test_script_weight_signs(name, ok, effective):
    instance, scripts = tracked(scripts=[name])
    result = evaluate(instance, UP, scripts, health(**{name: ok}))
    assert (result.effective_priority, result.fault_reasons, result.pending) == (effective, (), ())


def test_weight_given_at_the_instance_overrides_the_scripts_own():
    instance, scripts = tracked(scripts=[{"name": "chk_up", "weight": -50}])
    assert evaluate(instance, UP, scripts, health(chk_up=True)).effective_priority == 100
    assert evaluate(instance, UP, scripts, health(chk_up=False)).effective_priority == 50


def test_weight_zero_script_failure_is_a_fault_with_its_name():
    instance, scripts = tracked(scripts=["chk_fault"])
    assert evaluate(instance, UP, scripts, health(chk_fault=True)).fault_reasons == ()
    result = evaluate(instance, UP, scripts, health(chk_fault=False))
    assert result.fault_reasons == ("script chk_fault failed",)
    assert result.effective_priority == 100


@pytest.mark.parametrize("weight, up, effective, faults", [
    (0, True, 100, ()),
    (0, False, 100, ("tracked interface eth1 down",)),
    (10, True, 110, ()),
    (10, False, 100, ()),
    (-10, True, 100, ()),
    (-10, False, 90, ()),
])
def test_tracked_interface(weight, up, effective, faults):
    instance, scripts = tracked(interfaces=[{"name": "eth1", "weight": weight}])
    result = evaluate(instance, {"eth0": True, "eth1": up}, scripts, {})
    assert (result.effective_priority, result.fault_reasons) == (effective, faults)


@pytest.mark.parametrize("weight, up, effective, faults", [
    (0, True, 100, ("tracked interface eth1 up (reverse)",)),    # reversed weight 0: FAULT while up
    (0, False, 100, ()),
    (10, True, 90, ()),          # reversed weight > 0: subtracted while up
    (10, False, 100, ()),
    (-10, True, 100, ()),
    (-10, False, 110, ()),       # reversed weight < 0: added while down
])
def test_tracked_interface_reversed_turns_each_effect_round(weight, up, effective, faults):
    instance, scripts = tracked(interfaces=[{"name": "eth1", "weight": weight, "weight_reverse": True}])
    result = evaluate(instance, {"eth0": True, "eth1": up}, scripts, {})
    assert (result.effective_priority, result.fault_reasons) == (effective, faults)


def test_reverse_of_a_script_comes_from_the_script_unless_the_reference_says_otherwise():
    reverse_scripts = {"up_rev": {"script": "/bin/true", "weight": 20, "weight_reverse": True},
                       "fault_rev": {"script": "/bin/true", "weight_reverse": True}}
    raw = instance_raw(priority=100, track_scripts=["up_rev", {"name": "fault_rev"}])
    config = make_config({"VI_1": raw}, scripts=reverse_scripts)
    instance, scripts = config.vrrp_instances["VI_1"], config.vrrp_scripts
    both_ok = evaluate(instance, UP, scripts, health(up_rev=True, fault_rev=True))
    assert (both_ok.effective_priority, both_ok.fault_reasons) == (80, ("script fault_rev succeeded (reverse)",))
    both_failed = evaluate(instance, UP, scripts, health(up_rev=False, fault_rev=False))
    assert (both_failed.effective_priority, both_failed.fault_reasons) == (100, ())
    raw = instance_raw(priority=100, track_scripts=[{"name": "up_rev", "weight": 20, "weight_reverse": False}])
    config = make_config({"VI_1": raw}, scripts=reverse_scripts)
    assert evaluate(config.vrrp_instances["VI_1"], UP, config.vrrp_scripts,
                    health(up_rev=True)).effective_priority == 120


def test_a_tracked_interface_that_does_not_exist_counts_as_down():
    instance, scripts = tracked(interfaces=["eth9"])
    assert evaluate(instance, UP, scripts, {}).fault_reasons == ("tracked interface eth9 down",)


def test_own_interface_down_is_a_fault_unless_dont_track_primary():
    instance, scripts = tracked()
    assert evaluate(instance, {"eth0": False}, scripts, {}).fault_reasons == ("interface eth0 down",)
    instance, scripts = tracked(dont_track_primary=True)
    assert evaluate(instance, {"eth0": False}, scripts, {}).fault_reasons == ()


def test_owner_is_never_lowered_but_can_still_fault():
    instance, scripts = tracked(priority=255, scripts=["chk_down", "chk_fault"])
    result = evaluate(instance, UP, scripts, health(chk_down=False, chk_fault=True))
    assert result.effective_priority == 255
    result = evaluate(instance, UP, scripts, health(chk_down=False, chk_fault=False))
    assert result.effective_priority == 255 and result.fault_reasons == ("script chk_fault failed",)


@pytest.mark.parametrize("priority, ok, effective", [
    (250, True, 254),    # 250 + 20 + 20: never reaches the owner's 255
    (20, False, 1),      # 20 - 30 - 30: never 0 (0 means "leaving")
    (1, False, 1),
    (254, True, 254),
])
def test_effective_priority_is_clamped_to_1_254(priority, ok, effective):
    instance, scripts = tracked(priority=priority, scripts=["chk_up", "chk_down"],
                                interfaces=[{"name": "eth1", "weight": 20 if ok else -30}])
    links = {"eth0": True, "eth1": ok}
    assert evaluate(instance, links, scripts, health(chk_up=ok, chk_down=ok)).effective_priority == effective


def test_scripts_without_a_first_result_are_pending_and_weigh_nothing():
    instance, scripts = tracked(scripts=["chk_up", "chk_fault"])
    result = evaluate(instance, UP, scripts, {})
    assert result.pending == ("chk_up", "chk_fault")
    assert result.effective_priority == 100 and result.fault_reasons == ()


def test_all_reasons_are_listed():
    instance, scripts = tracked(scripts=["chk_fault"], interfaces=["eth1"])
    result = evaluate(instance, {"eth0": False, "eth1": False}, scripts, health(chk_fault=False))
    assert result.fault_reasons == ("interface eth0 down", "tracked interface eth1 down", "script chk_fault failed")
