"""Log lines on stderr: one event per line, with the process that wrote it (journald adds its own stamp)."""

from __future__ import annotations

import logging
import os
import sys


class _Formatter(logging.Formatter):
    def __init__(self, process: str):
        super().__init__()
        self.process = process
        self.with_time = "JOURNAL_STREAM" not in os.environ

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\n", " | ")
        if record.exc_info:
            message += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d} " if self.with_time else ""
        return f"{stamp}{record.levelname.lower()} {self.process}[{os.getpid()}] {record.name}: {message}"


def setup_logging(level: str = "info", process: str = "hanode") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
