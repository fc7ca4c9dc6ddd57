"""The notify FIFO: every event as one line, in order (JSON, or keepalived's notify_fifo line format)."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat

log = logging.getLogger("hanode.events")


def keepalived_line(event: dict) -> str | None:
    """keepalived's notify_fifo format: INSTANCE "VI_1" MASTER 100 / GROUP "G1" BACKUP / RS / VS lines."""
    kind = event.get("event")
    if kind == "transition":
        return f'INSTANCE "{event["instance"]}" {event["to"]} {event.get("priority", 0)}'
    if kind == "group_transition":
        return f'GROUP "{event["group"]}" {event["to"]}'
    if kind == "real_server":
        return f'RS {event.get("real_server")} {event.get("virtual_server")} {"UP" if event.get("up") else "DOWN"}'
    if kind == "quorum":
        return f'VS {event.get("virtual_server")} {"UP" if event.get("up") else "DOWN"}'
    return None


def format_line(event: dict, fmt: str) -> str | None:
    if fmt == "keepalived":
        return keepalived_line(event)
    return json.dumps(event, separators=(",", ":"), default=str)


class NotifyFifo:
    """Opened read-write and non-blocking (as keepalived does) so writing never waits for a reader."""

    def __init__(self, path: str, fmt: str):
        self.path, self.fmt = path, fmt
        self.fd: int | None = None
        self.stats = {"written": 0, "dropped": 0}

    def open(self) -> None:
        if not os.path.exists(self.path):
            os.mkfifo(self.path, 0o600)
        if not stat.S_ISFIFO(os.stat(self.path).st_mode):
            raise OSError(errno.EINVAL, f"{self.path} exists and is not a FIFO")
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def write(self, event: dict) -> None:
        line = format_line(event, self.fmt)
        if line is None or self.fd is None:
            return
        try:
            os.write(self.fd, line.encode() + b"\n")
            self.stats["written"] += 1
        except BlockingIOError:
            self.stats["dropped"] += 1
            log.warning("notify FIFO %s is full (no reader?): event %s dropped", self.path, event.get("seq"))
