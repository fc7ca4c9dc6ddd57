"""The monitoring mixin (monitoring/): promtool's own unit tests of every alert and recording rule, the
shipped files matching the generator, every rule covered by a test, and the generator's value checks."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

MIXIN = Path(__file__).resolve().parents[3] / "monitoring"
PROMTOOL = shutil.which("promtool")


def _generator():
    spec = importlib.util.spec_from_file_location("hanode_mixin_generate", MIXIN / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is missing: `make setup` installs Debian's prometheus package"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


def _rules(name: str) -> list[dict]:
    return [rule for group in yaml.safe_load((MIXIN / name).read_text())["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("test_file", ["alerts_test.yaml", "rules_test.yaml"])
def test_promtool_unit_tests_pass(test_file):
    proc = _promtool("test", "rules", str(MIXIN / "tests" / test_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_shipped_files_pass_promtool_check_and_match_the_generator():
    proc = _promtool("check", "rules", str(MIXIN / "alerts.yaml"), str(MIXIN / "rules.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _generator().main(["--check"]) == 0, "monitoring/*.yaml are stale: run python3 monitoring/generate.py"


def test_every_alert_is_tested_firing_and_quiet_and_every_recording_rule_is_tested():
    tests = yaml.safe_load((MIXIN / "tests" / "alerts_test.yaml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for rule in _rules("alerts.yaml"):
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case.get("exp_alerts") for case in mine), f"{rule['alert']}: no test sees it fire"
        assert any(not case.get("exp_alerts") for case in mine), f"{rule['alert']}: no test sees it quiet"
    exprs = {case["expr"] for test in yaml.safe_load((MIXIN / "tests" / "rules_test.yaml").read_text())["tests"]
             for case in test["promql_expr_test"]}
    assert {rule["record"] for rule in _rules("rules.yaml")} <= exprs


def test_every_alert_has_a_severity_a_summary_and_a_runbook():
    for rule in _rules("alerts.yaml"):
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        steps = [line for line in rule["annotations"]["description"].splitlines() if line[:2] in ("1.", "2.")]
        assert len(steps) >= 2, f"{rule['alert']}: the description should say what to do, step by step"


def test_values_file_changes_thresholds_and_windows(tmp_path):
    values = tmp_path / "fast.yaml"
    values.write_text("no_master_for: 2s\nflap_window: 30s\nflap_transitions: 2\nselector: 'job=\"lab\"'\n")
    assert _generator().main(["--values", str(values), "--output", str(tmp_path)]) == 0
    alerts = {rule["alert"]: rule for rule in
              [r for g in yaml.safe_load((tmp_path / "alerts.yaml").read_text())["groups"] for r in g["rules"]]}
    assert alerts["HanodeVRRPNoMaster"]["for"] == "2s"
    assert alerts["HanodeVRRPFlapping"]["expr"] == 'increase(hanode_vrrp_transitions_total{job="lab"}[30s]) > 2'
    assert alerts["HanodeVRRPSplitBrain"]["for"] == "10s"  # not in the file: the default
    proc = _promtool("check", "rules", str(tmp_path / "alerts.yaml"), str(tmp_path / "rules.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("text, message", [
    ("no_mastr_for: 2s\n", "no_mastr_for: unknown key"),
    ("no_master_for: 2 minutes\n", "no_master_for: '2 minutes' is not a Prometheus duration"),
    ("flap_transitions: many\n", "flap_transitions: 'many' is not a number"),
    ("selector: ''\n", "selector: a non-empty string is expected"),
    ("- 1\n", "a mapping of value names to values is expected"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, capsys, text, message):
    values = tmp_path / "bad.yaml"
    values.write_text(text)
    assert _generator().main(["--values", str(values), "--output", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_template_placeholder_without_value_is_an_error():
    generator = _generator()
    with pytest.raises(generator.ValuesError, match=r"no value for \$\{nope\}"):
        generator.render("for: ${nope}", {"x": 1}, "alerts.yaml")
