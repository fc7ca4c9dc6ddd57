"""The kernel's receive timestamp of a packet (pure: struct only), for every socket that asks for one.

A socket with SO_TIMESTAMPNS_NEW set gets, with each packet read by recvmsg(), a control message holding
the time the packet entered the network stack (CLOCK_REALTIME, struct __kernel_timespec): before any
queueing towards the reading process, so the process's own scheduling delay is not in it.
Used by the VRRP process (timers start at an advert's arrival) and the lab's sniffer.
"""

from __future__ import annotations

import struct

SOL_SOCKET = 1
SO_TIMESTAMPNS_NEW = 64        # asm-generic/socket.h; its control message has the same type
TIMESPEC = struct.Struct("=qq")  # struct __kernel_timespec: 64-bit seconds and nanoseconds on every ABI


class TimestampError(ValueError):
    """A receive timestamp control message that is not a struct __kernel_timespec."""


def timespec_ns(data: bytes) -> int:
    """The SO_TIMESTAMPNS_NEW control message (struct __kernel_timespec) -> integer nanoseconds."""
    if len(data) < TIMESPEC.size:
        raise TimestampError(f"SO_TIMESTAMPNS_NEW control message of {len(data)} bytes, "
                             f"expected {TIMESPEC.size} (struct __kernel_timespec)")
    sec, nsec = TIMESPEC.unpack_from(data)
    if not 0 <= nsec < 1_000_000_000:
        raise TimestampError(f"SO_TIMESTAMPNS_NEW control message: tv_nsec {nsec} out of 0..999999999")
    return sec * 1_000_000_000 + nsec


def kernel_time_ns(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's receive timestamp (CLOCK_REALTIME ns) among recvmsg()'s control messages, if any."""
    for level, kind, data in ancdata:
        if level == SOL_SOCKET and kind == SO_TIMESTAMPNS_NEW:
            return timespec_ns(data)
    return None
