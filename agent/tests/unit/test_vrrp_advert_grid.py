"""MASTERs of one advert interval send on one grid (Engine._align_advert): an instance whose advert timer was
restarted off the grid (here by re-asserting itself against a lower-priority master) comes back onto it with
one shorter interval, never a longer one, and is then served by the same tick as the others."""

from __future__ import annotations

from pure_helpers import LOW4, FakeClock, instance_raw, links, make_config, wire_advert
from hanode.vrrp.actions import SendAdvert
from hanode.vrrp.engine import Engine

INTERVAL_US = 100_000


def masters(count: int = 3):
    cfg = make_config({f"VI_{i}": instance_raw(version=3, priority=200, advert_int=0.1, virtual_router_id=i,
                                               virtual_ipaddresses=[f"198.51.100.{110 + i}/24"]) for i in range(1, count + 1)})
    clock = FakeClock()
    engine = Engine(cfg, links())
    engine.start(clock.now_us)
    for _tick in range(3):
        clock.now_us = engine.next_deadline()
        engine.tick(clock.now_us)
    assert all(inst.state.state.value == "MASTER" for inst in engine.instances.values())
    return engine, clock


def sends(outputs):
    return sorted(o.instance for o in outputs if isinstance(o.action, SendAdvert))


def test_a_timer_restarted_off_the_grid_comes_back_with_one_shorter_interval():
    engine, clock = masters()
    grid = {inst.state.advert_at_us for inst in engine.instances.values()}
    assert len(grid) == 1                                  # one takeover tick: one phase
    clock.advance(us=37_000)
    answer = engine.receive(wire_advert(LOW4, 50, vrid=2, version=3, interval_cs=10,
                                        addresses=("198.51.100.112",)), clock.now_us)
    assert sends(answer) == ["VI_2"]                       # re-asserted at once, off the grid
    sent = {"VI_2": clock.now_us}
    assert engine.instances["VI_2"].state.advert_at_us == min(grid)   # next advert on the grid: 63 ms later
    times: dict[str, list[int]] = {name: [] for name in engine.instances}
    for _tick in range(5):
        clock.now_us = engine.next_deadline()
        due = engine.tick(clock.now_us)
        assert sends(due) == ["VI_1", "VI_2", "VI_3"]      # every tick serves all three
        for name in sends(due):
            times[name].append(clock.now_us)
    gaps = [b - a for a, b in zip([sent["VI_2"]] + times["VI_2"], times["VI_2"])]
    assert gaps[0] == INTERVAL_US - 37_000 and all(g == INTERVAL_US for g in gaps[1:])


def test_a_lone_master_keeps_its_own_phase():
    engine, clock = masters(count=1)
    first = engine.instances["VI_1"].state.advert_at_us
    clock.advance(us=37_000)
    engine.receive(wire_advert(LOW4, 50, vrid=1, version=3, interval_cs=10, addresses=("198.51.100.111",)),
                   clock.now_us)
    # the grid is its own old phase: 63 ms on, then every 100 ms again
    assert engine.instances["VI_1"].state.advert_at_us == first
