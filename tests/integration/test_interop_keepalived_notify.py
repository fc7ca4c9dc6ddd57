"""hanode and Debian's keepalived 2.2.7 side by side, each tracking a track_file with weight -1 and writing its
notify FIFO in keepalived's format with vrrp_notify_priority_changes: the same priority arithmetic, the same
MASTER_PRIORITY / BACKUP_PRIORITY lines, and MASTER_RX_LOWER_PRI from whichever side is the higher MASTER when a
partition heals (the lower one's last advert as it gives way: hanode always sends it, keepalived with
vrrp_higher_prio_send_advert)."""

from __future__ import annotations

import pytest

from hanode.lab.procs import wait_for
from helpers_ops import FifoReader, new_lab
from helpers_vrrp import VIP4, agent_config, inst, instance, wait_sole_holder, wait_state, write_atomic

pytestmark = pytest.mark.netns

KEEPALIVED_CONF = """global_defs {{
    router_id ka
    notify_fifo {fifo}
    vrrp_notify_priority_changes
    vrrp_higher_prio_send_advert
}}
track_file prio {{
    file {file}
    weight -1
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    version 3
    advert_int 0.3
    track_file {{
        prio
    }}
    virtual_ipaddress {{
        198.51.100.100/24
    }}
}}
"""


def test_priority_and_rx_lower_pri_lines_match_keepalived(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    ours, theirs = FifoReader(n1.dir / "hanode.fifo"), FifoReader(n2.dir / "keepalived.fifo")
    our_file, their_file = n1.dir / "prio", n2.dir / "prio"
    write_atomic(our_file, "0\n")
    write_atomic(their_file, "0\n")

    def has(reader: FifoReader, line: str) -> bool:
        return line in [text for _when, text in reader.lines]

    try:
        agent = lab.start_agent(n1, agent_config(
            "n1", {"VI_1": instance(51, 150, version=3, advert_int=0.3, track_files=["prio"])},
            track_files={"prio": {"file": str(our_file), "weight": -1}}, notify_fifo=str(ours.path),
            notify_fifo_format="keepalived", vrrp_notify_priority_changes=True))
        keepalived = lab.start_keepalived(n2, KEEPALIVED_CONF.format(fifo=theirs.path, file=their_file))
        wait_state(agent, "MASTER", timeout=15)
        wait_for(lambda: has(theirs, 'INSTANCE "VI_1" BACKUP 100'), 15, what="keepalived BACKUP")

        # 10 x -1 on both sides
        write_atomic(our_file, "10\n")
        write_atomic(their_file, "10\n")
        wait_for(lambda: has(ours, 'INSTANCE "VI_1" MASTER_PRIORITY 140'), 5, what="hanode's MASTER_PRIORITY")
        wait_for(lambda: has(theirs, 'INSTANCE "VI_1" BACKUP_PRIORITY 90'), 5, what="keepalived's BACKUP_PRIORITY")

        # hanode the higher MASTER when a partition heals
        lab.partition(n1, n2)
        wait_for(lambda: has(theirs, 'INSTANCE "VI_1" MASTER 90'), 10, what="keepalived MASTER in the partition")
        lab.heal()
        wait_for(lambda: has(ours, 'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 140'), 10, what="hanode MASTER_RX_LOWER_PRI")
        wait_for(lambda: [t for _w, t in theirs.lines][-1] == 'INSTANCE "VI_1" BACKUP 90', 10,
                 what="keepalived back to BACKUP")

        # keepalived the higher one: -100 x -1 takes it to 200; it preempts; then the same partition
        write_atomic(their_file, "-100\n")
        wait_state(agent, "BACKUP", timeout=10)
        theirs_before = len(theirs.lines)
        lab.partition(n1, n2)
        wait_state(agent, "MASTER", timeout=10)
        lab.heal()
        wait_for(lambda: has(theirs, 'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 200'), 10,
                 what="keepalived MASTER_RX_LOWER_PRI")
        wait_state(agent, "BACKUP", timeout=10)
        wait_sole_holder(lab.nodes, VIP4, n2)
        assert inst(agent)["effective_priority"] == 140
        print(f"\nhanode:     {[t for _w, t in ours.lines]}\nkeepalived: {[t for _w, t in theirs.lines]}")
        assert len(theirs.lines) > theirs_before
        keepalived.stop()
    finally:
        ours.close()
        theirs.close()
