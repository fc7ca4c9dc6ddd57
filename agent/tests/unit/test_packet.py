"""hanode.vrrp.packet: golden bytes, packets captured from keepalived, error counters, properties."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6, in6_chksum
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import raw

from hanode.vrrp.packet import (
    AUTH_NONE,
    AUTH_PASS,
    IPV4_MCAST_GROUP,
    IPV6_MCAST_GROUP,
    Advert,
    Ipv4Header,
    PacketError,
    decode_advert,
    decode_ipv4,
    encode_advert,
    encode_ipv4,
    internet_checksum,
    ones_complement_sum,
    password_bytes,
)

GOLDEN_DIR = Path(__file__).parent / "golden"
KEEPALIVED = json.loads((GOLDEN_DIR / "keepalived_2.2.7.json").read_text())

SRC4, PEER4, SRC6 = "198.51.100.1", "198.51.100.2", "fe80::200:ff:fe00:a"

# name, VRRP message hex, family, src, dst, v3_checksum_as_v2, expected decode
GOLDEN = [
    ("v2_ipv4_no_auth", "21016401000150bec633640a0000000000000000", 4, SRC4, IPV4_MCAST_GROUP, False,
     Advert(2, 1, 100, 100, ("198.51.100.10",), AUTH_NONE, bytes(8), "rfc")),
    ("v2_ipv4_pass", "212afe03010312fdc633640ac633640bcb0071077365637265740000", 4, SRC4, IPV4_MCAST_GROUP, False,
     Advert(2, 42, 254, 300, ("198.51.100.10", "198.51.100.11", "203.0.113.7"), AUTH_PASS, b"secret\0\0", "rfc")),
    ("v3_ipv4_pseudo", "3107c8020064a738c6336414c6336415", 4, SRC4, IPV4_MCAST_GROUP, False,
     Advert(3, 7, 200, 100, ("198.51.100.20", "198.51.100.21"), checksum_form="pseudo")),
    ("v3_ipv4_rfc9568", "3107c8020064b200c6336414c6336415", 4, SRC4, IPV4_MCAST_GROUP, True,
     Advert(3, 7, 200, 100, ("198.51.100.20", "198.51.100.21"), checksum_form="rfc")),
    ("v3_ipv4_unicast", "310996010019a7c1cb007132", 4, SRC4, PEER4, False,
     Advert(3, 9, 150, 25, ("203.0.113.50",), checksum_form="pseudo")),
    ("v3_ipv6", "313c64020ffffef620010db801000000000000000000002020010db8000000000000000000000001", 6, SRC6,
     IPV6_MCAST_GROUP, False, Advert(3, 60, 100, 4095, ("2001:db8:100::20", "2001:db8::1"), checksum_form="ipv6")),
]
GOLDEN_IDS = [case[0] for case in GOLDEN]


def scapy_vrrp(advert: Advert, family: int, src: str, dst: str) -> bytes:
    """The same advert built by scapy's VRRP / VRRPv3 stacked on IP() / IPv6(); VRRP bytes only."""
    if advert.version == 2:
        layer = VRRP(vrid=advert.vrid, priority=advert.priority, authtype=advert.auth_type,
                     adv=advert.max_advert_int_cs // 100, addrlist=list(advert.addresses),
                     auth1=int.from_bytes(advert.auth_data[:4], "big"),
                     auth2=int.from_bytes(advert.auth_data[4:], "big"))
    else:
        layer = VRRPv3(vrid=advert.vrid, priority=advert.priority, adv=advert.max_advert_int_cs,
                       addrlist=list(advert.addresses))
    if family == 4:
        return raw(IP(src=src, dst=dst, ttl=255) / layer)[20:]
    return raw(IPv6(src=src, dst=dst, hlim=255) / layer)[40:]


def advert_from_expected(expected: dict) -> Advert:
    return Advert(expected["version"], expected["vrid"], expected["priority"], expected["max_advert_int_cs"],
                  tuple(expected["addresses"]), expected["auth_type"], bytes.fromhex(expected["auth_data_hex"]),
                  expected["checksum_form"])


# --- golden bytes -------------------------------------------------------------------


@pytest.mark.parametrize("name, hex_, family, src, dst, as_v2, expected", GOLDEN, ids=GOLDEN_IDS)
def test_golden_decodes_to_expected_fields(name, hex_, family, src, dst, as_v2, expected):
    assert decode_advert(bytes.fromhex(hex_), family=family, src=src, dst=dst) == expected


@pytest.mark.parametrize("name, hex_, family, src, dst, as_v2, expected", GOLDEN, ids=GOLDEN_IDS)
def test_golden_encodes_to_exact_bytes(name, hex_, family, src, dst, as_v2, expected):
    assert encode_advert(expected, family=family, src=src, dst=dst, v3_checksum_as_v2=as_v2).hex() == hex_


@pytest.mark.parametrize("name, hex_, family, src, dst, as_v2, expected", GOLDEN, ids=GOLDEN_IDS)
def test_golden_matches_scapy_build(name, hex_, family, src, dst, as_v2, expected):
    built = scapy_vrrp(expected, family, src, dst)
    ours = bytes.fromhex(hex_)
    if as_v2:  # scapy only knows the pseudo-header form: compare all but the checksum
        assert built[:6] + built[8:] == ours[:6] + ours[8:]
        assert internet_checksum(ours) == 0
    else:
        assert built == ours


@pytest.mark.parametrize("name, hex_, family, src, dst, as_v2, expected", GOLDEN, ids=GOLDEN_IDS)
def test_golden_parsed_by_scapy(name, hex_, family, src, dst, as_v2, expected):
    message = bytes.fromhex(hex_)
    if family == 4:
        layer = IP(encode_ipv4(message, src=src, dst=dst))[VRRP if expected.version == 2 else VRRPv3]
    else:
        layer = IPv6(raw(IPv6(src=src, dst=dst, nh=112, hlim=255, plen=len(message))) + message)[VRRPv3]
    assert (layer.version, layer.type) == (expected.version, 1)
    assert (layer.vrid, layer.priority) == (expected.vrid, expected.priority)
    assert layer.ipcount == len(expected.addresses)
    assert [str(a) for a in layer.addrlist] == list(expected.addresses)
    interval = layer.adv * 100 if expected.version == 2 else layer.adv
    assert interval == expected.max_advert_int_cs


# --- packets captured from keepalived 2.2.7 -------------------------------------------------

CAPTURED = KEEPALIVED["adverts"]
CAPTURED_IDS = [record["name"] for record in CAPTURED]


def test_capture_covers_every_kind_we_interoperate_with():
    kinds = {(r["expected"]["version"], r["family"], r["expected"]["checksum_form"], r["dst"]) for r in CAPTURED}
    assert (2, 4, "rfc", IPV4_MCAST_GROUP) in kinds
    assert (3, 4, "pseudo", IPV4_MCAST_GROUP) in kinds
    assert (3, 6, "ipv6", IPV6_MCAST_GROUP) in kinds
    assert (2, 4, "rfc", PEER4) in kinds
    assert (3, 4, "pseudo", PEER4) in kinds
    assert (3, 4, "pseudo_mcast", PEER4) in kinds
    assert (2, 6, "ipv6", IPV6_MCAST_GROUP) in kinds
    assert any(r["expected"]["auth_type"] == AUTH_PASS for r in CAPTURED)


@pytest.mark.parametrize("record", CAPTURED, ids=CAPTURED_IDS)
def test_captured_advert_decodes_to_configured_fields(record):
    advert = decode_advert(bytes.fromhex(record["vrrp_hex"]), family=record["family"],
                           src=record["src"], dst=record["dst"])
    assert advert == advert_from_expected(record["expected"])
    assert record["ttl"] == 255


@pytest.mark.parametrize("record", [r for r in CAPTURED if r["family"] == 4],
                         ids=[r["name"] for r in CAPTURED if r["family"] == 4])
def test_captured_ipv4_datagram_decodes(record):
    header, payload = decode_ipv4(bytes.fromhex(record["datagram_hex"]))
    assert (header.version, header.ihl, header.tos, header.ttl, header.protocol) == (4, 5, 0xC0, 255, 112)
    assert (header.src, header.dst) == (record["src"], record["dst"])
    assert payload.hex() == record["vrrp_hex"]
    advert = decode_advert(payload, family=4, src=header.src, dst=header.dst)
    assert advert == advert_from_expected(record["expected"])
    # The same header, rebuilt, matches keepalived's (kernel-filled ident and checksum) byte for byte.
    rebuilt = encode_ipv4(payload, src=header.src, dst=header.dst, ident=header.ident)
    assert rebuilt.hex() == record["datagram_hex"]


@pytest.mark.parametrize("record", CAPTURED, ids=CAPTURED_IDS)
def test_encode_reproduces_captured_bytes(record):
    expected = advert_from_expected(record["expected"])
    # keepalived's old_unicast_checksum form is the pseudo-header with the multicast group as dst.
    dst = IPV4_MCAST_GROUP if expected.checksum_form == "pseudo_mcast" else record["dst"]
    message = encode_advert(expected, family=record["family"], src=record["src"], dst=dst)
    assert message.hex() == record["vrrp_hex"]


@pytest.mark.parametrize("record", CAPTURED, ids=CAPTURED_IDS)
def test_captured_bytes_agree_with_scapy(record):
    message = bytes.fromhex(record["vrrp_hex"])
    expected = advert_from_expected(record["expected"])
    if record["family"] == 6 and expected.version == 2:  # scapy has no VRRPv2-over-IPv6 layer
        zeroed = message[:6] + b"\0\0" + message[8:]
        checksum = in6_chksum(112, IPv6(src=record["src"], dst=record["dst"]), zeroed)
        assert struct.unpack_from("!H", message, 6)[0] == checksum
        return
    dst = IPV4_MCAST_GROUP if expected.checksum_form == "pseudo_mcast" else record["dst"]
    assert scapy_vrrp(expected, record["family"], record["src"], dst) == message


# --- checksum forms accepted on receive ---------------------------------------------------------

V3_IPV4 = Advert(3, 10, 100, 100, ("198.51.100.30",))


@pytest.mark.parametrize(
    "received_dst, encode_kwargs, form",
    [
        (IPV4_MCAST_GROUP, dict(dst=IPV4_MCAST_GROUP), "pseudo"),
        (IPV4_MCAST_GROUP, dict(dst=IPV4_MCAST_GROUP, v3_checksum_as_v2=True), "rfc"),
        (PEER4, dict(dst=PEER4), "pseudo"),
        (PEER4, dict(dst=PEER4, v3_checksum_as_v2=True), "rfc"),
        (PEER4, dict(dst=IPV4_MCAST_GROUP), "pseudo_mcast"),
    ],
    ids=["mcast-pseudo", "mcast-rfc", "unicast-pseudo", "unicast-rfc", "unicast-old-mcast-pseudo"],
)
def test_v3_ipv4_receiver_accepts_every_checksum_form(received_dst, encode_kwargs, form):
    message = encode_advert(V3_IPV4, family=4, src=SRC4, **encode_kwargs)
    assert decode_advert(message, family=4, src=SRC4, dst=received_dst).checksum_form == form


def test_v3_ipv4_pseudo_header_uses_source_address():
    message = encode_advert(V3_IPV4, family=4, src=SRC4, dst=IPV4_MCAST_GROUP)
    with pytest.raises(PacketError) as error:
        decode_advert(message, family=4, src="198.51.100.9", dst=IPV4_MCAST_GROUP)
    assert error.value.counter == "chk_err"


# --- receive errors: each with its counter ----------------------------------------------------------


def with_checksum(message: bytes, checksum: int) -> bytes:
    return message[:6] + struct.pack("!H", checksum) + message[8:]


V2_OK = bytes.fromhex(GOLDEN[0][1])
V3_OK = bytes.fromhex(GOLDEN[2][1])
V3_V6_OK = bytes.fromhex(GOLDEN[5][1])
V2_V6_OK = encode_advert(Advert(2, 5, 100, 100, ("2001:db8::5",)), family=6, src=SRC6, dst=IPV6_MCAST_GROUP)

# name, payload, family, src, dst, counter
DECODE_ERRORS = [
    ("empty", b"", 4, SRC4, IPV4_MCAST_GROUP, "packet_len_err"),
    ("shorter-than-header", V3_OK[:7], 4, SRC4, IPV4_MCAST_GROUP, "packet_len_err"),
    ("version-0", bytes([0x01]) + V3_OK[1:], 4, SRC4, IPV4_MCAST_GROUP, "vers_err"),
    ("version-1", bytes([0x11]) + V3_OK[1:], 4, SRC4, IPV4_MCAST_GROUP, "vers_err"),
    ("version-4", bytes([0x41]) + V3_OK[1:], 4, SRC4, IPV4_MCAST_GROUP, "vers_err"),
    ("version-before-length", bytes([0x51]) + V3_OK[1:8], 4, SRC4, IPV4_MCAST_GROUP, "vers_err"),
    ("type-0", bytes([0x30]) + V3_OK[1:], 4, SRC4, IPV4_MCAST_GROUP, "invalid_type_rcvd"),
    ("type-2-v2", bytes([0x22]) + V2_OK[1:], 4, SRC4, IPV4_MCAST_GROUP, "invalid_type_rcvd"),
    ("type-before-length", bytes([0x3F]) + V3_OK[1:8], 4, SRC4, IPV4_MCAST_GROUP, "invalid_type_rcvd"),
    ("count-too-high", V3_OK[:3] + b"\x03" + V3_OK[4:], 4, SRC4, IPV4_MCAST_GROUP, "packet_len_err"),
    ("count-too-low", V3_OK[:3] + b"\x01" + V3_OK[4:], 4, SRC4, IPV4_MCAST_GROUP, "packet_len_err"),
    ("trailing-byte", V3_OK + b"\0", 4, SRC4, IPV4_MCAST_GROUP, "packet_len_err"),
    ("v2-without-auth-bytes", V2_OK[:-8], 4, SRC4, IPV4_MCAST_GROUP, "packet_len_err"),
    ("v3-ipv4-sized-addresses-on-ipv6", V3_OK, 6, SRC6, IPV6_MCAST_GROUP, "packet_len_err"),
    ("v2-ipv6-with-auth-bytes", V2_V6_OK + bytes(8), 6, SRC6, IPV6_MCAST_GROUP, "packet_len_err"),
    ("v2-bad-checksum", with_checksum(V2_OK, 0x1234), 4, SRC4, IPV4_MCAST_GROUP, "chk_err"),
    ("v2-corrupt-auth-bytes", V2_OK[:-1] + b"\x01", 4, SRC4, IPV4_MCAST_GROUP, "chk_err"),
    ("v3-ipv4-bad-checksum", with_checksum(V3_OK, 0x1234), 4, SRC4, IPV4_MCAST_GROUP, "chk_err"),
    ("v3-ipv6-bad-checksum", with_checksum(V3_V6_OK, 0x1234), 6, SRC6, IPV6_MCAST_GROUP, "chk_err"),
    ("v3-ipv6-other-source", V3_V6_OK, 6, "fe80::99", IPV6_MCAST_GROUP, "chk_err"),
    ("v3-ipv6-without-pseudo-header", with_checksum(V3_V6_OK, internet_checksum(with_checksum(V3_V6_OK, 0))),
     6, SRC6, IPV6_MCAST_GROUP, "chk_err"),
    ("v2-ipv6-bad-checksum", with_checksum(V2_V6_OK, 0x1234), 6, SRC6, IPV6_MCAST_GROUP, "chk_err"),
]


@pytest.mark.parametrize("name, payload, family, src, dst, counter", DECODE_ERRORS, ids=[c[0] for c in DECODE_ERRORS])
def test_decode_advert_error_counters(name, payload, family, src, dst, counter):
    with pytest.raises(PacketError) as error:
        decode_advert(payload, family=family, src=src, dst=dst)
    assert error.value.counter == counter
    assert str(error.value) == error.value.message and error.value.message


def ipv4_header(**fields) -> bytes:
    values = dict(vihl=0x45, tos=0xC0, total=28, ident=0, frag=0, ttl=255, proto=112, csum=0,
                  src=bytes([198, 51, 100, 1]), dst=bytes([224, 0, 0, 18]))
    values.update(fields)
    return struct.pack("!BBHHHBBH4s4s", *values.values())


IPV4_ERRORS = [
    ("empty", b"", "packet_len_err"),
    ("19-bytes", ipv4_header()[:19], "packet_len_err"),
    ("version-6", ipv4_header(vihl=0x65) + bytes(8), "vers_err"),
    ("version-0", bytes(20), "vers_err"),
    ("ihl-4", ipv4_header(vihl=0x44) + bytes(8), "packet_len_err"),
    ("ihl-beyond-data", ipv4_header(vihl=0x4F) + bytes(8), "packet_len_err"),
    ("total-length-beyond-data", ipv4_header(total=29) + bytes(8), "packet_len_err"),
    ("total-length-inside-header", ipv4_header(total=19) + bytes(8), "packet_len_err"),
]


@pytest.mark.parametrize("name, datagram, counter", IPV4_ERRORS, ids=[c[0] for c in IPV4_ERRORS])
def test_decode_ipv4_error_counters(name, datagram, counter):
    with pytest.raises(PacketError) as error:
        decode_ipv4(datagram)
    assert error.value.counter == counter


def test_packet_error_is_a_value_error_with_counter_and_message():
    error = PacketError("chk_err", "invalid VRRPv2 checksum")
    assert isinstance(error, ValueError)
    assert (error.counter, error.message) == ("chk_err", "invalid VRRPv2 checksum")
    assert str(error) == "invalid VRRPv2 checksum"


# --- encode argument validation -------------------------------------------------------------------

V2 = Advert(2, 1, 100, 100, ("198.51.100.10",))
V3 = Advert(3, 1, 100, 100, ("198.51.100.10",))
V3_6 = Advert(3, 1, 100, 100, ("2001:db8::10",))
KW4 = dict(family=4, src=SRC4, dst=IPV4_MCAST_GROUP)
KW6 = dict(family=6, src=SRC6, dst=IPV6_MCAST_GROUP)

ENCODE_ERRORS = [
    ("vrid-0", replace(V3, vrid=0), KW4, "vrid"),
    ("vrid-256", replace(V3, vrid=256), KW4, "vrid"),
    ("priority-negative", replace(V3, priority=-1), KW4, "priority"),
    ("priority-256", replace(V3, priority=256), KW4, "priority"),
    ("version-4", replace(V3, version=4), KW4, "version"),
    ("v2-interval-0", replace(V2, max_advert_int_cs=0), KW4, "max_advert_int_cs"),
    ("v2-interval-256s", replace(V2, max_advert_int_cs=25600), KW4, "max_advert_int_cs"),
    ("v2-interval-not-whole-seconds", replace(V2, max_advert_int_cs=150), KW4, "max_advert_int_cs"),
    ("v3-interval-0", replace(V3, max_advert_int_cs=0), KW4, "max_advert_int_cs"),
    ("v3-interval-4096", replace(V3, max_advert_int_cs=4096), KW4, "max_advert_int_cs"),
    ("256-addresses", replace(V3, addresses=tuple(f"198.51.100.{i % 250}" for i in range(256))), KW4, "addresses"),
    ("ipv6-address-in-ipv4-advert", replace(V3, addresses=("2001:db8::1",)), KW4, "addresses"),
    ("ipv4-address-in-ipv6-advert", replace(V3_6, addresses=("198.51.100.1",)), KW6, "addresses"),
    ("not-an-address", replace(V3, addresses=("vip-one",)), KW4, "addresses"),
    ("family-5", V3, dict(family=5, src=SRC4, dst=IPV4_MCAST_GROUP), "family"),
    ("family-socket-constant", V3, dict(family=2, src=SRC4, dst=IPV4_MCAST_GROUP), "family"),
    ("v3-auth-type", replace(V3, auth_type=AUTH_PASS), KW4, "auth_type"),
    ("v3-auth-data", replace(V3, auth_data=b"secret"), KW4, "auth_data"),
    ("v2-ipv6-auth-data", Advert(2, 1, 100, 100, ("2001:db8::10",), AUTH_PASS, b"secret"), KW6, "auth_data"),
    ("v2-auth-type-256", replace(V2, auth_type=256), KW4, "auth_type"),
    ("v3-ipv4-without-src", V3, dict(family=4, dst=IPV4_MCAST_GROUP), "src"),
    ("v3-ipv4-without-dst", V3, dict(family=4, src=SRC4), "dst"),
    ("v3-ipv6-without-src", V3_6, dict(family=6, dst=IPV6_MCAST_GROUP), "src"),
    ("v3-ipv6-without-dst", V3_6, dict(family=6, src=SRC6), "dst"),
    ("ipv6-src-for-ipv4", V3, dict(family=4, src=SRC6, dst=IPV4_MCAST_GROUP), "src"),
]


@pytest.mark.parametrize("name, advert, kwargs, field", ENCODE_ERRORS, ids=[c[0] for c in ENCODE_ERRORS])
def test_encode_advert_rejects_bad_arguments_naming_the_field(name, advert, kwargs, field):
    with pytest.raises(ValueError) as error:
        encode_advert(advert, **kwargs)
    assert not isinstance(error.value, PacketError)
    assert str(error.value).startswith(f"{field}:")


def test_v2_and_rfc_form_need_no_addresses_for_checksum():
    assert decode_advert(encode_advert(V2, family=4), family=4, src=SRC4, dst=IPV4_MCAST_GROUP).vrid == 1
    message = encode_advert(V3, family=4, v3_checksum_as_v2=True)
    assert decode_advert(message, family=4, src=SRC4, dst=PEER4).checksum_form == "rfc"


def test_advert_rejects_a_single_string_as_addresses():
    with pytest.raises(ValueError, match="^addresses:"):
        Advert(3, 1, 100, 100, "198.51.100.10")


def test_advert_addresses_list_becomes_tuple():
    assert Advert(3, 1, 100, 100, ["198.51.100.10"]).addresses == ("198.51.100.10",)


@pytest.mark.parametrize(
    "auth_data, on_wire",
    [(b"", bytes(8)), (b"abc", b"abc" + bytes(5)), (b"12345678", b"12345678"), (b"0123456789", b"01234567")],
)
def test_v2_auth_data_is_padded_or_truncated_to_8_bytes(auth_data, on_wire):
    message = encode_advert(replace(V2, auth_type=AUTH_PASS, auth_data=auth_data), family=4)
    assert message[-8:] == on_wire
    assert decode_advert(message, family=4, src=SRC4, dst=IPV4_MCAST_GROUP).auth_data == on_wire


@pytest.mark.parametrize(
    "password, auth_data",
    [("secret", b"secret\0\0"), ("hapass1", b"hapass1\0"), ("", bytes(8)), ("longpassword", b"longpass"),
     ("pässwörd", "pässwörd".encode()[:8])],
)
def test_password_bytes(password, auth_data):
    assert password_bytes(password) == auth_data


def test_v3_reserved_bits_are_ignored():
    message = bytearray(encode_advert(V3, family=4, v3_checksum_as_v2=True))
    message[4] |= 0xF0
    message[6:8] = struct.pack("!H", internet_checksum(bytes(message[:6]) + b"\0\0" + bytes(message[8:])))
    assert decode_advert(bytes(message), family=4, src=SRC4, dst=IPV4_MCAST_GROUP).max_advert_int_cs == 100


def test_decode_accepts_bytearray_and_memoryview():
    message = bytes.fromhex(GOLDEN[0][1])
    for view in (bytearray(message), memoryview(message)):
        assert decode_advert(view, family=4, src=SRC4, dst=IPV4_MCAST_GROUP).vrid == 1


# --- checksums and the IPv4 header ---------------------------------------------------------------------


def test_internet_checksum_rfc1071_example():
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


def test_internet_checksum_odd_length_and_chaining():
    assert internet_checksum(b"\x01") == internet_checksum(b"\x01\x00") == 0xFEFF
    head, tail = bytes.fromhex("0001f203"), bytes.fromhex("f4f5f6f7")
    assert internet_checksum(tail, ones_complement_sum(head)) == 0x220D
    assert internet_checksum(b"") == 0xFFFF


def test_encode_ipv4_matches_scapy():
    payload = bytes.fromhex(GOLDEN[2][1])
    ours = encode_ipv4(payload, src=SRC4, dst=IPV4_MCAST_GROUP)
    theirs = raw(IP(src=SRC4, dst=IPV4_MCAST_GROUP, ttl=255, tos=0xC0, id=0, flags=0, proto=112) / payload)
    assert ours == theirs
    assert ours[:20].hex() == "45c0002400000000ff70b062c6336401e0000012"
    assert internet_checksum(ours[:20]) == 0


def test_decode_ipv4_round_trip_and_options_and_trailing_bytes():
    payload = bytes.fromhex(GOLDEN[0][1])
    datagram = encode_ipv4(payload, src=SRC4, dst=PEER4, ttl=64, tos=0, ident=0xBEEF, protocol=51)
    header, body = decode_ipv4(datagram + b"trailer")
    assert header == Ipv4Header(4, 5, 0, 20 + len(payload), 0xBEEF, 64, 51, SRC4, PEER4)
    assert body == payload
    options = b"\x01" * 4  # four NOPs
    header_with_options = bytes([0x46]) + datagram[1:2] + struct.pack("!H", 24 + len(payload)) + datagram[4:20]
    with_options = header_with_options + options + payload
    header, body = decode_ipv4(with_options)
    assert (header.ihl, body) == (6, payload)


@pytest.mark.parametrize("field, kwargs", [("ttl", dict(ttl=256)), ("tos", dict(tos=-1)), ("ident", dict(ident=65536)),
                                           ("protocol", dict(protocol=300)), ("src", dict(src="2001:db8::1"))])
def test_encode_ipv4_rejects_bad_arguments(field, kwargs):
    arguments = dict(src=SRC4, dst=PEER4) | kwargs
    with pytest.raises(ValueError, match=f"^{field}:"):
        encode_ipv4(b"", **arguments)


def test_encode_ipv4_rejects_oversized_payload():
    with pytest.raises(ValueError, match="^payload:"):
        encode_ipv4(bytes(65516), src=SRC4, dst=PEER4)


# --- properties ------------------------------------------------------------------------------------------

ipv4_text = st.ip_addresses(v=4).map(str)
ipv6_text = st.ip_addresses(v=6).map(str)


@st.composite
def adverts(draw):
    family = draw(st.sampled_from([4, 6]))
    version = draw(st.sampled_from([2, 3]))
    addresses = tuple(draw(st.lists(ipv4_text if family == 4 else ipv6_text, max_size=20)))
    if version == 2:
        interval_cs = draw(st.integers(1, 255)) * 100
        auth_type = draw(st.integers(0, 255))
        auth_data = draw(st.binary(min_size=8, max_size=8)) if family == 4 else b""
    else:
        interval_cs, auth_type, auth_data = draw(st.integers(1, 4095)), 0, b""
    advert = Advert(version, draw(st.integers(1, 255)), draw(st.integers(0, 255)), interval_cs, addresses,
                    auth_type, auth_data)
    return family, advert


@given(adverts(), ipv4_text, ipv4_text, ipv6_text, st.booleans())
def test_encode_decode_round_trip(family_advert, src4, dst4, src6, as_v2):
    family, advert = family_advert
    src, dst = (src4, dst4) if family == 4 else (src6, IPV6_MCAST_GROUP)
    message = encode_advert(advert, family=family, src=src, dst=dst, v3_checksum_as_v2=as_v2)
    decoded = decode_advert(message, family=family, src=src, dst=dst)
    assert replace(decoded, checksum_form="rfc") == advert
    if family == 6:
        assert decoded.checksum_form == "ipv6"
    elif advert.version == 2:
        assert decoded.checksum_form == "rfc"
    else:
        assert decoded.checksum_form in {"pseudo", "rfc"}  # a pseudo-header summing to zero verifies both ways


def only_packet_errors(call) -> None:
    try:
        call()
    except PacketError as error:
        assert error.counter in {"packet_len_err", "vers_err", "invalid_type_rcvd", "chk_err"}


@settings(max_examples=500)
@given(st.binary(max_size=300), st.sampled_from([4, 6]))
def test_decode_advert_arbitrary_bytes_raise_only_packet_error(data, family):
    src, dst = (SRC4, IPV4_MCAST_GROUP) if family == 4 else (SRC6, IPV6_MCAST_GROUP)
    only_packet_errors(lambda: decode_advert(data, family=family, src=src, dst=dst))


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_decode_ipv4_arbitrary_bytes_raise_only_packet_error(data):
    only_packet_errors(lambda: decode_ipv4(data))


VALID_MESSAGES = [(bytes.fromhex(c[1]), c[2], c[3], c[4]) for c in GOLDEN] + [
    (bytes.fromhex(r["vrrp_hex"]), r["family"], r["src"], r["dst"]) for r in CAPTURED
]


@st.composite
def mutated_messages(draw):
    message, family, src, dst = draw(st.sampled_from(VALID_MESSAGES))
    data = bytearray(message)
    for _mutation in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "truncate", "extend", "set"]))
        if action == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif action == "extend":
            data += draw(st.binary(min_size=1, max_size=40))
        elif action == "set" and data:
            data[draw(st.integers(0, min(7, len(data) - 1)))] = draw(st.integers(0, 255))
    return bytes(data), family, src, dst


@settings(max_examples=500)
@given(mutated_messages())
def test_decode_advert_mutated_packets_raise_only_packet_error(mutated):
    data, family, src, dst = mutated
    only_packet_errors(lambda: decode_advert(data, family=family, src=src, dst=dst))


@settings(max_examples=300)
@given(st.sampled_from([r for r in CAPTURED if r["family"] == 4]), st.binary(max_size=4),
       st.integers(0, 63), st.integers(0, 255))
def test_decode_ipv4_mutated_datagrams_raise_only_packet_error(record, tail, index, value):
    data = bytearray(bytes.fromhex(record["datagram_hex"]) + tail)
    data[index % len(data)] = value
    only_packet_errors(lambda: decode_ipv4(bytes(data)))
