"""A child's heartbeat as a time in shared memory (a memfd the supervisor maps too), instead of a message.

A message per beat cost both processes an event-loop wake-up, a JSON encode and decode and a socket write 4
times a second whatever else happened: most of what an idle agent spent (measured with one VRRP instance at
advert_int 1 s: ~2.5 ms of CPU per second per node). The child writes time.monotonic() (one clock for the
whole machine) into the page each time its event loop goes to sleep and wakes (daemon/beating.py); the
supervisor reads it when it judges (its watchdog, systemd's, status). The supervisor writes the limits the
child keeps to beside it: the watchdog timeout and the beat period (the longest the child's loop may sleep).
The first beat of a run is still a message: it says the child's imports are done and its loop runs.

The beat period is derived, not fixed: as long as the watchdog allows (half its timeout: a child whose loop
comes back from a sleep up to half the timeout late still counts as alive) and, under systemd's watchdog, no
longer than its ping interval (a frozen child holds the pings back: late_after_s)."""

from __future__ import annotations

import mmap
import os
import struct

PAGE = struct.Struct("=ddd")   # the child's last beat, the watchdog timeout, the beat period (seconds)
BEAT = struct.Struct("=d")
LIMITS = struct.Struct("=dd")
LATE_SLACK_S = 0.5   # a child that has not beaten for its beat period plus this is late (status, systemd)


def beat_period_s(timeout_s: float, systemd_interval_s: float | None) -> float:
    """The longest a child's event loop sleeps between two beats."""
    period_s = timeout_s / 2
    if systemd_interval_s:
        period_s = min(period_s, systemd_interval_s)
    return period_s


def late_after_s(period_s: float) -> float:
    """A child silent this long has missed a beat: it is frozen or busy (status shows its last answer)."""
    return period_s + LATE_SLACK_S


class BeatPage:
    def __init__(self, fd: int, close_fd: bool = True):
        self.map = mmap.mmap(fd, PAGE.size)
        if close_fd:
            os.close(fd)   # the mapping stays

    @classmethod
    def create(cls) -> tuple["BeatPage", int]:
        """(the supervisor's page, the descriptor to hand to the child, which the caller closes after)."""
        fd = os.memfd_create("hanode-beat", os.MFD_CLOEXEC)
        os.ftruncate(fd, PAGE.size)
        return cls(fd, close_fd=False), fd

    def write(self, monotonic_s: float) -> None:
        BEAT.pack_into(self.map, 0, monotonic_s)

    def read(self) -> float:
        return BEAT.unpack_from(self.map, 0)[0]

    def set_limits(self, timeout_s: float, period_s: float) -> None:
        LIMITS.pack_into(self.map, BEAT.size, timeout_s, period_s)

    def limits(self) -> tuple[float, float]:
        """(watchdog timeout, beat period) in seconds, as the supervisor set them."""
        return LIMITS.unpack_from(self.map, BEAT.size)

    def close(self) -> None:
        self.map.close()
