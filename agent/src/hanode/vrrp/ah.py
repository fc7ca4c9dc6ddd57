"""IPsec AH authentication of VRRPv2 adverts, as keepalived 2.2.7 sends and checks it (vrrp.c vrrp_build_ipsecah,
vrrp_update_pkt, vrrp_in_chk_ipsecah; RFC 2402 with HMAC-MD5-96). Pure: bytes in, bytes out.

    IPv4 header (protocol 51, ident = the advert's own 16-bit counter, never 0, so the kernel leaves it)
    AH: next header 112 | payload length 4 | reserved 0 | SPI = the sender's IPv4 address | sequence number |
        ICV (12 bytes)
    VRRPv2 message: auth type 2, its 8 auth bytes zero, checksum over the message as usual

ICV = HMAC-MD5 (key: the password as PASS carries it, 8 bytes NUL-padded) over the IPv4 header with TOS, flags /
fragment offset and header checksum zeroed (and the TTL too with unicast peers, which may be routed), then the AH
header with a zero ICV, then the VRRP message; its first 12 bytes are sent. A receiver checks the ICV, that the
SPI is the source address, and that the sequence number is above the last it accepted (replays are dropped)."""

from __future__ import annotations

import struct

from hanode.vrrp.packet import IPV4_HEADER_LEN, VRRP_PROTO, PacketError, encode_ipv4, pack_address

AH_PROTO = 51
AH_LEN = 24
ICV_LEN = 12
PAYLOAD_LEN = 4          # RFC 2402: AH length in 32-bit words minus 2
_AH = struct.Struct("!BBH4sI")


def _icv(ip_header: bytes, ah_without_icv: bytes, message: bytes, key: bytes, unicast: bool) -> bytes:
    header = bytearray(ip_header)
    header[1] = 0                    # TOS
    header[6:8] = b"\x00\x00"        # flags, fragment offset
    header[10:12] = b"\x00\x00"      # header checksum
    if unicast:
        header[8] = 0                # TTL
    data = bytes(header) + ah_without_icv + bytes(ICV_LEN) + message
    return _hmac_md5(key, data)[:ICV_LEN]


def _hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC-MD5, its modules imported on first use: hashlib loads OpenSSL's libcrypto (~0.4 MB private, and its
    share of the library's pages), which a VRRP process without AH authentication does without."""
    import hashlib  # pylint: disable=import-outside-toplevel
    import hmac  # pylint: disable=import-outside-toplevel

    return hmac.new(key, data, hashlib.md5).digest()


def encode_ah_datagram(message: bytes, *, src: str, dst: str, ttl: int, seq: int, key: bytes,
                       unicast: bool) -> bytes:
    """The whole IPv4 datagram (for IP_HDRINCL) of a VRRPv2 message authenticated with AH."""
    ident = seq & 0xFFFF or 1
    ah = _AH.pack(VRRP_PROTO, PAYLOAD_LEN, 0, pack_address(src, 4, "src"), seq)
    datagram = encode_ipv4(ah + bytes(ICV_LEN) + message, src=src, dst=dst, ttl=ttl, ident=ident, protocol=AH_PROTO)
    icv = _icv(datagram[:IPV4_HEADER_LEN], ah, message, key, unicast)
    return datagram[:IPV4_HEADER_LEN] + ah + icv + message


def split_ah(payload: bytes) -> tuple[bytes, bytes]:
    """An AH datagram's payload -> (AH header, VRRP message); PacketError when it is not AH over VRRP."""
    if len(payload) < AH_LEN:
        raise PacketError("packet_len_err", f"AH header too short: {len(payload)} bytes")
    if payload[0] != VRRP_PROTO:
        raise PacketError("invalid_type_rcvd", f"AH for protocol {payload[0]}, not VRRP")
    return payload[:AH_LEN], payload[AH_LEN:]


def _same(a: bytes, b: bytes) -> bool:
    """Compared in constant time (hmac.compare_digest; hmac is imported by then: _hmac_md5)."""
    import hmac  # pylint: disable=import-outside-toplevel

    return hmac.compare_digest(a, b)


def check_ah(ip_header: bytes, ah: bytes, message: bytes, *, src: str, key: bytes, unicast: bool,
             last_seq: int) -> int:
    """The advert's sequence number when its AH holds (ICV, SPI = source, above last_seq); else PacketError
    with keepalived's counter (auth_failure)."""
    _next, _length, _reserved, spi, seq = _AH.unpack_from(ah)
    expected = _icv(ip_header, ah[:AH_LEN - ICV_LEN], message, key, unicast)
    if not _same(expected, ah[AH_LEN - ICV_LEN:AH_LEN]):
        raise PacketError("auth_failure", "AH: invalid HMAC-MD5 (wrong password or a changed packet)")
    if spi != pack_address(src, 4, "src"):
        raise PacketError("auth_failure", f"AH: SPI {spi.hex()} is not the source address {src}")
    if seq <= last_seq:
        raise PacketError("auth_failure", f"AH: sequence number {seq} already seen (last {last_seq}): a replay")
    return seq
