"""Scheduler: per-check state across reloads (keepalived's weight-stuck-at-0 and never-re-added bugs
cannot happen), resume from the kernel table, health changes reported once; and real check tasks."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from virtual_time import run_virtual

from hanode.health.hysteresis import CheckResult
from hanode.health.scheduler import Scheduler
from hanode.health.spec import check_specs
from hanode.lvs.desired import RsHealth, desired_state, service_key
from hanode.lvs.model import Check, LvsConfig, RealServer, VirtualServer

OK, FAIL = CheckResult(True), CheckResult(False, reason="connection refused")
TCP = Check(type="TCP_CHECK", connect_timeout_ms=1000, retry=1, delay_before_retry_ms=500)


class Clock:
    def __init__(self):
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        return self.now_ms


def lvs(*servers: RealServer, **vs_fields) -> LvsConfig:
    fields = dict(address="198.51.100.100", port=80, delay_loop_ms=2000, lb_algo="wrr")
    fields.update(vs_fields)
    return LvsConfig(virtual_servers=(VirtualServer(real_servers=servers, **fields),))


def rs(last: int, weight: int = 3, checks=(TCP,), **fields) -> RealServer:
    return RealServer(address=f"203.0.113.{last}", port=8080, weight=weight, checks=tuple(checks), **fields)


VS = "198.51.100.100:80/TCP"


def make(config: LvsConfig, **kwargs) -> tuple[Scheduler, Clock, list]:
    clock, changes = Clock(), []
    scheduler = Scheduler(on_change=changes.append, clock_ms=clock, draw=lambda: 0, **kwargs)
    scheduler.apply(check_specs(config))
    return scheduler, clock, changes


def feed(scheduler: Scheduler, clock: Clock, server: str, results: list[CheckResult], index: int = 0) -> None:
    for result in results:
        slot = scheduler.slots[(VS, server, index)]
        clock.now_ms = max(clock.now_ms, slot.due_ms)
        scheduler.record(slot, result)


def kernel_weights(config: LvsConfig, scheduler: Scheduler) -> dict[str, int]:
    health = {key: RsHealth(h.up, h.weight, h.reason) for key, h in scheduler.health().items()}
    state, _quorum = desired_state(config, health)
    vs = config.virtual_servers[0]
    dests = state[service_key(vs)].dests
    return {f"{d.key.address}:{d.key.port}": d.weight for d in dests.values()}


def test_failures_take_a_server_out_after_retry_plus_one_and_report_once():
    config = lvs(rs(11), rs(12))
    scheduler, clock, changes = make(config)
    feed(scheduler, clock, "203.0.113.11:8080", [OK, FAIL])
    assert changes == [] and scheduler.health()[(VS, "203.0.113.11:8080")].up
    feed(scheduler, clock, "203.0.113.11:8080", [FAIL, FAIL, FAIL])
    assert changes == [(VS, "203.0.113.11:8080")]
    assert kernel_weights(config, scheduler) == {"203.0.113.12:8080": 3}


def test_reload_keeps_state_of_unchanged_checks_and_no_weight_stays_at_zero():
    """keepalived bug: after a reload a server that was down (inhibit: weight 0) kept weight 0 forever."""
    config = lvs(rs(11), rs(12), inhibit_on_failure=True)
    scheduler, clock, changes = make(config)
    feed(scheduler, clock, "203.0.113.11:8080", [FAIL, FAIL])
    slot = scheduler.slots[(VS, "203.0.113.11:8080", 0)]
    assert kernel_weights(config, scheduler) == {"203.0.113.11:8080": 0, "203.0.113.12:8080": 3}
    # reload: new weights, another scheduler, a new real server; .11's check itself is unchanged
    reloaded = lvs(rs(11, weight=5), rs(12, weight=4), rs(13), inhibit_on_failure=True, lb_algo="wlc")
    counts = scheduler.apply(check_specs(reloaded))
    assert counts == {"kept": 2, "changed": 0, "added": 1, "removed": 0}
    assert scheduler.slots[(VS, "203.0.113.11:8080", 0)] is slot and not slot.state.up
    assert kernel_weights(reloaded, scheduler) == {"203.0.113.11:8080": 0, "203.0.113.12:8080": 4,
                                                   "203.0.113.13:8080": 3}
    feed(scheduler, clock, "203.0.113.11:8080", [OK])
    assert kernel_weights(reloaded, scheduler)["203.0.113.11:8080"] == 5  # the new weight, not 0 nor 3


def test_reload_while_down_then_recovery_re_adds_the_server():
    """keepalived bug: a server down during a reload was never re-added when it recovered."""
    config = lvs(rs(11), rs(12))
    scheduler, clock, _changes = make(config)
    feed(scheduler, clock, "203.0.113.11:8080", [FAIL, FAIL])
    assert "203.0.113.11:8080" not in kernel_weights(config, scheduler)
    for _reload in range(3):  # several reloads, one of them changing the check itself
        config = lvs(rs(11, checks=(replace(TCP, connect_timeout_ms=TCP.connect_timeout_ms + 1),)), rs(12))
        scheduler.apply(check_specs(config))
        assert not scheduler.health()[(VS, "203.0.113.11:8080")].up
        assert "203.0.113.11:8080" not in kernel_weights(config, scheduler)
    feed(scheduler, clock, "203.0.113.11:8080", [OK])
    assert kernel_weights(config, scheduler) == {"203.0.113.11:8080": 3, "203.0.113.12:8080": 3}


def test_changed_check_inherits_up_down_and_runs_within_warmup():
    config = lvs(rs(11))
    scheduler, clock, changes = make(config)
    feed(scheduler, clock, "203.0.113.11:8080", [FAIL, FAIL])
    clock.now_ms += 100
    changed = lvs(rs(11, checks=(Check(type="HTTP_GET", connect_timeout_ms=1000),)))
    assert scheduler.apply(check_specs(changed))["changed"] == 1
    slot = scheduler.slots[(VS, "203.0.113.11:8080", 0)]
    assert not slot.state.up and slot.state.reason == "connection refused"
    assert slot.due_ms == clock.now_ms
    assert slot.spec.probe.type == "HTTP_GET"


def test_inserting_a_check_keeps_the_others_by_definition():
    http = Check(type="HTTP_GET", connect_timeout_ms=1000)
    config = lvs(rs(11, checks=(TCP,)))
    scheduler, clock, _changes = make(config)
    feed(scheduler, clock, "203.0.113.11:8080", [FAIL, FAIL])
    tcp_slot = scheduler.slots[(VS, "203.0.113.11:8080", 0)]
    counts = scheduler.apply(check_specs(lvs(rs(11, checks=(http, TCP)))))
    assert counts["kept"] == 1 and counts["added"] == 1
    assert scheduler.slots[(VS, "203.0.113.11:8080", 1)] is tcp_slot
    # the new check of a known server starts as keepalived's default (up) but the server stays down
    assert not scheduler.health()[(VS, "203.0.113.11:8080")].up
    # removing the failing check brings the server back
    scheduler.apply(check_specs(lvs(rs(11, checks=(http,)))))
    assert scheduler.health()[(VS, "203.0.113.11:8080")].up


def test_every_check_must_pass():
    http = Check(type="HTTP_GET", connect_timeout_ms=1000, retry=0)
    config = lvs(rs(11, checks=(TCP, http)))
    scheduler, clock, changes = make(config)
    feed(scheduler, clock, "203.0.113.11:8080", [CheckResult(False, reason="HTTP status 503 not in 200-299 for /")],
         index=1)
    health = scheduler.health()[(VS, "203.0.113.11:8080")]
    assert not health.up and health.reason == "HTTP status 503 not in 200-299 for /"
    feed(scheduler, clock, "203.0.113.11:8080", [OK], index=1)
    assert scheduler.health()[(VS, "203.0.113.11:8080")].up
    assert len(changes) == 2


def test_alpha_warmup_and_resume():
    config = lvs(rs(11, alpha=True), rs(12), rs(13))
    clock = Clock()
    scheduler = Scheduler(clock_ms=clock, draw=lambda: 500_000)
    scheduler.apply(check_specs(config), resume={(VS, "203.0.113.12:8080"): False})
    health = scheduler.health()
    assert not health[(VS, "203.0.113.11:8080")].up                     # alpha
    assert not health[(VS, "203.0.113.12:8080")].up                     # not in the kernel before the restart
    assert health[(VS, "203.0.113.13:8080")].up                         # default
    due = {key[1]: slot.due_ms - clock.now_ms for key, slot in scheduler.slots.items()}
    # every first run is spread over warmup (delay_loop 2 s here; the draw is mid-range): a restarted checker
    # with thousands of servers must not start them all in one burst
    assert due == {"203.0.113.11:8080": 1000, "203.0.113.12:8080": 1000, "203.0.113.13:8080": 1000}


def test_misc_dynamic_weight_reaches_the_kernel_weight():
    misc = Check(type="MISC_CHECK", misc_path="/bin/true", misc_dynamic=True, retry=0)
    config = lvs(rs(11, checks=(misc,)))
    scheduler, clock, changes = make(config)
    feed(scheduler, clock, "203.0.113.11:8080", [CheckResult(True, weight=10)])
    assert kernel_weights(config, scheduler) == {"203.0.113.11:8080": 10}
    feed(scheduler, clock, "203.0.113.11:8080", [CheckResult(True)])
    assert kernel_weights(config, scheduler) == {"203.0.113.11:8080": 3}
    assert len(changes) == 2


def test_check_tasks_detect_and_recover_within_delay_loop_times_retry_plus_one():
    """Checks run concurrently as tasks on their delay_loop, on a virtual clock (virtual_time.py), against two
    servers the test takes away and brings back (the probe answers as the servers are): each is detected down
    within delay_loop x (retry + 1) and back up within one delay_loop, to the millisecond."""
    fast = Check(type="TCP_CHECK", connect_timeout_ms=200, retry=1, delay_before_retry_ms=100, warmup_ms=0)
    servers = tuple(RealServer(address=a, port=8080, checks=(fast,)) for a in ("127.0.0.1", "127.0.0.2"))
    config = LvsConfig(virtual_servers=(VirtualServer(address="198.51.100.100", port=80, delay_loop_ms=100,
                                                      real_servers=servers),))
    up = {"127.0.0.1": True, "127.0.0.2": True}

    async def probe(p):
        await asyncio.sleep(0)  # a real task switch, as a probe that waits on a socket
        return OK if up[p.address] else FAIL

    async def scenario(clock):
        events = []
        scheduler = Scheduler(on_change=lambda s: events.append((clock.now_s, s)), runner=probe,
                              clock_ms=lambda: int(clock.now_s * 1000), draw=lambda: 0)
        scheduler.apply(check_specs(config))
        scheduler.start()
        await asyncio.sleep(0.305)  # the servers change between two runs of their checks
        runs_while_up = (scheduler.stats.runs, list(events))
        gone = clock.now_s
        up.update(dict.fromkeys(up, False))
        await asyncio.sleep(0.5)
        detected = [t - gone for t, _change in events]
        back = clock.now_s
        up.update(dict.fromkeys(up, True))
        await asyncio.sleep(0.5)
        recovered = [t - back for t, _change in events[2:]]
        health = scheduler.health()
        await scheduler.stop()
        return runs_while_up, detected, recovered, health

    (runs, changes), detected, recovered, health = run_virtual(scenario)
    assert runs >= 6 and changes == []  # two checks every 100 ms for 300 ms
    tick_s = 0.001   # due times are whole milliseconds
    # down: the next run fails, and its retry after delay_before_retry: within delay_loop x (retry 1 + 1)
    assert len(detected) == 2 and all(0.1 <= t <= 0.1 * 2 + tick_s for t in detected), detected
    assert len(recovered) == 2 and all(0 < t <= 0.1 + tick_s for t in recovered), recovered
    assert all(h.up for h in health.values())


def test_steady_state_shortcut_matches_observe():
    config = lvs(rs(11))
    scheduler, clock, changes = make(config)
    feed(scheduler, clock, "203.0.113.11:8080", [OK])          # has_run now: the next success takes the shortcut
    slot = scheduler.slots[(VS, "203.0.113.11:8080", 0)]
    state_before, runs_before = slot.state, slot.runs
    clock.now_ms = slot.due_ms
    scheduler.record(slot, OK)
    assert slot.state is state_before and slot.runs == runs_before + 1
    assert slot.due_ms == clock.now_ms + 2000 and changes == []
    feed(scheduler, clock, "203.0.113.11:8080", [FAIL])       # and a failure after it still counts as one
    assert slot.state.retry_it == 1
