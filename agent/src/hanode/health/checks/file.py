"""FILE_CHECK: reads the tracked file (the scheduler also runs it at once when the file changes: filewatch.py)."""

from __future__ import annotations

import os

from hanode.health.filecheck import READ_BYTES, file_outcome, file_value
from hanode.health.hysteresis import CheckResult
from hanode.health.spec import Probe

_last: dict[str, int] = {}   # path -> last valid reading (an invalid number keeps it, as keepalived does)


def read_tracked(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, READ_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)


def file_result(probe: Probe) -> CheckResult:
    check = probe.check
    value = file_value(read_tracked(check.file))
    if value is None:
        value = _last.get(check.file, 0)
    _last[check.file] = value
    outcome = file_outcome(value, check.file_weight, check.file_reverse, probe.rs_weight, check.file)
    return CheckResult(outcome.ok, 0, outcome.reason, outcome.weight)


async def check_file(probe: Probe) -> CheckResult:
    return file_result(probe)
