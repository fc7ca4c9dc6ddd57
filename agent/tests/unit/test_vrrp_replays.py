"""Replays (hanode.vrrp.repeat) change nothing: an engine that replays repeated adverts and advert timers and one
that steps the state machine for every event (replays=False) see the same random event sequences and must end
every step with the same outputs, states, counters, peers and next deadline."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from pure_helpers import HIGH4, LOW4, PEER4, FakeClock, instance_raw, links, make_config, wire_advert
from hanode.vrrp.engine import Engine

SOURCES = (PEER4, HIGH4, LOW4)


def config(version: int, nopreempt: bool, preempt_delay: float, priority: int, group: bool):
    extra = {"nopreempt": True} if nopreempt else {}
    if preempt_delay:
        extra["preempt_delay"] = preempt_delay
    interval = 1 if version == 2 else 0.1
    instances = {name: instance_raw(version=version, priority=priority, advert_int=interval, virtual_router_id=vrid,
                                    virtual_ipaddresses=[f"198.51.100.{vrid}/24"], **extra)
                 for name, vrid in (("VI_1", 51), ("VI_2", 52))}
    groups = {"G": {"group": ["VI_1", "VI_2"]}} if group else None
    return make_config(instances, groups=groups)


def snapshot(engine: Engine) -> dict:
    return {name: (vars(inst.state), {src: vars(p) for src, p in inst.peers.items()},
                   vars(inst.advert_late) if inst.advert_late else None)
            for name, inst in engine.instances.items()} | {"_": (set(engine.want_master), dict(engine.group_states))}


def brute_next(engine: Engine) -> int | None:
    times = [t for inst in engine.instances.values() for t in inst.state.deadlines()]
    return min(times) if times else None


EVENT = st.one_of(
    st.tuples(st.just("advert"), st.sampled_from(SOURCES), st.sampled_from((0, 50, 100, 150, 254)),
              st.sampled_from((51, 52)), st.integers(0, 400_000)),
    st.tuples(st.just("again"), st.integers(1, 5), st.integers(0, 150_000)),
    st.tuples(st.just("again"), st.integers(1, 5), st.integers(0, 150_000)),
    st.tuples(st.just("next"), st.integers(0, 3)),
    st.tuples(st.just("next"), st.integers(0, 3)),
    st.tuples(st.just("advance"), st.integers(0, 2_000_000)),
    st.tuples(st.just("drain"), st.booleans()),
    st.tuples(st.just("reload"), st.sampled_from((90, 100, 110))),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from((2, 3)), st.booleans(), st.sampled_from((0, 0.2)), st.sampled_from((100, 120)),
       st.booleans(), st.lists(EVENT, min_size=1, max_size=60))
def test_replays_do_what_the_state_machine_does(version, nopreempt, preempt_delay, priority, group, events):
    cfg = config(version, nopreempt, preempt_delay, priority, group)
    clock = FakeClock()
    fast, slow = Engine(cfg, links()), Engine(cfg, links(), replays=False)
    assert fast.start(clock.now_us) == slow.start(clock.now_us)
    interval_cs = 100 if version == 2 else 10
    rx = None
    for event in events:
        kind = event[0]
        if kind in ("advert", "again"):
            if kind == "advert":
                _kind, src, prio, vrid, dt = event
                rx = wire_advert(src, prio, vrid=vrid, version=version, interval_cs=interval_cs,
                                 addresses=(f"198.51.100.{vrid}",))
                times = [dt]
            elif rx is not None:
                times = [event[2]] * event[1]
            else:
                continue
            got, want = [], []
            for dt in times:
                clock.advance(us=dt)
                ident = (rx.interface, rx.src, rx.dst, rx.ttl, rx.payload)
                if not fast.receive_repeat(ident, clock.now_us):
                    got += fast.receive(rx, clock.now_us, ident)
                want += slow.receive(rx, clock.now_us)
        elif kind in ("next", "advance"):
            if kind == "next":
                for _i in range(event[1] + 1):
                    due = slow.next_deadline()
                    if due is not None:
                        clock.now_us = max(clock.now_us, due)
            else:
                clock.advance(us=event[1])
            got, want = fast.tick(clock.now_us), slow.tick(clock.now_us)
        elif kind == "drain":
            got, want = fast.drain(None, event[1], clock.now_us), slow.drain(None, event[1], clock.now_us)
        else:
            new = config(version, nopreempt, preempt_delay, event[1], group)
            got, want = fast.reconfigure(new, clock.now_us), slow.reconfigure(new, clock.now_us)
        assert [(o.instance, o.action) for o in got] == [(o.instance, o.action) for o in want], event
        assert snapshot(fast) == snapshot(slow), event
        assert fast.next_deadline() == slow.next_deadline() == brute_next(slow), event


def test_a_repeated_advert_is_replayed_and_counted():
    cfg = config(3, False, 0, 100, False)
    clock = FakeClock()
    engine = Engine(cfg, links())
    engine.start(clock.now_us)
    rx = wire_advert(HIGH4, 200, version=3, interval_cs=10, addresses=("198.51.100.51",))
    ident = ("eth0", rx.payload)
    assert not engine.receive_repeat(ident, clock.now_us)
    engine.receive(rx, clock.now_us, ident)
    down = engine.instances["VI_1"].state.master_down_at_us
    assert engine.receive_repeat(ident, clock.advance(ms=100))
    st = engine.instances["VI_1"].state
    assert st.master_down_at_us == down + 100_000
    assert st.stats["advert_rcvd"] == 2
    assert engine.instances["VI_1"].peers[HIGH4].last_seen_us == clock.now_us
    # another config (a reload) ends the replay: the next one goes through the state machine again
    engine.reconfigure(replace(cfg), clock.now_us)
    assert not engine.receive_repeat(ident, clock.advance(ms=100))
