"""Where events go besides the control socket: the notify FIFO and alert mail (rebuilt on every reload)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hanode.config.model import AgentConfig
from hanode.ops.fifo import NotifyFifo
from hanode.ops.fifo_reader import FifoReader

if TYPE_CHECKING:   # imported when alert mail is configured (smtplib, email, ssl: memory for every agent)
    from hanode.ops.mailer import Mailer

log = logging.getLogger("hanode.events")


class EventSinks:
    def __init__(self) -> None:
        self.config: AgentConfig | None = None
        self.fifo: NotifyFifo | None = None
        self.reader: FifoReader | None = None
        self.mailer: Mailer | None = None

    async def configure(self, config: AgentConfig) -> None:
        ops = config.sections["ops"]
        self.config = config
        fifo_key = (ops.notify_fifo, ops.notify_fifo_format)
        if self.fifo is None or (self.fifo.path, self.fifo.fmt) != fifo_key:
            if self.fifo:
                self.fifo.close()
            self.fifo = None
            if ops.notify_fifo:
                fifo = NotifyFifo(*fifo_key)
                try:
                    fifo.open()
                    self.fifo = fifo
                except OSError as exc:
                    log.error("cannot open notify FIFO %s: %s", ops.notify_fifo, exc)
        await self._configure_reader(config)
        if self.mailer is None or self.mailer.settings != ops.smtp:
            previous = self.mailer
            if previous:
                await previous.stop()
            if ops.smtp:
                from hanode.ops.mailer import Mailer
                self.mailer = Mailer(ops.smtp)
            else:
                self.mailer = None
            if self.mailer:
                if previous:
                    self.mailer.adopt(previous)
                self.mailer.start()
            elif previous and previous.unsent():
                log.warning("alert mail switched off by the new config: unsent alert mail dropped")

    async def _configure_reader(self, config: AgentConfig) -> None:
        """notify_fifo_script follows the FIFO and the script settings (restarted when any of them changes)."""
        ops = config.sections["ops"]
        wanted = None
        if ops.notify_fifo_script and self.fifo:
            wanted = FifoReader(ops.notify_fifo_script, self.fifo.path, config.script_user,
                                config.enable_script_security)
        if self.reader and (wanted is None or wanted.key != self.reader.key):
            await self.reader.stop()
            self.reader = None
        if wanted and self.reader is None:
            self.reader = wanted
            await wanted.start()

    async def close(self, flush_s: float = 0.0) -> None:
        """flush_s: how long queued alert mail (e.g. the STOP transitions at shutdown) may take to go out. The FIFO
        reader is stopped after the FIFO is closed (it reads what was written before)."""
        if self.fifo:
            self.fifo.close()
        if self.reader:
            await self.reader.stop()
            self.reader = None
        if self.mailer:
            await self.mailer.stop(flush_s)

    def handle(self, event: dict) -> None:
        if self.fifo:
            self.fifo.write(event)
        if not self.mailer or not self.config:
            return
        from hanode.ops.mail import alert_enabled, compose, to_message
        if alert_enabled(event, self.config, self.config.sections["ops"].smtp_alert):
            alert = compose(event, self.config.router_id)
            if alert:
                settings = self.mailer.settings
                self.mailer.submit(to_message(alert, settings.sender, settings.recipients, event.get("ts", 0)))

    def status(self) -> dict:
        return {"mail": self.mailer.status() if self.mailer else None,
                "fifo": dict(self.fifo.stats, path=self.fifo.path) if self.fifo else None}
