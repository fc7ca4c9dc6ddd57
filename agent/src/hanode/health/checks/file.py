"""FILE_CHECK: reads the tracked file (the scheduler also applies it at once when the file changes, through the
VRRP side's FileMonitor)."""

from __future__ import annotations

from hanode.health.filecheck import file_outcome
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe
from hanode.vrrp.filetrack import read_value

_last: dict[str, int] = {}   # track_file name -> last valid reading (an invalid number keeps it, as keepalived does)


def value_result(probe: Probe, value: int | None) -> CheckResult:
    """The check's result for a reading of its file (None: out of range, the previous reading stays)."""
    tracked = probe.check.track_file
    if value is None:
        value = _last.get(tracked.name, 0)
    _last[tracked.name] = value
    if probe.check.file_weight is None:      # keepalived: the track_file's weight, and its reverse
        weight, reverse = tracked.weight, tracked.weight_reverse or probe.check.file_reverse
    else:
        weight, reverse = probe.check.file_weight, probe.check.file_reverse
    outcome = file_outcome(value, weight, reverse, probe.rs_weight, tracked.file)
    return CheckResult(outcome.ok, 0, outcome.reason, outcome.weight)


async def check_file(probe: Probe) -> CheckResult:
    return value_result(probe, read_value(probe.check.track_file.file))
