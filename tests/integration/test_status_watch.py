"""`hanode status --watch` in a real pseudo-terminal against a live agent: the screen is redrawn in place with
the backup's state in colour, shows the failover when the master stops (the backup turns MASTER, in green),
and Ctrl-C (the terminal's interrupt character) ends it with exit status 0 and the cursor shown again."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import threading
import time

import pytest

from hanode.lab.procs import hanode_argv, python_env, wait_for
from helpers_vrrp import new_lab, single, wait_state

pytestmark = pytest.mark.netns

GREEN_MASTER = "\x1b[1;32mMASTER"
CYAN_BACKUP = "\x1b[36mBACKUP"


class Terminal:
    """A child process on a pty (its controlling terminal); everything it writes is collected by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once
            os.execvpe(argv[0], argv, env)
        self.output = b""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            ready = select.select([self.fd], [], [], 0.1)[0]
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:   # EIO: the child closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self.output += chunk

    def text(self) -> str:
        with self._lock:
            return self.output.decode(errors="replace")

    def frames(self) -> list[str]:
        """Each redraw starts by homing the cursor."""
        return self.text().split("\x1b[H")[1:]

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, code = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._thread.join(5)
                return os.waitstatus_to_exitcode(code)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise TimeoutError("hanode status --watch did not exit after Ctrl-C")


def test_watch_redraws_in_place_shows_the_failover_in_colour_and_exits_on_ctrl_c(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 150, version=3, advert_int=0.3))
    a2 = lab.start_agent(n2, single("n2", 100, version=3, advert_int=0.3))
    wait_state(a1, "MASTER")
    wait_state(a2, "BACKUP")
    env = python_env({"TERM": "xterm-256color"})
    env.pop("NO_COLOR", None)
    term = Terminal(hanode_argv() + ["status", "--watch", "--interval", "0.2", "--socket", str(a2.socket_path)], env)
    try:
        wait_for(lambda: any(CYAN_BACKUP in f and n1.ipv4 in f for f in term.frames()), 15, interval=0.05,
                 what="the watch screen showing n2 BACKUP (cyan) under master n1")
        assert term.text().startswith("\x1b[?25l")            # cursor hidden while it redraws
        first = len(term.frames())
        stopping = time.monotonic()
        a1.stop()                                               # the master leaves (priority-0 advert)
        wait_for(lambda: any(GREEN_MASTER in f for f in term.frames()[first:]), 15, interval=0.05,
                 what="the watch screen showing n2 MASTER (green) after the failover")
        print(f"\nMEASURE watch: MASTER on screen {time.monotonic() - stopping:.2f} s after the master was told to stop")
        # Every redraw but the one being written ends by erasing below it; the last whole one shows MASTER.
        frames = term.frames()
        assert len(frames) >= first + 1 >= 2 and all(f.endswith("\x1b[J") for f in frames[:-1])
        assert re.search(r"VI_1\s+\x1b\[1;32mMASTER", [f for f in frames if f.endswith("\x1b[J")][-1])
        os.write(term.fd, b"\x03")                              # Ctrl-C as typed
        assert term.wait_exit(10) == 0
        assert term.text().endswith("\x1b[?25h\r\n")            # cursor shown again
        assert "Traceback" not in term.text()
    finally:
        try:
            os.kill(term.pid, signal.SIGKILL)
            os.waitpid(term.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(term.fd)
