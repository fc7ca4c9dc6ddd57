"""Operations settings (issue 5): SMTP alerts as keepalived's global_defs, the notify FIFO, metrics, watchdog."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from hanode.config.problems import Problems, Reader

SECTION = "ops"
FIFO_FORMATS = ("json", "keepalived")


@dataclass(frozen=True)
class SmtpSettings:
    server: str
    port: int = 25
    connect_timeout_ms: int = 30_000
    helo_name: str = "localhost"
    sender: str = "keepalived@localhost"
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpsConfig:
    smtp: SmtpSettings | None = None
    smtp_alert: bool = False            # global default; instances, sync groups and virtual servers override it
    notify_fifo: str | None = None
    notify_fifo_format: str = "json"
    notify_fifo_script: str | None = None   # the FIFO's reader: started with the FIFO's path as its last argument
    metrics_listen: tuple[str, int] | None = None
    watchdog_timeout_ms: int = 2000     # a child silent this long is hung: killed and restarted


def _host_port(text: str, default_port: int, path: str, problems: Problems) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":") if text.count(":") == 1 or text.startswith("[") else (text, "", "")
    host = host.strip("[]") if sep else text
    try:
        number = int(port) if sep else default_port
    except ValueError:
        problems.error(path, f"port in {text!r} is not a number")
        return None
    if not 1 <= number <= 65535:
        problems.error(path, f"port must be 1..65535, got {number}")
        return None
    return host, number


def _smtp(reader: Reader, problems: Problems) -> SmtpSettings | None:
    server = reader.string("smtp_server", None)
    port = reader.integer("smtp_port", None, 1, 65535)
    timeout_s = reader.number("smtp_connect_timeout", 30, 1, 600)
    helo = reader.string("smtp_helo_name", "localhost")
    sender = reader.string("notification_email_from", None)
    recipients = reader.items("notification_email", lambda v, p: _email(v, p, problems))
    if server is None:
        if recipients:
            problems.error("smtp_server", "is required when notification_email is set")
        return None
    parsed = _host_port(server, port or 25, "smtp_server", problems)
    if parsed is None:
        return None
    if not recipients:
        problems.warn("notification_email", "is empty: no alert mail will be sent")
    return SmtpSettings(server=parsed[0], port=port or parsed[1], connect_timeout_ms=round(timeout_s * 1000),
                        helo_name=helo, sender=sender or f"hanode@{helo}", recipients=recipients)


def _email(value: Any, path: str, problems: Problems) -> str | None:
    if not isinstance(value, str) or "@" not in value or " " in value.strip():
        problems.error(path, f"{value!r} is not an e-mail address")
        return None
    return value.strip()


def _metrics(reader: Reader, problems: Problems) -> tuple[str, int] | None:
    text = reader.string("metrics_listen", None)
    if text is None:
        return None
    parsed = _host_port(text, 9650, "metrics_listen", problems)
    if parsed is None:
        return None
    try:
        ipaddress.ip_address(parsed[0])
    except ValueError:
        problems.error("metrics_listen", f"{parsed[0]!r} is not an IP address (e.g. 127.0.0.1:9650)")
        return None
    return parsed


def _fifo_script(reader: Reader, fifo: str | None, problems: Problems) -> str | None:
    script = reader.string("notify_fifo_script", None)
    if script is not None and fifo is None:
        problems.error("notify_fifo_script", "needs notify_fifo (the FIFO it reads)")
    return script


def parse(reader: Reader, problems: Problems, config, host=None) -> OpsConfig:  # pylint: disable=unused-argument
    fifo = reader.string("notify_fifo", None)
    if fifo is not None and not fifo.startswith("/"):
        problems.error("notify_fifo", f"must be an absolute path, got {fifo!r}")
    return OpsConfig(
        smtp=_smtp(reader, problems),
        smtp_alert=reader.boolean("smtp_alert", False),
        notify_fifo=fifo,
        notify_fifo_format=reader.string("notify_fifo_format", "json", FIFO_FORMATS),
        notify_fifo_script=_fifo_script(reader, fifo, problems),
        metrics_listen=_metrics(reader, problems),
        watchdog_timeout_ms=round(reader.number("watchdog_timeout", 2, 0.5, 60) * 1000),
    )
