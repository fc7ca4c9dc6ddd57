"""Gratuitous ARP frames and unsolicited Neighbor Advertisements, as keepalived sends them.

Pure: bytes in, bytes out.

keepalived (vrrp_arp.c) sends a gratuitous ARP as a broadcast ARP *request*:
sender = target = the VIP, target hardware address ff:ff:ff:ff:ff:ff.
For IPv6 (vrrp_ndisc.c) it sends an unsolicited NA from the VIP to ff02::1,
hop limit 255, with the Override flag, the Router flag when the interface
forwards, and a target link-layer address option.
"""

from __future__ import annotations

import ipaddress
import re
import struct

from hanode.vrrp.packet import internet_checksum, ones_complement_sum, pack_address

BROADCAST_MAC = b"\xff" * 6
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV4 = 0x0800
ARP_HARDWARE_ETHERNET = 1
ARP_OP_REQUEST = 1

IPPROTO_ICMPV6 = 58
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136
NA_FLAG_ROUTER = 0x80
NA_FLAG_SOLICITED = 0x40
NA_FLAG_OVERRIDE = 0x20
ND_OPT_TARGET_LINK_LAYER_ADDRESS = 2
ALL_NODES = "ff02::1"

_MAC_TEXT = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def parse_mac(text: str) -> bytes:
    """'aa:bb:cc:dd:ee:ff' (or with '-') -> 6 bytes."""
    if not isinstance(text, str) or not _MAC_TEXT.match(text):
        raise ValueError(f"mac: {text!r} is not a MAC address like 02:00:00:00:00:01")
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


def format_mac(raw: bytes) -> str:
    """6 bytes -> 'aa:bb:cc:dd:ee:ff' (lower case)."""
    return ":".join(f"{octet:02x}" for octet in _checked_mac(raw))


def _checked_mac(raw: bytes) -> bytes:
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != 6:
        raise ValueError(f"mac: need 6 bytes, got {raw!r}")
    return bytes(raw)


def gratuitous_arp_frame(src_mac: bytes, ip: str) -> bytes:
    """Full 42-byte Ethernet frame: broadcast ARP request announcing ip at src_mac."""
    mac = _checked_mac(src_mac)
    address = pack_address(ip, 4, "ip")
    ethernet = BROADCAST_MAC + mac + struct.pack("!H", ETHERTYPE_ARP)
    arp = struct.pack("!HHBBH", ARP_HARDWARE_ETHERNET, ETHERTYPE_IPV4, 6, 4, ARP_OP_REQUEST)
    return ethernet + arp + mac + address + BROADCAST_MAC + address


def unsolicited_na(src_mac: bytes, ip6: str, *, router: bool = False) -> bytes:
    """ICMPv6 Neighbor Advertisement body for ip6 with checksum 0 (a raw ICMPv6 socket fills it)."""
    mac = _checked_mac(src_mac)
    target = pack_address(ip6, 6, "ip6")
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    message = struct.pack("!BBHB3x", ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0, flags) + target
    option = struct.pack("!BB", ND_OPT_TARGET_LINK_LAYER_ADDRESS, 1) + mac
    return message + option


def unsolicited_na_with_checksum(src_mac: bytes, ip6: str, *, src: str, router: bool = False) -> bytes:
    """unsolicited_na with the ICMPv6 checksum computed for src -> ff02::1."""
    body = unsolicited_na(src_mac, ip6, router=router)
    pseudo = (
        pack_address(src, 6, "src")
        + ipaddress.IPv6Address(ALL_NODES).packed
        + struct.pack("!I3xB", len(body), IPPROTO_ICMPV6)
    )
    checksum = internet_checksum(body, ones_complement_sum(pseudo))
    return body[:2] + struct.pack("!H", checksum) + body[4:]
