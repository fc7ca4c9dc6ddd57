"""hanode.vrrp.bpf: the urgent and bulk filters are complements, priority 0 and MASTER VRIDs are urgent, short
packets go to the bulk reader; run by a reference interpreter of the same instructions (the kernel runs them
in the VRRP integration tests: failover, graceful handover, preemption)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hanode.vrrp.bpf import ACCEPT, advert_filter, run, vrid_ranges


def ipv4(vrid: int, priority: int, options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0xC0, 0, 0, 0, 255, 112, 0, bytes(4), bytes(4)) + options
    return header + bytes([0x31, vrid, priority, 1]) + bytes(8)


def ipv6(vrid: int, priority: int) -> bytes:
    return bytes([0x31, vrid, priority, 1]) + bytes(20)


def test_ranges_merge_neighbours():
    assert vrid_ranges([7, 1, 2, 3, 3]) == [(1, 3), (7, 7)]
    assert vrid_ranges([]) == []


@pytest.mark.parametrize("family, packet", [(4, ipv4), (6, ipv6)])
def test_priority_zero_and_master_vrids_are_urgent(family, packet):
    urgent, bulk = advert_filter(family, {5, 6, 9}, True), advert_filter(family, {5, 6, 9}, False)
    for vrid, priority, wakes in ((5, 100, True), (6, 200, True), (9, 1, True), (7, 100, False), (7, 0, True),
                                  (1, 255, False), (10, 0, True)):
        assert (run(urgent, packet(vrid, priority)) == ACCEPT) is wakes, (vrid, priority)
        assert (run(bulk, packet(vrid, priority)) == ACCEPT) is not wakes, (vrid, priority)


def test_ipv4_options_move_the_vrrp_header():
    options = bytes([1, 1, 1, 0])   # NOP NOP NOP EOL
    assert run(advert_filter(4, {42}, True), ipv4(42, 100, options)) == ACCEPT
    assert run(advert_filter(4, {42}, True), ipv4(41, 100, options)) == 0


@pytest.mark.parametrize("family, packet", [(4, ipv4(1, 0)[:22]), (6, b"\x31\x01")])
def test_a_packet_too_short_for_a_priority_goes_to_the_bulk_reader(family, packet):
    assert run(advert_filter(family, set(), True), packet) == 0
    assert run(advert_filter(family, set(), False), packet) == ACCEPT


def test_every_jump_fits_and_a_worst_case_set_stays_small():
    program = advert_filter(4, range(1, 256, 2), True)    # 128 separate VRIDs
    assert all(jt < 256 and jf < 256 for _code, jt, jf, _k in program)
    assert len(program) < 4096
    assert run(program, ipv4(255, 100)) == ACCEPT and run(program, ipv4(254, 100)) == 0


@settings(max_examples=300, deadline=None)
@given(st.sampled_from((4, 6)), st.sets(st.integers(1, 255)), st.integers(0, 255), st.integers(0, 255))
def test_each_packet_is_read_by_exactly_one_socket(family, masters, vrid, priority):
    packet = (ipv4 if family == 4 else ipv6)(vrid, priority)
    urgent = run(advert_filter(family, masters, True), packet) == ACCEPT
    bulk = run(advert_filter(family, masters, False), packet) == ACCEPT
    assert urgent != bulk
    assert urgent == (priority == 0 or vrid in masters)


def test_bad_family_is_named():
    with pytest.raises(ValueError, match="family"):
        advert_filter(5, set(), True)
