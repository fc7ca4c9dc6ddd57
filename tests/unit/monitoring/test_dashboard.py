"""The Grafana dashboard of the mixin: its structure (monitoring/check_dashboard.py) and every query parsed
by promtool. tests/integration/test_monitoring_prometheus.py runs the same queries against a real
Prometheus scraping the lab and requires series back."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import yaml

MIXIN = Path(__file__).resolve().parents[3] / "monitoring"
DASHBOARD = MIXIN / "dashboards" / "hanode-fleet.json"


def _checker():
    spec = importlib.util.spec_from_file_location("hanode_check_dashboard", MIXIN / "check_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_structure_has_no_problems():
    assert _checker().problems(_dashboard()) == []
    assert _checker().main([str(DASHBOARD)]) == 0


def test_it_shows_what_an_operator_needs():
    titles = " | ".join(p["title"] for p in _checker().panels(_dashboard())).lower()
    for wanted in ("who is master", "transitions", "real servers up/down", "weights", "check latency",
                   "authentication failures", "vrid collisions", "malformed"):
        assert wanted in titles, wanted
    names = [v["name"] for v in _dashboard()["templating"]["list"]]
    assert names == ["datasource", "job", "instance", "vrid", "virtual_server"]


def test_every_query_parses_with_promtool(tmp_path):
    queries = _checker().queries(_dashboard())
    assert len(queries) >= 25
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query_{i}:x", "expr": expr}
                                                        for i, (_where, expr) in enumerate(queries)]}]}
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([shutil.which("promtool") or "promtool", "check", "rules", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(queries)} rules found" in proc.stdout


def test_variables_are_filled_for_queries_run_outside_grafana():
    queries = dict(_checker().queries(_dashboard(), {"$job": "lab"}))
    assert queries["variable instance"] == 'hanode_agent_info{job=~"lab"}'
    assert all("$" not in expr for expr in queries.values())


def test_problems_are_found_and_named():
    checker = _checker()
    broken = copy.deepcopy(_dashboard())
    broken["schemaVersion"] = 16
    broken["templating"]["list"] = broken["templating"]["list"][1:]
    first, second = [p for p in broken["panels"] if p["type"] != "row"][:2]
    second["id"] = first["id"]
    first["datasource"] = {"type": "prometheus", "uid": "prom-prod"}
    first["targets"].append(dict(first["targets"][0]))
    second["gridPos"] = dict(first["gridPos"])
    found = checker.problems(broken)
    assert any(p.startswith("schemaVersion 16") for p in found)
    assert any("no `datasource` variable" in p for p in found)
    assert any("id used twice" in p for p in found)
    assert any(p.endswith("datasource is not the `datasource` variable") for p in found)
    assert any("refIds ['A', 'A'] repeat" in p for p in found)
    assert any("overlaps" in p for p in found)
