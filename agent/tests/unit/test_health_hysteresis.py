"""keepalived's checker semantics (retry, delay_before_retry, alpha, misc_dynamic, warmup, all-checks-up),
driven with a fake clock: each test feeds results at the times the state machine asks for."""

from __future__ import annotations

import pytest

from hanode.health.hysteresis import (ALPHA_REASON, RANDOM_RANGE, CheckResult, CheckState, Timing, carried_over,
                                      first_due_ms, initial_state, misc_outcome, observe, resumed_state, server_health)

OK = CheckResult(True)


def fail(reason: str = "connection refused") -> CheckResult:
    return CheckResult(False, reason=reason)


def run(timing: Timing, state: CheckState, results: list[CheckResult], start_ms: int = 0):
    """Feeds results one after another at the due times; returns [(at_ms, up, changed)] and the last state."""
    now, trace = start_ms, []
    for result in results:
        step = observe(timing, state, result, now)
        trace.append((now, step.state.up, step.changed))
        state, now = step.state, step.next_due_ms
    return trace, state, now


T = Timing(delay_loop_ms=1000, retry=2, delay_before_retry_ms=300)


@pytest.mark.parametrize("timing,results,expected", [
    # retry 2: the third consecutive failure takes it down, retries are delay_before_retry apart
    (T, [OK, fail(), fail(), fail()],
     [(0, True, False), (1000, True, False), (1300, True, False), (1600, False, True)]),
    # a success between retries resets the count
    (T, [OK, fail(), OK, fail(), fail(), fail()],
     [(0, True, False), (1000, True, False), (1300, True, False), (2300, True, False), (2600, True, False),
      (2900, False, True)]),
    # retry 0: the first failure takes it down
    (Timing(1000, retry=0, delay_before_retry_ms=300), [OK, fail()], [(0, True, False), (1000, False, True)]),
    # while down, failures are checked every delay_loop and change nothing; one success brings it back
    (Timing(1000, retry=0), [fail(), fail(), fail(), OK],
     [(0, False, True), (1000, False, False), (2000, False, False), (3000, True, True)]),
])
def test_retry_and_delays(timing, results, expected):
    trace, _state, _now = run(timing, initial_state(alpha=False), results)
    assert trace == expected


def test_detection_time_is_delay_loop_plus_retries():
    timing = Timing(delay_loop_ms=2000, retry=3, delay_before_retry_ms=500)
    trace, state, _now = run(timing, initial_state(False), [OK] + [fail("connect timeout after 1 s")] * 4)
    went_down_at = [at for at, up, changed in trace if changed and not up]
    assert went_down_at == [2000 + 3 * 500]
    assert state.reason == "connect timeout after 1 s"


def test_alpha_starts_down_and_needs_one_success():
    state = initial_state(alpha=True)
    assert not state.up and state.reason == ALPHA_REASON
    trace, state, next_due = run(T, state, [fail("HTTP status 503 not in 200-299 for /"), fail()])
    # not retried at delay_before_retry: a down check is checked every delay_loop
    assert trace == [(0, False, False), (1000, False, False)]
    assert next_due == 2000
    assert state.reason == "connection refused"
    step = observe(T, state, OK, next_due)
    assert step.state.up and step.changed and step.state.reason is None


def test_alpha_with_retry_zero_reports_the_failure_reason():
    step = observe(Timing(1000, retry=0), initial_state(True), fail("no echo reply within 1 s"), 0)
    assert not step.state.up and not step.changed
    assert step.state.reason == "no echo reply within 1 s"


def test_never_run_default_check_goes_down_at_its_first_failure():
    # keepalived (check_data.c): "For non alpha mode, one failure is enough initially"
    trace, state, _now = run(T, initial_state(alpha=False), [fail("connection refused"), fail()])
    assert trace == [(0, False, True), (1000, False, False)]
    assert state.reason == "connection refused"


@pytest.mark.parametrize("exit_code,dynamic,expected", [
    (0, False, (True, None)), (0, True, (True, None)),
    (1, False, (False, None)), (1, True, (False, None)),
    (2, True, (True, 0)), (12, True, (True, 10)), (255, True, (True, 253)),
    (2, False, (False, None)), (255, False, (False, None)),
    (None, True, (False, None)),
])
def test_misc_exit_codes(exit_code, dynamic, expected):
    assert misc_outcome(exit_code, dynamic) == expected


def test_misc_dynamic_weight_changes_are_changes_and_exit_0_restores_the_configured_weight():
    timing = Timing(1000, retry=0)
    state = initial_state(False)
    steps = []
    for ok, weight in [(True, None), (True, 10), (True, 10), (True, 0), (True, None)]:
        step = observe(timing, state, CheckResult(ok, weight=weight), len(steps) * 1000)
        steps.append((step.state.weight, step.changed))
        state = step.state
    assert steps == [(None, False), (10, True), (10, False), (0, True), (None, True)]


def test_server_is_up_only_when_every_check_is_up():
    up, down = CheckState(True, True), CheckState(False, True, reason="digest mismatch for /")
    assert server_health([]).up
    assert server_health([up, up]).up
    health = server_health([up, down])
    assert not health.up and health.reason == "digest mismatch for /"
    assert server_health([CheckState(True, True, weight=5), up]).weight == 5
    assert server_health([up, CheckState(True, True, weight=7)]).weight == 7


@pytest.mark.parametrize("warmup_ms,draw,expected", [
    (0, RANDOM_RANGE - 1, 5000), (1000, 0, 5000), (1000, RANDOM_RANGE // 2, 5500), (1000, RANDOM_RANGE - 1, 5999),
])
def test_warmup_spreads_the_first_check(warmup_ms, draw, expected):
    assert first_due_ms(Timing(1000, warmup_ms=warmup_ms), 5000, draw) == expected


def test_carried_over_keeps_up_down_but_restarts_retries():
    old = CheckState(True, True, retry_it=1, weight=4)
    new = carried_over(old)
    assert new.up and new.retry_it == 0 and new.weight == 4
    down = carried_over(CheckState(False, True, reason="connection refused"))
    assert not down.up and down.reason == "connection refused"
    assert observe(T, down, OK, 0).changed


def test_resumed_state_from_the_kernel():
    assert resumed_state(True).up
    down = resumed_state(False)
    assert not down.up and down.has_run and "kernel" in down.reason
    # a resumed down server comes back with one success, and a failure keeps it down quietly
    assert observe(T, down, OK, 0).state.up
    assert not observe(T, down, fail(), 0).changed


def test_steady_up_is_a_fixed_point():
    """The scheduler skips observe() for a success on a settled UP check: it must change nothing."""
    steady = CheckState(up=True, has_run=True)
    step = observe(T, steady, OK, 7000)
    assert step.state == steady and not step.changed and step.next_due_ms == 7000 + T.delay_loop_ms
