"""The lab registry is shared by every checkout on the machine: records written by another version still load."""

import json

from hanode.lab import registry


def test_a_record_with_fields_this_version_does_not_know_still_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("HANODE_LAB_REGISTRY", str(tmp_path))
    record = registry.new_record("hn123abc", ["hn123abc-sw"], "/tmp/x", persistent=True)
    data = json.loads(record.to_json())
    data["field_of_a_newer_version"] = {"n1": "/var/lib/x"}
    (tmp_path / "hn123abc.json").write_text(json.dumps(data))
    loaded = registry.load("hn123abc")
    assert loaded is not None and loaded.prefix == "hn123abc" and loaded.namespaces == ["hn123abc-sw"]
    assert [r.prefix for r in registry.load_all()] == ["hn123abc"]
