"""The proc connector as vrrp_track_process uses it, opened here in the test's own (initial) network namespace:
fork, exec and exit of a real process arrive as events within milliseconds, threads are left out, and the
table built from them counts the process in and out."""

from __future__ import annotations

import select
import subprocess
import time

import pytest

from hanode.config.model import TrackProcess
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
