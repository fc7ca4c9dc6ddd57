"""notify_fifo_format: keepalived (issue 5): an agent writes the same lines to its notify FIFO as real keepalived
(2.2.7) writes to its own for the same life: an instance in a sync group starting, becoming MASTER, stopping."""

from __future__ import annotations

import pytest

from hanode.lab.procs import wait_for
from helpers_ops import FifoReader, new_lab
from helpers_vrrp import agent_config, instance, wait_state

pytestmark = pytest.mark.netns

KEEPALIVED_CONF = """global_defs {{
    router_id ka
    notify_fifo {fifo}
}}
vrrp_sync_group G1 {{
    group {{
        VI_1
    }}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 120
    version 3
    advert_int 0.3
    virtual_ipaddress {{
        198.51.100.102/24
    }}
}}
"""


def test_keepalived_fifo_format_matches_real_keepalived(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    ours, theirs = FifoReader(n1.dir / "hanode.fifo"), FifoReader(n2.dir / "keepalived.fifo")
    try:
        agent = lab.start_agent(n1, agent_config(
            "n1", {"VI_1": instance(51, 120, version=3, advert_int=0.3)}, vrrp_sync_groups={"G1": {"group": ["VI_1"]}},
            notify_fifo=str(ours.path), notify_fifo_format="keepalived"))
        keepalived = lab.start_keepalived(n2, KEEPALIVED_CONF.format(fifo=theirs.path))
        wait_state(agent, "MASTER", timeout=10)
        wait_for(lambda: 'INSTANCE "VI_1" MASTER 120' in [line for _when, line in theirs.lines], 10,
                 what="keepalived to become MASTER")
        assert agent.stop() == 0
        keepalived.stop()
        wait_for(lambda: len(ours.lines) >= 6 and len(theirs.lines) >= 6, 10, what="STOP lines in both FIFOs")
        hanode_lines = [line for _when, line in ours.lines]
        keepalived_lines = [line for _when, line in theirs.lines]
        print(f"\nkeepalived: {keepalived_lines}\nhanode:     {hanode_lines}")
        # The same lines; within one change of state an instance and its group may come in either order.
        assert sorted(hanode_lines) == sorted(keepalived_lines)
        for lines in (hanode_lines, keepalived_lines):
            states = [line.split()[2] for line in lines if line.startswith("INSTANCE")]
            assert states == ["BACKUP", "MASTER", "STOP"]
            assert [line.split()[2] for line in lines if line.startswith("GROUP")] == states
    finally:
        ours.close()
        theirs.close()
