"""The role's systemd unit: Type=notify, restart on failure, reload by SIGHUP; `systemd-analyze verify` passes
for a real agent install and refuses a unit whose agent is missing (so it is never installed)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "targets"))
from ansible_run import playbook, write_inventory  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


def render(tmp_path, venv):
    inv = write_inventory(tmp_path / "hosts.yml", {"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "ha_node_install_dir": str(tmp_path / "opt"), "ha_node_venv": str(venv),
        "ha_node_config_path": str(tmp_path / "etc" / "agent.yaml")}}}})
    return playbook(inv, "unit.yml")


def test_the_unit_verifies_and_says_what_the_agent_needs(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "hanode").symlink_to(Path(sys.executable).parent / "hanode")
    run = render(tmp_path, venv)
    assert run.returncode == 0, run.stdout[-3000:]
    unit = (tmp_path / "opt" / "unit-check" / "hanode.service").read_text()
    for line in ("Type=notify", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                 f"ExecStart={venv}/bin/hanode run --config {tmp_path}/etc/agent.yaml --log-level info",
                 "RuntimeDirectory=hanode"):
        assert line in unit.splitlines(), line


def test_a_unit_whose_agent_is_missing_fails_verification(tmp_path):
    run = render(tmp_path, tmp_path / "missing-venv")
    assert run.returncode != 0
    assert "is not executable" in run.stdout
