"""Connections that survive a failover (the checker process's part; see docs/design.md "Connection sync").

The VRRP process decides the states; the supervisor relays every instance state to this process
(`vrrp_states` messages: after each transition, and after each config this process applies), and this
process, which owns the kernel's load-balancing state, follows the one instance the config names:

- IPVS backend, `lvs_sync_daemon`: the kernel's sync daemons, reconciled (lvs/syncd.py) on every relayed
  state, on reload and every lb_reconcile_interval;
- nftables backend, `conntrack_sync`: a conntrackd child (lvs/conntrackd.py), switched on each change of
  the instance's state with primary-backup.sh's commands, restarted with back-off when it exits; a guard
  table drops mid-stream TCP packets that have no conntrack entry yet (see lvs/conntrackd.py).

Every switch is an event (`connection_sync`) and shows in status (`connection_sync`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from hanode.config.model import AgentConfig
from hanode.lvs import conntrackd, syncd
from hanode.lvs.backend import choose_backend
from hanode.lvs.conntrackd_proc import Conntrackd, ConntrackdError, interface_address
from hanode.lvs.model import LvsConfig

log = logging.getLogger("hanode.connsync")

RESTART_MAX_S = 30.0


def wanted_mode(config: AgentConfig, backend: str) -> tuple[str | None, object]:
    """("ipvs", SyncDaemon) / ("conntrackd", ConntrackSync) / (None, None) for the chosen backend."""
    section = config.sections.get("connsync")
    if section is None:
        return None, None
    if backend == "ipvs" and section.lvs_sync_daemon is not None:
        return "ipvs", section.lvs_sync_daemon
    if backend == "nftables" and section.conntrack_sync is not None:
        return "conntrackd", section.conntrack_sync
    return None, None


class ConnSync:
    def __init__(self, emit: Callable[[dict], None]):
        self.emit = emit
        self.config: AgentConfig | None = None
        self.mode: str | None = None
        self.settings = None
        self.backend: str | None = None
        self.states: dict[str, str] = {}
        self.applied_state: str | None = None        # conntrackd: the state whose commands ran last
        self.ipvs = None
        self.ctd: Conntrackd | None = None
        self.daemons: dict[str, syncd.DaemonParams] = {}
        self.last: dict | None = None
        self.errors = 0
        self.restarts = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    # inputs -------------------------------------------------------------------------------------

    async def apply(self, config: AgentConfig) -> None:
        lvs = config.sections.get("lvs") or LvsConfig()
        self.backend, _why = await choose_backend(lvs)
        mode, settings = wanted_mode(config, self.backend)
        async with self.lock:
            self.config = config
            if (mode, settings) != (self.mode, self.settings):
                await self._stop_current()
                self.mode, self.settings = mode, settings
                if mode:
                    log.info("connection sync: %s following VRRP instance %s", mode, self.instance or "(none)")
        if self.mode and self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._loop())
        self.wake.set()

    def set_states(self, states: dict[str, str]) -> None:
        self.states = dict(states)
        self.wake.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        async with self.lock:
            await self._stop_current()

    @property
    def instance(self) -> str | None:
        return getattr(self.settings, "instance", None)

    @property
    def state(self) -> str | None:
        return self.states.get(self.instance) if self.instance else None

    # the loop -----------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            interval_s = ((self.config.sections.get("lvs") or LvsConfig()).reconcile_interval_ms / 1000
                          if self.config else 10.0)
            waiters = [asyncio.ensure_future(self.wake.wait())]
            if self.ctd is not None and self.ctd.proc is not None:
                waiters.append(asyncio.ensure_future(self.ctd.wait()))
            done, pending = await asyncio.wait(waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
            self.wake.clear()
            try:
                async with self.lock:
                    if self.mode == "ipvs":
                        await self._ipvs_step()
                    elif self.mode == "conntrackd":
                        await self._conntrackd_step()
            except Exception:  # noqa: BLE001 - keep following the instance; the error is logged with its trace
                log.exception("connection sync step failed")
                self.errors += 1
                await asyncio.sleep(1)

    async def _ipvs_step(self) -> None:
        if self.ipvs is None:
            from hanode.lvs.ipvs_syncd import IpvsSyncDaemons
            self.ipvs = IpvsSyncDaemons()
        instance = self.config.vrrp_instances.get(self.instance) if self.instance else None
        desired = syncd.desired_daemons(self.settings, self.state, instance.virtual_router_id if instance else None)
        ops, errors = await self.ipvs.reconcile(desired)
        if ops or errors:
            self._record([syncd.describe(op) for op in ops], errors)
        if not errors:
            self.daemons = desired

    async def _conntrackd_step(self) -> None:
        if self.ctd is None or not self.ctd.running:
            if not await self._start_conntrackd():
                return
        state = self.state or "BACKUP"
        if state == self.applied_state:
            return
        done, errors = [], []
        for args in conntrackd.commands_for(state):
            code, out = await self.ctd.command(*args)
            done.append(f"conntrackd {' '.join(args)} ({conntrackd.WHAT[args[0]]})")
            if code != 0:
                errors.append(f"conntrackd {' '.join(args)}: exit {code}: {out[-200:]}")
        self.applied_state = state
        self._record(done, errors)

    async def _start_conntrackd(self) -> bool:
        if self.ctd is not None:                       # it exited: back off, then start a fresh one
            delay_s = min(RESTART_MAX_S, 2.0 ** min(self.restarts, 5))
            self.restarts += 1
            log.error("conntrackd exited with status %s; restarting in %.0f s", self.ctd.proc.returncode
                      if self.ctd.proc else None, delay_s)
            self.emit({"event": "connection_sync", "mode": "conntrackd", "action": "restart", "ok": False,
                       "exit_status": self.ctd.proc.returncode if self.ctd.proc else None})
            await asyncio.sleep(delay_s)
        sync: conntrackd.ConntrackSync = self.settings
        files = conntrackd.files_for(self.config.control_socket)
        self.ctd = Conntrackd(sync, files)
        self.applied_state = None
        try:
            family = 6 if sync.transport == "udp" and ":" in (sync.peer or "") else 4
            local = await interface_address(sync.interface, family, self._vips())
            await _nft(conntrackd.guard_script(True))
            await self.ctd.start(local)
        except (ConntrackdError, OSError) as exc:
            self._record([], [str(exc)])
            return False
        return True

    def _vips(self) -> set[str]:
        return {vip.address for inst in self.config.vrrp_instances.values()
                for vip in (*inst.vips, *inst.excluded_vips)}

    async def _stop_current(self) -> None:
        if self.mode == "ipvs" and self.ipvs is not None:
            ops, errors = await self.ipvs.reconcile({})
            if ops or errors:
                self._record([syncd.describe(op) for op in ops], errors)
            self.ipvs.close()
            self.ipvs = None
            self.daemons = {}
        elif self.mode == "conntrackd":
            if self.ctd is not None:
                await self.ctd.stop()
                self.ctd = None
            try:
                await _nft(conntrackd.guard_script(False))
            except OSError as exc:
                log.warning("cannot remove the conntrack guard table: %s", exc)
            self.applied_state = None

    # reporting ----------------------------------------------------------------------------------

    def _record(self, done: list[str], errors: list[str]) -> None:
        self.errors += len(errors)
        self.last = {"at": time.time(), "vrrp_state": self.state, "actions": done, "errors": errors}
        for line in done:
            log.info("connection sync (%s, %s %s): %s", self.mode, self.instance, self.state, line)
        for line in errors:
            log.error("connection sync (%s): %s", self.mode, line)
        self.emit({"event": "connection_sync", "mode": self.mode, "instance": self.instance,
                   "vrrp_state": self.state, "actions": done, "errors": errors, "ok": not errors})

    def status(self) -> dict | None:
        if self.mode is None:
            return None
        out = {"mode": self.mode, "instance": self.instance, "vrrp_state": self.state, "errors": self.errors,
               "last": self.last}
        if self.mode == "ipvs":
            out["daemons"] = {state: p.__dict__ for state, p in self.daemons.items()}
        else:
            out["conntrackd"] = {"running": bool(self.ctd and self.ctd.running),
                                 "pid": self.ctd.proc.pid if self.ctd and self.ctd.running else None,
                                 "applied_state": self.applied_state, "restarts": self.restarts,
                                 "config": conntrackd.files_for(self.config.control_socket).config}
        return out


async def _nft(script: str) -> None:
    proc = await asyncio.create_subprocess_exec("nft", "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await proc.communicate(script.encode())
    if proc.returncode != 0 and "No such file or directory" not in err.decode(errors="replace"):
        raise OSError(f"nft: {err.decode(errors='replace').strip()}")
