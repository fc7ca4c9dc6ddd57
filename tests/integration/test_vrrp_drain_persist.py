"""An operator's VRRP drain (`ha_control state=drained`, the socket's `drain`) survives a kill -9 of the VRRP
process and a kill -9 of the whole agent (issue 15): the drained node never takes the VIP back until it is
enabled; kept in <socket>.vrrp-drained.json beside the real servers' lvs-drained.json."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from hanode.control.client import request
from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, AddressSampler, inst, master_down_s, new_lab, single, status, vrrp_child_pid,
                          wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

V3 = {"version": 3, "advert_int": 0.3}
QUIET_S = 3 * master_down_s(150, 0.3, 3)   # a drained node that forgot would take over well within this


def _control(handle, cmd: str, instances=None) -> dict:
    reply = request(str(handle.socket_path), {"cmd": cmd, "instances": instances}, timeout_s=10)
    assert reply["ok"], reply
    return reply


def _drained_file(handle) -> Path:
    return Path(os.path.splitext(handle.socket_path)[0] + ".vrrp-drained.json")


def _stays_backup(handle, since_restarts: int) -> None:
    """The (re)started VRRP process reports VI_1 drained and BACKUP, and keeps it for QUIET_S."""
    wait_for(lambda: status(handle)["agent"]["processes"]["vrrp"]["restarts"] >= since_restarts
             and status(handle)["agent"]["stale"] == [] and inst(handle)["drained"], 20,
             what="the restarted VRRP process to report VI_1 drained")
    deadline_state = wait_for(lambda: inst(handle)["state"] == "BACKUP" or None, 5, what="VI_1 BACKUP")
    assert deadline_state
    with pytest.raises(TimeoutError):
        wait_for(lambda: inst(handle)["state"] != "BACKUP" or None, QUIET_S, interval=0.05,
                 what="VI_1 to leave BACKUP (it must not)")


def test_a_drained_instance_stays_drained_across_child_and_agent_kill_9_until_enabled(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    c1, c2 = single("n1", 150, **V3), single("n2", 100, **V3)
    a1 = lab.start_agent(n1, c1)
    a2 = lab.start_agent(n2, c2)
    wait_state(a1, "MASTER", timeout=15)
    wait_state(a2, "BACKUP")

    _control(a1, "drain", ["VI_1"])
    wait_state(a2, "MASTER", timeout=10)
    wait_sole_holder(lab.nodes, VIP4, n2)
    assert json.loads(_drained_file(a1).read_text()) == {"drained": ["VI_1"]}

    with AddressSampler(n2, VIP4, pid=a2.pid) as on_n2:
        # kill -9 of the VRRP process: restarted (1 s back-off) with VI_1 still drained
        os.kill(vrrp_child_pid(a1), signal.SIGKILL)
        _stays_backup(a1, since_restarts=1)
        # kill -9 of the whole agent (every process of it), then a new start
        a1.kill()
        a1 = lab.start_agent(n1, c1)
        _stays_backup(a1, since_restarts=0)
        assert not n1.has_address(VIP4)
    assert len(on_n2.samples) > 100 and on_n2.missing == [], "the VIP left n2 while n1 restarted drained"
    assert inst(a2)["state"] == "MASTER"

    # enable: n1 preempts (150 > 100), the file forgets the drain, and the next restart is a normal one
    _control(a1, "enable", ["VI_1"])
    wait_state(a1, "MASTER", timeout=10)
    wait_sole_holder(lab.nodes, VIP4, n1)
    assert json.loads(_drained_file(a1).read_text()) == {"drained": []}
    a1.kill()
    wait_state(a2, "MASTER", timeout=10)
    a1 = lab.start_agent(n1, c1)
    wait_state(a1, "MASTER", timeout=15)
    assert inst(a1)["drained"] is False
    wait_sole_holder(lab.nodes, VIP4, n1)
