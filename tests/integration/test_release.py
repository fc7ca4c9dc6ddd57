"""`hanode release --config`: what an agent killed with SIGKILL left in the kernel (its VIPs, its nftables
load-balancer table) is removed, and only that; it refuses while an agent answers (ha_node_state: absent)."""

from __future__ import annotations

import os
import signal

import pytest

from hanode.lab.procs import hanode_argv, wait_for
from helpers_checker import VIP, lb_config, new_lab, real_server, virtual_server
from helpers_vrrp import agent_config, instance, wait_state

pytestmark = pytest.mark.netns


def _nft_tables(lab, node) -> str:
    return lab.run(node, ["nft", "list", "tables"]).stdout


def test_release_removes_a_killed_agents_vips_and_rules_and_refuses_a_running_agent(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0, real_servers=1)
    (n1,) = lab.nodes
    config = lb_config("n1", [virtual_server([real_server(lab.real_servers[0], checks=[])])])
    config.update(agent_config("n1", {"VI_1": instance(priority=150, version=3, advert_int=0.2)}))
    agent = lab.start_agent(n1, config)
    wait_state(agent, "MASTER", timeout=10)
    wait_for(lambda: "hanode" in _nft_tables(lab, n1), 10, what="the agent's nftables table")
    release = hanode_argv() + ["release", "--config", str(agent.config_path)]

    refused = lab.run(n1, release, check=False)
    assert refused.returncode == 1 and "an agent answers" in refused.stderr
    assert n1.has_address(VIP)

    os.killpg(agent.pid, signal.SIGKILL)  # the agent and its children, no cleanup
    wait_for(lambda: not agent.running, 10, what="the agent to die")
    assert n1.has_address(VIP) and "hanode" in _nft_tables(lab, n1)

    released = lab.run(n1, release)
    assert f"removed VIP {VIP}/24 from eth0 (VI_1)" in released.stdout
    assert "removed load-balancer rule" in released.stdout
    assert not n1.has_address(VIP) and "hanode" not in _nft_tables(lab, n1)
    assert n1.has_address(n1.ipv4)
    again = lab.run(n1, release)
    assert again.stdout == ""
