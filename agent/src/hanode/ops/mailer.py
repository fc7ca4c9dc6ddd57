"""Sends alert mail from a queue in the supervisor: never blocks VRRP; a down mail server is retried and counted."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

from hanode.config.parse_ops import SmtpSettings

log = logging.getLogger("hanode.alerts")

RETRY_DELAYS_S = (1, 2, 5, 10, 30, 60)
QUEUE_LIMIT = 1000


class Mailer:
    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.queue: asyncio.Queue[EmailMessage] = asyncio.Queue()
        self.stats = {"queued": 0, "sent": 0, "failed_attempts": 0, "retries": 0, "dropped": 0}
        self.last_error: str | None = None
        self.task: asyncio.Task | None = None
        self.current: EmailMessage | None = None  # taken from the queue, being sent or waiting for a retry

    def adopt(self, previous: "Mailer") -> None:
        """After a reload that changed the SMTP settings: the previous mailer's unsent mail goes out through
        this one (an operator fixing smtp_server wants the alerts queued meanwhile), its counters carry on."""
        self.stats = dict(previous.stats)
        self.last_error = previous.last_error
        for message in previous.unsent():
            self.queue.put_nowait(message)

    def unsent(self) -> list[EmailMessage]:
        """Mail not sent yet, oldest first (call once the worker is stopped)."""
        pending = [self.current] if self.current is not None else []
        while not self.queue.empty():
            pending.append(self.queue.get_nowait())
        self.current = None
        return pending

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self, flush_s: float = 0.0) -> None:
        """Stops the worker. With flush_s (at shutdown) queued mail first gets that long to go out, unless an
        attempt fails meanwhile (a down mail server must not hold the shutdown)."""
        loop = asyncio.get_running_loop()
        deadline, failed = loop.time() + flush_s, self.stats["failed_attempts"]
        while (self.task and self._pending() and loop.time() < deadline
               and self.stats["failed_attempts"] == failed):
            await asyncio.sleep(0.02)
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def submit(self, message: EmailMessage) -> None:
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.stats["dropped"] += 1
            log.error("alert queue full (%d): dropping %r", QUEUE_LIMIT, message["Subject"])
            return
        self.stats["queued"] += 1
        self.queue.put_nowait(message)

    def status(self) -> dict:
        status = {"server": f"{self.settings.server}:{self.settings.port}", "pending": self._pending(),
                  "last_error": self.last_error}
        status.update(self.stats)
        return status

    def _pending(self) -> int:
        return self.queue.qsize() + (self.current is not None)

    async def _worker(self) -> None:
        while True:
            self.current = await self.queue.get()
            await self._deliver(self.current)
            self.current = None

    async def _deliver(self, message: EmailMessage) -> None:
        for attempt, delay in enumerate((0,) + RETRY_DELAYS_S):
            if delay:
                self.stats["retries"] += 1
                await asyncio.sleep(delay)
            try:
                await asyncio.to_thread(self._send, message)
            except (OSError, smtplib.SMTPException) as exc:
                self.stats["failed_attempts"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("alert mail %r not sent (attempt %d): %s", message["Subject"], attempt + 1, exc)
                continue
            self.stats["sent"] += 1
            return
        self.stats["dropped"] += 1
        log.error("alert mail %r dropped after %d attempts", message["Subject"], len(RETRY_DELAYS_S) + 1)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.server, s.port, local_hostname=s.helo_name, timeout=s.connect_timeout_ms / 1000) as smtp:
            smtp.send_message(message, from_addr=s.sender, to_addrs=list(s.recipients))
