"""interface_up_down_delays (keepalived's top-level block): per interface, how long a link must stay down before
the instances using or tracking it see it down, and up before they see it up again (up defaults to down).
YAML: `interface_up_down_delays: {eth1: 0.5, eth2: [1, 2]}` (seconds, resolution microseconds, at most 255)."""

from __future__ import annotations

from typing import Any

from hanode.config.problems import Problems, Reader, join

SECTION = "interface_up_down_delays"
MAX_S = 255


def parse(reader: Reader, problems: Problems, config, host=None) -> dict[str, tuple[int, int]]:  # pylint: disable=unused-argument
    """interface -> (down delay µs, up delay µs)."""
    delays = {}
    for name, value in reader.mapping(SECTION).items():
        found = _delays(value, join(SECTION, name), problems)
        if found is not None:
            delays[str(name)] = found
    return delays


def _delays(value: Any, path: str, problems: Problems) -> tuple[int, int] | None:
    words = value if isinstance(value, list) else [value]
    if not 1 <= len(words) <= 2 or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in words):
        problems.error(path, f"must be a delay in seconds or [down, up], got {value!r}")
        return None
    if not all(0 <= w <= MAX_S for w in words):
        problems.error(path, f"delays must be 0..{MAX_S} s, got {value!r}")
        return None
    down_us = round(words[0] * 1_000_000)
    return down_us, round(words[1] * 1_000_000) if len(words) == 2 else down_us
