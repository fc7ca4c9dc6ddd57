"""The checker's answers on the control socket: operator commands (rs_disable / rs_enable, the drains kept
in a state file so that they survive a restart) and status (each real server's health, its checks, and the
kernel's view of it from a fresh dump). A mixin of CheckerRunner (health/runner.py), which owns the state read
here."""

from __future__ import annotations

import functools
import logging
import time

from hanode.daemon.parts import LazyItems
from hanode.health.scheduler import ServerKey
from hanode.health.status import CheckView, lvs_status, real_server_status, virtual_server_status
from hanode.lvs.desired import RsHealth, service_key, service_keys
from hanode.lvs.kernel import KernelState, ServiceKey
from hanode.lvs.model import RealServer, VirtualServer, kernel_dest_key, real_server_name
from hanode.lvs.plan import AddService, DelService, EditService, describe, plan
from hanode.lvs.state_file import load_state, save_state, state_path

log = logging.getLogger("hanode.health")

STATUS_DUMP_MAX_AGE_S = 1.0     # status shows the kernel as dumped at most this long ago (1 s per 2,000 servers)
DISABLED_REASON = "disabled by operator"
UP = RsHealth(True)            # a real server not checked yet


def drained_state_path(control_socket: str | None) -> str | None:
    """Where the real servers an operator disabled are kept, so that a restarted checker (or agent) keeps
    them drained until they are enabled."""
    return state_path(control_socket, "lvs-drained")


def load_drained(path: str | None) -> set[ServerKey]:
    return load_state(path, "drained", lambda vs, rs: (str(vs), str(rs)))


def save_drained(path: str | None, drained: set[ServerKey]) -> None:
    save_state(path, "drained", sorted(drained))


def op_service(op) -> ServiceKey:
    if isinstance(op, (AddService, EditService)):
        return op.service.key
    if isinstance(op, DelService):
        return op.key
    return op.service


def _vs_aliases(vs: VirtualServer) -> set[str]:
    """The names an operator may use: '198.51.100.100:80/TCP', '198.51.100.100:80'; 'fwmark 7/TCP', 'fwmark 7',
    '7/TCP', '7'."""
    names = {vs.name, vs.name.rsplit("/", 1)[0]}
    if vs.fwmark is not None:
        names |= {f"{vs.fwmark}/{vs.protocol}", str(vs.fwmark)}
    return names


def _host_of(name: str) -> str:
    """'203.0.113.11:8080' -> '203.0.113.11'; '[2001:db8::1]:443' -> '2001:db8::1'."""
    if name.startswith("["):
        return name[1:name.index("]")]
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


class Answers:
    """control() and status() of CheckerRunner: reads its config, scheduler, reconciler and drains."""

    # operator commands --------------------------------------------------------------------------

    def control(self, message: dict) -> dict:
        action = message.get("action")
        if action not in ("rs_disable", "rs_enable"):
            return {"ok": False, "error": f"unknown control action {action!r}"}
        key, error = self._find_server(message.get("virtual_server"), message.get("real_server"))
        if error:
            return {"ok": False, "error": error}
        if action == "rs_disable":
            self.disabled.add(key)
        else:
            self.disabled.discard(key)
        self.changed.add(key)
        save_drained(self._drained_path(), self.disabled)
        log.info("real server %s of %s %s by operator", key[1], key[0],
                 "disabled (weight 0)" if action == "rs_disable" else "enabled")
        self.dirty.set()
        return {"ok": True, "virtual_server": key[0], "real_server": key[1]}

    def _drained_path(self) -> str | None:
        return drained_state_path(self.config.control_socket if self.config else None)

    def _find_server(self, vs_name, rs_name) -> tuple[ServerKey | None, str | None]:
        if not vs_name or not rs_name:
            return None, "give virtual_server (e.g. 198.51.100.100:80/TCP) and real_server (e.g. 203.0.113.11:8080)"
        services = [vs for vs in self.lvs.virtual_servers if vs_name in _vs_aliases(vs)]
        if len(services) != 1:
            known = ", ".join(vs.name for vs in self.lvs.virtual_servers) or "none"
            what = "is ambiguous" if services else "does not exist"
            return None, f"virtual server {vs_name!r} {what} (configured: {known})"
        vs = services[0]
        names = [real_server_name(rs) for rs in vs.real_servers]
        matches = [n for n in names if rs_name in (n, _host_of(n))]
        if len(matches) != 1:
            return None, (f"virtual server {vs.name} has {'several' if matches else 'no'} real server {rs_name!r} "
                          f"(configured: {', '.join(names) or 'none'})")
        return (vs.name, matches[0]), None

    # status -------------------------------------------------------------------------------------

    async def _kernel_view(self) -> KernelState | None:
        if self.reconciler is None:
            return None
        max_age_s = max(STATUS_DUMP_MAX_AGE_S, len(self.servers) / 2000)
        if time.monotonic() - self.last_dump_at > max_age_s and not self.lock.locked():
            try:
                async with self.lock:
                    await self.reconciler.dump()
                    self.last_dump_at = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - status shows the last known state instead
                log.warning("cannot dump the kernel table for status: %s", exc)
        return self.reconciler.actual

    async def status(self) -> dict:
        actual = await self._kernel_view()
        lvs, reconciler = self.lvs, self.reconciler   # this status is of one config, even if a reload comes in
        desired = reconciler.desired if reconciler is not None else None
        ops = plan(desired, actual, reconciler.owned) if desired is not None and actual is not None else []
        diffs: dict[ServiceKey, list[str]] = {}
        for op in ops:
            diffs.setdefault(op_service(op), []).append(describe(op))
        backend = self.backend.name if self.backend else None
        services = []
        configured = set()
        for vs in lvs.virtual_servers:
            key, keys = service_key(vs), service_keys(vs)
            configured.update(keys)
            entry = actual.get(key) if actual is not None else None
            # each real server's entry made as it is sent (daemon/parts.py), not thousands held at once
            servers = LazyItems(vs.real_servers, functools.partial(self._rs_status, vs, entry=entry))
            up = sum(1 for rs in vs.real_servers if self._rs_up(vs, rs))
            diff = [line for k in keys for line in diffs.get(k, ())]
            if actual is None:
                diff = ["kernel state unknown: "
                        + (self.backend_error or "the last apply failed; the next reconcile dumps it")]
            services.append(virtual_server_status(vs, backend, self.quorum.get(vs.name), servers, entry, diff,
                                                  vs.name in self.scheduler.suspended, up=up))
        other = [line for key, lines in sorted(diffs.items()) if key not in configured for line in lines]
        last = reconciler.last_result if reconciler else None
        stats = self.scheduler.stats.summary()
        return {"virtual_servers": services,
                "lvs": lvs_status(backend, self.backend_error, self.reconciles, self.errors,
                                  {"ok": last.ok, "ops": last.op_count, "errors": list(last.errors),
                                   "duration_ms": round(last.duration_ms, 3)} if last else None,
                                  round(time.time() - self.last_ok_at, 3) if self.last_ok_at else None,
                                  len(self.scheduler.slots), {"check_" + k: v for k, v in stats.items()}, other,
                                  self._recent_lag_ms())}

    def _rs_up(self, vs: VirtualServer, rs: RealServer) -> bool:
        """What _rs_status says as health "up" (healthy and not disabled by an operator)."""
        key = (vs.name, real_server_name(rs))
        return key not in self.disabled and self.scheduler.health_cache.get(key, UP).up

    def _rs_status(self, vs: VirtualServer, rs: RealServer, entry) -> dict:
        key = (vs.name, real_server_name(rs))
        now_ms, now = self.scheduler.clock_ms(), time.time()
        views = [CheckView(s.spec.probe.type, s.state.up, s.state.retry_it, s.state.reason, s.last,
                           None if s.last_ms is None else now - (now_ms - s.last_ms) / 1000, s.runs)
                 for s in self.scheduler.server_slots(key)]
        health = self.scheduler.health_cache.get(key, UP)
        return real_server_status(rs, kernel_dest_key(vs, rs), health, key in self.disabled, views, entry)
