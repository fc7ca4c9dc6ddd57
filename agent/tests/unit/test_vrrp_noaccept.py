"""no_accept's nftables plan (hanode.vrrp.noaccept) and skip_check_adv_addr in the engine."""

from __future__ import annotations

import pytest

from pure_helpers import PEER4, VIP4, FakeClock, instance_raw, links, make_config, wire_advert
from hanode.config.model import Vip
from hanode.vrrp.actions import State
from hanode.vrrp.engine import Engine
from hanode.vrrp.noaccept import TABLE, blocked_addresses, plan

OTHER = "198.51.100.77"
PEER_B = "198.51.100.4"


def test_the_first_plan_creates_the_table_and_adds_the_addresses_atomically():
    script = plan(set(), {VIP4, "2001:db8::5"}, table_exists=False)
    lines = script.splitlines()
    assert lines[:2] == [f"add table inet {TABLE}", f"delete table inet {TABLE}"]   # a leftover goes, none fails
    assert "ip daddr @vips4 drop" in script and "ip saddr @vips4 drop" in script
    assert "ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept" in script
    assert lines[-2:] == [f"add element inet {TABLE} vips4 {{ {VIP4} }}",
                          f"add element inet {TABLE} vips6 {{ 2001:db8::5 }}"]


def test_later_plans_change_only_the_elements():
    assert plan({VIP4}, {VIP4}, table_exists=True) == ""
    assert plan({VIP4}, {OTHER}, table_exists=True).splitlines() == [
        f"add element inet {TABLE} vips4 {{ {OTHER} }}", f"delete element inet {TABLE} vips4 {{ {VIP4} }}"]


@pytest.mark.parametrize("overrides, blocked", [
    ({}, set()),                                          # accept (the default outside strict mode)
    ({"accept": False}, {VIP4, "fe80::1%eth0", "fe80::2%eth1"}),
    ({"strict_mode": True}, {VIP4, "fe80::1%eth0", "fe80::2%eth1"}),   # strict: no_accept by default
    ({"strict_mode": True, "priority": 255}, set()),      # the address owner always accepts
])
def test_what_no_accept_blocks(overrides, blocked):
    """A link-local VIP is blocked on its own interface (its dev, else the instance's), as keepalived's
    vips_link_local set keys it."""
    inst = make_config({"VI_1": instance_raw(**overrides)}).vrrp_instances["VI_1"]
    vips = inst.vips + (Vip("fe80::1", 64, 6), Vip("fe80::2", 64, 6, dev="eth1"))
    assert blocked_addresses(inst, vips) == blocked


def test_link_local_vips_go_into_the_set_keyed_by_address_and_interface():
    script = plan(set(), {"fe80::1%eth0", VIP4}, table_exists=False)
    assert "ip6 daddr . iifname @vips6ll drop" in script and "ip6 saddr . oifname @vips6ll drop" in script
    assert script.splitlines()[-1] == f'add element inet {TABLE} vips6ll {{ fe80::1 . "eth0" }}'
    assert plan({"fe80::1%eth0"}, set(), table_exists=True).splitlines() == [
        f'delete element inet {TABLE} vips6ll {{ fe80::1 . "eth0" }}']


def backup_following(peer_src, **overrides):
    clock = FakeClock()
    engine = Engine(make_config({"VI_1": instance_raw(**overrides)}), links())
    engine.start(clock.now_us)
    clock.advance(ms=100)
    engine.receive(wire_advert(peer_src, 200), clock.now_us)
    inst = engine.instances["VI_1"]
    assert inst.state.state == State.BACKUP and inst.state.master_address == peer_src
    return engine, inst, clock


def test_skip_check_adv_addr_skips_the_address_check_for_the_master_a_backup_follows():
    engine, inst, clock = backup_following(PEER4, skip_check_adv_addr=True)
    engine.receive(wire_advert(PEER4, 200, addresses=(OTHER,)), clock.now_us)
    assert (inst.state.stats["advert_rcvd"], inst.state.stats["addr_list_err"]) == (2, 0)
    engine.receive(wire_advert(PEER_B, 200, addresses=(OTHER,)), clock.now_us)   # another sender: checked
    assert inst.state.stats["addr_list_err"] == 1


def test_without_skip_check_adv_addr_every_advert_is_checked():
    engine, inst, clock = backup_following(PEER4)
    engine.receive(wire_advert(PEER4, 200, addresses=(OTHER,)), clock.now_us)
    assert (inst.state.stats["advert_rcvd"], inst.state.stats["addr_list_err"]) == (1, 1)
