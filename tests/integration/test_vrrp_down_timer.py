"""down_timer_adverts: a BACKUP takes over after that many advert intervals plus Skew_Time instead of the RFC's 3
(keepalived's deviation, for both ends to agree on)."""

from __future__ import annotations

import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import events, inst, new_lab, single, wait_state

pytestmark = pytest.mark.netns
ADVERT_S = 0.3


def test_a_backup_with_down_timer_adverts_1_takes_over_after_one_interval_and_skew(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 150, version=3, advert_int=ADVERT_S))
    a2 = lab.start_agent(n2, single("n2", 100, version=3, advert_int=ADVERT_S, down_timer_adverts=1))
    wait_state(a1, "MASTER", timeout=20)
    wait_state(a2, "BACKUP")
    down_ms = round((ADVERT_S + (256 - 100) * ADVERT_S / 256) * 1000, 3)
    assert inst(a2)["timers"]["master_down_interval_ms"] == down_ms       # 483.203, the RFC's would be 1083.203
    cut_at = time.time()
    lab.partition(n1, n2)
    took = wait_for(lambda: next((e for e in events(a2, "transition") if e["to"] == "MASTER" and e["ts"] >= cut_at),
                                 None), 5,
                    what="n2 MASTER")
    waited_s = took["ts"] - cut_at
    print(f"takeover {waited_s * 1000:.0f} ms after the partition (Master_Down_Interval {down_ms} ms)")
    assert down_ms / 1000 - ADVERT_S <= waited_s < 3 * ADVERT_S
