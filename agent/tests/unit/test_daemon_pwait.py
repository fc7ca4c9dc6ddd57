"""The VRRP process's selector (hanode.daemon.pwait): epoll through epoll_pwait2, so that a timeout keeps its
microseconds (asyncio's EpollSelector rounds up to whole milliseconds) without select()'s poll of every
descriptor on each sleep. Real epoll on socket pairs; the timeout conversion through a recording stand-in."""

from __future__ import annotations

import ctypes
import selectors
import socket

import pytest

from hanode.daemon.pwait import PreciseEpollSelector, _Timespec, precise_selector


@pytest.fixture(name="selector")
def fixture_selector():
    selector = precise_selector()
    yield selector
    selector.close()


def test_this_kernel_gets_epoll_pwait2_not_select(selector):
    assert isinstance(selector, PreciseEpollSelector)


def test_only_what_is_ready_is_reported_with_its_events(selector):
    a, b = socket.socketpair()
    with a, b:
        selector.register(a, selectors.EVENT_READ, "a")
        assert selector.select(0) == []
        b.send(b"x")
        assert [(key.data, events) for key, events in selector.select(0)] == [("a", selectors.EVENT_READ)]
        selector.register(b, selectors.EVENT_READ | selectors.EVENT_WRITE, "b")
        ready = {key.data: events for key, events in selector.select(0)}
        assert ready == {"a": selectors.EVENT_READ, "b": selectors.EVENT_WRITE}   # b: writable, nothing to read
        a.recv(1)
        selector.unregister(b)
        assert selector.select(0) == []


def test_more_ready_descriptors_than_its_first_buffer_are_all_reported(selector):
    pairs = [socket.socketpair() for _pair in range(80)]
    try:
        for index, (a, b) in enumerate(pairs):
            selector.register(a, selectors.EVENT_READ, index)
            b.send(b"x")
        assert sorted(key.data for key, _events in selector.select(0)) == list(range(80))
    finally:
        for a, b in pairs:
            a.close()
            b.close()


class Recording:
    """Stands in for epoll_pwait2: records the timeout it was given, reports nothing ready."""

    def __init__(self):
        self.timeouts: list[tuple[int, int] | None] = []

    def __call__(self, epfd, events, maxevents, timeout, sigmask, sigsetsize):
        spec = None if timeout is None else _Timespec.from_address(timeout)
        self.timeouts.append(None if spec is None else (spec.tv_sec, spec.tv_nsec))
        return 0


@pytest.mark.parametrize("timeout, expected", [
    (None, None),                 # no timer: waits until something is ready
    (0, (0, 0)),
    (-1.0, (0, 0)),               # a deadline already past: does not wait
    (0.000_123_4, (0, 123_400)),  # keeps its microseconds (epoll_wait would make it 1 ms)
    (2.5, (2, 500_000_000)),
])
def test_the_timeout_keeps_its_microseconds(timeout, expected):
    recording = Recording()
    selector = PreciseEpollSelector(recording)
    try:
        assert selector.select(timeout) == []
    finally:
        selector.close()
    assert recording.timeouts == [expected]


def test_a_failed_wait_is_an_error_naming_the_call():
    def failing(*_args):
        ctypes.set_errno(9)   # EBADF
        return -1
    selector = PreciseEpollSelector(failing)
    try:
        with pytest.raises(OSError, match="epoll_pwait2: EBADF"):
            selector.select(0)
    finally:
        selector.close()
