"""vrrp_sync_groups: the instances of a group change state together, on both nodes."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, VIP4_B, add_track_link, agent_config, holders, instance, master_down_s, new_lab,
                          status, wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

V3 = {"version": 3, "advert_int": 0.3}


def _config(router_id: str, priority: int, group: dict | None = None, **vi_1_extra) -> dict:
    return agent_config(router_id, {
        "VI_1": instance(51, priority, vips=(VIP4,), **V3, **vi_1_extra),
        "VI_2": instance(52, priority, vips=(VIP4_B,), **V3),
    }, vrrp_sync_groups={"G1": {"group": ["VI_1", "VI_2"], **(group or {})}})


def _states(handle) -> tuple[str, str, str]:
    st = status(handle)
    return st["instances"]["VI_1"]["state"], st["instances"]["VI_2"]["state"], st["sync_groups"]["G1"]["state"]


def test_sync_group_members_fail_over_and_come_back_together(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    add_track_link(lab, n1)
    a1 = lab.start_agent(n1, _config("n1", 150, track_interfaces=["trk0"]))
    a2 = lab.start_agent(n2, _config("n2", 100))
    for name in ("VI_1", "VI_2"):
        wait_state(a1, "MASTER", name, timeout=20)
        wait_state(a2, "BACKUP", name)
    assert _states(a1) == ("MASTER", "MASTER", "MASTER") and _states(a2) == ("BACKUP", "BACKUP", "BACKUP")
    for vip in (VIP4, VIP4_B):
        wait_sole_holder(lab.nodes, vip, n1)

    # Only VI_1 tracks trk0; VI_2 follows it into FAULT, and both addresses move to n2.
    lab.link_set(n1, "trk0", False)
    vi_2 = wait_state(a1, "FAULT", "VI_2", timeout=5)
    assert vi_2["fault_reasons"] == ["sync group G1: VI_1 in FAULT (tracked interface trk0 down)"]
    assert wait_state(a1, "FAULT", "VI_1")["fault_reasons"] == ["tracked interface trk0 down"]
    for name in ("VI_1", "VI_2"):
        wait_state(a2, "MASTER", name, timeout=5)
    for vip in (VIP4, VIP4_B):
        wait_sole_holder(lab.nodes, vip, n2)
    assert _states(a1) == ("FAULT", "FAULT", "FAULT") and _states(a2) == ("MASTER", "MASTER", "MASTER")

    lab.link_set(n1, "trk0", True)
    for name in ("VI_1", "VI_2"):
        wait_state(a1, "MASTER", name, timeout=10)
        wait_state(a2, "BACKUP", name, timeout=5)
    for vip in (VIP4, VIP4_B):
        wait_sole_holder(lab.nodes, vip, n1)
    assert _states(a1) == ("MASTER", "MASTER", "MASTER") and _states(a2) == ("BACKUP", "BACKUP", "BACKUP")


def test_sync_group_moves_when_all_members_lose_priority_and_never_thrashes(lab_factory):
    """keepalived's rule: one member's lowered priority does not move the group (it would flip back and
    forth); once every member's priority is below the peer's, the whole group moves, once."""
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    add_track_link(lab, n1, "trk0")
    add_track_link(lab, n1, "trk1")
    # the members' own weights count only with sync_group_tracking_weight (keepalived's rule)
    config = _config("n1", 150, {"sync_group_tracking_weight": True}, track_interfaces=[{"name": "trk0", "weight": -60}])
    config["vrrp_instances"]["VI_2"]["track_interfaces"] = [{"name": "trk1", "weight": -60}]
    a1 = lab.start_agent(n1, config)
    a2 = lab.start_agent(n2, _config("n2", 100))
    wait_state(a1, "MASTER", "VI_2", timeout=20)
    wait_state(a2, "BACKUP", "VI_2")

    def flips() -> list[int]:
        st1, st2 = status(a1), status(a2)
        return [st["instances"][n]["transitions"] for st in (st1, st2) for n in ("VI_1", "VI_2")]

    lab.link_set(n1, "trk0", False)
    wait_for(lambda: status(a1)["instances"]["VI_1"]["effective_priority"] == 90, 5, what="VI_1 at 90 on n1")
    before = flips()
    # Must NOT happen: a move. Watched for 3 x Master_Down_Interval of n2 (a fixed window, ~3.2 s).
    deadline = time.monotonic() + 3 * master_down_s(100, 0.3, 3)
    while time.monotonic() < deadline:
        assert _states(a1) == ("MASTER", "MASTER", "MASTER"), _states(a1)
        time.sleep(0.1)
    assert flips() == before
    assert holders(lab.nodes, VIP4) == holders(lab.nodes, VIP4_B) == ["n1"]

    lab.link_set(n1, "trk1", False)
    for name in ("VI_1", "VI_2"):
        wait_state(a2, "MASTER", name, timeout=10)
        wait_state(a1, "BACKUP", name, timeout=5)
    for vip in (VIP4, VIP4_B):
        wait_sole_holder(lab.nodes, vip, n2)
    moved = flips()
    deadline = time.monotonic() + 3 * master_down_s(90, 0.3, 3)  # again a window where nothing may happen
    while time.monotonic() < deadline:
        assert _states(a2) == ("MASTER", "MASTER", "MASTER"), _states(a2)
        time.sleep(0.1)
    assert flips() == moved
