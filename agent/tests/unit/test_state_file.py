"""The small JSON state files next to the control socket (drained real servers and VRRP instances)."""

from __future__ import annotations

import os

from hanode.lvs.state_file import load_state, save_state, state_path, unsaved
from hanode.vrrp.child import drained_path


def test_names_and_pairs_round_trip_and_a_bad_file_is_empty(tmp_path):
    socket = str(tmp_path / "agent.sock")
    assert drained_path(socket) == str(tmp_path / "agent.vrrp-drained.json")
    assert state_path(None, "vrrp-drained") is None and load_state(None, "drained", str) == set()
    names = drained_path(socket)
    save_state(names, "drained", ["VI_1", "VI_2"])
    assert load_state(names, "drained", str) == {"VI_1", "VI_2"}
    pairs = state_path(socket, "lvs-drained")
    save_state(pairs, "drained", [("198.51.100.100:80/TCP", "203.0.113.11:8080")])
    assert load_state(pairs, "drained", lambda vs, rs: (vs, rs)) == {("198.51.100.100:80/TCP", "203.0.113.11:8080")}
    (tmp_path / "agent.vrrp-drained.json").write_text("{not json")
    assert load_state(names, "drained", str) == set()


def test_a_file_that_cannot_be_written_is_listed_until_a_write_succeeds(tmp_path):
    path = str(tmp_path / "gone" / "agent.vrrp-drained.json")
    assert save_state(path, "drained", ["VI_1"]) is False
    assert save_state(path, "drained", ["VI_1", "VI_2"]) is False
    (entry,) = [e for e in unsaved() if e["path"] == path]
    assert entry["error"] == "cannot save drained: No such file or directory" and entry["since"] > 0
    (tmp_path / "gone").mkdir()
    assert save_state(path, "drained", ["VI_1"]) is True
    assert [e for e in unsaved() if e["path"] == path] == []
    assert os.listdir(tmp_path / "gone") == ["agent.vrrp-drained.json"]
