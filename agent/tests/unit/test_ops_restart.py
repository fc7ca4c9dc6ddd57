"""The supervisor's respawn back-off (keepalived's): at once after a run of more than 60 s, else 1, 2, 4 ... s
for consecutive short-lived failures, capped at 60 s."""

from __future__ import annotations

import pytest

from hanode.daemon.processes import LONG_RUN_S, restart_delay_s


@pytest.mark.parametrize("ran_s, failures, delay_s", [
    (61.0, 0, 0.0),        # a long run: restart at once (its failure count was reset)
    (3600.0, 0, 0.0),
    (5.0, 1, 1.0),         # the first quick failure
    (5.0, 2, 2.0),
    (5.0, 3, 4.0),
    (5.0, 4, 8.0),
    (5.0, 5, 16.0),
    (5.0, 6, 32.0),
    (5.0, 7, 60.0),        # 64 s capped
    (5.0, 8, 60.0),
    (5.0, 1000, 60.0),
    (60.0, 1, 1.0),        # exactly 60 s is not "over 60 s"
    (0.0, 0, 1.0),         # never less than 1 s after a quick exit
])
def test_restart_delay_table(ran_s, failures, delay_s):
    assert restart_delay_s(ran_s, failures) == delay_s


def test_long_run_threshold_is_keepalived_s():
    assert LONG_RUN_S == 60.0
