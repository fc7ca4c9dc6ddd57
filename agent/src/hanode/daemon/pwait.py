"""An epoll selector whose timeout is exact to the microsecond: epoll_pwait2(2) (Linux 5.11, glibc 2.35) through
the C library, where asyncio's EpollSelector rounds every timeout up to a whole millisecond (epoll_wait(2)).

The VRRP process used select() for that precision; select() polls every descriptor it watches twice per
sleep (when it goes to sleep and when it wakes), which was ~8% of the VRRP process's CPU time with one
instance (perf: do_select, sock_poll, unix_poll, fdget), a cost paid on every wake-up, and the loop's Python
side rebuilt its descriptor lists each time. epoll reports only what is ready. The kernel's slack on a long
timeout is the same as select()'s (select_estimate_accuracy: 0.1% of it), handled where it matters
(vrrp/runner.py, FINAL_WAIT_US). Without epoll_pwait2 (an older kernel or C library) precise_selector()
returns a SelectSelector, as before."""

from __future__ import annotations

import ctypes
import errno
import math
import platform
import select
import selectors

NS_PER_S = 1_000_000_000
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_NOT_IN, _NOT_OUT = ~select.EPOLLIN, ~select.EPOLLOUT
# struct epoll_event is packed on x86-64 (12 bytes: events, then the data union whose first 4 bytes are the fd
# Python registered); elsewhere the union is 8-aligned (16 bytes)
_PACKED = platform.machine() in ("x86_64", "i386", "i686")


if _PACKED:
    class _Event(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("events", ctypes.c_uint32), ("fd", ctypes.c_int32), ("high", ctypes.c_uint32)]
else:
    class _Event(ctypes.Structure):  # type: ignore[no-redef]
        _fields_ = [("events", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("fd", ctypes.c_int32),
                    ("high", ctypes.c_uint32)]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _pwait2():
    """The C library's epoll_pwait2, or None."""
    try:
        func = ctypes.CDLL(None, use_errno=True).epoll_pwait2
    except (AttributeError, OSError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    func.restype = ctypes.c_int
    return func


class PreciseEpollSelector(selectors.EpollSelector):
    """selectors.EpollSelector with select() through epoll_pwait2 (nanosecond timeouts)."""

    def __init__(self, pwait2) -> None:
        super().__init__()
        self.pwait2 = pwait2
        self._events = (_Event * 64)()
        self._events_ptr = ctypes.addressof(self._events)
        self._timespec = _Timespec()
        self._timespec_ptr = ctypes.addressof(self._timespec)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        fd_to_key = self._fd_to_key
        if len(self._events) < len(fd_to_key):
            self._events = (_Event * len(fd_to_key))()
            self._events_ptr = ctypes.addressof(self._events)
        if timeout is None:
            spec = None
        else:
            spec = self._timespec_ptr
            self._timespec.tv_sec, self._timespec.tv_nsec = divmod(max(0, math.ceil(timeout * NS_PER_S)), NS_PER_S)
        count = self.pwait2(self._selector.fileno(), self._events_ptr, len(self._events), spec, None, 0)
        if count <= 0:
            err = ctypes.get_errno() if count < 0 else 0
            if err and err != errno.EINTR:
                raise OSError(err, f"epoll_pwait2: {errno.errorcode.get(err, err)}")
            return []
        ready = []
        events = self._events
        for index in range(count):
            event = events[index]
            key = fd_to_key.get(event.fd)
            if key is not None:
                mask = event.events
                ready.append((key, ((_WRITE if mask & _NOT_IN else 0) | (_READ if mask & _NOT_OUT else 0))
                              & key.events))
        return ready


def precise_selector() -> selectors.BaseSelector:
    """A selector with microsecond timeouts: epoll_pwait2 where the kernel and C library have it, else select()."""
    pwait2 = _pwait2()
    if pwait2 is not None:
        selector = PreciseEpollSelector(pwait2)
        try:
            selector.select(0)
            return selector
        except OSError as exc:
            selector.close()
            if exc.errno not in (errno.ENOSYS, errno.EPERM):   # EPERM: a seccomp filter that does not know it
                raise
    return selectors.SelectSelector()
