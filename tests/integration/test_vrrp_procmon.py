"""The proc connector as vrrp_track_process uses it, opened here in the test's own (initial) network namespace:
fork, exec and exit of a real process arrive as events within milliseconds, threads are left out, and the
table built from them counts the process in and out; and the /proc polling used where no connector can be had
or the kernel never answers the subscription."""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
import time

import pytest

from hanode.config.model import TrackProcess
from hanode.lab.procs import python_env
from hanode.vrrp import procmon
from hanode.vrrp.procmon import (EVENT_EXEC, EVENT_EXIT, EVENT_FORK, ConnectorReader, all_procs, open_connector,
                                 read_proc)
from hanode.vrrp.proctrack import ProcessTable

pytestmark = pytest.mark.netns


def test_connector_events_count_a_real_process_in_and_out():
    sock = open_connector()
    assert sock is not None, "no proc connector in the initial network namespace"
    seen: list[tuple[int, int, int, float]] = []
    reader = ConnectorReader(sock, lambda kind, a, b, comm: seen.append((kind, a, b, time.monotonic())),
                             lambda: pytest.fail("events lost"))
    table = ProcessTable({"p": TrackProcess(name="p", process="sleep", params=("30.5",), param_match="exact",
                                            full_command=True)})
    table.scan(all_procs(want_cmdline=True), 0, initial=True)
    try:
        proc = subprocess.Popen(["sleep", "30.5"])

        def until(predicate, timeout_s=5.0):
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                select.select([sock], [], [], 0.05)
                reader.read()
                if predicate():
                    return
            raise AssertionError(f"no such event in {timeout_s} s: {seen[-5:]}")

        until(lambda: any(k == EVENT_EXEC and a == proc.pid for k, a, _b, _t in seen))
        assert any(k == EVENT_FORK and b == proc.pid for k, _a, b, _t in seen)
        assert table.exec(read_proc(proc.pid, True), 1) == [("p", True)]
        killed_at = time.monotonic()
        proc.kill()
        until(lambda: any(k == EVENT_EXIT and a == proc.pid for k, a, _b, _t in seen))
        exit_at = next(t for k, a, _b, t in seen if k == EVENT_EXIT and a == proc.pid)
        assert exit_at - killed_at < 0.1
        assert table.exit(proc.pid, 2) == [("p", False)]
        proc.wait()
    finally:
        sock.close()


def test_without_a_connector_proc_is_polled(monkeypatch):
    """Where no connector can be had, ProcessMonitor reads /proc every POLL_S (made short here)."""
    monkeypatch.setattr(procmon, "open_connector", lambda: None)
    monkeypatch.setattr(procmon, "POLL_S", 0.1)

    async def main() -> None:
        changes: list[tuple[str, bool]] = []
        table = ProcessTable({"p": TrackProcess(name="p", process="sleep", params=("30.7",), param_match="exact",
                                                full_command=True)})
        monitor = procmon.ProcessMonitor(asyncio.get_running_loop(), table, lambda found, _counts: changes.extend(found),
                                         lambda: time.monotonic_ns() // 1000)
        assert monitor.start() == [("p", False)]

        async def until(change: tuple[str, bool]) -> None:
            deadline = time.monotonic() + 5
            while change not in changes:
                assert time.monotonic() < deadline, f"{change} not reported: {changes}"
                await asyncio.sleep(0.02)

        proc = subprocess.Popen(["sleep", "30.7"])
        try:
            await until(("p", True))
        finally:
            proc.kill()
            proc.wait()
        await until(("p", False))
        monitor.close()

    asyncio.run(main())


IN_OWN_PID_NAMESPACE = """
import asyncio, subprocess, time
from hanode.config.model import TrackProcess
from hanode.vrrp import procmon
from hanode.vrrp.proctrack import ProcessTable
procmon.POLL_S, procmon.ACK_WAIT_S = 0.1, 0.3

async def main():
    changes = []
    table = ProcessTable({"p": TrackProcess(name="p", process="sleep", params=("30.9",), param_match="exact",
                                            full_command=True)})
    monitor = procmon.ProcessMonitor(asyncio.get_running_loop(), table, lambda found, _n: changes.extend(found),
                                     lambda: time.monotonic_ns() // 1000)
    monitor.start()
    print("subscribed", monitor.sock is not None)
    deadline = time.monotonic() + 5
    while monitor.sock is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    print("polling", monitor.sock is None)
    proc = subprocess.Popen(["sleep", "30.9"])
    while ("p", True) not in changes and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    proc.kill()
    proc.wait()
    while ("p", False) not in changes and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    print("changes", changes)
    monitor.close()

asyncio.run(main())
"""


def test_a_subscription_the_kernel_never_answers_falls_back_to_polling():
    """In a PID namespace of its own the kernel drops the subscription without a word (keepalived then never
    sees a process event): no answer within ACK_WAIT_S means /proc polling."""
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", IN_OWN_PID_NAMESPACE],
                            capture_output=True, text=True, timeout=60, env=python_env(), check=False)
    assert result.stdout.splitlines() == ["subscribed True", "polling True", "changes [('p', True), ('p', False)]"], \
        result.stdout + result.stderr
    assert "subscription refused (no answer in 0.3 s)" in result.stderr
