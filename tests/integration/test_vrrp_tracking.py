"""Tracking: track_interfaces (FAULT, or a weight that lowers the priority) and vrrp_scripts (rise/fall
with a weight, or weight 0 meaning FAULT), each moving the VIP to the peer and back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from hanode.lab.procs import hanode_argv, python_env, wait_for
from helpers_vrrp import (VIP4, add_track_link, events, inst, new_lab, script_dir, single,
                          wait_sole_holder, wait_state, write_atomic, write_script)


V3 = {"version": 3, "advert_int": 0.3}


def _pair(lab, n1_config: dict, n2_priority: int = 100):
    n1, n2 = lab.nodes
    a1 = lab.start_agent(n1, n1_config)
    a2 = lab.start_agent(n2, single("n2", n2_priority, **V3))
    wait_state(a1, "MASTER", timeout=20)
    wait_state(a2, "BACKUP")
    wait_sole_holder(lab.nodes, VIP4, n1)
    return a1, a2


@pytest.mark.netns
def test_tracked_interface_down_means_fault_and_the_vip_moves(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    add_track_link(lab, n1)
    a1, a2 = _pair(lab, single("n1", 150, track_interfaces=["trk0"], **V3))
    assert inst(a1)["trackers"]["interfaces"] == [{"name": "trk0", "weight": 0, "weight_reverse": False, "up": True}]
    lab.link_set(n1, "trk0", False)
    entry = wait_state(a1, "FAULT", timeout=5)
    assert entry["fault_reasons"] == ["tracked interface trk0 down"]
    assert entry["trackers"]["interfaces"] == [{"name": "trk0", "weight": 0, "weight_reverse": False, "up": False}]
    assert entry["last_transition"]["reason"] == "tracked interface trk0 down"
    wait_state(a2, "MASTER", timeout=5)
    wait_sole_holder(lab.nodes, VIP4, n2)
    assert [e["state"] for e in events(a1, "tracker") if e["name"] == "trk0"] == ["down"]
    # Back up: FAULT clears, n1 listens, then preempts the lower-priority n2.
    lab.link_set(n1, "trk0", True)
    wait_state(a1, "MASTER", timeout=10)
    wait_sole_holder(lab.nodes, VIP4, n1)
    assert inst(a1)["fault_reasons"] == []
    moves = [(e["from"], e["to"]) for e in events(a1, "transition")]
    assert moves[-3:] == [("MASTER", "FAULT"), ("FAULT", "BACKUP"), ("BACKUP", "MASTER")]


@pytest.mark.netns
def test_tracked_interface_weight_lowers_the_priority_and_the_peer_takes_over(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    add_track_link(lab, n1)
    a1, a2 = _pair(lab, single("n1", 150, track_interfaces=[{"name": "trk0", "weight": -60}], **V3))
    lab.link_set(n1, "trk0", False)
    wait_state(a2, "MASTER", timeout=10)
    entry = wait_state(a1, "BACKUP", timeout=5)
    assert (entry["priority"], entry["effective_priority"], entry["fault_reasons"]) == (150, 90, [])
    assert entry["master_address"] == n2.ipv4
    wait_sole_holder(lab.nodes, VIP4, n2)
    lab.link_set(n1, "trk0", True)
    wait_state(a1, "MASTER", timeout=10)
    assert inst(a1)["effective_priority"] == 150
    wait_state(a2, "BACKUP", timeout=5)
    wait_sole_holder(lab.nodes, VIP4, n1)


def _check_script(directory: Path) -> Path:
    """Fails while <dir>/mode says "fail"; logs "<wall time> <exit status>" per run to <dir>/runs."""
    write_atomic(directory / "mode", "ok\n")
    return write_script(directory, "chk_web", f"""
t=$(date +%s.%N)
if [ "$(cat {directory}/mode)" = fail ]; then rc=1; else rc=0; fi
echo "$t $rc" >> {directory}/runs
exit $rc
""")


def _runs(directory: Path) -> list[tuple[float, int]]:
    lines = (directory / "runs").read_text().split("\n")
    return [(float(t), int(rc)) for t, rc in (line.split() for line in lines if line.strip())]


def _script_event(handle, state: str, after_seq: int = 0) -> dict | None:
    found = [e for e in events(handle, "tracker")
             if e["tracker"] == "script" and e["state"] == state and e["seq"] > after_seq]
    return found[0] if found else None


@pytest.mark.netns
def test_vrrp_script_fall_and_rise_with_a_weight(lab_factory):
    fall, rise, interval = 3, 2, 0.4
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    with script_dir() as directory:
        script = _check_script(directory)
        config = single("n1", 150, track_scripts=["chk_web"], **V3)
        config["vrrp_scripts"] = {"chk_web": {"script": str(script), "interval": interval, "timeout": 2,
                                              "weight": -60, "rise": rise, "fall": fall}}
        a1, a2 = _pair(lab, config)
        assert inst(a1)["trackers"]["scripts"][0]["ok"] is True
        write_atomic(directory / "mode", "fail\n")
        failed = wait_for(lambda: _script_event(a1, "failed"), 10, what="the script to be declared failed")
        wait_state(a2, "MASTER", timeout=10)
        entry = wait_state(a1, "BACKUP", timeout=5)
        assert (entry["effective_priority"], entry["fault_reasons"]) == (90, [])
        assert entry["trackers"]["scripts"][0]["ok"] is False and entry["trackers"]["scripts"][0]["last_exit"] == 1
        wait_sole_holder(lab.nodes, VIP4, n2)
        # Declared failed on the `fall`-th failure in a row, not earlier.
        failures = [t for t, rc in _runs(directory) if rc == 1 and t < failed["ts"]]
        assert len(failures) == fall, (failures, failed)

        write_atomic(directory / "mode", "ok\n")
        recovered = wait_for(lambda: _script_event(a1, "ok", failed["seq"]), 10, what="the script to be declared ok again")
        wait_state(a1, "MASTER", timeout=10)
        assert inst(a1)["effective_priority"] == 150
        wait_sole_holder(lab.nodes, VIP4, n1)
        successes = [t for t, rc in _runs(directory) if rc == 0 and failed["ts"] < t < recovered["ts"]]
        assert len(successes) == rise, (successes, recovered)


@pytest.mark.netns
def test_vrrp_script_with_weight_0_failing_means_fault(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    with script_dir() as directory:
        script = _check_script(directory)
        config = single("n1", 150, track_scripts=["chk_web"], **V3)
        config["vrrp_scripts"] = {"chk_web": {"script": str(script), "interval": 0.3, "weight": 0}}
        a1, a2 = _pair(lab, config)
        write_atomic(directory / "mode", "fail\n")
        entry = wait_state(a1, "FAULT", timeout=10)
        assert entry["fault_reasons"] == ["script chk_web failed"]
        assert entry["effective_priority"] == 150
        wait_state(a2, "MASTER", timeout=5)
        wait_sole_holder(lab.nodes, VIP4, n2)
        write_atomic(directory / "mode", "ok\n")
        wait_state(a1, "MASTER", timeout=10)
        wait_sole_holder(lab.nodes, VIP4, n1)


def test_a_script_that_non_root_users_can_change_is_refused(tmp_path):
    """enable_script_security (on by default): a script in a world-writable directory is refused at start,
    naming the field, and nothing is started (no namespace needed: the config check is the same code)."""
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    script = write_script(unsafe, "chk_web", "exit 0\n")
    config = single("n1", 150, track_scripts=["chk_web"])
    config["vrrp_scripts"] = {"chk_web": {"script": str(script), "weight": -20}}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([*hanode_argv(), "check-config", str(path)], capture_output=True, text=True, timeout=30,
                          env=python_env(), check=False)
    assert proc.returncode == 1
    assert f"vrrp_scripts.chk_web.script: insecure script: {unsafe} is writable by everyone" in proc.stdout + proc.stderr
