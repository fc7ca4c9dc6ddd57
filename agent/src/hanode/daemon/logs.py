"""Structured logs on stderr: one event per line in logfmt (key=value), journald-friendly.

Callers add fields with `extra={"fields": {"instance": "VI_1", "reason": "..."}}`; under systemd
(JOURNAL_STREAM set) the timestamp is left to journald.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any


def _value(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n') and text.isprintable():
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    def __init__(self, process: str, with_time: bool | None = None):
        super().__init__()
        self.process = process
        self.with_time = "JOURNAL_STREAM" not in os.environ if with_time is None else with_time

    def format(self, record: logging.LogRecord) -> str:
        pairs: list[tuple[str, Any]] = []
        if self.with_time:
            pairs.append(("ts", self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}"))
        pairs += [("level", record.levelname.lower()), ("proc", self.process), ("pid", os.getpid()),
                  ("logger", record.name), ("msg", record.getMessage())]
        pairs += list((getattr(record, "fields", None) or {}).items())
        if record.exc_info:
            pairs.append(("exc", self.formatException(record.exc_info)))
        return " ".join(f"{key}={_value(value)}" for key, value in pairs if value is not None)


def setup_logging(level: str = "info", process: str = "hanode") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)


def fields(**values: Any) -> dict:
    """extra= for a log call: fields(instance="VI_1", reason="...")."""
    return {"fields": values}
