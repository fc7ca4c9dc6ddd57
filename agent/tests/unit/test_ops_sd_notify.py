"""systemd's notify protocol (ops/sd_notify.py, sd_notify(3)): the environment it reads and the datagrams it
sends, against datagram sockets the test owns (a path, and an abstract name given as "@name")."""

from __future__ import annotations

import os
import secrets
import socket
import time

import pytest

from hanode.ops.sd_notify import SystemdNotifier


@pytest.fixture
def path_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def _fields(sock: socket.socket) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sock.recv(4096).decode().split("\n"))


def test_without_notify_socket_nothing_is_sent():
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.ready("x") is False and notifier.watchdog() is False
    assert notifier.watchdog_interval_s is None


@pytest.mark.parametrize("env, interval_s", [
    ({"WATCHDOG_USEC": "1000000"}, 0.5),                  # ping every WATCHDOG_USEC / 2
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "self"}, 0.5),
    ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}, None),   # meant for another process
    ({"WATCHDOG_USEC": ""}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),                   # garbage: no watchdog rather than a crash
    ({}, None),
])
def test_watchdog_interval_from_watchdog_usec_and_pid(env, interval_s):
    env = {k: str(os.getpid()) if v == "self" else v for k, v in env.items()}
    assert SystemdNotifier({"NOTIFY_SOCKET": "/run/x", **env}).watchdog_interval_s == interval_s


def test_an_at_sign_names_an_abstract_socket():
    assert SystemdNotifier({"NOTIFY_SOCKET": "@hanode/notify"}).address == "\0hanode/notify"
    assert SystemdNotifier({"NOTIFY_SOCKET": "/run/systemd/notify"}).address == "/run/systemd/notify"


def test_messages_on_a_path_socket(path_socket):
    path, sock = path_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path}, monotonic_ns=lambda: 5_000_123_456_789)
    assert notifier.ready("VI_1 MASTER; config 0123456789ab")
    assert _fields(sock) == {"READY": "1", "STATUS": "VI_1 MASTER; config 0123456789ab", "MAINPID": str(os.getpid())}
    assert notifier.status("VI_1 BACKUP; config x")
    assert _fields(sock) == {"STATUS": "VI_1 BACKUP; config x"}
    assert notifier.reloading()
    assert _fields(sock) == {"RELOADING": "1", "MONOTONIC_USEC": "5000123456"}  # the clock's, in us
    assert notifier.watchdog() and _fields(sock) == {"WATCHDOG": "1"}
    assert notifier.stopping() and _fields(sock) == {"STOPPING": "1"}


def test_messages_on_an_abstract_socket():
    name = f"hanode-test-{secrets.token_hex(4)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert _fields(sock) == {"WATCHDOG": "1"}
    finally:
        sock.close()


def test_a_missing_socket_is_not_an_error(tmp_path):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert notifier.enabled and notifier.ready("x") is False


def test_reloading_is_stamped_with_clock_monotonic_by_default():
    """systemd compares MONOTONIC_USEC with its own CLOCK_MONOTONIC: that is the clock unless a test injects one."""
    default = SystemdNotifier({}).monotonic_ns
    assert (default.func, default.args) == (time.clock_gettime_ns, (time.CLOCK_MONOTONIC,))
