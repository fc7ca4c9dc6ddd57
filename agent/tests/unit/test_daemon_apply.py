"""The apply timeout: 30 s, shortened only through the environment (tests), never from config or the socket."""

from __future__ import annotations

from hanode.daemon.processes import APPLY_TIMEOUT_S, apply_timeout_s


def test_apply_timeout_defaults_to_30_s_and_takes_a_number_from_the_environment():
    assert APPLY_TIMEOUT_S == 30.0
    assert apply_timeout_s({}) == 30.0
    assert apply_timeout_s({"HANODE_APPLY_TIMEOUT_S": "1.5"}) == 1.5
    assert apply_timeout_s({"HANODE_APPLY_TIMEOUT_S": "0"}) == 0.1
    assert apply_timeout_s({"HANODE_APPLY_TIMEOUT_S": "soon"}) == 30.0
