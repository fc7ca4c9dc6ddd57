"""hanode.lab.topology (names, addresses, MACs) and the sniffer's frame parser and timestamp conversion: pure,
no namespaces."""

from __future__ import annotations

import importlib.util
import ipaddress
import struct
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("hanode") is None:  # a checkout whose agent is not installed in this Python
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from hanode.kernel_time import SO_TIMESTAMPNS_NEW, SOL_SOCKET, TimestampError, kernel_time_ns, timespec_ns  # noqa: E402
from hanode.lab import topology as topo  # noqa: E402
from hanode.lab.sniffer import VrrpFrame, clock_offset_ns, parse_frame, record  # noqa: E402


def test_three_nodes_client_two_real_servers():
    t = topo.build("hn3fa9c1", nodes=3, clients=1, real_servers=2)
    assert [h.name for h in t.hosts] == ["n1", "n2", "n3", "c1", "r1", "r2"]
    assert t.switch_netns == "hn3fa9c1-sw"
    assert t.host("n1").netns == "hn3fa9c1-n1" and t.host("hn3fa9c1-r2").name == "r2"
    assert t.namespaces[-1] == "hn3fa9c1-sw" and len(t.namespaces) == 7

    n2 = t.host("n2")
    assert (n2.port("eth0").ipv4_cidr, n2.port("eth0").ipv6_cidr) == ("198.51.100.12/24", "2001:db8:100::12/64")
    assert (n2.port("eth1").ipv4_cidr, n2.port("eth1").ipv6_cidr) == ("203.0.113.2/24", "2001:db8:203::2/64")
    assert n2.port("eth0").segment is topo.LAN and n2.port("eth1").segment is topo.BACKEND
    assert t.host("c1").ipv4 == "198.51.100.201" and t.host("c1").ipv6 == "2001:db8:100::201"
    assert [h.ipv4 for h in t.by_role(topo.REAL_SERVER)] == ["203.0.113.11", "203.0.113.12"]
    assert t.host("r1").ports[0].segment is topo.BACKEND and len(t.host("r1").ports) == 1
    assert len(t.ports_on(topo.LAN)) == 4 and len(t.ports_on(topo.BACKEND)) == 5


def test_nodes_have_no_backend_port_without_real_servers():
    t = topo.build("hnabcdef", nodes=2, clients=1)
    assert [p.ifname for p in t.host("n1").ports] == ["eth0"]
    assert t.segments == (topo.LAN,)
    with pytest.raises(KeyError, match="eth1"):
        t.host("n1").port("eth1")


def test_macs_are_deterministic_unique_and_locally_administered():
    t = topo.build("hn000001", nodes=topo.MAX_NODES, clients=5, real_servers=20)
    assert t.host("n1").port("eth0").mac == "02:68:6e:01:01:00"
    assert t.host("n1").port("eth1").mac == "02:68:6e:01:01:01"
    assert t.host("c2").mac == "02:68:6e:02:02:00"
    assert t.host("r20").mac == "02:68:6e:03:14:00"
    macs = [p.mac for h in t.hosts for p in h.ports]
    assert len(set(macs)) == len(macs)
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01  # locally administered, unicast
    assert topo.build("hnffffff", 2, 1, 0).host("n2").mac == topo.build("hn123456", 2, 1, 0).host("n2").mac


def test_names_and_addresses_unique_and_interface_names_short():
    t = topo.build("hn3fa9c1", nodes=topo.MAX_NODES, clients=topo.MAX_CLIENTS, real_servers=topo.MAX_REAL_SERVERS)
    ports = [p for h in t.hosts for p in h.ports]
    for names in ([h.name for h in t.hosts], list(t.namespaces), [p.switch_ifname for p in ports],
                  [p.ipv4 for p in ports], [p.ipv6 for p in ports]):
        assert len(set(names)) == len(names)
    for p in ports:
        assert len(p.switch_ifname) <= topo.IFNAME_MAX_LEN and len(p.ifname) <= topo.IFNAME_MAX_LEN
        assert p.switch_ifname == f"{p.host}-{p.ifname}"
        assert ipaddress.ip_interface(p.ipv4_cidr).network == ipaddress.ip_network(p.segment.ipv4_net)
        assert ipaddress.ip_interface(p.ipv6_cidr).network == ipaddress.ip_network(p.segment.ipv6_net)
    assert t.host("c54").ipv4 == "198.51.100.254" and t.host("r100").ipv4 == "203.0.113.110"
    assert t.host("n10").port("eth1").ipv4 == "203.0.113.10"


def test_prefixes_and_limits():
    assert topo.generated_prefix("3fa9c1") == "hn3fa9c1"
    for bad in ("3fa9c", "3FA9C1", "xyz123"):
        with pytest.raises(ValueError):
            topo.generated_prefix(bad)
    for bad in ("", "x", "Hn1", "1hn", "hn-1", "a" * 13):
        with pytest.raises(ValueError):
            topo.validate_prefix(bad)
    assert topo.build("mylab", 1, 0, 0).host("n1").netns == "mylab-n1"
    for counts in ((topo.MAX_NODES + 1, 0, 0), (1, topo.MAX_CLIENTS + 1, 0), (1, 0, topo.MAX_REAL_SERVERS + 1),
                   (-1, 0, 0)):
        with pytest.raises(ValueError):
            topo.build("hnabcdef", *counts)
    with pytest.raises(KeyError):
        topo.build("hnabcdef", 1, 0, 0).host("c1")


# --- the sniffer's parser (hanode.lab.sniffer.parse_frame): struct only, fed hand-made frames ----------

ETH_V4 = bytes.fromhex("01005e000012 02686e010100 0800")
ETH_V6 = bytes.fromhex("333300000012 02686e010100 86dd")


def ipv4_vrrp(src: str, vrid: int, priority: int, proto: int = 112) -> bytes:
    vrrp = bytes([0x31, vrid, priority, 1]) + struct.pack("!HH", 10, 0) + ipaddress.ip_address("198.51.100.100").packed
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(vrrp), 0, 0, 255, proto, 0,
                         ipaddress.ip_address(src).packed, ipaddress.ip_address("224.0.0.18").packed)
    return ETH_V4 + header + vrrp


def test_parse_ipv4_vrrpv3_advert():
    frame = ipv4_vrrp("198.51.100.11", 51, 150)
    assert parse_frame(frame) == VrrpFrame("198.51.100.11", "224.0.0.18", 51, 150, 3, 1)


def test_parse_ipv6_vrrp_advert_with_hop_by_hop_header():
    vrrp = bytes([0x31, 52, 140, 1]) + struct.pack("!HH", 10, 0) + ipaddress.ip_address("2001:db8:100::100").packed
    src = ipaddress.ip_address("fe80::68:6eff:fe01:100").packed
    dst = ipaddress.ip_address("ff02::12").packed
    plain = struct.pack("!IHBB", 0x60000000, len(vrrp), 112, 255) + src + dst + vrrp
    assert parse_frame(ETH_V6 + plain) == VrrpFrame("fe80::68:6eff:fe01:100", "ff02::12", 52, 140, 3, 1)
    hop_by_hop = bytes([112, 0, 1, 4, 0, 0, 0, 0])  # next header VRRP, 8 bytes, PadN
    with_ext = struct.pack("!IHBB", 0x60000000, 8 + len(vrrp), 0, 255) + src + dst + hop_by_hop + vrrp
    assert parse_frame(ETH_V6 + with_ext).vrid == 52


def test_parse_ignores_what_is_not_vrrp():
    assert parse_frame(ipv4_vrrp("198.51.100.11", 51, 150, proto=17)) is None
    assert parse_frame(ETH_V4[:12] + b"\x08\x06" + bytes(28)) is None  # ARP
    assert parse_frame(b"") is None and parse_frame(ETH_V4) is None
    assert parse_frame(ETH_V4 + ipv4_vrrp("198.51.100.11", 1, 1)[14:30]) is None  # truncated before VRRP


# --- the sniffer's timestamps: recvmsg() control messages in, monotonic seconds out ---------------------

# struct __kernel_timespec {s64 tv_sec; long long tv_nsec} for 2024-05-01T12:00:00.123456789Z, little-endian.
TIMESPEC_LE = bytes.fromhex("c02e326600000000 15cd5b0700000000")
TIMESPEC_NS = 1714564800_123456789
V4_ADVERT = VrrpFrame("198.51.100.11", "224.0.0.18", 51, 150, 3, 1)


def native_timespec(sec: int, nsec: int) -> bytes:
    return struct.pack("=qq", sec, nsec)


def test_timespec_decodes_the_kernel_struct():
    if sys.byteorder == "little":
        assert timespec_ns(TIMESPEC_LE) == TIMESPEC_NS
    assert timespec_ns(native_timespec(1714564800, 123456789)) == TIMESPEC_NS
    assert timespec_ns(native_timespec(0, 0)) == 0


@pytest.mark.parametrize("data, problem", [(bytes(8), "of 8 bytes, expected 16"),
                                           (native_timespec(1, 1_000_000_000), "tv_nsec 1000000000 out of"),
                                           (native_timespec(1, -1), "tv_nsec -1 out of")])
def test_timespec_rejects_what_is_not_a_timespec(data, problem):
    with pytest.raises(TimestampError, match=problem):
        timespec_ns(data)


def test_kernel_time_is_found_among_other_control_messages():
    stamp = (SOL_SOCKET, SO_TIMESTAMPNS_NEW, native_timespec(1714564800, 123456789))
    other = (263, 8, bytes(16))  # SOL_PACKET / PACKET_AUXDATA: not a timestamp
    assert kernel_time_ns([other, stamp]) == TIMESPEC_NS
    assert kernel_time_ns([other]) is None and kernel_time_ns([]) is None


def test_clock_offset_uses_the_middle_of_the_narrowest_monotonic_bracket():
    # realtime read between monotonic 1000 and 1010 ns: it belongs to monotonic 1005, +-5 ns
    assert clock_offset_ns([(1000, 1714564800_000000000, 1010)]) == (1714564800_000000000 - 1005, 5)
    # preempted for 12 ms between the first two readings: that bracket's middle is 6 ms off, the next is not
    preempted = (1000, 1714564800_012000000, 12_001_200)
    clean = (12_002_000, 1714564800_012002100, 12_002_200)
    assert clock_offset_ns([preempted, clean]) == (1714564800_000000000, 100)


def test_clock_offset_refuses_a_monotonic_clock_going_back():
    with pytest.raises(ValueError, match="went back from 1010 to 1000"):
        clock_offset_ns([(1010, 5, 1000)])


def test_record_converts_the_kernel_stamp_to_monotonic_seconds():
    offset = (1714564800_000000000 - 5_000_000_000, 150)  # monotonic 5 s == realtime 1714564800 s, +-150 ns
    line = record(V4_ADVERT, 1714564800_123456789, offset, read_mono_ns=5_130_000_000)
    assert line["t"] == 5.123456789 and line["t_kernel_ns"] == 1714564800_123456789 and line["t_error_ns"] == 150
    assert line["t_read"] == 5.13 and line["stamp"] == "kernel"
    assert (line["src"], line["dst"], line["vrid"], line["priority"], line["version"], line["type"]) == tuple(V4_ADVERT)


def test_record_without_a_kernel_stamp_falls_back_to_the_read_time_and_says_so():
    line = record(V4_ADVERT, None, (123, 150), read_mono_ns=5_130_000_000)
    assert (line["t"], line["t_read"], line["t_kernel_ns"], line["t_error_ns"], line["stamp"]) == \
        (5.13, 5.13, None, 0, "read")
