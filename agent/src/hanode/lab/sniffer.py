"""VRRP advert sniffer: `python -m hanode.lab.sniffer IFNAME` inside the switch namespace.

Reads every frame on IFNAME through an AF_PACKET socket and prints one JSON line per VRRP packet
(IP protocol 112, IPv4 or IPv6): {"t": monotonic seconds, "src", "dst", "vrid", "priority",
"version", "type"}. The first line is {"ready": true} once the socket is bound. Parsing is plain
struct, kept in `parse_frame` so it can be tested with bytes.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import sys
from typing import NamedTuple

VRRP_PROTO = 112
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
_IPV6_EXT_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options


class VrrpFrame(NamedTuple):
    src: str
    dst: str
    vrid: int
    priority: int
    version: int
    type: int


def _vrrp(src: bytes, dst: bytes, payload: bytes) -> VrrpFrame | None:
    if len(payload) < 4:
        return None
    return VrrpFrame(str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst)),
                     payload[1], payload[2], payload[0] >> 4, payload[0] & 0x0F)


def parse_frame(frame: bytes) -> VrrpFrame | None:
    """An Ethernet frame -> the VRRP header fields, or None when it is not VRRP."""
    if len(frame) < 14:
        return None
    offset = 12
    (ethertype,) = struct.unpack_from("!H", frame, offset)
    if ethertype == ETH_P_8021Q and len(frame) >= 18:
        offset += 4
        (ethertype,) = struct.unpack_from("!H", frame, offset)
    ip = frame[offset + 2:]
    if ethertype == ETH_P_IP and len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != VRRP_PROTO or ihl < 20:
            return None
        return _vrrp(ip[12:16], ip[16:20], ip[ihl:])
    if ethertype == ETH_P_IPV6 and len(ip) >= 40 and ip[0] >> 4 == 6:
        next_header, pos = ip[6], 40
        while next_header in _IPV6_EXT_HEADERS and len(ip) >= pos + 8:
            next_header, pos = ip[pos], pos + (ip[pos + 1] + 1) * 8
        if next_header != VRRP_PROTO:
            return None
        return _vrrp(ip[8:24], ip[24:40], ip[pos:])
    return None


def main(argv: list[str]) -> int:
    import socket
    import time

    ifname = argv[0]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    out = sys.stdout
    out.write(json.dumps({"ready": True, "ifname": ifname}) + "\n")
    out.flush()
    while True:
        frame, addr = sock.recvfrom(65535)
        now = time.monotonic()
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        seen = parse_frame(frame)
        if seen is not None:
            out.write(json.dumps({"t": now, **seen._asdict()}) + "\n")
            out.flush()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
