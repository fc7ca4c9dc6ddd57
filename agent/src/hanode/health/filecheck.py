"""FILE_CHECK as keepalived 2.2.7 applies a tracked file to a real server (pure: the number is read as the VRRP
side's track_file reads it, hanode.vrrp.track.parse_file_value: strtol base 0, missing or empty is 0, out of
range keeps the previous reading).

With the check's weight 0, any non-zero value takes the real server DOWN (reverse: a zero value does). With a
weight w, value * w (negated with reverse) is added to the real server's weight; the lowest 32-bit integer
means DOWN, a sum below 0 is weight 0 (keepalived's real_weight), above the IPVS maximum is the maximum.
"""

from __future__ import annotations

from typing import NamedTuple

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
WEIGHT_MAX = 65535


class FileOutcome(NamedTuple):
    ok: bool
    weight: int | None             # the real server's weight in force (None: its configured weight)
    reason: str | None


def file_outcome(value: int, weight: int, reverse: bool, rs_weight: int, path: str) -> FileOutcome:
    """What one reading of the file means for the real server."""
    if weight == 0:
        down = (value == 0) if reverse else (value != 0)
        if down:
            return FileOutcome(False, None, f"tracked file {path} holds {value}"
                                            f"{' (reverse: 0 means down)' if reverse else ''}")
        return FileOutcome(True, None, None)
    status = max(INT32_MIN, min(INT32_MAX, value * weight * (-1 if reverse else 1)))
    if status == INT32_MIN:
        return FileOutcome(False, None, f"tracked file {path} holds {value}: weight {status} means down")
    if status == 0:
        return FileOutcome(True, None, None)
    return FileOutcome(True, max(0, min(WEIGHT_MAX, rs_weight + status)), None)
