"""systemd's notify protocol (sd_notify(3)) without libsystemd: READY=1, RELOADING=1, STATUS=, WATCHDOG=1."""

from __future__ import annotations

import functools
import os
import socket
import time
from typing import Callable


class SystemdNotifier:
    def __init__(self, environ: dict[str, str] | None = None,
                 monotonic_ns: Callable[[], int] = functools.partial(time.clock_gettime_ns, time.CLOCK_MONOTONIC)):
        """monotonic_ns: CLOCK_MONOTONIC, which systemd compares RELOADING's MONOTONIC_USEC with (tests pass a
        fake one)."""
        self.monotonic_ns = monotonic_ns
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET")
        self.address = ("\0" + path[1:]) if path and path.startswith("@") else path
        watchdog_usec = env.get("WATCHDOG_USEC")
        watchdog_pid = env.get("WATCHDOG_PID")
        pid_ok = watchdog_pid is None or watchdog_pid == str(os.getpid())
        usec = int(watchdog_usec) if watchdog_usec and watchdog_usec.isdigit() else 0  # sd_watchdog_enabled(3)
        self.watchdog_interval_s = usec / 2e6 if usec and pid_ok else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> bool:
        if not self.address:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.address)
            sock.sendall("\n".join(lines).encode())
            return True
        except OSError:
            return False
        finally:
            sock.close()

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> bool:
        return self.send("RELOADING=1", f"MONOTONIC_USEC={self.monotonic_ns() // 1000}")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")
