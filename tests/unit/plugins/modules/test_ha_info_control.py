"""ha_info (read-only) and ha_control (drain, enable, failover, real servers) against a stub control socket."""

from __future__ import annotations

import pytest

from ansible_collections.hanode.fleet.plugins.module_utils import _control
from ansible_collections.hanode.fleet.plugins.modules import ha_control, ha_info
from module_runner import run_module
from stub_agent import StubAgent, instance


@pytest.fixture
def sock(tmp_path):
    return tmp_path / "agent.sock"


@pytest.fixture
def agent(sock):
    stub = StubAgent(sock, {"VI_1": instance("MASTER", master="198.51.100.11"), "VI_2": instance("BACKUP", master="198.51.100.12")})
    stub.status["virtual_servers"] = [{"name": "198.51.100.100:80/TCP", "real_servers": [
        {"name": "203.0.113.11:8080", "address": "203.0.113.11", "port": 8080, "health": "up"},
        {"name": "203.0.113.12:8080", "address": "203.0.113.12", "port": 8080, "health": "down"}]}]
    yield stub
    stub.close()


def test_ha_info_returns_the_status_and_who_is_master(sock, agent, capsys):
    result = run_module(ha_info, {"socket": str(sock)}, capsys)
    assert result["changed"] is False and result["running"] is True
    assert result["masters"] == ["VI_1"]
    assert result["status"]["schema_version"] == 1
    assert result["instances"]["VI_2"]["state"] == "BACKUP"
    assert result["virtual_servers"][0]["name"] == "198.51.100.100:80/TCP"
    assert result["summary"][1].startswith("VI_1 MASTER vrid ")
    assert result["summary"][-1].startswith("198.51.100.100:80/TCP: ")
    assert result["summary"][-1].endswith("; 203.0.113.12:8080 down")
    assert agent.commands() == []


@pytest.mark.parametrize("require,failed", [(False, False), (True, True)])
def test_ha_info_without_an_agent(sock, capsys, require, failed):
    result = run_module(ha_info, {"socket": str(sock), "require_running": require}, capsys)
    assert result["running"] is False and bool(result.get("failed")) is failed
    assert "no agent answers" in (result.get("error") or result.get("msg"))
    if not failed:
        assert result["summary"] == ["no agent answers: " + result["error"]]


DECIDE = [
    # state, instances, node, failover_to -> changed, command, wait elsewhere, wait master
    ("drained", None, None, None, True, ("drain", {"instances": None}), ["VI_1"], []),
    ("drained", ["VI_2"], None, None, True, ("drain", {"instances": ["VI_2"]}), [], []),
    ("enabled", None, None, None, False, None, [], []),
    ("failover", ["VI_1"], "n1", "n2", True, ("drain", {"instances": ["VI_1"]}), ["VI_1"], []),
    ("failover", ["VI_2"], "n1", "n1", False, None, [], ["VI_2"]),
]


@pytest.mark.parametrize("state,instances,node,failover_to,changed,command,elsewhere,master", DECIDE)
def test_control_decide(state, instances, node, failover_to, changed, command, elsewhere, master):
    status = {"instances": {"VI_1": instance("MASTER"), "VI_2": instance("BACKUP")}}
    decision = _control.decide(status, state, instances, node, failover_to)
    assert decision["changed"] is changed and decision["command"] == command
    assert decision["wait_master_elsewhere"] == elsewhere and decision["wait_master"] == master


def test_control_decide_enable_only_what_is_drained():
    status = {"instances": {"VI_1": instance("BACKUP", drained=True), "VI_2": instance("BACKUP")}}
    assert _control.decide(status, "enabled", ["VI_1", "VI_2"])["command"] == ("enable", {"instances": ["VI_1"]})


def test_control_unknown_instance_is_named():
    with pytest.raises(_control.ControlError, match="unknown instance.*VI_9.*has: VI_1"):
        _control.decide({"instances": {"VI_1": instance()}}, "drained", ["VI_9"])


def test_drain_waits_until_another_node_holds_the_vip_and_is_idempotent(sock, agent, capsys):
    result = run_module(ha_control, {"socket": str(sock), "state": "drained", "instances": ["VI_1"]}, capsys)
    assert result["changed"] is True and result["command"] == "drain"
    assert result["instances"]["VI_1"]["state"] == "BACKUP" and result["instances"]["VI_1"]["master_address"] == "198.51.100.12"
    again = run_module(ha_control, {"socket": str(sock), "state": "drained", "instances": ["VI_1"]}, capsys)
    assert again["changed"] is False
    assert agent.commands() == ["drain"]


def test_drain_check_mode_sends_nothing(sock, agent, capsys):
    result = run_module(ha_control, {"socket": str(sock), "state": "drained"}, capsys, check_mode=True)
    assert result["changed"] is True and agent.commands() == []


def test_a_drain_nobody_takes_over_is_undone(sock, agent, capsys):
    agent.status["instances"]["VI_1"]["peer_address"] = None  # nobody else sends adverts
    result = run_module(ha_control, {"socket": str(sock), "state": "drained", "instances": ["VI_1"], "timeout": 1}, capsys)
    assert result["failed"] is True and "enabled again" in result["msg"]
    assert agent.commands() == ["drain", "enable"]
    assert agent.status["instances"]["VI_1"]["drained"] is False


@pytest.mark.parametrize("state,health,changed", [("real_server_disabled", "up", True), ("real_server_disabled", "down", True),
                                                  ("real_server_disabled", "disabled", False), ("real_server_enabled", "up", False),
                                                  ("real_server_enabled", "disabled", True)])
@pytest.mark.parametrize("vs_name,rs_name", [("198.51.100.100:80/TCP", "203.0.113.11:8080"), ("198.51.100.100:80", "203.0.113.11")])
def test_real_server_weight_zero(sock, agent, capsys, state, health, changed, vs_name, rs_name):
    agent.status["virtual_servers"][0]["real_servers"][0]["health"] = health
    result = run_module(ha_control, {"socket": str(sock), "state": state, "virtual_server": vs_name, "real_server": rs_name}, capsys)
    assert result["changed"] is changed
    assert agent.commands() == ([{"real_server_disabled": "rs_disable", "real_server_enabled": "rs_enable"}[state]] if changed else [])
    sent = [r for r in agent.requests if r["cmd"].startswith("rs_")]
    assert [(r["virtual_server"], r["real_server"]) for r in sent] == ([(vs_name, rs_name)] if changed else [])


def test_real_server_unknown_is_named(sock, agent, capsys):
    result = run_module(ha_control, {"socket": str(sock), "state": "real_server_disabled", "virtual_server": "198.51.100.100:80/TCP",
                                     "real_server": "203.0.113.99:8080"}, capsys)
    assert result["failed"] is True
    assert "has no real server 203.0.113.99:8080 (has: 203.0.113.11:8080, 203.0.113.12:8080)" in result["msg"]


def test_failover_needs_node_and_target(sock, agent, capsys):
    result = run_module(ha_control, {"socket": str(sock), "state": "failover"}, capsys)
    assert result["failed"] is True and "failover_to" in result["msg"]
