"""The scheduler settles the fast path's results in batches: a passed run is kept as its latency only, yet
status still reads a full result; and one failing health-change callback neither stops that check nor the
others of its batch."""

from __future__ import annotations

import asyncio
import logging

from hanode.health.scheduler import Scheduler
from hanode.health.spec import check_specs
from hanode.lvs.model import Check, LvsConfig, RealServer, VirtualServer

FAST_TCP = Check(type="TCP_CHECK", connect_timeout_ms=200, retry=0, delay_before_retry_ms=100, warmup_ms=0)
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


def config(port: int) -> LvsConfig:
    servers = tuple(RealServer(address=a, port=port, checks=(FAST_TCP,)) for a in ADDRESSES)
    return LvsConfig(virtual_servers=(VirtualServer(address="198.51.100.100", port=80, delay_loop_ms=100,
                                                    real_servers=servers),))


async def free_port() -> int:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


def settled(scheduler: Scheduler) -> asyncio.Event:
    """An event set after every batch of results the scheduler settles (call before start())."""
    event = asyncio.Event()
    settle = scheduler._settle  # pylint: disable=protected-access

    def settle_and_tell(passed, results):
        settle(passed, results)
        event.set()
    scheduler._settle = settle_and_tell  # pylint: disable=protected-access
    return event


async def wait_until(event: asyncio.Event, predicate, guard_s: float = 5.0) -> None:
    """Re-checks predicate after each settled batch (no polling); guard_s only stops a hang."""
    async with asyncio.timeout(guard_s):
        while not predicate():
            event.clear()
            await event.wait()


def test_a_passed_run_reads_as_a_full_result():
    async def scenario():
        port = await free_port()
        server = await asyncio.start_server(lambda r, w: w.close(), list(ADDRESSES), port)
        scheduler = Scheduler()
        scheduler.apply(check_specs(config(port)))
        results = settled(scheduler)
        scheduler.start()
        await wait_until(results, lambda: all(slot.runs >= 2 for slot in scheduler.slots.values()))
        lasts = [slot.last for slot in scheduler.slots.values()]
        await scheduler.stop()
        server.close()
        return lasts

    lasts = asyncio.run(scenario())
    assert all(last.ok and last.reason is None and last.weight is None and last.latency_us > 0 for last in lasts)


def test_a_failing_health_callback_stops_no_check(caplog):
    """Every server goes down at once (one batch of failures) and on_change raises for each: all three
    checks keep running, and come back up when the servers do."""
    async def scenario():
        port = await free_port()
        changes = []

        def on_change(server):
            changes.append(server)
            raise RuntimeError("callback bug")

        scheduler = Scheduler(on_change=on_change)
        scheduler.apply(check_specs(config(port)))
        results = settled(scheduler)
        scheduler.start()
        await wait_until(results, lambda: len(changes) == 3)          # nothing listens: all down
        runs = {key: slot.runs for key, slot in scheduler.slots.items()}
        await wait_until(results, lambda: all(slot.runs > runs[key] + 2 for key, slot in scheduler.slots.items()))
        server = await asyncio.start_server(lambda r, w: w.close(), list(ADDRESSES), port)
        await wait_until(results, lambda: all(health.up for health in scheduler.health().values()))
        await scheduler.stop()
        server.close()
        return changes

    with caplog.at_level(logging.ERROR, logger="hanode.health"):
        changes = asyncio.run(scenario())
    assert len(changes) == 6
    assert sum("callback bug" in record.exc_text for record in caplog.records if record.exc_text) == 6
