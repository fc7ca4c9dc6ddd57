"""VRRP v2/v3 advertisement codec and IPv4 header codec.

Pure: bytes in, objects out. No sockets, no clock. A packet that fails a
receive check raises PacketError carrying the keepalived counter it belongs to;
bad *arguments* (a programming error) raise plain ValueError naming the field.

Wire formats (RFC 3768, RFC 5798/9568, and keepalived 2.2.x behaviour):

    v2: ver=2|type | vrid | priority | count | auth type | advert int (s) | checksum
        count x IPv4 address, then 8 auth bytes (IPv4 only; keepalived's v2 over
        IPv6 carries no auth bytes)
    v3: ver=3|type | vrid | priority | count | rsvd(4) + max advert int (12, cs) | checksum
        count x IPv4 or IPv6 address

Checksum forms (Advert.checksum_form):
    "rfc"           plain checksum over the VRRP message (v2; v3 IPv4 per RFC 9568)
    "pseudo"        IPv4 pseudo-header with the real destination (keepalived's v3 IPv4 form)
    "pseudo_mcast"  IPv4 pseudo-header with 224.0.0.18 as destination (keepalived's
                    `old_unicast_checksum` form for unicast peers)
    "ipv6"          RFC 8200 IPv6 pseudo-header (v2 and v3 over IPv6)
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

VRRP_PROTO = 112
IPV4_MCAST_GROUP = "224.0.0.18"
IPV6_MCAST_GROUP = "ff02::12"
AUTH_NONE, AUTH_PASS, AUTH_AH = 0, 1, 2

ADVERT_TYPE = 1
HEADER_LEN = 8
AUTH_DATA_LEN = 8
IPV4_HEADER_LEN = 20
V3_INTERVAL_MASK = 0x0FFF
CHECKSUM_FORMS = ("rfc", "pseudo", "pseudo_mcast", "ipv6")


class PacketError(ValueError):
    """A received packet failed a check; `counter` is the keepalived counter name."""

    def __init__(self, counter: str, message: str):
        super().__init__(message)
        self.counter = counter
        self.message = message


@dataclass(frozen=True)
class Advert:
    version: int
    vrid: int
    priority: int
    max_advert_int_cs: int
    addresses: tuple[str, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""
    checksum_form: str = "rfc"  # reported by decode_advert; encode_advert ignores it

    def __post_init__(self) -> None:
        if isinstance(self.addresses, str):
            raise ValueError("addresses: must be a sequence of address strings, not one string")
        if not isinstance(self.addresses, tuple):
            object.__setattr__(self, "addresses", tuple(self.addresses))


@dataclass(frozen=True)
class Ipv4Header:
    version: int
    ihl: int
    tos: int
    total_length: int
    ident: int
    ttl: int
    protocol: int
    src: str
    dst: str


# --- checksums -------------------------------------------------------------


def ones_complement_sum(data: bytes, initial: int = 0) -> int:
    """16-bit one's-complement sum of data (odd length padded with a zero byte)."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    total = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 checksum. `initial` is a partial sum of preceding data (ones_complement_sum).

    A message whose checksum field is correct checksums to 0.
    """
    return ~ones_complement_sum(data, initial) & 0xFFFF


def _checksum_verifies(pseudo_header: bytes, message: bytes) -> bool:
    return internet_checksum(message, ones_complement_sum(pseudo_header)) == 0


def _ipv4_pseudo_header(src: bytes, dst: bytes, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, VRRP_PROTO, length)


def _ipv6_pseudo_header(src: bytes, dst: bytes, length: int, next_header: int = VRRP_PROTO) -> bytes:
    return src + dst + struct.pack("!I3xB", length, next_header)


# --- addresses -------------------------------------------------------------


def _address_size(family: int) -> int:
    if family == 4:
        return 4
    if family == 6:
        return 16
    raise ValueError(f"family: must be 4 or 6, got {family!r}")


def pack_address(text: str, family: int, field: str = "address") -> bytes:
    """IPv4/IPv6 text -> packed bytes; ValueError naming `field` if it is not of `family`."""
    _address_size(family)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not an IP address") from None
    if address.version != family:
        raise ValueError(f"{field}: {text!r} is not an IPv{family} address")
    return address.packed


def _unpack_addresses(raw: bytes, size: int) -> tuple[str, ...]:
    return tuple(str(ipaddress.ip_address(raw[i : i + size])) for i in range(0, len(raw), size))


def password_bytes(password: str) -> bytes:
    """keepalived PASS auth data: utf-8, truncated to 8 bytes, NUL padded to 8."""
    return password.encode("utf-8")[:AUTH_DATA_LEN].ljust(AUTH_DATA_LEN, b"\x00")


# --- VRRP encode ------------------------------------------------------------


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{field}: must be an integer in {low}..{high}, got {value!r}")


def _validate_advert(advert: Advert, family: int) -> None:
    _address_size(family)
    if advert.version not in (2, 3):
        raise ValueError(f"version: must be 2 or 3, got {advert.version!r}")
    _check_range("vrid", advert.vrid, 1, 255)
    _check_range("priority", advert.priority, 0, 255)
    if advert.version == 2:
        _check_range("max_advert_int_cs", advert.max_advert_int_cs, 100, 25500)
        if advert.max_advert_int_cs % 100:
            raise ValueError(f"max_advert_int_cs: VRRPv2 needs whole seconds, got {advert.max_advert_int_cs} cs")
        _check_range("auth_type", advert.auth_type, 0, 255)
    else:
        _check_range("max_advert_int_cs", advert.max_advert_int_cs, 1, V3_INTERVAL_MASK)
        if advert.auth_type != AUTH_NONE:
            raise ValueError("auth_type: VRRPv3 has no authentication")
    if not isinstance(advert.auth_data, (bytes, bytearray)):
        raise ValueError("auth_data: must be bytes")
    if advert.auth_data and not (advert.version == 2 and family == 4):
        raise ValueError("auth_data: only VRRPv2 over IPv4 carries auth data")
    if len(advert.addresses) > 255:
        raise ValueError(f"addresses: at most 255, got {len(advert.addresses)}")


def _pack_header(advert: Advert) -> bytes:
    """The 8-byte header with a zero checksum."""
    vers_type = (advert.version << 4) | ADVERT_TYPE
    count = len(advert.addresses)
    if advert.version == 2:
        interval_s = advert.max_advert_int_cs // 100
        return struct.pack("!BBBBBBH", vers_type, advert.vrid, advert.priority, count, advert.auth_type, interval_s, 0)
    return struct.pack("!BBBBHH", vers_type, advert.vrid, advert.priority, count, advert.max_advert_int_cs, 0)


def _required(value: str | None, field: str, why: str) -> str:
    if value is None:
        raise ValueError(f"{field}: required for {why}")
    return value


def _encode_pseudo_header(
    version: int, family: int, src: str | None, dst: str | None, length: int, v3_checksum_as_v2: bool
) -> bytes:
    if family == 6:
        why = "the IPv6 pseudo-header"
        src6 = pack_address(_required(src, "src", why), 6, "src")
        dst6 = pack_address(_required(dst, "dst", why), 6, "dst")
        return _ipv6_pseudo_header(src6, dst6, length)
    if version == 2 or v3_checksum_as_v2:
        return b""
    why = "the VRRPv3 IPv4 pseudo-header (or pass v3_checksum_as_v2=True)"
    src4 = pack_address(_required(src, "src", why), 4, "src")
    dst4 = pack_address(_required(dst, "dst", why), 4, "dst")
    return _ipv4_pseudo_header(src4, dst4, length)


def encode_advert(
    advert: Advert,
    *,
    family: int,
    src: str | None = None,
    dst: str | None = None,
    v3_checksum_as_v2: bool = False,
) -> bytes:
    """The VRRP message (what follows the IP header), checksum filled in.

    v3 over IPv4 uses keepalived's pseudo-header form unless v3_checksum_as_v2
    (RFC 9568). IPv6 always uses the IPv6 pseudo-header. advert.checksum_form is
    not consulted: the form is chosen by family, version and v3_checksum_as_v2.
    """
    _validate_advert(advert, family)
    addresses = b"".join(pack_address(a, family, "addresses") for a in advert.addresses)
    auth = b""
    if advert.version == 2 and family == 4:
        auth = bytes(advert.auth_data[:AUTH_DATA_LEN]).ljust(AUTH_DATA_LEN, b"\x00")
    message = _pack_header(advert) + addresses + auth
    pseudo = _encode_pseudo_header(advert.version, family, src, dst, len(message), v3_checksum_as_v2)
    checksum = internet_checksum(message, ones_complement_sum(pseudo))
    return message[:6] + struct.pack("!H", checksum) + message[8:]


# --- VRRP decode ------------------------------------------------------------


def _expected_length(version: int, family: int, count: int) -> int:
    auth = AUTH_DATA_LEN if version == 2 and family == 4 else 0
    return HEADER_LEN + count * _address_size(family) + auth


def _candidate_checksum_forms(
    version: int, family: int, src: bytes, dst: bytes, length: int
) -> list[tuple[str, bytes]]:
    """(form name, pseudo-header) pairs a receiver accepts, most likely first."""
    if family == 6:
        return [("ipv6", _ipv6_pseudo_header(src, dst, length))]
    if version == 2:
        return [("rfc", b"")]
    forms = [("pseudo", _ipv4_pseudo_header(src, dst, length)), ("rfc", b"")]
    mcast_group = ipaddress.IPv4Address(IPV4_MCAST_GROUP).packed
    if dst != mcast_group:
        forms.append(("pseudo_mcast", _ipv4_pseudo_header(src, mcast_group, length)))
    return forms


def _verified_checksum_form(message: bytes, version: int, family: int, src: bytes, dst: bytes) -> str:
    for form, pseudo in _candidate_checksum_forms(version, family, src, dst, len(message)):
        if _checksum_verifies(pseudo, message):
            return form
    raise PacketError("chk_err", f"invalid VRRPv{version} checksum")


def _check_header(payload: bytes, family: int) -> tuple[int, int]:
    """Length, version, type and exact-length checks; returns (version, count)."""
    if len(payload) < HEADER_LEN:
        raise PacketError("packet_len_err", f"VRRP message too short: {len(payload)} bytes, need {HEADER_LEN}")
    version, packet_type = payload[0] >> 4, payload[0] & 0x0F
    if version not in (2, 3):
        raise PacketError("vers_err", f"invalid VRRP version {version}")
    if packet_type != ADVERT_TYPE:
        raise PacketError("invalid_type_rcvd", f"invalid VRRP packet type {packet_type}")
    count = payload[3]
    expected = _expected_length(version, family, count)
    if len(payload) != expected:
        raise PacketError(
            "packet_len_err",
            f"VRRPv{version} length {len(payload)} does not match {count} address(es): expected {expected}",
        )
    return version, count


def decode_advert(payload: bytes, *, family: int, src: str, dst: str) -> Advert:
    """Decode and check one VRRP message received from src to dst.

    Raises PacketError (and nothing else) for any payload bytes; ValueError only
    for bad arguments (family, src, dst).
    """
    size = _address_size(family)
    src_raw = pack_address(src, family, "src")
    dst_raw = pack_address(dst, family, "dst")
    payload = bytes(payload)
    version, count = _check_header(payload, family)
    form = _verified_checksum_form(payload, version, family, src_raw, dst_raw)
    vrid, priority = payload[1], payload[2]
    addresses = _unpack_addresses(payload[HEADER_LEN : HEADER_LEN + count * size], size)
    if version == 3:
        interval_cs = struct.unpack_from("!H", payload, 4)[0] & V3_INTERVAL_MASK
        return Advert(3, vrid, priority, interval_cs, addresses, checksum_form=form)
    auth_data = payload[-AUTH_DATA_LEN:] if family == 4 else b""
    return Advert(2, vrid, priority, payload[5] * 100, addresses, payload[4], auth_data, form)


# --- IPv4 header ------------------------------------------------------------


def decode_ipv4(datagram: bytes) -> tuple[Ipv4Header, bytes]:
    """Raw-socket recvfrom data -> (header, payload). The header checksum is not checked
    (the kernel drops datagrams with a bad one before a raw socket sees them)."""
    datagram = bytes(datagram)
    if len(datagram) < IPV4_HEADER_LEN:
        raise PacketError("packet_len_err", f"IPv4 datagram too short: {len(datagram)} bytes")
    version, ihl = datagram[0] >> 4, datagram[0] & 0x0F
    if version != 4:
        raise PacketError("vers_err", f"not an IPv4 datagram (version {version})")
    header_len = ihl * 4
    if ihl < 5 or header_len > len(datagram):
        raise PacketError("packet_len_err", f"bad IPv4 header length {header_len} for {len(datagram)} bytes")
    tos, total_length, ident, _frag, ttl, protocol, _csum, src, dst = struct.unpack_from(
        "!xBHHHBBH4s4s", datagram
    )
    if not header_len <= total_length <= len(datagram):
        raise PacketError(
            "packet_len_err", f"IPv4 total length {total_length} outside {header_len}..{len(datagram)}"
        )
    header = Ipv4Header(
        version, ihl, tos, total_length, ident, ttl, protocol,
        str(ipaddress.IPv4Address(src)), str(ipaddress.IPv4Address(dst)),
    )
    return header, datagram[header_len:total_length]


def encode_ipv4(
    payload: bytes,
    *,
    src: str,
    dst: str,
    ttl: int = 255,
    tos: int = 0xC0,
    ident: int = 0,
    protocol: int = VRRP_PROTO,
) -> bytes:
    """20-byte IPv4 header (checksum computed, DF clear) + payload, for IP_HDRINCL sockets."""
    _check_range("ttl", ttl, 0, 255)
    _check_range("tos", tos, 0, 255)
    _check_range("ident", ident, 0, 0xFFFF)
    _check_range("protocol", protocol, 0, 255)
    total_length = IPV4_HEADER_LEN + len(payload)
    if total_length > 0xFFFF:
        raise ValueError(f"payload: {len(payload)} bytes does not fit an IPv4 datagram")
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, tos, total_length, ident, 0, ttl, protocol, 0,
        pack_address(src, 4, "src"), pack_address(dst, 4, "dst"),
    )
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + bytes(payload)
