"""After a rolling change (new agent build + a second VIP) under continuous client traffic: no probe failed,
the VIP moved during the rollout (the master was drained, not just left alone), and every node runs the
new config."""


import labcheck as lab


def probes():
    lines = (lab.LAB_DIR / "c1" / "probe.log").read_text().splitlines()
    return [line.split(" ") for line in lines]


def test_no_probe_failed_during_the_rollout():
    results = probes()
    failed = [r for r in results if r[1] != "ok"]
    assert len(results) > 100, f"only {len(results)} probes ran"
    assert failed == [], f"{len(failed)} of {len(results)} probes failed: {failed[:5]}"


def test_the_vip_moved_while_probing_so_the_master_was_drained_first():
    answered_by = [r[2] for r in probes()]
    assert "n2" in answered_by and answered_by[0] == "n1" and answered_by[-1] == "n1"


def test_every_node_runs_the_new_build_and_config():
    for name in lab.NODES:
        status = lab.status(name)
        config = status["agent"]["config"]
        assert config["applied_digest"] == config["digest"], name
        assert len(status["instances"]["VI_1"]["excluded_vips"]) == 1, status["instances"]["VI_1"]
        assert (lab.LAB_DIR / name / "hanode" / "opt" / "current").resolve().name in \
            [p.name for p in (lab.LAB_DIR / name / "hanode" / "opt" / "venvs").iterdir()]


def test_the_new_vip_is_on_exactly_one_node_and_answers():
    assert lab.wait_for(lambda: lab.holders("198.51.100.101") == ["n1"], 10, "the new VIP on n1 only")
    assert lab.answer("http://198.51.100.101:8080/") == "n1"
