"""When checks start: delay_loop after their previous run ended, to the millisecond (keepalived's rule), with
checks due within COALESCE_MS of each other started together. The queue on its own (pure), and the scheduler
on a virtual clock (virtual_time.py): no wall clock, no sleep."""

from __future__ import annotations

import asyncio
import itertools

from virtual_time import run_virtual

from hanode.health.duequeue import COALESCE_MS, DueQueue
from hanode.health.hysteresis import RANDOM_RANGE, CheckResult
from hanode.health.scheduler import Scheduler
from hanode.health.spec import check_specs
from hanode.lvs.model import Check, LvsConfig, RealServer, VirtualServer


class Item:
    def __init__(self, name: str):
        self.name = name
        self.armed: int | None = None


def test_queue_wakes_at_the_earliest_due_millisecond_and_takes_what_is_due_within_the_coalescing_window():
    queue = DueQueue(coalesce_ms=2)
    a, b, c, d, e = (Item(n) for n in "abcde")
    assert queue.add(a, 1005) is True                  # the first bucket: the timer goes there
    assert queue.add(b, 1007) is False                 # later: the timer stays
    assert queue.add(c, 1005) is False                 # the same millisecond: the same bucket
    assert queue.add(d, 1003) is True                  # earlier: the timer moves
    queue.add(e, 1010)
    assert (a.armed, b.armed, d.armed) == (1005, 1007, 1003)
    assert queue.earliest() == 1003
    assert queue.pop_due(1000) == []                   # nothing due by 1002
    taken = queue.pop_due(1003)                        # due by 1005: d on time, a and c 2 ms early; b waits
    assert [([i.name for i in items], bucket) for items, bucket in taken] == [(["d"], 1003), (["a", "c"], 1005)]
    assert queue.earliest() == 1007
    assert [bucket for _items, bucket in queue.pop_due(1020)] == [1007, 1010]
    assert queue.earliest() is None and queue.pop_due(2000) == []


def test_a_due_time_is_never_rounded_to_a_later_tick():
    """The 20 ms grid this replaced pushed a check due 10 ms or more past a tick to the next one: started
    up to 10 ms late on every run (and, a run ending later than its start, ~19 ms at the median with 8,000
    real servers)."""
    for due_ms in range(5000, 5040):
        queue = DueQueue(coalesce_ms=0)
        item = Item(str(due_ms))
        queue.add(item, due_ms)
        assert queue.earliest() == due_ms and queue.pop_due(due_ms - 1) == []
        assert queue.pop_due(due_ms) == [([item], due_ms)]


def scheduled_starts(n_servers: int, probe_s: float, run_s: float, draws) -> tuple[dict, Scheduler]:
    """Starts of every check (virtual seconds, per real server) of n TCP_CHECKs at delay_loop 1 s whose
    probe takes probe_s, each first run drawn from `draws`."""
    check = Check(type="TCP_CHECK", connect_timeout_ms=500, retry=1, delay_before_retry_ms=1000)
    servers = tuple(RealServer(address=f"203.0.113.{i // 200 + 1}", port=8000 + i % 200, checks=(check,))
                    for i in range(n_servers))
    config = LvsConfig(virtual_servers=(VirtualServer(address="198.51.100.100", port=80, delay_loop_ms=1000,
                                                      real_servers=servers),))
    starts: dict[str, list[float]] = {}

    async def scenario(clock):
        async def probe(p):
            starts.setdefault(f"{p.address}:{p.port}", []).append(clock.now_s)
            await asyncio.sleep(probe_s)
            return CheckResult(True)

        draw = iter(draws)
        scheduler = Scheduler(runner=probe, clock_ms=lambda: int(round(clock.now_s * 1000, 6)),
                              draw=lambda: next(draw))
        scheduler.apply(check_specs(config))
        scheduler.start()
        await asyncio.sleep(run_s)
        await scheduler.stop()
        return scheduler

    return starts, run_virtual(scenario)


def test_each_check_starts_delay_loop_after_its_previous_run_ended_to_the_millisecond():
    """300 real servers spread over the warmup, each probe taking 3.7 ms: every run starts delay_loop after
    the previous one ended, at most COALESCE_MS early (started with a neighbour) and never late; so 300
    servers make 300 / 1.0037 checks a second, keepalived's rate."""
    draws = [(i * 7919) % RANDOM_RANGE for i in range(300)]
    starts, scheduler = scheduled_starts(300, 0.0037, 5.0, draws)
    gaps_ms = [(later - earlier - 0.0037) * 1000 for runs in starts.values()
               for earlier, later in itertools.pairwise(runs)]
    assert len(gaps_ms) >= 300 * 3
    assert all(1000 - COALESCE_MS - 1 <= gap <= 1000 + 1 for gap in gaps_ms), (min(gaps_ms), max(gaps_ms))
    late = list(scheduler.stats.late_ms)
    assert late and all(-COALESCE_MS <= v <= 0 for v in late), (min(late), max(late))


def test_checks_due_close_together_start_together_and_stay_together():
    """Two checks whose first runs are due 1 ms apart start together (one 1 ms early) and, ending together,
    are due together from then on: one wakeup for both. Checks 5 ms apart each keep their own time."""
    warmup_ms = 1000
    per_ms = RANDOM_RANGE // warmup_ms
    draws = [100 * per_ms, 101 * per_ms, 300 * per_ms, 305 * per_ms]
    starts, _scheduler = scheduled_starts(4, 0.0, 3.5, draws)
    runs = [starts[f"203.0.113.1:{8000 + i}"] for i in range(4)]
    assert all(len(r) == 4 for r in runs)
    assert runs[0] == runs[1]                             # together on every run
    assert [round(t * 1000) % 1000 for t in runs[0]] == [100] * 4
    assert [round((b - a) * 1000) for a, b in zip(runs[2], runs[3])] == [5, 5, 5, 5]


def test_status_lateness_spans_about_the_last_second_of_starts():
    """With 4,000 checks a second the status samples one start in 4: its 1,000 samples span the last second,
    so a status request that held the loop for 150 ms (the last 600 starts late by 40 ms) moves the p99, not
    the median (the last 1,000 starts alone would have put the median at 40 ms)."""
    check = Check(type="TCP_CHECK", connect_timeout_ms=500)
    servers = tuple(RealServer(address=f"203.0.113.{i // 200 + 1}", port=8000 + i % 200, checks=(check,))
                    for i in range(2000))
    config = LvsConfig(virtual_servers=(VirtualServer(address="198.51.100.100", port=80, delay_loop_ms=500,
                                                      real_servers=servers),))
    scheduler = Scheduler(clock_ms=lambda: 1_000_000, draw=lambda: 0)
    scheduler.apply(check_specs(config))
    stats = scheduler.stats
    assert stats.stride == 4
    for late_ms in [1] * 3400 + [40] * 600:
        stats.started(late_ms)
    summary = stats.summary()
    assert summary["late_ms"] == {"p50": 1, "p99": 40, "max": 40}
    assert summary["runs"] == 0 and summary["late_starts"] == {"over_100ms": 0, "over_1000ms": 0}
