"""VRRP advert sniffer: `python -m hanode.lab.sniffer IFNAME` inside the switch namespace.

Reads every frame on IFNAME through an AF_PACKET socket and prints one JSON line per VRRP packet
(IP protocol 112, IPv4 or IPv6): {"t", "t_kernel_ns", "t_error_ns", "t_read", "stamp", "src_mac", "ttl", "src",
"dst", "vrid", "priority", "version", "type"}. The first line is {"ready": true, "ifname", "timestamps": "kernel"} once the
socket is bound.

Timestamps. The socket asks for the kernel's software receive timestamp (SO_TIMESTAMPNS_NEW): the time the
frame entered the switch namespace's network stack, before any queueing towards this process. So a busy
machine delaying this Python process (4-7 ms p95 on the shared 2-core box) no longer moves the stamps; they
are the ones tcpdump writes to a pcap.

- "t_kernel_ns": that kernel stamp as the kernel gives it, CLOCK_REALTIME in integer nanoseconds.
- "t": the same instant on CLOCK_MONOTONIC in float seconds, i.e. comparable with time.monotonic() in any
  process of the machine (namespaces share the clock). Converted with realtime - monotonic taken once per
  batch of frames read together: time.clock_gettime_ns reads realtime between two monotonic readings, a few
  times if this process was preempted in between, and the narrowest bracket's middle gives the offset.
  A step of the realtime clock between a frame's arrival and the batch's reading would shift that frame's
  "t" by the step; NTP slewing is parts per million, i.e. nothing over a batch.
- "t_error_ns": half that bracket, the most the conversion can be off by (typically 100-200 ns).
- "t_read": time.monotonic() when this process read the batch (t <= t_read; the difference is the read lag).
- "stamp": "kernel", or "read" for a frame the kernel gave no timestamp for (then t = t_read).

Parsing is plain struct, kept in `parse_frame` / `record` (and hanode.kernel_time) so it can be tested with bytes.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import sys
from collections.abc import Iterable
from typing import NamedTuple

from hanode.kernel_time import SO_TIMESTAMPNS_NEW, SOL_SOCKET, TIMESPEC, kernel_time_ns

VRRP_PROTO = 112
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
BATCH_MAX = 64  # frames read back to back before the JSON lines are written
# Reading realtime between two monotonic readings takes well under a microsecond unless this process is
# preempted in the middle (seen: 12 ms on the loaded 2-core machine). Take the narrowest of a few tries.
OFFSET_BRACKET_NS = 20_000
OFFSET_TRIES = 8
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


def clock_offset_ns(readings: Iterable[tuple[int, int, int]]) -> tuple[int, int]:
    """CLOCK_REALTIME - CLOCK_MONOTONIC from (monotonic, realtime, monotonic) readings taken back to back.

    The narrowest bracket wins (a reading this process was preempted in the middle of is as wide as the
    preemption); returns its middle's offset and half its width, the most that offset can be wrong by."""
    before, real, after = min(readings, key=lambda r: r[2] - r[0])
    if after < before:
        raise ValueError(f"monotonic clock went back from {before} to {after} ns")
    return real - (before + after) // 2, (after - before + 1) // 2


def frame_extras(frame: bytes) -> dict:
    """The Ethernet source and the IP TTL / hop limit of a VRRP frame (parse_frame said it is one)."""
    offset = 16 if frame[12:14] == b"\x81\x00" else 12
    ip = frame[offset + 2:]
    ttl = ip[8] if ip[0] >> 4 == 4 else ip[7]
    return {"src_mac": frame[6:12].hex(":"), "ttl": ttl}


def record(seen: VrrpFrame, kernel_ns: int | None, offset: tuple[int, int], read_mono_ns: int,
           extras: dict | None = None) -> dict:
    """The JSON line of one VRRP frame; `t` is monotonic seconds (the kernel stamp, converted, if there is one).

    `offset` is clock_offset_ns()'s (offset, error bound); extras: frame_extras()."""
    offset_ns, error_ns = offset
    if kernel_ns is None:
        t_ns, stamp, error_ns = read_mono_ns, "read", 0
    else:
        t_ns, stamp = kernel_ns - offset_ns, "kernel"
    return {"t": t_ns / 1e9, "t_kernel_ns": kernel_ns, "t_error_ns": error_ns, "t_read": read_mono_ns / 1e9,
            "stamp": stamp, **(extras or {}), **seen._asdict()}


def main(argv: list[str]) -> int:
    import socket
    import time

    def read_batch(sock: socket.socket) -> list[tuple[bytes, list]]:
        """Blocks for one frame, then takes whatever else is already queued (up to BATCH_MAX)."""
        batch, flags = [], 0
        while len(batch) < BATCH_MAX:
            try:
                frame, ancdata, _msg_flags, addr = sock.recvmsg(65535, socket.CMSG_SPACE(TIMESPEC.size), flags)
            except BlockingIOError:
                break
            flags = socket.MSG_DONTWAIT
            if addr[2] != socket.PACKET_OUTGOING:
                batch.append((frame, ancdata))
        return batch

    def offset_now() -> tuple[int, int]:
        readings = []
        for _attempt in range(OFFSET_TRIES):
            mono_before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            real = time.clock_gettime_ns(time.CLOCK_REALTIME)
            readings.append((mono_before, real, time.clock_gettime_ns(time.CLOCK_MONOTONIC)))
            if readings[-1][2] - mono_before <= OFFSET_BRACKET_NS:
                break
        return clock_offset_ns(readings)

    ifname = argv[0]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_SOCKET, SO_TIMESTAMPNS_NEW, 1)
    sock.bind((ifname, 0))
    out = sys.stdout
    out.write(json.dumps({"ready": True, "ifname": ifname, "timestamps": "kernel"}) + "\n")
    out.flush()
    while True:
        batch = read_batch(sock)
        read_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        offset = offset_now()
        lines = []
        for frame, ancdata in batch:
            seen = parse_frame(frame)
            if seen is not None:
                lines.append(json.dumps(record(seen, kernel_time_ns(ancdata), offset, read_ns,
                                               frame_extras(frame))) + "\n")
        if lines:
            out.write("".join(lines))
            out.flush()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
