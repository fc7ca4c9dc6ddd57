"""keepalived's checker semantics as pure functions of observations (pure: no clock, no I/O).

One check of one real server is a small state machine, as keepalived 2.2's check_*.c epilogues:
- a success takes the check UP at once (keepalived has no "rise" for checkers) and resets the retries;
- while UP, a failure is retried `retry` times, `delay_before_retry` apart; the failure after the
  last retry takes it DOWN (so DOWN after retry + 1 consecutive failures);
- while DOWN, failures change nothing and the check runs every delay_loop;
- a check that has not run yet is UP (default) or DOWN (alpha); without alpha its very first failure takes
  it DOWN at once, unretried (keepalived's check_data.c: "one failure is enough initially");
- MISC_CHECK with misc_dynamic: exit 0 is UP with the configured weight, 2..255 is UP with weight
  exit - 2, anything else is a failure.
A real server is UP when every one of its checks is UP (a server without checks is always UP).
Times are integers in milliseconds; the caller passes `now_ms` and gets back when to check next.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

from hanode.lvs.desired import RsHealth

RANDOM_RANGE = 1_000_000  # `draw` arguments are integers in [0, RANDOM_RANGE)


@dataclass(frozen=True, slots=True)
class Timing:
    delay_loop_ms: int
    retry: int = 1
    delay_before_retry_ms: int = 1000
    warmup_ms: int = 0


class CheckResult(NamedTuple):
    """One observation made by a check adapter (a tuple: made thousands of times a second)."""
    ok: bool
    latency_us: int = 0
    reason: str | None = None         # why it failed, in words an operator understands
    weight: int | None = None         # misc_dynamic: the weight the script asked for (None: configured)


@dataclass(frozen=True, slots=True)
class CheckState:
    up: bool
    has_run: bool = False
    retry_it: int = 0                 # failed attempts while UP, not yet enough to go DOWN
    weight: int | None = None         # misc_dynamic weight in force (None: the configured weight)
    reason: str | None = None         # why the check is DOWN (None while UP)

    @property
    def steady(self) -> bool:
        """UP, has run, no retry pending, no dynamic weight: a success leaves it exactly as it is."""
        return self.up and self.has_run and not self.retry_it and self.weight is None


@dataclass(frozen=True, slots=True)
class Step:
    state: CheckState
    next_due_ms: int
    changed: bool                     # the check went UP/DOWN or its dynamic weight changed


ALPHA_REASON = "no successful check yet (alpha)"


# The states thousands of checks are in, one object each (frozen: shared, never changed in place): not yet
# run without alpha, and steady (passed, no retry pending, no dynamic weight)
UNCHECKED_UP = CheckState(up=True)
STEADY_UP = CheckState(up=True, has_run=True)
# a real server whose checks are all UP at its configured weight (8,000 servers: one object, not 8,000)
SERVER_UP = RsHealth(True, None, None)


def initial_state(alpha: bool) -> CheckState:
    """A check that has never run: DOWN in alpha mode, else UP."""
    return CheckState(up=False, reason=ALPHA_REASON) if alpha else UNCHECKED_UP


def carried_over(old: CheckState) -> CheckState:
    """State for a check whose definition changed on reload: the server keeps its UP/DOWN (no flap on
    reload), the retry count starts again, and the new definition decides at its first run."""
    state = CheckState(up=old.up, has_run=old.has_run, weight=old.weight, reason=old.reason)
    return STEADY_UP if state == STEADY_UP else state


def resumed_state(up: bool, reason: str | None = None) -> CheckState:
    """State rebuilt from the kernel table after the checker process restarted."""
    if up:
        return STEADY_UP
    return CheckState(up=False, has_run=True, reason=reason or "not in the kernel table when the checker restarted")


def first_due_ms(timing: Timing, now_ms: int, draw: int) -> int:
    """keepalived's warmup: the first check runs at a random point within warmup (draw in [0, RANDOM_RANGE))."""
    return now_ms + timing.warmup_ms * draw // RANDOM_RANGE


def misc_outcome(exit_code: int | None, dynamic: bool) -> tuple[bool, int | None]:
    """(ok, weight) for a MISC_CHECK exit status; None means killed or not run."""
    if exit_code == 0:
        return True, None
    if dynamic and exit_code is not None and 2 <= exit_code <= 255:
        return True, exit_code - 2
    return False, None


def observe(timing: Timing, state: CheckState, result: CheckResult, now_ms: int) -> Step:
    """Feeds one check result; returns the new state and when the check runs next."""
    delay_ms = timing.delay_loop_ms
    if result.ok:
        new = STEADY_UP if result.weight is None else CheckState(up=True, has_run=True, weight=result.weight)
    elif not state.has_run or (state.up and state.retry_it >= timing.retry):
        new = CheckState(up=False, has_run=True, weight=state.weight, reason=result.reason or "check failed")
    elif state.up:
        new = replace(state, has_run=True, retry_it=state.retry_it + 1)
        delay_ms = timing.delay_before_retry_ms
    else:
        new = replace(state, has_run=True, reason=result.reason or state.reason)
    changed = new.up != state.up or (new.up and new.weight != state.weight)
    return Step(new, now_ms + delay_ms, changed)


def server_health(states: Sequence[CheckState]) -> RsHealth:
    """A real server is UP when all its checks are; a misc_dynamic weight (the last one set) applies."""
    down = [s for s in states if not s.up]
    if down:
        return RsHealth(False, None, down[0].reason or "check failed")
    weights = [s.weight for s in states if s.weight is not None]
    return RsHealth(True, weights[-1], None) if weights else SERVER_UP
