"""vrrp_track_process and track_file on real processes and files: a tracked process killed puts the instance in
FAULT within one advert interval (the kernel's proc connector, opened by the agent in the initial network
namespace although it runs in a lab namespace), its restart brings it back; a track_file's value moves the
priority, and init_file writes the file first."""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import VIP4, events, inst, new_lab, single, script_dir, wait_sole_holder, wait_state, write_atomic

pytestmark = pytest.mark.netns
ADVERT_INT_S = 0.5


def _tracked_copy(directory: Path) -> Path:
    """/bin/sleep under a name no other process on the machine has (the proc connector sees every process)."""
    path = directory / f"vr3trk{secrets.token_hex(3)}"
    shutil.copy("/bin/sleep", path)
    return path


def _event_after(handle, kind: str, since: float, **match) -> dict:
    def found():
        for event in events(handle, kind):
            if event["ts"] >= since and all(event.get(k) == v for k, v in match.items()):
                return event
        return None
    return wait_for(found, 10, interval=0.05, what=f"{kind} {match}")


def test_killed_process_faults_within_one_advert_and_a_track_file_moves_the_priority(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    with script_dir() as directory:
        binary = _tracked_copy(directory)
        prio_file = directory / "prio"
        proc = subprocess.Popen([str(binary), "600"])
        try:
            config = single("n1", 150, track_processes=["daemon"], track_files=["prio"], version=3,
                            advert_int=ADVERT_INT_S)
            config["vrrp_track_processes"] = {"daemon": {"process": binary.name}}
            config["track_files"] = {"prio": {"file": str(prio_file), "weight": -1, "init_file": 0}}
            a1 = lab.start_agent(n1, config)
            a2 = lab.start_agent(n2, single("n2", 100, version=3, advert_int=ADVERT_INT_S))
            wait_state(a1, "MASTER", timeout=20)
            wait_state(a2, "BACKUP")
            wait_sole_holder(lab.nodes, VIP4, n1)
            assert prio_file.read_text() == "0\n"        # init_file
            trackers = inst(a1)["trackers"]
            assert trackers["processes"] == [{"name": "daemon", "weight": 0, "weight_reverse": False, "up": True, "running": 1}]
            assert trackers["files"] == [{"name": "prio", "weight": -1, "weight_reverse": False, "value": 0, "status": 0}]

            killed_at = time.time()
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            down = _event_after(a1, "tracker", killed_at, tracker="process", name="daemon", state="down")
            fault = _event_after(a1, "transition", killed_at, to="FAULT")
            reaction_s = fault["ts"] - killed_at
            print(f"track_process: exit seen after {(down['ts'] - killed_at) * 1000:.1f} ms, FAULT after "
                  f"{reaction_s * 1000:.1f} ms (advert interval {ADVERT_INT_S * 1000:.0f} ms)")
            assert reaction_s < ADVERT_INT_S
            assert fault["reason"] == "tracked process daemon: quorum lost"
            wait_state(a2, "MASTER", timeout=5)
            wait_sole_holder(lab.nodes, VIP4, n2)

            proc = subprocess.Popen([str(binary), "600"])
            wait_state(a1, "MASTER", timeout=10)
            wait_sole_holder(lab.nodes, VIP4, n1)
            assert inst(a1)["trackers"]["processes"][0]["running"] == 1

            # track_file: value 60 x weight -1 takes 150 to 90, below n2's 100; back to 0, n1 preempts again.
            write_atomic(prio_file, "60\n")
            wait_state(a2, "MASTER", timeout=10)
            assert inst(a1)["effective_priority"] == 90
            assert inst(a1)["trackers"]["files"] == [{"name": "prio", "weight": -1, "weight_reverse": False, "value": 60, "status": -60}]
            prio_file.write_text("0\n")
            wait_state(a1, "MASTER", timeout=10)
            wait_sole_holder(lab.nodes, VIP4, n1)
            assert inst(a1)["effective_priority"] == 150
        finally:
            proc.kill()
            proc.wait()
