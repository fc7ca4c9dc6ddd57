"""`hanode status --watch`'s screen (control/watch_view.py, pure): golden text without colour, the same text
with ANSI colour for states and real-server health, and the in-place redraw frame."""

from __future__ import annotations

import io

from hanode.cli.status_cmd import use_colour
from hanode.control.watch_view import frame, render_unavailable, render_watch

STATUS = {
    "schema_version": 1,
    "agent": {"router_id": "lb1", "version": "0.1.0", "uptime_s": 75.4, "stale": [],
              "config": {"applied_digest": "0123456789abcdef",
                         "last_reload": {"ok": False, "at": 1.0, "errors": ["vrrp_instances.VI_1.prority: unknown key"]}}},
    "instances": {
        "VI_2": {"state": "FAULT", "priority": 100, "effective_priority": 100, "virtual_router_id": 52,
                 "interface": "eth1", "master_address": None, "vips": ["198.51.100.102/24 dev eth1"], "drained": False,
                 "fault_reasons": ["tracked interface trk0 down"], "last_transition": {"reason": "x"}},
        "VI_1": {"state": "MASTER", "priority": 150, "effective_priority": 140, "virtual_router_id": 51,
                 "interface": "eth0", "master_address": "198.51.100.11", "drained": False, "fault_reasons": [],
                 "vips": ["198.51.100.100/24 dev eth0 label eth0:vip", "198.51.100.101/24"],
                 "last_transition": {"reason": "master down timer expired"}},
    },
    "sync_groups": {"G1": {"state": "MASTER", "members": ["VI_1"]}},
    "virtual_servers": [{"name": "198.51.100.100:80/TCP", "summary": "1/2 real servers up, quorum down",
                         "sorry_server_active": True,
                         "real_servers": [{"name": "203.0.113.11:8080", "health": "up", "weight": 3, "kernel_weight": 3,
                                           "failure_reason": None, "last_check": {"latency_ms": 1.234}},
                                          {"name": "203.0.113.12:8080", "health": "down", "weight": 1,
                                           "kernel_weight": None, "failure_reason": "connection refused",
                                           "last_check": {"latency_ms": 0.5}}]}],
}

GOLDEN = """\
hanode 0.1.0 on lb1  up 75s  config 0123456789ab  every 0.5s  12:00:01

INSTANCE  STATE   PRIO     VRID  IF    MASTER         VIPS                                 WHY
VI_1      MASTER  140/150  51    eth0  198.51.100.11  198.51.100.100/24,198.51.100.101/24  master down timer expired
VI_2      FAULT   100/100  52    eth1  -              198.51.100.102/24                    tracked interface trk0 down
sync group G1: MASTER (VI_1)

198.51.100.100:80/TCP  1/2 real servers up, quorum down  on sorry server
  203.0.113.11:8080  up    weight 3/3  1.2 ms
  203.0.113.12:8080  down  weight -/1  connection refused

last reload REFUSED: vrrp_instances.VI_1.prority: unknown key"""


def _screen(colour: bool) -> str:
    return "\n".join(render_watch(STATUS, interval_s=0.5, clock="12:00:01", colour=colour))


def test_golden_screen_without_colour():
    assert _screen(False) == GOLDEN
    assert "\x1b" not in _screen(False)


def test_colour_marks_states_and_health_without_moving_columns():
    coloured = _screen(True)
    assert "\x1b[1;32mMASTER\x1b[0m" in coloured      # MASTER green (padded inside the colour)
    assert "\x1b[1;31mFAULT \x1b[0m" in coloured      # FAULT red
    assert "\x1b[32mup  \x1b[0m" in coloured          # real server up green, down red
    assert "\x1b[1;31mdown\x1b[0m" in coloured
    assert "\x1b[1;31mlast reload REFUSED\x1b[0m" in coloured
    stripped = coloured
    for code in ("\x1b[1;32m", "\x1b[1;31m", "\x1b[36m", "\x1b[32m", "\x1b[33m", "\x1b[0m"):
        stripped = stripped.replace(code, "")
    assert stripped == GOLDEN


def test_backup_drained_and_stale_processes():
    status = {"agent": {"router_id": "lb2", "version": "0.1.0", "uptime_s": 3, "stale": ["vrrp"], "config": {}},
              "instances": {"VI_1": {"state": "BACKUP", "priority": 100, "effective_priority": 100,
                                     "virtual_router_id": 51, "interface": "eth0", "master_address": "198.51.100.11",
                                     "vips": [], "drained": True, "fault_reasons": [], "last_transition": {}}}}
    lines = render_watch(status, interval_s=1, clock="00:00:00", colour=True)
    assert lines[0].endswith("every 1s  00:00:00  \x1b[33mSTALE: vrrp restarting\x1b[0m")
    assert lines[3] == "VI_1      \x1b[36mBACKUP (drained)\x1b[0m  100/100  51    eth0  198.51.100.11  -"


def test_no_instances_and_an_agent_that_does_not_answer():
    assert render_watch({"agent": {}}, interval_s=2, clock="t", colour=False)[2] == "no VRRP instances"
    assert render_unavailable("no agent socket at /x", interval_s=2, clock="t", colour=False) == [
        "hanode status  every 2s  t", "", "no answer: no agent socket at /x"]


def test_frame_redraws_in_place_on_a_terminal_and_plainly_elsewhere():
    assert frame(["a", "bb"], ansi=True) == "\x1b[Ha\x1b[K\nbb\x1b[K\n\x1b[J"
    assert frame(["a", "bb"], ansi=False) == "a\nbb\n\n"


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_terminal_without_no_color():
    assert use_colour(_Stream(True), {"TERM": "xterm"})
    assert not use_colour(_Stream(False), {"TERM": "xterm"})
    assert not use_colour(_Stream(True), {"TERM": "xterm", "NO_COLOR": "1"})
    assert use_colour(_Stream(True), {"TERM": "xterm", "NO_COLOR": ""})   # no-color.org: set and not empty
    assert not use_colour(_Stream(True), {"TERM": "dumb"})
