"""Runs every check on its own timer, concurrently, and keeps each real server's health.

- A timer wheel (health/duequeue.py: due times to the millisecond, one loop timer) holds every check's next
  run, delay_loop after its previous run ended, as keepalived's. When due, the check runs
  (TCP_CHECK and plain HTTP_GET on the callback fast path of checks/fast.py, every other check in a
  coroutine adapter; a MISC_CHECK script is a subprocess the loop does not wait on); its result goes
  to the pure hysteresis and the check goes back on the wheel for its next run. Nothing here blocks.
- A reload (`apply`) keeps the state of every check whose definition did not change, matched by
  definition first (so inserting a check or reordering checks does not reset the others), then a changed
  check at the same real server inherits UP/DOWN from the one it replaces (`carried_over`). New and
  changed checks, and those resumed after a restart, first run within their warmup (default delay_loop):
  thousands of them never start in one burst. Health lives here, never in the kernel: the kernel weight is always recomputed from the config
  and this health, so no weight can stay at 0 and no recovered server can stay out of the table after a
  reload (keepalived's bugs).
- `on_change(server)` is called whenever a real server's health (UP/DOWN or misc_dynamic weight) changes.
- ha_suspend: the checks of the services in `suspended` (health/suspend.py decides which) wake every
  delay_loop and probe nothing, so their servers keep their health, as keepalived's disabled checkers do.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import time
from typing import Awaitable, Callable, Iterable, Mapping

from hanode.health.checks import close_pingers, run_probe
from hanode.health.checks.fast import FastProbes, Flight
from hanode.health.checks.fast import prepare as prepare_fast
from hanode.health.checks.file import value_result
from hanode.health.duequeue import DueQueue
from hanode.health.hysteresis import (RANDOM_RANGE, CheckResult, CheckState, carried_over, first_due_ms,
                                      initial_state, observe, resumed_state, server_health)
from hanode.health.spec import CheckSpec, Probe
from hanode.lvs.desired import RsHealth
from hanode.vrrp.filetrack import FileMonitor

log = logging.getLogger("hanode.health")

ServerKey = tuple[str, str]              # (VirtualServer.name, real_server_name)
LATE_WINDOW = 1000                       # lateness statistics over N samples of the last check starts
LATE_OVER_MS = (100, 1000)               # check starts counted as late by more than these (metrics: a rate)


class Slot(Flight):
    """One check of one real server: its state, its last result and, for the fast path, the check itself (a
    Flight: launched again on every run, one object per check). Touched by every run of the check
    (thousands a second): plain slots, `steady` kept with the state so that the hot path reads one
    attribute, and a passed run's result kept as its latency alone (`last` makes the CheckResult when asked)."""

    __slots__ = ("spec", "_state", "steady", "due_ms", "latest", "last_ms", "runs", "delay_ms", "armed", "task",
                 "fast", "cancelled")

    def __init__(self, spec: CheckSpec, state: CheckState, due_ms: int):
        super().__init__()
        self.spec = spec
        self.state = state
        self.due_ms = due_ms
        self.latest: CheckResult | int | None = None   # the last result; an int: the latency_us of a passed run
        self.last_ms: int | None = None        # clock_ms() of the last result (status turns it into a date)
        self.runs = 0
        # delay_loop, read by every run (the timing is part of the definition: a kept slot's never changes)
        self.delay_ms = spec.timing.delay_loop_ms
        self.armed: int | None = None          # the timer-wheel bucket it waits in (None: not on the wheel)
        self.task: asyncio.Task | None = None  # a run in a coroutine adapter
        # True: runs on the fast path (adopted by FastProbes); False: the coroutine adapters; None: not decided
        # until the first run
        self.fast: bool | None = None
        self.cancelled = False

    @property
    def state(self) -> CheckState:
        return self._state

    @state.setter
    def state(self, state: CheckState) -> None:
        self._state = state
        self.steady = state.steady

    @property
    def last(self) -> CheckResult | None:
        latest = self.latest
        return CheckResult(True, latest) if isinstance(latest, int) else latest

    @last.setter
    def last(self, result: CheckResult | None) -> None:
        self.latest = result

    @property
    def server(self) -> ServerKey:
        return (self.spec.vs, self.spec.rs)


class Stats:
    def __init__(self) -> None:
        self.runs = 0
        self.failures = 0
        self.late_ms: collections.deque[int] = collections.deque(maxlen=LATE_WINDOW)   # how late checks started
        self.late_max_ms = 0
        self.late_over = [0] * len(LATE_OVER_MS)    # starts later than each LATE_OVER_MS bound, since start
        self.stride = 1                             # one start in `stride` is sampled into late_ms
        self.countdown = 1                          # starts until the next sample

    def sample_over(self, checks_per_s: float) -> None:
        """Samples enough starts that late_ms spans about the last second of them: with 8,000 checks a second,
        the last 1,000 starts were 125 ms, so a status request (which holds the loop for a while) saw mostly
        the starts it had delayed itself."""
        self.stride = max(1, int(checks_per_s // LATE_WINDOW))

    def started(self, late_ms: int) -> None:
        self.countdown -= 1
        if self.countdown <= 0:
            self.countdown = self.stride
            self.late_ms.append(late_ms)
        if late_ms > self.late_max_ms:
            self.late_max_ms = late_ms
        if late_ms >= LATE_OVER_MS[0]:
            self.count_late(late_ms)

    def count_late(self, late_ms: int) -> None:
        for index, bound_ms in enumerate(LATE_OVER_MS):
            if late_ms >= bound_ms:
                self.late_over[index] += 1

    def summary(self) -> dict:
        ordered = sorted(max(0, v) for v in self.late_ms)
        pick = (lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else (lambda q: 0)
        return {"runs": self.runs, "failures": self.failures, "late_ms": {"p50": pick(0.5), "p99": pick(0.99),
                                                                          "max": self.late_max_ms},
                "late_starts": {f"over_{bound_ms}ms": count for bound_ms, count in zip(LATE_OVER_MS, self.late_over)}}


class TimerWheel:
    """The asyncio shell of DueQueue: one loop timer, at the earliest due bucket (to the millisecond), and no
    TimerHandle (with its Python-level heap comparisons) per check. `fire(slots, bucket)` gets a bucket's slots
    at once and runs those whose `armed` is still that bucket (lazy deletion: a cancelled or re-armed slot is
    skipped)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[list[Slot], int], None]):
        self.loop = loop
        self.fire = fire
        self.queue = DueQueue()
        self.buckets = self.queue.buckets       # read by Scheduler._settle's inlined add
        self.handle: asyncio.TimerHandle | None = None
        self.armed_ms: int | None = None

    def add(self, slot: Slot, due_ms: int) -> None:
        if self.queue.add(slot, due_ms) and (self.armed_ms is None or due_ms < self.armed_ms):
            self._arm(due_ms)

    def _arm(self, due_ms: int) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.armed_ms = due_ms
        self.handle = self.loop.call_at(due_ms / 1000, self._run)

    def _run(self) -> None:
        self.handle = self.armed_ms = None
        due = self.queue.pop_due(int(self.loop.time() * 1000))
        earliest = self.queue.earliest()
        if earliest is not None:
            self._arm(earliest)
        for slots, bucket in due:
            self.fire(slots, bucket)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.queue.clear()


def loop_ms() -> int:
    return int(time.monotonic() * 1000)


class Scheduler:
    def __init__(self, on_change: Callable[[ServerKey], None] = lambda server: None,
                 runner: Callable[[Probe], Awaitable[CheckResult]] = run_probe,
                 clock_ms: Callable[[], int] = loop_ms,
                 draw: Callable[[], int] = lambda: random.randrange(RANDOM_RANGE)):
        self.on_change = on_change
        self.runner = runner
        self.clock_ms = clock_ms
        self.draw = draw
        self.slots: dict[tuple[str, str, int], Slot] = {}
        self.health_cache: dict[ServerKey, RsHealth] = {}
        self.stats = Stats()
        self.started = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.fast: FastProbes | None = None
        self.wheel: TimerWheel | None = None
        self.files: FileMonitor | None = None   # FILE_CHECK: tracked files, applied as soon as they change
        self.suspended: frozenset[str] = frozenset()   # ha_suspend: services whose checks probe nothing
        self.skipped = 0                        # runs that probed nothing because their service was suspended

    # configuration ------------------------------------------------------------------------------

    def apply(self, specs: Iterable[CheckSpec], resume: Mapping[ServerKey, bool] | None = None,
              keys: Iterable[ServerKey] = ()) -> dict[str, int]:
        """Installs a new set of checks, keeping the state of unchanged ones. `resume` gives the health the
        kernel table implies for servers seen before a restart. `keys`: the caller's own key of each server,
        which this scheduler's maps then use too (one tuple per server, not one per map: 8,000 servers).
        Returns counts (kept/changed/added/removed)."""
        resume = resume or {}
        canonical = {key: key for key in keys}
        now = self.clock_ms()
        by_server: dict[ServerKey, list[Slot]] = {}
        for slot in self.slots.values():
            by_server.setdefault(slot.server, []).append(slot)
        new_specs: dict[ServerKey, list[CheckSpec]] = {}
        for spec in specs:
            server = (spec.vs, spec.rs)
            new_specs.setdefault(canonical.get(server, server), []).append(spec)
        counts = dict.fromkeys(("kept", "changed", "added", "removed"), 0)
        new_slots: dict[tuple[str, str, int], Slot] = {}
        for server, wanted in new_specs.items():
            old = by_server.pop(server, [])
            for slot in self._match(server, wanted, old, resume, now, counts):
                new_slots[(slot.spec.vs, slot.spec.rs, slot.spec.index)] = slot
        for leftovers in by_server.values():
            for slot in leftovers:
                self._cancel(slot)
                counts["removed"] += 1
        self.slots = new_slots
        self.health_cache = {server: self._compute(server) for server in new_specs}
        self.stats.sample_over(sum(1000 / max(1, slot.delay_ms) for slot in new_slots.values()))
        if self.started:
            self._watch_files()
            self._start_tasks()
        return counts

    def _match(self, server: ServerKey, wanted: list[CheckSpec], old: list[Slot], resume: Mapping[ServerKey, bool],
               now: int, counts: dict[str, int]) -> list[Slot]:
        result: list[Slot] = []
        unmatched: list[CheckSpec] = []
        for spec in wanted:
            same = next((s for s in old if s.spec.definition == spec.definition), None)
            if same is not None:
                old.remove(same)
                same.spec = spec                      # the index may have moved
                result.append(same)
                counts["kept"] += 1
            else:
                unmatched.append(spec)
        for spec in unmatched:
            if old:
                replaced = old.pop(0)
                self._cancel(replaced)
                result.append(Slot(spec, carried_over(replaced.state), first_due_ms(spec.timing, now, self.draw())))
                counts["changed"] += 1
            elif server in resume:
                result.append(Slot(spec, resumed_state(resume[server]), first_due_ms(spec.timing, now, self.draw())))
                counts["added"] += 1
            else:
                result.append(Slot(spec, initial_state(spec.alpha), first_due_ms(spec.timing, now, self.draw())))
                counts["added"] += 1
        for slot in old:
            self._cancel(slot)
            counts["removed"] += 1
        return result

    # health -------------------------------------------------------------------------------------

    def _compute(self, server: ServerKey) -> RsHealth:
        return server_health([slot.state for slot in self.server_slots(server)])

    def health(self) -> dict[ServerKey, RsHealth]:
        """Health of every real server that has checks."""
        return dict(self.health_cache)

    def server_slots(self, server: ServerKey) -> list[Slot]:
        """A real server's checks in their order: slots (vs, rs, 0), (vs, rs, 1)... (check_specs() numbers each
        real server's checks from 0). Looked up, not kept in a map of their own (8,000 servers: ~1 MB)."""
        vs, rs = server
        found, get = [], self.slots.get
        slot = get((vs, rs, 0))
        while slot is not None:
            found.append(slot)
            slot = get((vs, rs, len(found)))
        return found

    def record(self, slot: Slot, result: CheckResult, now_ms: int | None = None) -> None:
        """Feeds one result of a check (what each check task does after every run)."""
        now_ms = self.clock_ms() if now_ms is None else now_ms
        state = slot.state
        if result.ok and state.steady and result.weight is None:
            # the steady state (observe() would return the same state): skip the allocations
            slot.due_ms, slot.last, slot.last_ms, slot.runs = now_ms + slot.spec.timing.delay_loop_ms, result, \
                now_ms, slot.runs + 1
            self.stats.runs += 1
            return
        step = observe(slot.spec.timing, state, result, now_ms)
        slot.state, slot.due_ms = step.state, step.next_due_ms
        slot.last, slot.last_ms, slot.runs = result, now_ms, slot.runs + 1
        self.stats.runs += 1
        self.stats.failures += not result.ok
        if not result.ok and slot.spec.log_all_failures and (state.up or not step.changed):
            log.warning("%s of real server %s of %s failed%s: %s", slot.spec.probe.type, slot.spec.rs, slot.spec.vs,
                        f" (retry {step.state.retry_it} of {slot.spec.timing.retry})" if step.state.up else "",
                        result.reason or "check failed")
        if not step.changed:
            return
        if self.slots.get((slot.spec.vs, slot.spec.rs, slot.spec.index)) is not slot:
            return  # replaced by a reload while it ran
        server = slot.server
        before = self.health_cache.get(server)
        after = self._compute(server)
        self.health_cache[server] = after
        if before != after:
            self.on_change(server)

    # running ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.wheel = TimerWheel(self.loop, self._fire)
        if self.runner is run_probe:
            self.fast = FastProbes(self.loop, self._settle)
        self.started = True
        self._watch_files()
        self._start_tasks()

    def _file_slots(self) -> list[Slot]:
        return [slot for slot in self.slots.values() if slot.spec.probe.type == "FILE_CHECK"]

    def _watch_files(self) -> None:
        """Watches the track_files the FILE_CHECKs name (init_file written at the first start, as keepalived's
        checker does when it reads its config); a reload that changes them starts a new watch."""
        specs = {slot.spec.probe.check.track_file.name: slot.spec.probe.check.track_file for slot in self._file_slots()}
        if self.files is not None and self.files.specs == specs:
            return
        initial = self.files is None
        if self.files is not None:
            self.files.close()
            self.files = None
        if not specs or self.runner is not run_probe:
            return
        self.files = FileMonitor(self.loop, specs, self._files_changed)
        try:
            self._files_changed(self.files.start(initial))
        except OSError as exc:
            log.warning("tracked files are read every delay_loop only: %s", exc)

    def _files_changed(self, values: dict[str, int]) -> None:
        """Tracked files changed: their FILE_CHECKs decide now, not at their next delay_loop."""
        now_ms = self.clock_ms()
        for slot in self._file_slots():
            name = slot.spec.probe.check.track_file.name
            if name in values and not slot.cancelled and slot.task is None:
                self._record_safely(slot, value_result(slot.spec.probe, values[name]), now_ms)
                if slot.armed is not None:
                    self.wheel.add(slot, slot.due_ms)

    def _start_tasks(self) -> None:
        for slot in self.slots.values():
            running = self.fast is not None and self.fast.running(slot)
            if slot.armed is None and slot.task is None and not running and not slot.cancelled:
                self._arm(slot)

    def _arm(self, slot: Slot) -> None:
        # self.clock_ms and loop.time() are both time.monotonic() unless a test injected a clock
        self.wheel.add(slot, slot.due_ms)

    def _fire(self, slots: list[Slot], bucket: int) -> None:
        """Starts the checks of one timer-wheel bucket (the hot path: a passed check of a steady server costs
        this loop's iteration, its share of the fast path's launch_all() and of _settle())."""
        now_ms = self.clock_ms()
        stats = self.stats
        late_append, late_max, late_floor_ms = stats.late_ms.append, stats.late_max_ms, LATE_OVER_MS[0]
        countdown = stats.countdown
        fast = self.fast
        suspended = self.suspended
        launch = []
        for slot in slots:
            if slot.armed != bucket or slot.cancelled:
                continue
            slot.armed = None
            if suspended and slot.spec.vs in suspended:
                self._skip(slot, now_ms)
                continue
            late_ms = now_ms - slot.due_ms
            countdown -= 1
            if countdown <= 0:   # Stats.started(), inlined
                countdown = stats.stride
                late_append(late_ms)
            if late_ms > late_max:
                late_max = late_ms
            if late_ms >= late_floor_ms:
                stats.count_late(late_ms)
            if slot.fast:
                launch.append(slot)
                continue
            if slot.fast is None:   # first run: prepared once for the fast path, or the coroutine adapters
                target = prepare_fast(slot.spec.probe) if fast is not None else None
                slot.fast = target is not None
                if target is not None:
                    fast.adopt(slot, target, slot)
                    launch.append(slot)
                    continue
            slot.task = self.loop.create_task(self.runner(slot.spec.probe),
                                              name=f"check {slot.spec.vs} {slot.spec.rs}")
            slot.task.add_done_callback(functools.partial(self._task_done, slot))
        stats.late_max_ms, stats.countdown = late_max, countdown
        if launch:
            fast.launch_all(launch)

    def _skip(self, slot: Slot, now_ms: int) -> None:
        """A suspended check's run: nothing probed, the health kept, the next run one delay_loop later
        (keepalived's disabled checker re-arms its timer the same way)."""
        self.skipped += 1
        slot.due_ms = now_ms + slot.delay_ms
        self.wheel.add(slot, slot.due_ms)

    def _task_done(self, slot: Slot, task: asyncio.Task) -> None:
        if task.cancelled() or slot.task is not task:
            return
        slot.task = None
        error = task.exception()
        if error is not None:
            log.error("%s check of %s crashed: %r", slot.spec.probe.type, slot.spec.rs, error)
            result = CheckResult(False, reason=f"internal error in {slot.spec.probe.type}: {error!r}")
        else:
            result = task.result()
        self._finished(slot, result)

    def _finished(self, slot: Slot, result: CheckResult) -> None:
        self._settle((), ((slot, result),))

    def _settle(self, passed: Iterable[tuple[Slot, int]], results: Iterable[tuple[Slot, CheckResult]]) -> None:
        """Results of checks that ended together (a batch from the fast path, or one coroutine adapter's):
        `passed` as (slot, latency_us), every other result as (slot, CheckResult). Each goes to the
        hysteresis and its check back on the wheel. The hot path: a passed check of a steady server skips the
        hysteresis (record()'s shortcut, inlined) and usually joins an existing bucket (TimerWheel.add's
        common case, inlined)."""
        now_ms = self.clock_ms()
        wheel = self.wheel
        buckets = wheel.buckets
        runs = 0
        for slot, latency_us in passed:
            if slot.cancelled:
                continue
            if slot.steady:
                slot.last_ms = now_ms
                slot.due_ms = due = now_ms + slot.delay_ms
                slot.latest = latency_us
                slot.runs += 1
                runs += 1
            else:
                self._record_safely(slot, CheckResult(True, latency_us), now_ms)
                due = slot.due_ms
            entries = buckets.get(due)
            if entries is None:
                wheel.add(slot, due)
            else:
                slot.armed = due
                entries.append(slot)
        self.stats.runs += runs
        for slot, result in results:
            if slot.cancelled:
                continue
            self._record_safely(slot, result, now_ms)
            wheel.add(slot, slot.due_ms)

    def _record_safely(self, slot: Slot, result: CheckResult, now_ms: int) -> None:
        """record(), for a batch: a failing health-change callback is logged, and neither this check nor the
        rest of the batch stops running (each goes back on the wheel whatever happens)."""
        try:
            self.record(slot, result, now_ms)
        except Exception:  # noqa: BLE001 - logged with its traceback; the checks go on
            log.exception("health change of %s (%s check) failed", slot.spec.rs, slot.spec.probe.type)

    def _cancel(self, slot: Slot) -> None:
        slot.cancelled = True
        slot.armed = None
        if slot.task is not None:
            slot.task.cancel()
            slot.task = None
        if slot.fast and self.fast is not None:
            self.fast.abort(slot)

    async def stop(self) -> None:
        tasks = [slot.task for slot in self.slots.values() if slot.task is not None]
        for slot in self.slots.values():
            self._cancel(slot)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.fast is not None:
            self.fast.close()
            self.fast = None
        if self.wheel is not None:
            self.wheel.close()
            self.wheel = None
        if self.files is not None:
            self.files.close()
            self.files = None
        self.started = False
        close_pingers()
