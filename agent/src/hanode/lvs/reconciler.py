"""Reconcile the kernel with the desired state: dump (or trust the last known state), plan, apply.

The reconciler remembers which services it owns (created, or desired and adopted) so that services made
by others are never touched, and so that on stop it removes exactly its own (unless keep_on_stop). The
owned set can be persisted (state_path), so a restarted checker still knows what it created. After any
failed apply the next reconcile dumps the kernel again instead of trusting its own bookkeeping.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from hanode.lvs.backend import Backend
from hanode.lvs.kernel import Entry, KernelState, ServiceKey
from hanode.lvs.plan import DelService, Op, describe, plan, settled
from hanode.lvs.state_file import load_state, save_state

log = logging.getLogger("hanode.lvs")


@dataclass(frozen=True)
class ReconcileResult:
    ops: tuple[Op, ...]
    errors: tuple[str, ...]
    duration_ms: float
    ops_let_go: int = 0     # ops of this reconcile not kept in `ops` (last_result: the first has 8,000 dests)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def op_count(self) -> int:
        return len(self.ops) + self.ops_let_go


class Reconciler:
    def __init__(self, backend: Backend, *, owned: Iterable[ServiceKey] = (), state_path: str | None = None):
        self.backend = backend
        self.state_path = state_path
        self.owned: set[ServiceKey] = set(owned) | self._load_owned()
        self.actual: KernelState | None = None      # what the kernel holds, as far as we know
        self.desired: KernelState | None = None     # the last state asked for
        self.last_result: ReconcileResult | None = None

    async def dump(self) -> KernelState:
        self.actual = await self.backend.dump()
        if self.backend.exclusive:
            self.owned |= set(self.actual)
        return self.actual

    async def reconcile(self, desired: Mapping[ServiceKey, Entry], *, refresh: bool = False) -> ReconcileResult:
        """Makes the kernel hold `desired` (and no other owned service). refresh=True dumps the kernel first
        (periodic resync); otherwise the state left by the last successful apply is trusted."""
        started = time.perf_counter()
        # The states this call replaces are freed only after the kernel holds the new one: 10,000 destinations
        # (a dump's, or the last desired state's) take 3-6 ms to free, which would delay the change itself.
        retired = (self.desired, self.actual)
        self.desired = dict(desired)
        errors: list[str] = []
        ops: list[Op] = []
        try:
            if refresh or self.actual is None:
                await self.dump()
            ops = plan(desired, self.actual, self.owned)
            self.owned |= set(desired)
            if ops:
                errors = await self.backend.apply(ops)
        except Exception as exc:  # noqa: BLE001 - a kernel/tool failure is reported, never raised to the runner
            errors.append(f"{type(exc).__name__}: {exc}")
        if errors:
            self.actual = None
            for error in errors:
                log.warning("lvs reconcile: %s", error)
        else:
            self.actual = settled(desired, self.actual, ops)
            self.owned -= {op.key for op in ops if isinstance(op, DelService)}
        self._save_owned()
        result = ReconcileResult(tuple(ops), tuple(errors), (time.perf_counter() - started) * 1000)
        if ops:
            log.info("lvs reconcile: %d ops in %.1f ms%s", len(ops), result.duration_ms,
                     f", {len(errors)} errors" if errors else "")
        self.last_result = replace(result, ops=(), ops_let_go=len(ops))   # for status: the count, not the ops
        del retired
        return result

    def diff(self, desired: Mapping[ServiceKey, Entry] | None = None) -> list[str]:
        """What is left to do, one line per op ('set dest ... weight 3 -> 5'); empty when in sync.
        Uses the last known kernel state (call dump() first for a fresh view)."""
        want = self.desired if desired is None else desired
        if want is None:
            return []
        if self.actual is None:
            return ["kernel state unknown (the last apply failed; the next reconcile dumps it)"]
        return [describe(op) for op in plan(want, self.actual, self.owned)]

    async def cleanup(self, keep: bool) -> ReconcileResult:
        """On stop: removes every owned service unless keep (keepalived -I / lb_keep_on_stop)."""
        if keep:
            log.info("lvs: leaving %d services in the kernel (keep_on_stop)", len(self.owned))
            return ReconcileResult((), (), 0.0)
        result = await self.reconcile({}, refresh=True)
        if result.ok:
            await self.backend.release()
            self.owned.clear()
            self._save_owned()
        return result

    # ----- owned services survive a restart of the checker ---------------------------------------

    def _load_owned(self) -> set[ServiceKey]:
        return load_state(self.state_path, "owned", ServiceKey)

    def _save_owned(self) -> None:
        save_state(self.state_path, "owned",
                   [[k.family, k.protocol, k.address, k.port, k.fwmark] for k in sorted(self.owned)])
