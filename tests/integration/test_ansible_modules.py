"""The modules against real agents in a namespace lab, through the hanode.fleet.netns connection:
ha_config (check mode reports the change and touches nothing, diff, changed then unchanged, applied),
ha_info ad hoc, ha_control drain/enable/failover moving the VIP."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "targets"))
from ansible_run import adhoc, adhoc_results, playbook, recap, write_inventory  # noqa: E402

pytestmark = pytest.mark.netns
VIP = "198.51.100.100"
HANODE = str(Path(sys.executable).parent / "hanode")


def agent_config(name, priority, vips=(f"{VIP}/24",), socket=None):
    return {"router_id": name, "control_socket": socket, "vrrp_instances": {"VI_1": {
        "interface": "eth0", "virtual_router_id": 61, "version": 3, "advert_int": 0.1, "priority": priority,
        "virtual_ipaddresses": list(vips)}}}


@pytest.fixture
def fleet(lab_factory, tmp_path):
    lab = lab_factory(nodes=2, clients=0)
    n1, n2 = lab.nodes
    agents = {n.name: lab.start_agent(n, agent_config(n.name, prio, socket=str(n.dir / "agent.sock")))
              for n, prio in ((n1, 150), (n2, 100))}
    lab.wait_for(lambda: n1.has_address(VIP), 10, what="n1 master")
    hosts = {}
    for node in (n1, n2):
        hosts[node.name] = {"ansible_host": node.netns, "ansible_connection": "hanode.fleet.netns",
                            "ansible_python_interpreter": sys.executable, "node_config_path": str(node.dir / "agent.yaml"),
                            "node_socket": str(node.dir / "agent.sock"), "hanode_bin": HANODE}
    inventory = {"all": {"children": {"nodes": {"hosts": hosts}}}}
    return lab, agents, inventory, tmp_path


def status(lab, node):
    run = lab.run(node, [HANODE, "status", "--json", "--socket", str(node.dir / "agent.sock")])
    return json.loads(run.stdout)


def push(inv_dir, inventory, configs, *args):
    for name, config in configs.items():
        inventory["all"]["children"]["nodes"]["hosts"][name]["node_config"] = config
    inv = write_inventory(inv_dir / "hosts.yml", inventory)
    return playbook(inv, "push.yml", *args)


def test_ha_config_check_diff_then_apply_then_nothing(fleet):
    lab, agents, inventory, tmp = fleet
    n1, n2 = lab.nodes
    new = {n.name: agent_config(n.name, prio, (f"{VIP}/24", "198.51.100.101/24"), str(n.dir / "agent.sock"))
           for n, prio in ((n1, 150), (n2, 100))}
    before = {n.name: (n.dir / "agent.yaml").read_bytes() for n in (n1, n2)}
    generation = {n.name: status(lab, n)["agent"]["config"]["generation"] for n in (n1, n2)}

    check = push(tmp, inventory, new, "--check", "--diff")
    assert check.returncode == 0, check.stdout[-3000:]
    assert recap(check.stdout)["n1"]["changed"] == 1 and recap(check.stdout)["n2"]["changed"] == 1
    assert '+      - "198.51.100.101/24"' in check.stdout          # diff after
    assert "-    - 198.51.100.100/24" in check.stdout                # diff before: the file the lab wrote
    for n in (n1, n2):                                             # nothing touched: file, running config
        assert (n.dir / "agent.yaml").read_bytes() == before[n.name]
        assert status(lab, n)["agent"]["config"]["generation"] == generation[n.name]
    assert not n1.has_address("198.51.100.101")

    apply = push(tmp, inventory, new)
    assert apply.returncode == 0, apply.stdout[-3000:]
    assert recap(apply.stdout)["n1"]["changed"] == 1
    for n in (n1, n2):
        config = status(lab, n)["agent"]["config"]
        digest = hashlib.sha256((n.dir / "agent.yaml").read_bytes()).hexdigest()
        assert config["applied_digest"] == config["digest"] == digest
        assert config["generation"] == generation[n.name] + 1
    lab.wait_for(lambda: n1.has_address("198.51.100.101"), 5, what="the new VIP on the master")
    assert agents["n1"].running and agents["n2"].running             # reloaded, never restarted

    again = push(tmp, inventory, new)
    assert again.returncode == 0 and recap(again.stdout)["n1"]["changed"] == 0 and recap(again.stdout)["n2"]["changed"] == 0
    assert all(status(lab, n)["agent"]["config"]["generation"] == generation[n.name] + 1 for n in (n1, n2))


def test_ha_config_refused_by_the_hosts_agent_changes_nothing(fleet):
    lab, agents, inventory, tmp = fleet
    n1 = lab.nodes[0]
    before = (n1.dir / "agent.yaml").read_bytes()
    bad = agent_config("n1", 150, socket=str(n1.dir / "agent.sock"))
    bad["vrrp_instances"]["VI_1"]["track_scripts"] = [{"name": "nope"}]
    run = push(tmp, inventory, {"n1": bad, "n2": {}}, "--limit", "n1")
    assert run.returncode != 0
    assert "vrrp_instances.VI_1.track_scripts[0].name: no vrrp_script named 'nope'" in run.stdout
    assert (n1.dir / "agent.yaml").read_bytes() == before


def test_ha_info_ad_hoc_for_every_node(fleet):
    lab, agents, inventory, tmp = fleet
    inv = write_inventory(tmp / "hosts.yml", inventory)
    run = adhoc(inv, "nodes", "hanode.fleet.ha_info", "socket={{ node_socket }}")
    assert run.returncode == 0, run.stdout
    results = adhoc_results(run)
    assert results["n1"]["masters"] == ["VI_1"] and results["n2"]["masters"] == []
    assert results["n2"]["instances"]["VI_1"]["state"] == "BACKUP"
    assert results["n1"]["status"]["schema_version"] >= 1


def test_ha_control_drain_check_mode_drain_enable_and_failover(fleet):
    lab, agents, inventory, tmp = fleet
    n1, n2 = lab.nodes
    inv = write_inventory(tmp / "hosts.yml", inventory)

    check = playbook(inv, "control.yml", "--check", "-e", "target=n1", "-e", "control_state=drained")
    assert check.returncode == 0 and recap(check.stdout)["n1"]["changed"] == 1
    assert n1.has_address(VIP) and not status(lab, n1)["instances"]["VI_1"]["drained"]

    drain = playbook(inv, "control.yml", "-e", "target=n1", "-e", "control_state=drained")
    assert drain.returncode == 0, drain.stdout[-3000:]
    assert n2.has_address(VIP) and not n1.has_address(VIP)       # confirmed before the task returned
    st = status(lab, n1)["instances"]["VI_1"]
    assert st["drained"] and st["state"] == "BACKUP" and st["master_address"] == n2.ipv4

    enable = playbook(inv, "control.yml", "-e", "target=n1", "-e", "control_state=enabled")
    assert enable.returncode == 0 and recap(enable.stdout)["n1"]["changed"] == 1
    lab.wait_for(lambda: n1.has_address(VIP) and not n2.has_address(VIP), 5, what="n1 master again (preempt)")

    failover = playbook(inv, "control.yml", "-e", "target=nodes", "-e", "control_state=failover", "-e", "failover_to=n2")
    assert failover.returncode == 0, failover.stdout[-3000:]
    assert n2.has_address(VIP) and not n1.has_address(VIP)
    assert status(lab, n2)["instances"]["VI_1"]["state"] == "MASTER"
