"""The notify FIFO: every event as one line, in order (JSON, or keepalived's notify_fifo line format)."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat

log = logging.getLogger("hanode.events")


def keepalived_line(event: dict) -> str | None:
    """keepalived's notify_fifo format: INSTANCE "VI_1" MASTER 100 / GROUP "G1" BACKUP 0 (a group's priority is
    always 0, as keepalived 2.2.7 writes it) / INSTANCE "VI_1" MASTER_PRIORITY 90 / INSTANCE "VI_1"
    MASTER_RX_LOWER_PRI 150 / VS [198.51.100.100]:tcp:80 UP /
    RS [203.0.113.11]:tcp:80 [198.51.100.100]:tcp:80 DOWN (keepalived.conf(5), lvs_notify_fifo)."""
    kind = event.get("event")
    if kind == "transition":
        return f'INSTANCE "{event["instance"]}" {event["to"]} {event.get("priority", 0)}'
    if kind == "group_transition":
        return f'GROUP "{event["group"]}" {event["to"]} 0'
    if kind == "priority":      # notify_priority_changes
        state = "MASTER" if event.get("state") == "MASTER" else "BACKUP"
        return f'INSTANCE "{event["instance"]}" {state}_PRIORITY {event["priority"]}'
    if kind == "master_rx_lower_pri":
        return f'INSTANCE "{event["instance"]}" MASTER_RX_LOWER_PRI {event["priority"]}'
    state = "UP" if event.get("up") else "DOWN"
    vs_name = str(event.get("virtual_server"))
    if kind == "real_server":
        return f'RS {keepalived_rs(str(event.get("real_server")), vs_name)} {keepalived_vs(vs_name)} {state}'
    if kind == "quorum":
        return f"VS {keepalived_vs(vs_name)} {state}"
    return None


def _split_service(name: str) -> tuple[str, str | None]:
    """'198.51.100.100:80/TCP' -> ('198.51.100.100:80', 'tcp'); a name without /PROTO -> (name, None)."""
    where, slash, protocol = name.rpartition("/")
    return (where, protocol.lower()) if slash else (name, None)


def _host_port(text: str) -> tuple[str, str] | None:
    """'198.51.100.100:80' / '[2001:db8::1]:80' / '203.0.113.11' -> (host, port or '0')."""
    if text.startswith("["):
        host, _bracket, rest = text[1:].partition("]")
        return host, rest.lstrip(":") or "0"
    if text.count(":") == 1:
        host, _colon, port = text.partition(":")
        return host, port
    return (text, "0") if text and ":" not in text else None


def keepalived_vs(name: str) -> str:
    """hanode's service name -> keepalived's: '198.51.100.100:80/TCP' -> '[198.51.100.100]:tcp:80',
    'fwmark 7/TCP' -> 'FWM 7'. A name of another shape is passed through."""
    where, protocol = _split_service(name)
    if where.startswith("fwmark "):
        return f"FWM {where.split()[1]}"
    parts = _host_port(where)
    if parts is None or protocol is None:
        return name
    return f"[{parts[0]}]:{protocol}:{parts[1]}"


def keepalived_rs(real_server: str, vs_name: str) -> str:
    """'203.0.113.11:80' of '198.51.100.100:80/TCP' -> '[203.0.113.11]:tcp:80' (the service's protocol)."""
    protocol = _split_service(vs_name)[1]
    parts = _host_port(real_server)
    if parts is None or protocol is None:
        return real_server
    return f"[{parts[0]}]:{protocol}:{parts[1]}"


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
