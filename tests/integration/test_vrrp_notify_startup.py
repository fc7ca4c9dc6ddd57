"""Notifications and start-up as keepalived 2.2.7 has them: startup_script before VRRP starts, vrrp_startup_delay,
notify_fifo_script reading the FIFO (keepalived's line format) with priority changes (notify_priority_changes)
and MASTER_RX_LOWER_PRI, notify_master_rx_lower_pri when a lower-priority node claims MASTER, shutdown_script after
the last STOP."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, agent_config, events, inst, instance, new_lab, script_dir, wait_sole_holder,
                          wait_state, write_atomic, write_script)

pytestmark = pytest.mark.netns
STARTUP_DELAY_S = 1.5
V3 = {"version": 3, "advert_int": 0.3}


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_fifo_reader_script_priority_changes_rx_lower_pri_and_start_stop_scripts(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    with script_dir() as directory:
        log, fifo_out, prio = directory / "scripts.log", directory / "fifo.out", directory / "prio"
        write_atomic(prio, "0\n")
        write_script(directory, "stamp.sh", f'echo "$1 $(date +%s.%N)" >> {log}\n')
        write_script(directory, "reader.sh", f'while read -r line; do echo "$line" >> {fifo_out}; done < "$1"\n')
        config = agent_config(
            "n1", {"VI_1": instance(51, 150, **V3, track_files=[{"name": "prio", "weight": -1}],
                                    notify_master_rx_lower_pri=f"{directory}/stamp.sh rx_lower_pri")},
            track_files={"prio": {"file": str(prio)}},
            notify_fifo=str(n1.dir / "notify.fifo"), notify_fifo_format="keepalived",
            notify_fifo_script=f"{directory}/reader.sh", vrrp_notify_priority_changes=True,
            startup_script=f"{directory}/stamp.sh startup", shutdown_script=f"{directory}/stamp.sh shutdown",
            startup_script_timeout=5, vrrp_startup_delay=STARTUP_DELAY_S)
        started_at = time.time()
        a1 = lab.start_agent(n1, config)
        wait_state(a1, "MASTER", timeout=20)
        first = events(a1, "transition")[0]
        startup = [line for line in _lines(log) if line.startswith("startup ")]
        assert len(startup) == 1 and float(startup[0].split()[1]) < first["ts"]
        assert first["ts"] - started_at >= STARTUP_DELAY_S, "the instance started before vrrp_startup_delay"

        # The track_file takes the priority from 150 to 120: one MASTER_PRIORITY line.
        write_atomic(prio, "30\n")
        wait_for(lambda: inst(a1)["effective_priority"] == 120, 5, what="priority 120")

        # A partition: n2 (priority 100) becomes MASTER too. Healed, n1 hears the lower priority, runs its
        # notify_master_rx_lower_pri, and n2 gives way.
        a2 = lab.start_agent(n2, agent_config("n2", {"VI_1": instance(51, 100, **V3)}))
        wait_state(a2, "BACKUP", timeout=10)
        lab.partition(n1, n2)
        wait_state(a2, "MASTER", timeout=10)
        assert not any(line.startswith("rx_lower_pri ") for line in _lines(log))
        lab.heal()
        wait_for(lambda: any(line.startswith("rx_lower_pri ") for line in _lines(log)), 10,
                 what="notify_master_rx_lower_pri")
        wait_state(a2, "BACKUP", timeout=10)
        wait_sole_holder(lab.nodes, VIP4, n1)

        assert a1.stop() == 0
        wait_for(lambda: 'INSTANCE "VI_1" STOP 120' in _lines(fifo_out), 10, what="the STOP line read by reader.sh")
        lines = _lines(fifo_out)
        assert lines[:3] == ['INSTANCE "VI_1" BACKUP 150', 'INSTANCE "VI_1" MASTER 150',
                             'INSTANCE "VI_1" MASTER_PRIORITY 120']
        assert 'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 120' in lines[3:-1]
        assert set(lines[3:-1]) == {'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 120'}
        assert [line.split()[0] for line in _lines(log)][-1] == "shutdown"
