"""A child's dead man's switch: a timerfd (CLOCK_MONOTONIC) that the supervisor watches and the child re-arms.

The child moves the alarm on while its event loop runs (daemon/beating.py); the supervisor's loop only wakes
when it goes off, which a healthy child never lets happen. No one polls: an idle agent's supervisor sleeps.
timerfd_create(2) through os (Python 3.13+) or the C library."""

from __future__ import annotations

import os

CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
NS_PER_S = 1_000_000_000


class _LibcTimerfd:
    """timerfd_create / timerfd_settime from the C library (Python before 3.13)."""

    def __init__(self) -> None:
        import ctypes  # pylint: disable=import-outside-toplevel

        class Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        class Itimerspec(ctypes.Structure):
            _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]

        libc = ctypes.CDLL(None, use_errno=True)
        self._create, self._settime = libc.timerfd_create, libc.timerfd_settime
        self._create.argtypes = [ctypes.c_int, ctypes.c_int]
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(Itimerspec), ctypes.c_void_p]
        self._spec = Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._errno = ctypes.get_errno

    def create(self) -> int:
        fd = self._create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            raise OSError(self._errno(), "timerfd_create failed")
        return fd

    def arm_at(self, fd: int, at_ns: int) -> None:
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = divmod(at_ns, NS_PER_S)
        if self._settime(fd, TFD_TIMER_ABSTIME, self._spec_ref, None) < 0:
            raise OSError(self._errno(), "timerfd_settime failed")


class _OsTimerfd:
    """os.timerfd_* (Python 3.13+)."""

    @staticmethod
    def create() -> int:
        return os.timerfd_create(CLOCK_MONOTONIC, flags=TFD_NONBLOCK | TFD_CLOEXEC)  # pylint: disable=no-member

    @staticmethod
    def arm_at(fd: int, at_ns: int) -> None:
        os.timerfd_settime_ns(fd, flags=TFD_TIMER_ABSTIME, initial=at_ns)  # pylint: disable=no-member


_TIMERFD: _LibcTimerfd | _OsTimerfd | None = None


def _timerfd() -> _LibcTimerfd | _OsTimerfd:
    global _TIMERFD  # pylint: disable=global-statement
    if _TIMERFD is None:
        _TIMERFD = _OsTimerfd() if hasattr(os, "timerfd_create") else _LibcTimerfd()
    return _TIMERFD


class Alarm:
    """One timerfd. arm_at(t): goes off (readable) at time.monotonic() == t, unless armed again before."""

    def __init__(self, fd: int | None = None):
        self.fd = _timerfd().create() if fd is None else fd

    def fileno(self) -> int:
        return self.fd

    def arm_at(self, monotonic_s: float) -> None:
        _timerfd().arm_at(self.fd, max(1, round(monotonic_s * NS_PER_S)))

    def consume(self) -> int:
        """Expirations since the last read (0: none; the fd is readable no more)."""
        try:
            return int.from_bytes(os.read(self.fd, 8), "little")
        except BlockingIOError:
            return 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
