"""scripts/bench_plot.py draws each benchmark's JSON (in the formats bench_failover.py, bench_lvs.py and
bench_health.py write) into a picture next to it, and says so when there is nothing to draw."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bench_plot.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _plot():
    spec = importlib.util.spec_from_file_location("bench_plot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _failover_row(impl, mode, scenario, median, theory):
    return {"impl": impl, "mode": mode, "mode_label": {"v2": "VRRPv2, advert_int 1 s", "v3": "VRRPv3, advert_int 0.1 s"}[mode],
            "scenario": scenario, "theoretical_ms": theory, "median_ms": median, "p95_ms": median + 1.5}


FAILOVER = {"results": [_failover_row(impl, mode, scenario, theory + delta, theory)
                        for impl, delta in (("hanode", 0.4), ("keepalived", 0.6))
                        for mode, scenario, theory in (("v2", "master_loss", 3609.4), ("v2", "graceful", 609.4),
                                                       ("v3", "master_loss", 360.9), ("v3", "graceful", 60.9))]}


def _lvs_row(backend, scheduler, n, full, change):
    return {"backend": backend, "scheduler": scheduler, "real_servers": n, "reconcile_from_empty_ms": {"median": full},
            "health_change": {"total_ms": {"median": change}}}


LVS = {"nftables": [_lvs_row("nftables", s, 10000, 150.0, 3.1) for s in ("rr", "wrr")],
       "nftables_by_size": [_lvs_row("nftables", s, n, n / 70, n / 3000) for s in ("rr", "wrr") for n in (1000, 3000)],
       "ipvs": [_lvs_row("ipvs", "wrr", 10000, 627.9, 4.9)]}
HEALTH = {"results": [{"checker": checker, "type": kind, "real_servers": n, "cpu_ms_per_1000_checks": cpu,
                       "keeps_up": keeps}
                      for kind in ("TCP_CHECK", "HTTP_GET")
                      for checker, cpu, keeps in (("hanode", 60.0, True), ("keepalived", 90.0, False))
                      for n in (1000, 4000)]}


@pytest.mark.parametrize("fmt, magic", [("png", PNG_MAGIC), ("svg", b"<?xml")])
def test_each_result_is_drawn_next_to_its_json(tmp_path, capsys, fmt, magic):
    for name, doc in (("failover", FAILOVER), ("lvs", LVS), ("health", HEALTH)):
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    assert _plot().main(["--out", str(tmp_path), "--format", fmt]) == 0
    for name in ("failover", "lvs", "health"):
        picture = (tmp_path / f"{name}.{fmt}").read_bytes()
        assert picture.startswith(magic) and len(picture) > 5000, name
    assert capsys.readouterr().out.count("bench_plot: wrote ") == 3


def test_only_the_results_present_are_drawn(tmp_path):
    (tmp_path / "lvs.json").write_text(json.dumps(LVS))
    assert _plot().main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lvs.json", "lvs.png"]


def test_nothing_to_draw_is_an_error(tmp_path, capsys):
    assert _plot().main(["--out", str(tmp_path)]) == 1
    assert "no results" in capsys.readouterr().err
