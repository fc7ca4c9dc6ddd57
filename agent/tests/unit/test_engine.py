"""hanode.vrrp.engine: dispatch, trackers, sync groups, reload and resume, with a fake clock and no network."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pure_helpers import (OWN4, OWN6, PEER4, PEER6, VIP4, VIP6, FakeClock, iface, instance_raw, links, make_config,
                          wire_advert)
from hanode.vrrp.actions import (AddVips, Conflict, DelVips, GroupStateChanged, SendAdvert, SendGarp, State,
                                 StateChanged)
from hanode.vrrp.engine import Engine, Output, Received, primary_address
from hanode.vrrp.packet import IPV4_MCAST_GROUP, Advert, encode_advert


class Harness:
    """An engine, a fake clock, and every output it produced."""

    def __init__(self, config, interfaces=None, start=True, resume=None):
        self.clock = FakeClock()
        self.engine = Engine(config, links() if interfaces is None else interfaces)
        self.outputs: list[Output] = []
        if start:
            self.take(self.engine.start(self.clock.now_us, resume))

    def take(self, outputs: list[Output]) -> list[Output]:
        self.outputs += outputs
        return outputs

    def rx(self, received: Received) -> list[Output]:
        return self.take(self.engine.receive(received, self.clock.now_us))

    def run_for(self, us: int) -> list[Output]:
        """Fires every deadline up to now + us, in order, as the runner would."""
        end = self.clock.now_us + us
        outputs: list[Output] = []
        while (deadline := self.engine.next_deadline()) is not None and deadline <= end:
            self.clock.now_us = max(self.clock.now_us, deadline)
            outputs += self.engine.tick(self.clock.now_us)
        self.clock.now_us = end
        return self.take(outputs)

    def state(self, name="VI_1") -> State:
        return self.engine.instances[name].state.state

    def stats(self, name="VI_1") -> dict:
        return self.engine.instances[name].state.stats


def actions(outputs, kind=None, instance=None):
    return [o.action for o in outputs
            if (kind is None or isinstance(o.action, kind)) and (instance is None or o.instance == instance)]


def transitions(outputs, instance=None):
    return [(o.instance, a.old, a.new) for o in outputs for a in [o.action]
            if isinstance(a, StateChanged) and (instance is None or o.instance == instance)]


MASTER = {"VI_1": "MASTER"}


def one(priority=100, **kw):
    return make_config({"VI_1": instance_raw(priority=priority, **kw)})


# dispatch --------------------------------------------------------------------------------------------

def multi_config():
    return make_config({
        "VI_1": instance_raw(),
        "VI_2": instance_raw(interface="eth1", virtual_ipaddresses=["203.0.113.100/24"]),
        "VI_6": instance_raw(version=3, virtual_ipaddresses=[f"{VIP6}/64"]),
    })


def multi_links():
    return links(iface("eth0"), iface("eth1", ipv4=("203.0.113.2",), ll="fe80::12", index=3))


def test_dispatch_by_interface_family_and_vrid():
    h = Harness(multi_config(), multi_links())
    h.rx(wire_advert(PEER4, 200))
    h.rx(wire_advert("203.0.113.3", 200, interface="eth1", addresses=("203.0.113.100",)))
    h.rx(wire_advert("203.0.113.3", 200, interface="eth1", addresses=("203.0.113.100",)))
    h.rx(wire_advert(PEER6, 200, version=3, family=6, addresses=(VIP6,)))
    assert [h.stats(n)["advert_rcvd"] for n in ("VI_1", "VI_2", "VI_6")] == [1, 2, 1]
    assert h.engine.instances["VI_6"].state.master_address == PEER6


def test_unknown_vrid_is_counted_as_foreign_not_per_instance():
    h = Harness(multi_config(), multi_links())
    before = {n: dict(i.state.stats) for n, i in h.engine.instances.items()}
    h.rx(wire_advert(PEER4, 100, vrid=77))
    h.rx(wire_advert(PEER4, 100, vrid=77))
    h.rx(wire_advert("203.0.113.3", 100, vrid=51, interface="eth2"))
    assert h.engine.global_stats["unknown_vrid"] == 3
    assert {n: dict(i.state.stats) for n, i in h.engine.instances.items()} == before
    foreign = h.engine.foreign[("eth0", 77)]
    assert (foreign["count"], foreign["src"], foreign["family"]) == (2, PEER4, 4)


@pytest.mark.parametrize("mangle, counter", [
    (lambda p: p[:6] + bytes([p[6] ^ 0xFF]) + p[7:], "chk_err"),   # checksum
    (lambda p: p[:-3], "packet_len_err"),                           # truncated
    (lambda p: bytes([0x51]) + p[1:], "vers_err"),                  # version 5
])
def test_decode_errors_are_counted_on_the_instance(mangle, counter):
    h = Harness(one())
    good = wire_advert(PEER4, 200)
    h.rx(replace(good, payload=mangle(good.payload)))
    assert h.stats()[counter] == 1
    assert h.stats()["advert_rcvd"] == 0
    assert h.engine.global_stats["unknown_vrid"] == 0


def test_a_packet_too_short_to_name_its_vrid_is_counted_globally():
    h = Harness(one())
    h.rx(Received("eth0", 4, PEER4, IPV4_MCAST_GROUP, 255, b"\x21"))
    assert h.engine.global_stats["packet_len_err"] == 1


def test_ttl_is_checked_before_the_checksum():
    h = Harness(one())
    good = wire_advert(PEER4, 200, ttl=64)
    h.rx(replace(good, payload=good.payload[:6] + b"\x00\x00" + good.payload[8:]))
    assert h.stats()["ip_ttl_err"] == 1 and h.stats()["chk_err"] == 0


def test_own_packets_are_ignored():
    h = Harness(one())
    due = h.engine.next_deadline()
    h.rx(wire_advert(OWN4, 200))
    h.rx(wire_advert(OWN4, 0))
    assert h.stats()["advert_rcvd"] == 0 and h.stats()["pri_zero_rcvd"] == 0
    assert h.engine.next_deadline() == due
    assert h.engine.instances["VI_1"].peers == {}


def test_accepted_advert_records_the_peer_and_rejections_count():
    h = Harness(one(version=3))
    h.clock.advance(ms=250)
    h.rx(wire_advert(PEER4, 200, version=3))
    h.rx(wire_advert(PEER4, 200, version=3, ttl=1))
    h.rx(wire_advert(PEER4, 200, version=3, addresses=("198.51.100.77",)))
    peer = h.engine.instances["VI_1"].peers[PEER4]
    assert (peer.priority, peer.last_seen_us, peer.checksum_form) == (200, h.clock.now_us, "pseudo")
    assert (h.stats()["advert_rcvd"], h.stats()["ip_ttl_err"], h.stats()["addr_list_err"]) == (1, 1, 1)


def test_address_list_mismatch_heard_by_a_master_is_reported_as_conflict():
    h = Harness(one(), resume=MASTER)
    out = h.rx(wire_advert(PEER4, 50, addresses=("198.51.100.77",)))
    assert [c.peer for c in actions(out, Conflict)] == [PEER4]
    assert h.engine.instances["VI_1"].conflicts == 1
    assert h.engine.instances["VI_1"].last_conflict["peer"] == PEER4
    assert h.stats()["addr_list_err"] == 1
    assert h.state() == State.MASTER


def test_split_brain_is_recorded():
    h = Harness(one(priority=200), resume=MASTER)
    h.run_for(1_500_000)  # MASTER for longer than one advert interval: another master is no take-over remnant
    out = h.rx(wire_advert(PEER4, 100))
    assert actions(out, SendAdvert) == [SendAdvert(200)]
    assert h.engine.instances["VI_1"].conflicts == 1
    assert h.engine.instances["VI_1"].last_conflict["kind"] == "split_brain"


# two engines on one simulated wire ---------------------------------------------------------------

def to_wire(output: Output, src: str) -> Received:
    cfg = output.config
    advert = Advert(cfg.version, cfg.virtual_router_id, output.action.priority, cfg.advert_int_cs,
                    tuple(v.address for v in cfg.vips))
    payload = encode_advert(advert, family=4, src=src, dst=IPV4_MCAST_GROUP)
    return Received(cfg.interface, 4, src, IPV4_MCAST_GROUP, 255, payload)


class Wire:
    """Engines on one simulated segment: every advert reaches the others at once, unless partitioned."""

    def __init__(self, clock: FakeClock, nodes: dict[str, Engine]):
        self.clock, self.nodes, self.partitioned = clock, nodes, False
        self.history: list[tuple[str, Output]] = []

    def deliver(self, src: str, outputs: list[Output]) -> None:
        self.history += [(src, o) for o in outputs]
        for o in outputs:
            if isinstance(o.action, SendAdvert) and not self.partitioned:
                for addr, other in self.nodes.items():
                    if addr != src:
                        self.deliver(addr, other.receive(to_wire(o, src), self.clock.now_us))

    def run_for(self, seconds: float) -> None:
        for _step in range(int(seconds * 100)):  # 10 ms steps
            self.clock.advance(ms=10)
            for addr, node in self.nodes.items():
                self.deliver(addr, node.tick(self.clock.now_us))

    def conflicts(self) -> list[tuple[str, str, str]]:
        return [(src, o.action.kind, o.action.peer) for src, o in self.history if isinstance(o.action, Conflict)]


def test_ordinary_preemption_is_no_split_brain_a_healed_partition_is():
    """Issue 10: the preempted master's last advert reaches the new master within the take-over exchange (no
    conflict on either node); after a partition heals, the master that held on reports the split brain."""
    clock = FakeClock()
    a = Engine(one(priority=150), links(iface(ipv4=(OWN4,))))
    b = Engine(one(priority=100), links(iface(ipv4=(PEER4,))))
    wire = Wire(clock, {PEER4: b})
    wire.deliver(PEER4, b.start(clock.now_us))
    wire.run_for(5)
    assert b.instances["VI_1"].state.state == State.MASTER
    wire.nodes[OWN4] = a
    wire.deliver(OWN4, a.start(clock.now_us))
    wire.run_for(6)  # a hears the lower master, its down timer runs out, it preempts; b gives way
    assert (a.instances["VI_1"].state.state, b.instances["VI_1"].state.state) == (State.MASTER, State.BACKUP)
    yielded_at = b.instances["VI_1"].state.last_transition_us
    last_from_b = [o for src, o in wire.history if src == PEER4 and isinstance(o.action, SendAdvert)][-1]
    assert last_from_b.action == SendAdvert(100)  # b's last advert as it gave way: a heard it
    assert yielded_at == a.instances["VI_1"].state.last_transition_us
    assert wire.conflicts() == [] and a.instances["VI_1"].conflicts == b.instances["VI_1"].conflicts == 0

    wire.partitioned = True
    wire.run_for(5)  # b hears nothing: a second MASTER
    assert (a.instances["VI_1"].state.state, b.instances["VI_1"].state.state) == (State.MASTER, State.MASTER)
    wire.partitioned = False
    wire.run_for(2)
    assert (a.instances["VI_1"].state.state, b.instances["VI_1"].state.state) == (State.MASTER, State.BACKUP)
    assert set(wire.conflicts()) == {(OWN4, "split_brain", PEER4)}
    assert a.instances["VI_1"].last_conflict["kind"] == "split_brain" and b.instances["VI_1"].conflicts == 0


def test_two_nodes_elect_the_higher_priority_and_hand_over_on_shutdown():
    clock = FakeClock()
    a = Engine(one(priority=150), links(iface(ipv4=(OWN4,))))
    b = Engine(one(priority=100), links(iface(ipv4=(PEER4,))))
    wire = Wire(clock, {OWN4: a, PEER4: b})
    wire.deliver(OWN4, a.start(clock.now_us))
    wire.deliver(PEER4, b.start(clock.now_us))
    wire.run_for(30)
    assert (a.instances["VI_1"].state.state, b.instances["VI_1"].state.state) == (State.MASTER, State.BACKUP)
    became = [(src, o.action.new) for src, o in wire.history if isinstance(o.action, StateChanged)]
    assert became == [(OWN4, State.BACKUP), (PEER4, State.BACKUP), (OWN4, State.MASTER)]
    took_over_at = a.instances["VI_1"].state.last_transition_us
    assert took_over_at - 1_000_000_000 == pytest.approx(3_414_062, abs=10_000)   # 150's down interval
    # A stops: priority 0, then B takes over after Skew_Time (0.609 s), not the full down interval
    stop_at = clock.now_us
    wire.deliver(OWN4, a.shutdown(clock.now_us))
    del wire.nodes[OWN4]
    wire.run_for(1)
    state_b = b.instances["VI_1"].state
    assert state_b.state == State.MASTER
    assert state_b.last_transition_us - stop_at == pytest.approx(609_375, abs=10_000)
    assert b.instances["VI_1"].state.stats["pri_zero_rcvd"] == 1


# sync groups -----------------------------------------------------------------------------------------

def group_config(**vi2):
    return make_config(
        {"VI_1": instance_raw(priority=150),
         "VI_2": instance_raw(interface="eth1", virtual_router_id=52, virtual_ipaddresses=["203.0.113.100/24"], **vi2)},
        groups={"G": {"group": ["VI_1", "VI_2"]}})


def group_links(eth1_up=True):
    return links(iface("eth0"), iface("eth1", up=eth1_up, ipv4=("203.0.113.2",), index=3))


def test_sync_group_one_master_makes_all_master():
    h = Harness(group_config(), group_links())
    assert h.engine.group_states["G"] == State.BACKUP
    # VI_1 (150) times out first (3.414 s) and waits for VI_2 (100, 3.609 s): the group goes MASTER together
    assert h.run_for(3_500_000) == [] and h.state("VI_1") == State.BACKUP
    out = h.run_for(200_000)
    assert transitions(out) == [("VI_2", State.BACKUP, State.MASTER), ("VI_1", State.BACKUP, State.MASTER)]
    assert "sync group G: VI_2 became MASTER" in actions(out, StateChanged, "VI_1")[0].reason
    assert actions(out, AddVips, "VI_1")
    assert [(g.old, g.new) for g in actions(out, GroupStateChanged)] == [(State.BACKUP, State.MASTER)]


def test_sync_group_one_backup_makes_all_backup():
    h = Harness(group_config(), group_links())
    h.run_for(3_700_000)
    out = h.rx(wire_advert("203.0.113.3", 200, vrid=52, interface="eth1", addresses=("203.0.113.100",)))
    assert transitions(out) == [("VI_2", State.MASTER, State.BACKUP), ("VI_1", State.MASTER, State.BACKUP)]
    assert actions(out, DelVips, "VI_1")
    assert h.engine.group_states["G"] == State.BACKUP


def test_sync_group_one_fault_makes_all_fault_naming_the_member_and_back():
    h = Harness(group_config(), group_links())
    h.run_for(3_700_000)
    h.clock.advance(ms=100)
    out = h.take(h.engine.set_interfaces(group_links(eth1_up=False), h.clock.now_us))
    assert {(n, new) for n, _old, new in transitions(out)} == {("VI_1", State.FAULT), ("VI_2", State.FAULT)}
    assert h.engine.instances["VI_2"].state.fault_reasons == ("interface eth1 down",)
    assert h.engine.instances["VI_1"].state.fault_reasons == ("sync group G: VI_2 in FAULT (interface eth1 down)",)
    assert actions(out, SendAdvert, "VI_1") == [SendAdvert(0)]      # the MASTER says goodbye
    assert h.engine.group_states["G"] == State.FAULT
    out = h.take(h.engine.set_interfaces(group_links(), h.clock.now_us))
    assert {(n, new) for n, _old, new in transitions(out)} == {("VI_1", State.BACKUP), ("VI_2", State.BACKUP)}
    assert h.engine.group_states["G"] == State.BACKUP


def test_sync_group_member_does_not_preempt_while_another_member_follows_a_master():
    """keepalived prefers BACKUP to thrashing: VI_2 hears a lower-priority master and its timer runs out,
    but VI_1 still follows a higher-priority master, so the group stays BACKUP (no flip every few seconds)."""
    h = Harness(group_config(), group_links())
    for k in range(12):
        h.rx(wire_advert(PEER4, 200, vrid=51))
        h.rx(wire_advert("203.0.113.3", 50, vrid=52, interface="eth1", addresses=("203.0.113.100",)))
        h.run_for(1_000_000)
    assert transitions(h.outputs) == [("VI_1", State.INIT, State.BACKUP), ("VI_2", State.INIT, State.BACKUP)]
    assert h.engine.want_master == {"VI_2"}
    # The other master goes away: VI_1 times out too, and the whole group takes over.
    out = h.run_for(4_000_000)
    assert {(n, new) for n, _old, new in transitions(out)} == {("VI_1", State.MASTER), ("VI_2", State.MASTER)}
    assert h.engine.group_states["G"] == State.MASTER and h.engine.want_master == set()


def test_a_master_reasserting_itself_makes_every_master_of_its_group_re_announce_its_vips():
    """keepalived 2.2.7's vrrp_state_master_rx: a lower-priority master heard by VI_1 makes VI_1 and VI_2 both
    send their garp_lower_prio_repeat GARPs (VI_2 with its own count), and again after each's delay."""
    h = Harness(group_config(garp_lower_prio_repeat=3, garp_lower_prio_delay=2), group_links())
    h.run_for(3_700_000)
    h.run_for(1_500_000)         # both MASTER for longer than the take-over exchange
    out = h.rx(wire_advert(PEER4, 100))
    assert actions(out, Conflict, "VI_1") and not actions(out, Conflict, "VI_2")
    assert actions(out, SendGarp, "VI_1") == [SendGarp(actions(out, SendGarp, "VI_1")[0].vips, 5)]
    (garp2,) = actions(out, SendGarp, "VI_2")
    assert ([v.address for v in garp2.vips], garp2.repeat) == (["203.0.113.100"], 3)
    later = h.run_for(2_100_000)
    assert [a.repeat for a in actions(later, SendGarp, "VI_2")] == [3]


def test_a_backup_member_sends_no_gratuitous_arp_for_the_group():
    h = Harness(group_config(), group_links())
    h.run_for(3_700_000)
    h.run_for(1_500_000)
    h.engine.instances["VI_2"].state.state = State.BACKUP       # as if it had just left MASTER
    out = h.rx(wire_advert(PEER4, 100))
    assert actions(out, SendGarp, "VI_1") and not actions(out, SendGarp, "VI_2")


# INIT, scripts and interfaces ----------------------------------------------------------------------

def scripted(init_fail=False, weight=0):
    return make_config({"VI_1": instance_raw(track_scripts=["chk"])},
                       scripts={"chk": {"script": "/bin/true", "weight": weight, "init_fail": init_fail}})


def test_init_waits_for_the_first_script_result():
    h = Harness(scripted())
    assert h.state() == State.INIT and h.outputs == [] and h.engine.next_deadline() is None
    out = h.take(h.engine.script_result("chk", True, h.clock.now_us))
    assert transitions(out) == [("VI_1", State.INIT, State.BACKUP)]


def test_first_failed_result_of_a_weight_zero_script_starts_in_fault():
    h = Harness(scripted())
    out = h.take(h.engine.script_result("chk", False, h.clock.now_us, exit_code=1))
    assert transitions(out) == [("VI_1", State.INIT, State.FAULT)]
    assert h.engine.instances["VI_1"].state.fault_reasons == ("script chk failed",)


def test_init_fail_script_does_not_hold_the_start():
    h = Harness(scripted(init_fail=True))
    assert transitions(h.outputs) == [("VI_1", State.INIT, State.FAULT)]


def test_script_weight_changes_the_advertised_priority():
    h = Harness(scripted(weight=-30), resume=MASTER)
    h.take(h.engine.script_result("chk", True, h.clock.now_us))
    assert h.state() == State.MASTER
    out = h.take(h.engine.script_result("chk", False, h.clock.now_us))
    assert h.engine.instances["VI_1"].state.effective_priority == 70 and transitions(out) == []
    out = h.run_for(1_000_000)
    assert actions(out, SendAdvert) == [SendAdvert(70)]


def test_interface_down_is_fault_and_up_again_is_backup():
    h = Harness(one())
    out = h.take(h.engine.set_interfaces(links(iface(up=False)), h.clock.now_us))
    assert transitions(out) == [("VI_1", State.BACKUP, State.FAULT)]
    out = h.take(h.engine.set_interfaces(links(iface()), h.clock.now_us))
    assert transitions(out) == [("VI_1", State.FAULT, State.BACKUP)]


def test_no_source_address_is_a_fault():
    h = Harness(one(), links(iface(ipv4=())))
    assert h.state() == State.FAULT
    assert h.engine.instances["VI_1"].state.fault_reasons == ("no IPv4 source address on eth0",)


@pytest.mark.parametrize("raw, info, expected", [
    (instance_raw(unicast_src_ip="198.51.100.5", unicast_peers=[PEER4]), iface(), "198.51.100.5"),
    (instance_raw(), iface(ipv4=(VIP4, OWN4)), OWN4),                         # first address that is not a VIP
    (instance_raw(virtual_ipaddress_excluded=["198.51.100.50/24"]), iface(ipv4=("198.51.100.50", OWN4)), OWN4),
    (instance_raw(), iface(ipv4=("198.51.100.7", OWN4)), "198.51.100.7"),
    (instance_raw(version=3, virtual_ipaddresses=[f"{VIP6}/64"]), iface(), OWN6),   # IPv6: the link-local
    (instance_raw(), None, None),
])
def test_primary_address_as_keepalived_chooses_it(raw, info, expected):
    cfg = make_config({"VI_1": raw}).vrrp_instances["VI_1"]
    assert primary_address(cfg, info) == expected


# resume ----------------------------------------------------------------------------------------------

def test_resume_after_restart_keeps_master_without_removing_vips():
    h = Harness(make_config({"VI_1": instance_raw(), "VI_2": instance_raw(virtual_router_id=52)}),
                resume={"VI_1": "MASTER", "VI_2": "BACKUP"})
    assert (h.state("VI_1"), h.state("VI_2")) == (State.MASTER, State.BACKUP)
    assert actions(h.outputs, DelVips) == []
    assert actions(h.outputs, SendAdvert, "VI_1") == [SendAdvert(100)]
    assert "resumed" in actions(h.outputs, StateChanged, "VI_1")[0].reason


def test_resume_does_not_override_a_fault():
    h = Harness(one(), links(iface(up=False)), resume={"VI_1": "MASTER"})
    assert h.state() == State.FAULT and actions(h.outputs, AddVips) == []


# reconfigure -----------------------------------------------------------------------------------------

def two_config(vi1=None, vi2=None, scripts=None):
    return make_config({"VI_1": vi1 or instance_raw(priority=150),
                        "VI_2": vi2 or instance_raw(virtual_router_id=52, virtual_ipaddresses=["198.51.100.110/24"])},
                       scripts=scripts)


def test_reconfigure_with_the_same_config_changes_nothing():
    h = Harness(two_config(), resume=MASTER)
    before = {n: (i.state.state, i.state.master_down_at_us, i.state.advert_at_us) for n, i in h.engine.instances.items()}
    out = h.engine.reconfigure(two_config(), h.clock.now_us)
    assert out == []
    assert {n: (i.state.state, i.state.master_down_at_us, i.state.advert_at_us)
            for n, i in h.engine.instances.items()} == before


def test_reconfigure_changes_priority_in_place():
    h = Harness(two_config(), resume=MASTER)
    out = h.engine.reconfigure(two_config(vi1=instance_raw(priority=180), vi2=instance_raw(
        virtual_router_id=52, priority=90, virtual_ipaddresses=["198.51.100.110/24"])), h.clock.now_us)
    assert transitions(out) == []
    assert (h.state("VI_1"), h.state("VI_2")) == (State.MASTER, State.BACKUP)
    assert [i.state.effective_priority for i in h.engine.instances.values()] == [180, 90]
    assert actions(h.run_for(1_000_000), SendAdvert) == [SendAdvert(180)]


def test_reconfigure_of_a_master_adds_and_removes_only_changed_vips():
    h = Harness(one(virtual_ipaddresses=[f"{VIP4}/24", "198.51.100.101/24"]), resume=MASTER)
    new = one(virtual_ipaddresses=[f"{VIP4}/24", "198.51.100.102/24"])
    out = h.engine.reconfigure(new, h.clock.now_us)
    assert transitions(out) == []
    removed, added = actions(out, DelVips), actions(out, AddVips)
    assert [v.address for d in removed for v in d.vips] == ["198.51.100.101"]
    assert [v.address for a in added for v in a.vips] == ["198.51.100.102"]
    assert [v.address for g in actions(out, SendGarp) for v in g.vips] == ["198.51.100.102"]


def test_reconfigure_of_a_backup_vip_change_touches_nothing():
    h = Harness(one())
    out = h.engine.reconfigure(one(virtual_ipaddresses=["198.51.100.102/24"]), h.clock.now_us)
    assert out == [] and h.state() == State.BACKUP


def test_reconfigure_stops_a_removed_instance_with_priority_zero():
    h = Harness(two_config(), resume=MASTER)
    old_cfg = h.engine.instances["VI_1"].config
    out = h.engine.reconfigure(make_config({"VI_2": instance_raw(virtual_router_id=52,
                                                                 virtual_ipaddresses=["198.51.100.110/24"])}),
                               h.clock.now_us)
    assert [(o.instance, type(o.action).__name__) for o in out] == [
        ("VI_1", "SendAdvert"), ("VI_1", "DelVips"), ("VI_1", "StateChanged")]
    assert out[0].action == SendAdvert(0) and out[0].config == old_cfg
    assert out[2].action.new == State.STOP
    assert list(h.engine.instances) == ["VI_2"]


@pytest.mark.parametrize("change", [{"virtual_router_id": 60}, {"interface": "eth1"}])
def test_reconfigure_restarts_an_instance_whose_vrid_or_interface_changed(change):
    h = Harness(one(priority=150), links(iface("eth0"), iface("eth1", index=3)), resume=MASTER)
    out = h.engine.reconfigure(one(priority=150, **change), h.clock.now_us)
    assert transitions(out) == [("VI_1", State.MASTER, State.STOP), ("VI_1", State.INIT, State.BACKUP)]
    assert actions(out, SendAdvert) == [SendAdvert(0)]
    assert h.state() == State.BACKUP


def test_reconfigure_adds_a_new_instance():
    h = Harness(one())
    out = h.engine.reconfigure(two_config(vi1=instance_raw()), h.clock.now_us)
    assert transitions(out) == [("VI_2", State.INIT, State.BACKUP)]


def test_reconfigure_that_only_retimes_a_script_keeps_its_result():
    scripts = {"chk": {"script": "/bin/true", "interval": 2}}
    cfg = make_config({"VI_1": instance_raw(priority=255, track_scripts=["chk"])}, scripts=scripts)
    h = Harness(cfg)
    h.take(h.engine.script_result("chk", False, h.clock.now_us))
    assert h.state() == State.FAULT
    retimed = make_config({"VI_1": instance_raw(priority=255, track_scripts=["chk"])},
                          scripts={"chk": {"script": "/bin/true", "interval": 5, "fall": 3}})
    out = h.engine.reconfigure(retimed, h.clock.now_us)
    assert out == [] and h.state() == State.FAULT     # no flap through MASTER (the owner would add its VIPs)


def test_reconfigure_with_a_new_script_command_waits_for_its_result_without_flapping():
    cfg = make_config({"VI_1": instance_raw(track_scripts=["chk"])}, scripts={"chk": "/bin/true"})
    h = Harness(cfg)
    h.take(h.engine.script_result("chk", False, h.clock.now_us))
    assert h.state() == State.FAULT
    changed = make_config({"VI_1": instance_raw(track_scripts=["chk"])}, scripts={"chk": "/bin/false"})
    out = h.engine.reconfigure(changed, h.clock.now_us)
    assert transitions(out) == []
    out = h.take(h.engine.script_result("chk", True, h.clock.now_us))     # the new command's result counts
    assert transitions(out) == [("VI_1", State.FAULT, State.BACKUP)]


# shutdown, drain, deadlines ------------------------------------------------------------------------

def test_shutdown_sends_priority_zero_for_each_master_only():
    h = Harness(two_config(), resume=MASTER)
    out = h.engine.shutdown(h.clock.now_us)
    assert [(o.instance, o.action) for o in out if isinstance(o.action, SendAdvert)] == [("VI_1", SendAdvert(0))]
    assert {n: i.state.state for n, i in h.engine.instances.items()} == {"VI_1": State.STOP, "VI_2": State.STOP}
    assert h.engine.next_deadline() is None


def test_drain_one_instance():
    h = Harness(two_config(), resume=MASTER)
    out = h.take(h.engine.drain(["VI_1"], True, h.clock.now_us))
    assert actions(out, SendAdvert) == [SendAdvert(0)] and h.state("VI_1") == State.BACKUP
    h.run_for(60_000_000)
    assert h.state("VI_1") == State.BACKUP and h.state("VI_2") == State.MASTER


@pytest.mark.parametrize("resume", [None, {"VI_1": "BACKUP"}, MASTER])
def test_an_instance_drained_before_start_never_takes_the_vip(resume):
    """A drain kept across a restart is applied before the engine starts: whatever the instance was (a
    resumed MASTER included, or the owner of the address), it comes up BACKUP and adds no VIP."""
    h = Harness(two_config(vi1=instance_raw(priority=255)), start=False)
    assert h.take(h.engine.drain(["VI_1"], True, h.clock.now_us)) == []
    h.take(h.engine.start(h.clock.now_us, resume))
    h.run_for(60_000_000)
    assert h.state("VI_1") == State.BACKUP and h.engine.instances["VI_1"].state.drained
    assert actions(h.outputs, AddVips, "VI_1") == [] and h.state("VI_2") == State.MASTER


def test_tick_before_any_deadline_does_nothing_and_next_deadline_is_the_earliest():
    h = Harness(two_config())
    downs = [i.state.master_down_at_us for i in h.engine.instances.values()]
    assert h.engine.next_deadline() == min(downs)
    assert h.engine.tick(min(downs) - 1) == []


@pytest.mark.parametrize("version", [2, 3])
def test_reconfigure_of_a_backup_to_a_slower_advert_interval_does_not_take_over(version):
    """Both nodes reload advert_int 1 s -> 5 s; the BACKUP's Master_Down_Interval must follow (v2: its own
    interval; v3: the master's), or it times out between two adverts of the live master."""
    h = Harness(one(version=version))
    h.rx(wire_advert(PEER4, 200, version=version))
    h.clock.advance(ms=400)
    out = h.engine.reconfigure(one(version=version, advert_int=5), h.clock.now_us)
    assert out == []
    h.run_for(600_000)                      # the master's next advert was already due 1 s after its last
    for _advert in range(8):
        h.rx(wire_advert(PEER4, 200, version=version, interval_cs=500))
        h.run_for(5_000_000)
    assert transitions(h.outputs) == [("VI_1", State.INIT, State.BACKUP)]
    assert h.engine.instances["VI_1"].state.master_adver_int_cs == 500
