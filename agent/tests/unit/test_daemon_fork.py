"""Children forked from the supervisor (daemon/fork.py): they run their module as `python -m` would, with only
the descriptors passed, none of the supervisor's signal handlers or event loop, and their exit is seen."""

import asyncio
import json
import os
import signal
import socket
import sys
import textwrap
import threading

import pytest

from hanode.daemon.fork import can_fork, spawn_forked

PROBE = """
import asyncio, json, os, signal, sys
report, other = int(sys.argv[1]), int(sys.argv[2])
try:
    os.fstat(other)
    other_open = True
except OSError:
    other_open = False
try:
    asyncio.get_running_loop()
    loop_running = True
except RuntimeError:
    loop_running = False
os.write(report, json.dumps({"name": __name__, "argv": sys.argv[1:], "other_open": other_open,
                             "loop_running": loop_running, "comm": open("/proc/self/comm").read().strip(),
                             "usr1_default": signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL}).encode())
if sys.argv[3] == "wait":
    os.read(report, 1)
sys.exit(int(sys.argv[3]) if sys.argv[3] != "wait" else 0)
"""


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    (tmp_path / "forkprobe.py").write_text(textwrap.dedent(PROBE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "forkprobe"


async def _spawn_and_read(module: str, mode: str):
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    ours, theirs = os.pipe()  # a descriptor the child is not given
    report_parent, report_child = socket.socketpair()
    try:
        process = spawn_forked(module, [str(report_child.fileno()), str(ours), mode], (report_child.fileno(),),
                               title="hanode-probe")
        report_child.close()
        report = json.loads(await loop.sock_recv(report_parent, 4096))
        return process, report, report_parent
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        os.close(ours)
        os.close(theirs)


def test_the_child_runs_its_module_with_only_what_it_is_given_and_its_exit_code_is_seen(probe_module):
    assert can_fork()

    async def scenario():
        process, report, sock = await _spawn_and_read(probe_module, "3")
        code = await process.wait()
        sock.close()
        return process, report, code

    process, report, code = asyncio.run(scenario())
    assert report["name"] == "__main__" and report["argv"][2] == "3"
    assert report["other_open"] is False          # closed: only the passed descriptor (and 0-2) stay open
    assert report["loop_running"] is False        # not inside the supervisor's event loop
    assert report["usr1_default"] is True         # the supervisor's signal handlers are not the child's
    assert report["comm"] == "hanode-probe"       # what ps -o comm and top show
    assert code == 3 and process.returncode == 3
    assert process.pid != os.getpid()


def test_a_killed_child_reports_the_signal(probe_module):
    async def scenario():
        process, _report, sock = await _spawn_and_read(probe_module, "wait")
        process.kill()
        code = await process.wait()
        sock.close()
        return code

    assert asyncio.run(scenario()) == -signal.SIGKILL


def test_no_fork_while_another_thread_runs():
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert can_fork() is False
    finally:
        release.set()
        thread.join()
    assert sys.platform != "linux" or can_fork() is True
