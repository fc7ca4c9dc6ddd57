"""hanode.vrrp.mmsg (the pure part of recvmmsg reads), from bytes a real recvmmsg() wrote (captured on x86-64
from two namespaces joined by a veth pair: one VRRPv3 advert over IPv4 and one over IPv6), and
hanode.vrrp.io.BatchReader on a UNIX datagram socket pair (no network)."""

from __future__ import annotations

import ctypes
import platform
import socket
import struct

import pytest

from hanode.kernel_time import SO_TIMESTAMPNS_NEW
from hanode.vrrp import io, mmsg
from hanode.vrrp.ah import AH_LEN
from hanode.vrrp.packet import Advert, encode_advert

LAYOUT = mmsg.LP64
# IPv4: the control slot (one SO_TIMESTAMPNS_NEW message), the mmsghdr after the call, the datagram
V4_CONTROL = bytes.fromhex("200000000000000001000000400000006e09156b00000000bae0c51600000000")
V4_HEADER = bytes.fromhex("000000000000000000000000000000002004a80e000000000100000000000000"
                          "307f890e00000000200000000000000000000000000000002000000000000000")
V4_DATA = bytes.fromhex("45c00020cecc0000ff70e198c6336402e0000012314a640100643525c6336432")
V4_STAMP_NS = 0x6B15096E * 1_000_000_000 + 0x16C5E0BA
# IPv6: timestamp, IPV6_PKTINFO (ff02::12 on ifindex 2), IPV6_HOPLIMIT 255; the sender's sockaddr_in6
V6_CONTROL = bytes.fromhex("200000000000000001000000400000007809156b00000000913f521d00000000"
                           "24000000000000002900000032000000ff020000000000000000000000000012"
                           "020000000000000014000000000000002900000034000000ff00000000000000")
V6_NAME = bytes.fromhex("0a00000000000000fe8000000000000000e3ccfffe394b7202000000")
V6_HEADER = bytes.fromhex("30bd0019000000001c0000000000000070f1fd18000000000100000000000000"
                          "a0150b1900000000600000000000000000000000000000001800000000000000")
V6_STAMP_NS = 0x6B150978 * 1_000_000_000 + 0x1D523F91


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]


@pytest.mark.skipif(platform.machine() not in mmsg.LAYOUTS, reason="the ABI of this machine has no layout here")
def test_layout_of_this_machine_is_the_c_one():
    layout = mmsg.LAYOUTS[platform.machine()]
    assert layout.mmsghdr == ctypes.sizeof(Mmsghdr)
    assert layout.word_size == ctypes.sizeof(ctypes.c_size_t) == ctypes.sizeof(ctypes.c_void_p)
    for field in ("name", "namelen", "iov", "iovlen", "control", "controllen", "flags"):
        assert getattr(layout, field) == getattr(Msghdr, field).offset, field
    assert layout.msg_len == Mmsghdr.len.offset
    assert layout.cmsghdr == socket.CMSG_LEN(0)
    for size in (0, 1, 4, 16, 20, 64):
        assert layout.cmsg_space(size) == socket.CMSG_SPACE(size)
    assert len(mmsg.preset_iovecs(layout, 3, slots=0, slot_size=1)) == 3 * ctypes.sizeof(Iovec)


def test_control_slots_hold_what_each_family_asks_for():
    assert mmsg.control_slot(LAYOUT, 4) == 32 == len(V4_CONTROL)
    assert mmsg.control_slot(LAYOUT, 6) == 32 + 40 + 24 == len(V6_CONTROL)


def test_a_slot_holds_the_largest_valid_advert_so_a_truncated_packet_is_never_a_valid_one():
    v4 = encode_advert(Advert(version=2, vrid=1, priority=100, max_advert_int_cs=100,
                              addresses=tuple(f"198.51.100.{i}" for i in range(255)), auth_type=1,
                              auth_data=b"secret00"), family=4)
    v6 = encode_advert(Advert(version=3, vrid=1, priority=100, max_advert_int_cs=100,
                              addresses=tuple(f"2001:db8::{i:x}" for i in range(255))), family=6,
                       src="fe80::1", dst="ff02::12")
    assert 60 + AH_LEN + len(v4) == mmsg.MAX_ADVERT[4] < mmsg.SLOT[4]
    assert len(v6) == mmsg.MAX_ADVERT[6] < mmsg.SLOT[6]


def test_results_of_a_real_call():
    entry = mmsg.entry_results(LAYOUT)
    assert entry.size == LAYOUT.mmsghdr
    assert entry.unpack(V4_HEADER) == (32, 0, len(V4_DATA))
    assert list(entry.iter_unpack(V6_HEADER + V4_HEADER)) == [(96, 0, 24), (32, 0, len(V4_DATA))]
    assert struct.unpack_from("=I", V6_HEADER, LAYOUT.namelen)[0] == mmsg.SOCKADDR_IN6


def test_ipv4_control_real_bytes_both_ways():
    assert mmsg.parse_control(LAYOUT, V4_CONTROL, 0, 32) == (V4_STAMP_NS, None, None)
    stamp_only, expected = mmsg.stamp_struct(LAYOUT, len(V4_CONTROL))
    assert stamp_only.size == len(V4_CONTROL)
    cmsg_len, level, kind, sec, nsec = stamp_only.unpack(V4_CONTROL)
    assert (cmsg_len, level, kind) == expected == (32, socket.SOL_SOCKET, SO_TIMESTAMPNS_NEW)
    assert sec * 1_000_000_000 + nsec == V4_STAMP_NS


def test_ipv6_control_real_bytes():
    stamp, hop, dst = mmsg.parse_control(LAYOUT, V6_CONTROL, 0, len(V6_CONTROL))
    assert (stamp, hop, dst) == (V6_STAMP_NS, 255, socket.inet_pton(socket.AF_INET6, "ff02::12"))
    assert socket.inet_ntop(socket.AF_INET6, V6_NAME[8:24]) == "fe80::e3:ccff:fe39:4b72"


def test_control_walk_at_an_offset_and_within_the_length_the_kernel_wrote():
    buf = bytes(7) + V6_CONTROL
    assert mmsg.parse_control(LAYOUT, buf, 7, len(V6_CONTROL)) == mmsg.parse_control(LAYOUT, V6_CONTROL, 0, 96)
    assert mmsg.parse_control(LAYOUT, buf, 7, 32 + 35) == (V6_STAMP_NS, None, None)   # pktinfo cut short
    assert mmsg.parse_control(LAYOUT, buf, 7, 32 + 36)[2] is not None
    assert mmsg.parse_control(LAYOUT, buf, 7, 0) == (None, None, None)


def test_a_bad_stamp_or_a_bad_length_is_not_believed():
    bad_nsec = V4_CONTROL[:24] + struct.pack("=q", 1_000_000_000)
    assert mmsg.parse_control(LAYOUT, bad_nsec, 0, 32) == (None, None, None)
    zero_len = bytes(16) + V4_CONTROL   # cmsg_len 0 ends the walk (no endless loop)
    assert mmsg.parse_control(LAYOUT, zero_len, 0, len(zero_len)) == (None, None, None)
    too_long = struct.pack("=Q", 200) + V4_CONTROL[8:]
    assert mmsg.parse_control(LAYOUT, too_long, 0, 32) == (None, None, None)


def test_preset_headers_point_at_each_slot():
    raw = mmsg.preset_headers(LAYOUT, 3, names=0x1000, name_size=28, iovecs=0x2000, controls=0x3000,
                              control_size=96)
    assert len(raw) == 3 * LAYOUT.mmsghdr
    entry = struct.Struct("=QI4xQQQQi4xI4x")
    assert entry.unpack_from(raw, 2 * LAYOUT.mmsghdr) == (0x1000 + 56, 28, 0x2000 + 32, 1, 0x3000 + 192, 96, 0, 0)
    no_names = mmsg.preset_headers(LAYOUT, 1, names=0x1000, name_size=0, iovecs=0, controls=0, control_size=32)
    assert entry.unpack_from(no_names)[:2] == (0, 0)
    assert mmsg.preset_iovecs(LAYOUT, 2, slots=0x4000, slot_size=2048) == struct.pack("=QQQQ", 0x4000, 2048,
                                                                                      0x4800, 2048)


def test_ipv4_ident_ignores_only_the_ip_ident_and_header_checksum():
    prefix = struct.pack("=IB", 2, 4)
    same = V4_DATA[:4] + b"\x12\x34" + V4_DATA[6:10] + b"\xab\xcd" + V4_DATA[12:]
    assert mmsg.ipv4_ident(prefix, same) == mmsg.ipv4_ident(prefix, V4_DATA)
    other_ttl = V4_DATA[:8] + b"\x40" + V4_DATA[9:]
    assert mmsg.ipv4_ident(prefix, other_ttl) != mmsg.ipv4_ident(prefix, V4_DATA)
    assert mmsg.ipv4_ident(struct.pack("=IB", 3, 4), V4_DATA) != mmsg.ipv4_ident(prefix, V4_DATA)
    assert mmsg.ipv4_ident(prefix, b"") != mmsg.ipv4_ident(prefix, V4_DATA)   # a truncated packet's


def test_ipv6_ident_tells_sources_and_hop_limits_apart():
    prefix, src = struct.pack("=IB", 2, 6), V6_NAME[8:24]
    meta = (src, 255, socket.inet_pton(socket.AF_INET6, "ff02::12"))
    ident = mmsg.ipv6_ident(prefix, meta, b"msg")
    assert ident == mmsg.ipv6_ident(prefix, tuple(meta), b"msg") and hash(ident) is not None
    assert ident != mmsg.ipv6_ident(prefix, (src, 254, meta[2]), b"msg")
    assert ident != mmsg.ipv6_ident(prefix, (bytes(16), 255, meta[2]), b"msg")


@pytest.fixture
def datagram_pair():
    """Two connected UNIX datagram sockets; the reading one stamps what it receives."""
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS_NEW, 1)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    reader.setblocking(False)
    yield reader, writer
    reader.close()
    writer.close()


@pytest.mark.skipif(io.batch_reader(4) is None, reason="no recvmmsg in this C library or no layout for this ABI")
def test_batch_reader_reads_full_batches_then_a_short_one(datagram_pair):
    reader, writer = datagram_pair
    batch = io.batch_reader(4)
    sent = [bytes([i]) * (10 + i) for i in range(batch.count + 6)]
    for data in sent:
        writer.send(data)
    got = []
    for want in (batch.count, 6, 0, 0):
        count = batch.read(reader.fileno())
        assert count == want
        entries, stamps = list(batch.entries(count)), list(batch.stamps(count))
        assert len(entries) == len(stamps) == count
        for i, (control_len, flags, length) in enumerate(entries):
            assert (control_len, flags) == (32, 0) and stamps[i][:3] == (32, socket.SOL_SOCKET, SO_TIMESTAMPNS_NEW)
            stamp = mmsg.parse_control(LAYOUT, batch.controls, i * batch.control_size, control_len)[0]
            assert stamp is not None and stamp > 0
            got.append(batch.view[i * batch.slot:i * batch.slot + length].tobytes())
    assert got == sent


@pytest.mark.skipif(io.batch_reader(4) is None, reason="no recvmmsg in this C library or no layout for this ABI")
def test_batch_reader_flags_a_packet_longer_than_its_slot(datagram_pair):
    reader, writer = datagram_pair
    batch = io.batch_reader(4)
    writer.send(b"x" * (batch.slot + 1))
    writer.send(b"small")
    assert batch.read(reader.fileno()) == 2
    first, second = batch.entries(2)
    assert first[1] & mmsg.MSG_TRUNC and first[2] == batch.slot
    assert second[1] == 0 and second[2] == 5   # the entries were reset: no flag or length carried over


def test_batch_reader_raises_other_errors_naming_the_call():
    batch = io.batch_reader(4)
    if batch is None:
        pytest.skip("no recvmmsg in this C library or no layout for this ABI")
    with pytest.raises(OSError, match="recvmmsg: Bad file descriptor"):
        batch.read(-1)


def test_arrival_clock_believes_recent_stamps_only_on_a_trusted_pass():
    clock = io.ArrivalClock()
    clock.begin()
    assert clock.trusted
    recent = clock.real_ns - 5_000_000
    assert clock.at(recent) == (recent + clock.offset_ns) // 1000 < clock.mono_ns // 1000
    assert clock.arrival_us([(socket.SOL_SOCKET, SO_TIMESTAMPNS_NEW, struct.pack("=qq", *divmod(recent, 10**9)))]) \
        == clock.at(recent)
    too_old = clock.real_ns - io.MAX_PACKET_AGE_NS - 1
    for stamp in (too_old, None):   # the time of reading stands in
        assert clock.at(stamp) >= clock.mono_ns // 1000
    later = clock.real_ns + 1_000_000   # arrived while the pass reads: never after the time it is read
    assert clock.mono_ns // 1000 <= clock.at(later)
    clock.offset_ns += 10 * io.CLOCK_STEP_NS   # the wall clock was set since the last pass
    clock.begin()
    assert not clock.trusted
    assert clock.at(clock.real_ns - 5_000_000) >= clock.mono_ns // 1000
