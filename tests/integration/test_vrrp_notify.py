"""notify_master / notify_backup / notify_fault / notify_stop and `notify` run in event order, one after
the other, with keepalived's arguments."""

from __future__ import annotations

import json
import subprocess

import pytest

from hanode.lab.procs import hanode_argv, python_env, wait_for
from helpers_vrrp import add_track_link, new_lab, script_dir, single, wait_state, write_script

pytestmark = pytest.mark.netns


def _cli_events(handle) -> list[dict]:
    """`hanode events --json --socket S`: the user's view of the ordered event stream."""
    proc = subprocess.run([*hanode_argv(), "events", "--json", "--socket", str(handle.socket_path)],
                          capture_output=True, text=True, timeout=20, env=python_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_notify_scripts_run_in_event_order_with_keepalived_arguments(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    add_track_link(lab, n1)
    with script_dir() as directory:
        log = directory / "notify.log"
        for kind in ("master", "backup", "fault", "stop"):
            write_script(directory, f"{kind}.sh", f'echo "$(basename "$0") $*" >> {log}\n')
        # The generic script is slow: if the scripts ran concurrently, the next state's own script would
        # overtake it and the log would be out of order.
        write_script(directory, "notify.sh", f'sleep 0.3\necho "$(basename "$0") $*" >> {log}\n')
        config = single("n1", 150, version=3, advert_int=0.3, track_interfaces=["trk0"],
                        notify_master=f"{directory}/master.sh lb1 --flag", notify_backup=f"{directory}/backup.sh",
                        notify_fault=f"{directory}/fault.sh", notify_stop=f"{directory}/stop.sh",
                        notify=f"{directory}/notify.sh")
        agent = lab.start_agent(n1, config)

        def logged() -> list[str]:
            return log.read_text().splitlines() if log.exists() else []

        wait_state(agent, "MASTER", timeout=10)
        wait_for(lambda: len(logged()) >= 4, 10, what="notify lines for BACKUP and MASTER")
        lab.link_set(n1, "trk0", False)
        wait_state(agent, "FAULT", timeout=5)
        wait_for(lambda: len(logged()) >= 6, 10, what="notify lines for FAULT")
        lab.link_set(n1, "trk0", True)
        wait_state(agent, "MASTER", timeout=10)
        wait_for(lambda: len(logged()) >= 10, 10, what="notify lines after the fault cleared")
        moves = [(e["from"], e["to"]) for e in _cli_events(agent) if e["event"] == "transition"]
        assert agent.stop() == 0  # notify_stop runs before the agent exits
        assert logged() == [
            "backup.sh ", "notify.sh INSTANCE VI_1 BACKUP 150",
            "master.sh lb1 --flag", "notify.sh INSTANCE VI_1 MASTER 150",
            "fault.sh ", "notify.sh INSTANCE VI_1 FAULT 150",
            "backup.sh ", "notify.sh INSTANCE VI_1 BACKUP 150",
            "master.sh lb1 --flag", "notify.sh INSTANCE VI_1 MASTER 150",
            "stop.sh ", "notify.sh INSTANCE VI_1 STOP 150",
        ]
        # The scripts followed the agent's own ordered event stream.
        assert moves == [("INIT", "BACKUP"), ("BACKUP", "MASTER"), ("MASTER", "FAULT"), ("FAULT", "BACKUP"),
                         ("BACKUP", "MASTER")]
