"""The process and file trackers' monitors (vrrp/procmon.py, vrrp/filetrack.py) for the VRRP runner: started
for what some instance or sync group tracks, restarted when a reload changes that, their readings logged, evented
and handed to `observe(process_up=..., file_values=...)`."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from hanode.config.model import AgentConfig
from hanode.daemon.logs import fields
from hanode.vrrp.engine import Engine
from hanode.vrrp.filetrack import FileMonitor
from hanode.vrrp.procmon import ProcessMonitor
from hanode.vrrp.proctrack import ProcessTable

log = logging.getLogger("hanode.vrrp")


def used_trackers(engine: Engine, config: AgentConfig) -> tuple[dict, dict]:
    """The vrrp_track_processes and track_files some instance (or its sync group) tracks."""
    procs, files = {}, {}
    for name in engine.instances:
        cfg = engine.tracked_config(name)
        procs.update((r.name, config.vrrp_track_processes[r.name]) for r in cfg.track_processes)
        files.update((r.name, config.track_files[r.name]) for r in cfg.track_files)
    return procs, files


class TrackerMonitors:
    def __init__(self, loop: asyncio.AbstractEventLoop, engine: Engine, clock_us: Callable[[], int],
                 emit: Callable[[dict], None], observe: Callable[..., None]):
        self.loop, self.engine, self.clock_us, self.emit, self.observe = loop, engine, clock_us, emit, observe
        self.procmon: ProcessMonitor | None = None
        self.filemon: FileMonitor | None = None

    def sync(self, config: AgentConfig, initial: bool) -> None:
        """(Re)starts a monitor when what it watches changed; its first readings go to the engine at once."""
        procs, files = used_trackers(self.engine, config)
        if (self.procmon.table.specs if self.procmon else {}) != procs:
            if self.procmon is not None:
                self.procmon.close()
            self.procmon = None
            if procs:
                self.procmon = ProcessMonitor(self.loop, ProcessTable(procs), self._on_processes, self.clock_us)
                self._on_processes(self.procmon.start(), dict(self.procmon.table.counts))
        if (self.filemon.specs if self.filemon else {}) != files:
            if self.filemon is not None:
                self.filemon.close()
            self.filemon = None
            if files:
                self.filemon = FileMonitor(self.loop, files, self._on_files)
                try:
                    self._on_files(self.filemon.start(initial))
                except OSError as exc:
                    log.error("track_file: %s", exc)

    def close(self) -> None:
        for monitor in (self.procmon, self.filemon):
            if monitor is not None:
                monitor.close()

    def _on_processes(self, changes: list, counts: dict) -> None:
        self.engine.process_counts = counts
        if not changes:
            return
        for name, up in changes:
            state = "up" if up else "down"
            log.info("tracked process %s %s (%d running)", name, state, counts.get(name, 0),
                     extra=fields(event="tracker", tracker="process", name=name, state=state))
            self.emit({"event": "tracker", "tracker": "process", "name": name, "state": state,
                       "running": counts.get(name, 0)})
        self.observe(process_up=dict(changes))

    def _on_files(self, values: dict) -> None:
        changed = {n: v for n, v in values.items() if self.engine.file_values.get(n) != v}
        for name, value in changed.items():
            log.info("tracked file %s: %d", name, value,
                     extra=fields(event="tracker", tracker="file", name=name, state=str(value)))
            self.emit({"event": "tracker", "tracker": "file", "name": name, "state": "value", "value": value})
        if changed or not self.engine.file_values:
            self.observe(file_values=values)
