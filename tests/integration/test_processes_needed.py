"""A node runs only the processes its config needs (as keepalived 2.2.7 starts no VRRP child for a config
without VRRP instances or static addresses): a checker-only director has no VRRP process, status and
`hanode status` say so; a reload that adds the first VRRP instance starts one and its VIP comes up; a reload
that removes the last stops it and the VIP goes, the checker running on untouched.

    director n1 (checker; VRRP only in the middle config) -> r1 (203.0.113.11:8080)
"""

from __future__ import annotations

import os
import subprocess

import pytest

from hanode.lab.procs import hanode_argv, python_env, wait_for
from helpers_checker import (VIP, lb_config, new_lab, real_server, reload, rewrite_config, start_director, status,
                             virtual_server, wait_rs)
from helpers_ops import assert_status_schema

pytestmark = pytest.mark.netns

VRRP = {"VI_1": {"interface": "eth0", "virtual_router_id": 61, "priority": 150, "advert_int": 1, "state": "BACKUP",
                 "virtual_ipaddresses": [f"{VIP}/24"]}}


def _applied(handle, generation: int) -> dict:
    def done() -> dict | None:
        st = status(handle)
        config = st["agent"]["config"]
        ok = config["applied_generation"] == generation and config["applied_digest"] == config["digest"]
        return st if ok and config["generation"] == generation else None
    return wait_for(done, 30, what=f"generation {generation} applied")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_vrrp_process_runs_only_while_the_config_has_vrrp_instances(lab_factory):
    lab = new_lab(lab_factory, real_servers=1)
    n1 = lab.nodes[0]
    (r1,) = lab.real_servers
    lab.start_http_server(r1)
    checker_only = lb_config("n1", [virtual_server([real_server(r1)])])
    agent = start_director(lab, n1, checker_only, vip=False)
    wait_rs(agent, r1, health="up", kernel_weight=1)

    # 1. no VRRP process: status is complete without it, the checker's apply counts as the config's
    st = _applied(agent, 1)
    assert set(st["agent"]["processes"]) == {"checker"} and st["instances"] == {}
    assert "vrrp" not in st and "sync_groups" not in st
    assert_status_schema(st)
    text = subprocess.run(hanode_argv() + ["status", "--socket", str(agent.socket_path)], capture_output=True,
                          text=True, timeout=30, env=python_env(), check=True).stdout
    checker_pid = st["agent"]["processes"]["checker"]["pid"]
    assert "no VRRP instances" in text and _children(agent.pid) == {checker_pid}

    # 2. a reload adds the first VRRP instance: a VRRP process starts and brings the VIP up
    rewrite_config(agent, dict(checker_only, vrrp_instances=VRRP))
    assert reload(agent)["changed"] is True
    st = _applied(agent, 2)
    vrrp_pid = st["agent"]["processes"]["vrrp"]["pid"]
    wait_for(lambda: status(agent)["instances"]["VI_1"]["state"] == "MASTER", 20, what="VI_1 MASTER")
    wait_for(lambda: n1.has_address(VIP), 10, what="the VIP on n1")
    assert _children(agent.pid) == {checker_pid, vrrp_pid}

    # 3. a reload removes it: the VRRP process stops (the VIP leaves with it), the checker runs on
    rewrite_config(agent, checker_only)
    assert reload(agent)["changed"] is True
    st = _applied(agent, 3)
    assert st["instances"] == {} and not st["agent"]["processes"].get("vrrp", {}).get("running")
    wait_for(lambda: not _alive(vrrp_pid), 10, what="the VRRP process gone")
    assert not n1.has_address(VIP) and _children(agent.pid) == {checker_pid}
    assert st["agent"]["processes"]["checker"]["pid"] == checker_pid
    assert_status_schema(st)
    wait_rs(agent, r1, health="up", kernel_weight=1)


def _children(pid: int) -> set[int]:
    """The agent's child processes, as the kernel lists them."""
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
            found.update(int(child) for child in handle.read().split())
    return found
