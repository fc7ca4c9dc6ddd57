"""A sync group's own trackers and its notify scripts: a group track_interface, and a group vrrp_track_process
whose process is killed, put every member in FAULT; a group track_file's weight lowers every member until the
whole group moves to the peer; and the group's notify_master / notify_backup / notify_fault and
`notify GROUP G1 STATE 0` run for each group transition, in order."""

from __future__ import annotations

import secrets
import shutil
import subprocess

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, VIP4_B, add_track_link, agent_config, instance, inst, new_lab, script_dir, status,
                          wait_sole_holder, wait_state, write_atomic, write_script)

pytestmark = pytest.mark.netns
V3 = {"version": 3, "advert_int": 0.3}


def _config(router_id: str, priority: int, group: dict) -> dict:
    return agent_config(router_id, {
        "VI_1": instance(51, priority, vips=(VIP4,), **V3),
        "VI_2": instance(52, priority, vips=(VIP4_B,), **V3),
    }, vrrp_sync_groups={"G1": {"group": ["VI_1", "VI_2"], **group}})


def _group_state(handle) -> str:
    return status(handle)["sync_groups"]["G1"]["state"]


def test_group_trackers_move_every_member_and_group_notify_scripts_run(lab_factory, request):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    add_track_link(lab, n1)
    with script_dir() as directory:
        log = directory / "notify.log"
        prio = directory / "prio"
        write_atomic(prio, "0\n")
        for name in ("master", "backup", "fault"):
            write_script(directory, f"{name}.sh", f'echo "{name} $*" >> {log}\n')
        write_script(directory, "notify.sh", f'echo "notify $*" >> {log}\n')
        binary = directory / f"vr3grp{secrets.token_hex(3)}"     # a name no other process on the machine has
        shutil.copy("/bin/sleep", binary)
        daemon = subprocess.Popen([str(binary), "600"])

        def kill_daemon() -> None:          # the one running when the test ends, if it fails
            daemon.kill()
        request.addfinalizer(kill_daemon)
        group = {"track_interfaces": ["trk0"], "track_files": [{"name": "prio", "weight": -1}],
                 "track_processes": ["daemon"],
                 "notify_master": f"{directory}/master.sh G1", "notify_backup": f"{directory}/backup.sh",
                 "notify_fault": f"{directory}/fault.sh", "notify": f"{directory}/notify.sh"}
        config = _config("n1", 150, group)
        config["track_files"] = {"prio": {"file": str(prio)}}
        config["vrrp_track_processes"] = {"daemon": {"process": binary.name}}
        a1 = lab.start_agent(n1, config)
        a2 = lab.start_agent(n2, _config("n2", 100, {}))
        for name in ("VI_1", "VI_2"):
            wait_state(a1, "MASTER", name, timeout=20)
        wait_for(lambda: _group_state(a1) == "MASTER", 5, what="G1 MASTER on n1")
        assert inst(a1, "VI_2")["trackers"]["interfaces"] == [{"name": "trk0", "weight": 0, "weight_reverse": False, "up": True}]

        def logged() -> list[str]:
            return log.read_text().splitlines() if log.exists() else []

        # The group's interface goes down: every member is in FAULT for it, the peer takes both addresses.
        lab.link_set(n1, "trk0", False)
        for name in ("VI_1", "VI_2"):
            assert wait_state(a1, "FAULT", name, timeout=5)["fault_reasons"][0] == "tracked interface trk0 down"
            wait_state(a2, "MASTER", name, timeout=5)
        for vip in (VIP4, VIP4_B):
            wait_sole_holder(lab.nodes, vip, n2)
        lab.link_set(n1, "trk0", True)
        for name in ("VI_1", "VI_2"):
            wait_state(a1, "MASTER", name, timeout=10)

        # The group's process exits: every member is in FAULT for it (only the group tracks it).
        daemon.kill()
        daemon.wait()
        for name in ("VI_1", "VI_2"):
            assert wait_state(a1, "FAULT", name, timeout=5)["fault_reasons"][0] == "tracked process daemon: quorum lost"
        daemon = subprocess.Popen([str(binary), "600"])
        for name in ("VI_1", "VI_2"):
            wait_state(a1, "MASTER", name, timeout=10)

        # The group's file: 60 x -1 takes both members from 150 to 90, below n2's 100; the group moves, once.
        write_atomic(prio, "60\n")
        for name in ("VI_1", "VI_2"):
            wait_state(a2, "MASTER", name, timeout=10)
            assert wait_state(a1, "BACKUP", name, timeout=5)["effective_priority"] == 90
        for vip in (VIP4, VIP4_B):
            wait_sole_holder(lab.nodes, vip, n2)
        daemon.kill()
        daemon.wait()
        wait_for(lambda: len(logged()) >= 16, 10, what="the group's notify lines")
        assert logged() == [
            "backup ", "notify GROUP G1 BACKUP 0",
            "master G1", "notify GROUP G1 MASTER 0",
            "fault ", "notify GROUP G1 FAULT 0",
            "backup ", "notify GROUP G1 BACKUP 0",
            "master G1", "notify GROUP G1 MASTER 0",
            "fault ", "notify GROUP G1 FAULT 0",
            "backup ", "notify GROUP G1 BACKUP 0",
            "master G1", "notify GROUP G1 MASTER 0",
            "backup ", "notify GROUP G1 BACKUP 0",
        ]
