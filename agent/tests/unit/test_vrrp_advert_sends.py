"""The MASTER's advert sends (hanode.vrrp.effects, Effects._send_advert): the steady state's kept sends put the
same bytes on the same socket as a fresh encode, and are made again when the advert, the config or the
sockets change. The engine's earliest deadline (Engine._earliest) is min(state.deadlines()). Fake sockets."""

from __future__ import annotations

import itertools

from pure_helpers import OWN4, OWN6, FakeClock, instance_raw, links, make_config
from hanode.vrrp.actions import SendAdvert, State
from hanode.vrrp.datagram import advert_datagram
from hanode.vrrp.effects import Effects
from hanode.vrrp.engine import Engine


class FakeSocket:
    """VrrpSocket's sending side: send()."""

    def __init__(self, name: str):
        self.name, self.sent = name, []

    def send(self, data, dst, src=None, hop_limit=None):
        self.sent.append((data, dst))


class Shell(Effects):
    """The attributes of VrrpRunner that Effects._send_advert uses."""

    def __init__(self, engine: Engine, sockets: dict):
        self.engine, self.sockets = engine, sockets
        self.datagrams, self.advert_plans, self.io_errors = {}, {}, {"send_err": 0}


def master(**overrides):
    config = make_config({"VI_1": instance_raw(priority=200, version=3, advert_int=0.1, **overrides)})
    clock = FakeClock()
    engine = Engine(config, links())
    engine.start(clock.now_us)
    for _tick in range(100):
        deadline = engine.next_deadline()
        clock.now_us = max(clock.now_us, deadline)
        engine.tick(clock.now_us)
        if engine.instances["VI_1"].state.state == State.MASTER:
            return config, engine, clock
    raise AssertionError("never became MASTER")


def adverts(engine, clock, count):
    """The SendAdvert outputs of the next `count` advert timers."""
    found = []
    while len(found) < count:
        clock.now_us = engine.next_deadline()
        found += [o for o in engine.tick(clock.now_us) if isinstance(o.action, SendAdvert)]
    return found


def test_kept_sends_put_a_fresh_encodes_bytes_on_the_wire_until_the_advert_changes():
    config, engine, clock = master()
    sock = FakeSocket("eth0")
    shell = Shell(engine, {("eth0", 4): sock})
    cfg = config.vrrp_instances["VI_1"]
    first = adverts(engine, clock, 3)
    assert first[1] is first[2], "the steady state replays one Output (engine: TickRepeat)"
    for output in first:
        shell._send_advert(output, output.action.priority)
    fresh = advert_datagram(cfg, 200, OWN4, cfg.multicast_group)
    assert sock.sent == [(fresh, cfg.multicast_group)] * 3
    assert shell.advert_plans["VI_1"][0] is first[2]
    # a priority change (a tracker): a new advert, encoded afresh, and kept again
    engine.instances["VI_1"].state.effective_priority = 150
    engine.instances["VI_1"].tick_repeat = None
    later = adverts(engine, clock, 2)
    for output in later:
        shell._send_advert(output, output.action.priority)
    assert [o.action.priority for o in later] == [150, 150]
    assert sock.sent[3:] == [(advert_datagram(cfg, 150, OWN4, cfg.multicast_group), cfg.multicast_group)] * 2


def test_new_sockets_are_used_once_the_kept_sends_are_dropped():
    _config, engine, clock = master()
    old, new = FakeSocket("old"), FakeSocket("new")
    shell = Shell(engine, {("eth0", 4): old})
    output = adverts(engine, clock, 2)[-1]
    shell._send_advert(output, output.action.priority)
    shell.sockets = {("eth0", 4): new}
    shell.advert_plans.clear()     # what the runner's _sync_sockets() and apply() do
    shell._send_advert(output, output.action.priority)
    assert len(old.sent) == len(new.sent) == 1 and old.sent == new.sent


def test_unicast_peers_each_get_their_datagram_every_time():
    config, engine, clock = master(unicast_peers=["198.51.100.7", "198.51.100.8"], unicast_src_ip=OWN4)
    sock = FakeSocket("eth0")
    shell = Shell(engine, {("eth0", 4): sock})
    cfg = config.vrrp_instances["VI_1"]
    for output in adverts(engine, clock, 3):
        shell._send_advert(output, output.action.priority)
    expected = [(advert_datagram(cfg, 200, OWN4, dst), dst) for dst in ("198.51.100.7", "198.51.100.8")]
    assert sock.sent == expected * 3


def test_ipv6_adverts_go_through_the_sockets_send_with_source_and_hop_limit():
    config, engine, clock = master(virtual_ipaddresses=["2001:db8:100::100/64"])
    sock = FakeSocket("eth0")
    shell = Shell(engine, {("eth0", 6): sock})
    cfg = config.vrrp_instances["VI_1"]
    for output in adverts(engine, clock, 2):
        shell._send_advert(output, output.action.priority)
    assert sock.sent == [(advert_datagram(cfg, 200, OWN6, cfg.multicast_group), cfg.multicast_group)] * 2


def test_the_earliest_deadline_is_the_least_of_the_states_deadlines():
    _config, engine, _clock = master()
    st = engine.instances["VI_1"].state
    values = (None, 5, 7, 11)
    for down, advert, delay, refresh in itertools.product(values, repeat=4):
        st.master_down_at_us, st.advert_at_us, st.garp_delay_at_us, st.garp_refresh_at_us = down, advert, delay, refresh
        assert engine._earliest("VI_1") == min(st.deadlines(), default=None)
    assert engine._earliest("nonesuch") is None
