"""After converge: the VIP is on exactly one node, the client reaches it, and when the master's agent is
stopped the VIP moves to exactly one other node and traffic continues."""

import labcheck as lab


def test_vip_on_exactly_one_node_the_planned_master():
    assert lab.wait_for(lambda: lab.holders() == ["n1"], 10, "the VIP on n1 only (priority 150)")


def test_every_agent_runs_the_pushed_config():
    for name in lab.NODES:
        config = lab.status(name)["agent"]["config"]
        assert config["applied_digest"] == config["digest"], name


def test_traffic_through_the_vip_reaches_the_master():
    ok, body = lab.get(f"http://{lab.VIP}:8080/")
    assert ok and body == "n1"


def test_failover_when_the_masters_agent_is_stopped():
    assert lab.holders() == ["n1"]
    assert lab.service("n1", "stop").rc == 0
    try:
        assert lab.wait_for(lambda: lab.holders() == ["n2"], 10, "the VIP on n2 only")
        body = lab.wait_for(lambda: lab.answer(f"http://{lab.VIP}:8080/"), 10, "traffic through the new master")
        assert body == "n2"
        assert lab.status("n2")["instances"]["VI_1"]["state"] == "MASTER"
    finally:
        assert lab.service("n1", "start").rc == 0
    assert lab.wait_for(lambda: lab.holders() == ["n1"], 10, "n1 to take the VIP back (preempt)")
