"""The notify FIFO (ops/fifo.py): JSON lines and keepalived's notify_fifo line format, and a writer that never
blocks (a FIFO without a reader drops lines and counts them)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from hanode.ops.fifo import NotifyFifo, format_line, keepalived_line, keepalived_rs, keepalived_vs

# Lines real keepalived 2.2.7 wrote to its notify_fifo in the lab (sync group G1 = VI_1, priority 120):
# start, master, stop.
KEEPALIVED_2_2_7 = ['GROUP "G1" BACKUP 0', 'INSTANCE "VI_1" BACKUP 120', 'INSTANCE "VI_1" MASTER 120',
                    'GROUP "G1" MASTER 0', 'INSTANCE "VI_1" STOP 120', 'GROUP "G1" STOP 0']


def test_vrrp_lines_are_keepalived_s():
    events = [{"event": "group_transition", "group": "G1", "from": "INIT", "to": "BACKUP"},
              {"event": "transition", "instance": "VI_1", "from": "INIT", "to": "BACKUP", "priority": 120},
              {"event": "transition", "instance": "VI_1", "from": "BACKUP", "to": "MASTER", "priority": 120},
              {"event": "group_transition", "group": "G1", "from": "BACKUP", "to": "MASTER"},
              {"event": "transition", "instance": "VI_1", "from": "MASTER", "to": "STOP", "priority": 120},
              {"event": "group_transition", "group": "G1", "from": "MASTER", "to": "STOP"}]
    assert [keepalived_line(e) for e in events] == KEEPALIVED_2_2_7


@pytest.mark.parametrize("event, line", [
    ({"event": "quorum", "virtual_server": "198.51.100.100:80/TCP", "up": True}, "VS [198.51.100.100]:tcp:80 UP"),
    ({"event": "quorum", "virtual_server": "[2001:db8:100::100]:53/UDP", "up": False},
     "VS [2001:db8:100::100]:udp:53 DOWN"),
    ({"event": "quorum", "virtual_server": "fwmark 7/TCP", "up": True}, "VS FWM 7 UP"),
    ({"event": "real_server", "virtual_server": "198.51.100.100:80/TCP", "real_server": "203.0.113.11:8080",
      "up": False}, "RS [203.0.113.11]:tcp:8080 [198.51.100.100]:tcp:80 DOWN"),
    ({"event": "real_server", "virtual_server": "[2001:db8:100::100]:80/TCP", "real_server": "[2001:db8:203::11]:80",
      "up": True}, "RS [2001:db8:203::11]:tcp:80 [2001:db8:100::100]:tcp:80 UP"),
    ({"event": "real_server", "virtual_server": "fwmark 7/TCP", "real_server": "203.0.113.12", "up": True},
     "RS [203.0.113.12]:tcp:0 FWM 7 UP"),
])
def test_checker_lines_follow_keepalived_conf_5(event, line):
    """keepalived.conf(5), lvs_notify_fifo: VS [192.168.201.15]:tcp:80 UP, RS [1.2.3.4]:tcp:80 [192.168.201.15]:tcp:80 UP."""
    assert keepalived_line(event) == line


def test_names_of_another_shape_pass_through():
    assert keepalived_vs("web-pool") == "web-pool"
    assert keepalived_rs("host.example.org:80:9", "198.51.100.100:80/TCP") == "host.example.org:80:9"


@pytest.mark.parametrize("kind", ["reload", "tracker", "conflict", "process_restart", "process_hung", "control"])
def test_events_keepalived_has_no_line_for_are_left_out(kind):
    assert format_line({"seq": 1, "event": kind}, "keepalived") is None


def test_json_lines_are_compact_and_keep_the_event_s_order():
    event = {"seq": 7, "ts": 1.5, "event": "transition", "instance": "VI_1", "from": "BACKUP", "to": "MASTER"}
    line = format_line(event, "json")
    assert line == '{"seq":7,"ts":1.5,"event":"transition","instance":"VI_1","from":"BACKUP","to":"MASTER"}'
    assert "\n" not in format_line({"seq": 8, "event": "reload", "errors": ["a\nb"]}, "json")
    # A value JSON cannot carry is written as its text rather than losing the event.
    assert json.loads(format_line({"seq": 9, "event": "x", "odd": ValueError("bad")}, "json"))["odd"] == "bad"


def _read_lines(fd: int) -> list[str]:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    return data.decode().splitlines()


def test_writer_creates_the_fifo_and_writes_one_line_per_event(tmp_path):
    path = tmp_path / "events"
    fifo = NotifyFifo(str(path), "json")
    fifo.open()
    try:
        assert stat.S_ISFIFO(os.stat(path).st_mode) and stat.S_IMODE(os.stat(path).st_mode) == 0o600
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        for seq in (1, 2, 3):
            fifo.write({"seq": seq, "event": "reload", "ok": True})
        fifo.write({"seq": 4, "event": "tracker"})
        assert [json.loads(line)["seq"] for line in _read_lines(reader)] == [1, 2, 3, 4]
        assert fifo.stats == {"written": 4, "dropped": 0}
        os.close(reader)
    finally:
        fifo.close()


def test_keepalived_format_writes_only_lines_keepalived_has(tmp_path):
    fifo = NotifyFifo(str(tmp_path / "ka"), "keepalived")
    fifo.open()
    try:
        reader = os.open(tmp_path / "ka", os.O_RDONLY | os.O_NONBLOCK)
        fifo.write({"seq": 1, "event": "reload"})
        fifo.write({"seq": 2, "event": "transition", "instance": "VI_1", "to": "MASTER", "priority": 100})
        assert _read_lines(reader) == ['INSTANCE "VI_1" MASTER 100']
        assert fifo.stats == {"written": 1, "dropped": 0}
        os.close(reader)
    finally:
        fifo.close()


def test_a_full_fifo_drops_and_counts_never_blocks(tmp_path):
    fifo = NotifyFifo(str(tmp_path / "full"), "json")
    fifo.open()  # nobody reads: the pipe buffer (64 KiB) fills up
    try:
        big = {"seq": 0, "event": "reload", "pad": "x" * 4000}
        for seq in range(40):
            fifo.write(dict(big, seq=seq))
        assert fifo.stats["dropped"] > 0
        assert fifo.stats["written"] + fifo.stats["dropped"] == 40
    finally:
        fifo.close()


def test_an_existing_file_that_is_not_a_fifo_is_refused(tmp_path):
    path = tmp_path / "plain"
    path.write_text("")
    with pytest.raises(OSError, match="is not a FIFO"):
        NotifyFifo(str(path), "json").open()
