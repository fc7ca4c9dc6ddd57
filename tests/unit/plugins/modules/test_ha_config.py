"""ha_config: decide, then act. Changed on the first run, not on the second; check mode reports the change
and touches nothing; diff before/after; refused configs leave the running one and the file alone."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from ansible_collections.hanode.fleet.plugins.module_utils import _config_push
from ansible_collections.hanode.fleet.plugins.modules import ha_config
from module_runner import run_module
from stub_agent import StubAgent, instance

CONFIG = {"router_id": "n1", "vrrp_instances": {"VI_1": {"interface": "eth0", "virtual_router_id": 51,
                                                         "virtual_ipaddresses": ["198.51.100.100/24"]}}}


@pytest.fixture
def paths(tmp_path):
    return {"path": tmp_path / "etc" / "agent.yaml", "socket": tmp_path / "agent.sock"}


def args(paths, config=None, validate="/bin/true %s", **extra):
    return dict(config=config or CONFIG, path=str(paths["path"]), socket=str(paths["socket"]), validate=validate, **extra)


@pytest.fixture
def agent(paths):
    stub = StubAgent(paths["socket"], {"VI_1": instance("MASTER")}, config_path=paths["path"])
    yield stub
    stub.close()


DECIDE = [
    # current, desired, status digests (running, applied), reload wanted -> write, reload, changed
    ("same", "same", ("same", "same"), True, False, False, False),
    (None, "new", None, True, True, False, True),
    ("old", "new", None, True, True, False, True),
    ("old", "new", ("old", "old"), True, True, True, True),
    ("old", "new", ("old", "old"), False, True, False, True),
    ("same", "same", ("other", "other"), True, False, True, True),
    ("same", "same", ("same", "other"), True, False, True, True),
    ("same", "same", ("other", "other"), False, False, False, False),
]


@pytest.mark.parametrize("current,desired,digests,reload_wanted,write,reload,changed", DECIDE)
def test_decide(current, desired, digests, reload_wanted, write, reload, changed):
    def d(text):
        return _config_push.digest(text)
    status = None if digests is None else {"agent": {"config": {"digest": d(digests[0]), "applied_digest": d(digests[1])}}}
    decision = _config_push.decide(current, desired, status, reload_wanted)
    assert (decision["write"], decision["reload"], decision["changed"]) == (write, reload, changed)
    assert decision["digest"] == d(desired)


def test_first_run_writes_validates_reloads_and_waits_second_run_changes_nothing(paths, agent, capsys):
    first = run_module(ha_config, args(paths), capsys)
    assert first["changed"] is True and first["reloaded"] is True
    text = paths["path"].read_text()
    assert first["digest"] == hashlib.sha256(text.encode()).hexdigest()
    assert agent.status["agent"]["config"]["applied_digest"] == first["digest"]
    assert stat.S_IMODE(os.stat(paths["path"]).st_mode) == 0o600
    assert first["instances"]["VI_1"]["state"] == "MASTER"
    assert agent.commands() == ["reload"]

    second = run_module(ha_config, args(paths), capsys)
    assert second["changed"] is False and second["reloaded"] is False
    assert agent.commands() == ["reload"]


def test_check_mode_reports_the_change_with_a_diff_and_touches_nothing(paths, agent, capsys):
    paths["path"].parent.mkdir()
    paths["path"].write_text("old: config\n")
    before = paths["path"].stat()
    result = run_module(ha_config, args(paths), capsys, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"] == "old: config\n"
    assert "virtual_router_id: 51" in result["diff"]["after"]
    assert paths["path"].read_text() == "old: config\n" and paths["path"].stat().st_mtime_ns == before.st_mtime_ns
    assert agent.commands() == []
    assert sorted(os.listdir(paths["path"].parent)) == ["agent.yaml"]


def test_check_mode_without_the_agent_installed_warns_and_creates_nothing(paths, capsys):
    result = run_module(ha_config, args(paths, validate="/nonexistent/hanode check-config %s"), capsys, check_mode=True)
    assert result["changed"] is True and result["agent_running"] is False
    assert "not installed yet" in str(result.get("warnings"))
    assert not paths["path"].parent.exists()


def test_a_config_the_validator_refuses_is_not_installed(paths, agent, capsys, tmp_path):
    paths["path"].parent.mkdir()
    paths["path"].write_text("old: config\n")
    validator = tmp_path / "refuse.sh"
    validator.write_text("#!/bin/sh\necho 'vrrp_instances.VI_1.priority: must be 1..255, got 300'\nexit 1\n")
    validator.chmod(0o755)
    result = run_module(ha_config, args(paths, validate=f"{validator} %s"), capsys)
    assert result["failed"] is True
    assert result["problems"] == ["vrrp_instances.VI_1.priority: must be 1..255, got 300"]
    assert paths["path"].read_text() == "old: config\n"
    assert sorted(os.listdir(paths["path"].parent)) == ["agent.yaml"]
    assert agent.commands() == []


def test_a_reload_the_agent_refuses_restores_the_previous_file(paths, agent, capsys):
    paths["path"].parent.mkdir()
    paths["path"].write_text("old: config\n")
    agent.status["agent"]["config"].update(digest=_config_push.digest("old: config\n"), applied_digest=_config_push.digest("old: config\n"))
    agent.refuse_reload = ["vrrp_instances.VI_1.interface: no such interface"]
    result = run_module(ha_config, args(paths), capsys)
    assert result["failed"] is True
    assert "keeps running the old one (the previous file is restored)" in result["msg"]
    assert paths["path"].read_text() == "old: config\n"


def test_a_right_file_that_the_agent_does_not_run_yet_is_reloaded(paths, agent, capsys):
    paths["path"].parent.mkdir()
    paths["path"].write_text(_config_push.render(CONFIG))
    agent.status["agent"]["config"].update(digest="0" * 64, applied_digest="0" * 64)
    result = run_module(ha_config, args(paths), capsys)
    assert result["changed"] is True and result["reloaded"] is True
    assert result["reasons"][0].startswith("the agent runs config 000000000000")


def test_without_a_running_agent_the_file_is_written_and_nothing_reloaded(paths, capsys):
    result = run_module(ha_config, args(paths), capsys)
    assert result["changed"] is True and result["agent_running"] is False and result["reloaded"] is False
    assert paths["path"].read_text().startswith("# Managed by Ansible")


def test_a_validate_without_placeholder_is_refused(paths, capsys):
    result = run_module(ha_config, args(paths, validate="/bin/true"), capsys)
    assert result["failed"] is True and "%s" in result["msg"]


SECRET = "Zq7-pw!x"
WITH_SECRET = {"router_id": "n1", "vrrp_instances": {"VI_1": {
    "interface": "eth0", "virtual_router_id": 51, "version": 2,
    "authentication": {"auth_type": "PASS", "auth_pass": SECRET}, "virtual_ipaddresses": ["198.51.100.100/24"]}}}


def test_secrets_never_leave_the_module_not_in_the_result_the_diff_or_the_invocation(paths, agent, capsys):
    paths["path"].parent.mkdir()
    paths["path"].write_text("vrrp_instances:\n  VI_1:\n    authentication:\n      auth_pass: old-pw-1\n")
    for check_mode in (True, False):
        result = run_module(ha_config, args(paths, config=WITH_SECRET), capsys, check_mode=check_mode, diff=True)
        printed = repr(result)
        assert result["changed"] is True
        assert SECRET not in printed and "old-pw-1" not in printed
        assert "auth_pass: ********" in result["diff"]["after"] and "auth_pass: ********" in result["diff"]["before"]
    assert SECRET in paths["path"].read_text()  # the agent gets the real one


def test_no_diff_without_diff_mode(paths, agent, capsys):
    result = run_module(ha_config, args(paths, config=WITH_SECRET), capsys)
    assert result["changed"] is True and "diff" not in result


def test_a_new_config_is_never_readable_by_others_not_even_before_its_mode_is_set(paths, agent, capsys, monkeypatch):
    seen = []
    real_rename = os.rename

    def watching_rename(src, dst):
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        real_rename(src, dst)
        seen.append(stat.S_IMODE(os.stat(dst).st_mode))
    monkeypatch.setattr(_config_push.os, "rename", watching_rename)
    result = run_module(ha_config, args(paths, config=WITH_SECRET), capsys)
    assert result["changed"] is True
    assert seen == [0o600, 0o600]
    assert stat.S_IMODE(os.stat(paths["path"]).st_mode) == 0o600


def test_mask_hides_every_secret_line_and_nothing_else():
    text = _config_push.render(WITH_SECRET)
    masked = _config_push.mask(text)
    assert SECRET in text and SECRET not in masked
    assert masked.replace("auth_pass: ********", 'auth_pass: "%s"' % SECRET) == text
    assert _config_push.secrets(WITH_SECRET) == {SECRET}
