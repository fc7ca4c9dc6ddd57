"""FILE_CHECK as keepalived 2.2.7 reads a tracked file (pure: the adapter reads the file, this decides).

The file holds a number, read as C's strtol(text, NULL, 0) reads it (leading blanks, a sign, 0x hex, 0 octal,
digits up to the first other character; no digits is 0). A missing, unreadable or empty file is 0. A number
outside the 32-bit range is ignored: the previous reading stays (keepalived logs 'Invalid number').

With the check's weight 0, any non-zero value takes the real server DOWN (reverse: a zero value does). With a
weight w, value * w (negated with reverse) is added to the real server's weight; the lowest 32-bit integer
means DOWN, a sum below 0 is weight 0 (keepalived's real_weight), above the IPVS maximum is the maximum.
"""

from __future__ import annotations

from typing import NamedTuple

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
WEIGHT_MAX = 65535
READ_BYTES = 127                   # keepalived reads at most 127 bytes of the file


class FileOutcome(NamedTuple):
    ok: bool
    weight: int | None             # the real server's weight in force (None: its configured weight)
    reason: str | None


def strtol0(text: str) -> int | None:
    """C's strtol(text, NULL, 0), or None where C sets errno (the value does not fit in a long)."""
    i, n = 0, len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    sign = 1
    if i < n and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    base, digits = 10, "0123456789"
    if text[i:i + 2].lower() == "0x" and i + 2 < n and text[i + 2].lower() in "0123456789abcdef":
        base, digits, i = 16, "0123456789abcdef", i + 2
    elif text[i:i + 1] == "0":
        base, digits = 8, "01234567"
    start = i
    while i < n and text[i].lower() in digits:
        i += 1
    value = sign * int(text[start:i], base) if i > start else 0
    return value if -(2 ** 63) <= value < 2 ** 63 else None


def file_value(data: bytes | None) -> int | None:
    """The number a tracked file holds (None: keep the previous reading); data None: missing or unreadable."""
    if not data:
        return 0
    value = strtol0(data[:READ_BYTES].split(b"\0", 1)[0].decode("latin-1"))
    if value is None or not INT32_MIN <= value <= INT32_MAX + 1:
        return None
    return value


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
