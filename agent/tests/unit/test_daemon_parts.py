"""A status written from its parts is the document json.dumps would write (daemon/parts.py)."""

import json

import pytest

from hanode.daemon.parts import LazyEntries, encode_document, encode_value, extended


def test_encode_document_is_json_dumps_of_the_whole_document_with_the_extra_keys():
    instances = {"VI_1": {"state": "MASTER", "vips": ["198.51.100.1/32"]}, "VI_é": {"state": "BACKUP"}}
    document = {"schema_version": 1, "agent": {"pid": 7}, "instances": {}, "vrrp": {"stats": {}}}
    parts = {"instances": [(name, encode_value(value)) for name, value in instances.items()]}
    counts = {"VI_1": 2, "VI_é": 0}

    chunks = encode_document(document, parts, lambda key, name: {"transitions": counts[name]})

    expected = dict(document, instances={name: dict(value, transitions=counts[name]) for name, value in instances.items()})
    assert b"".join(chunks) == json.dumps(expected).encode()


def test_a_key_without_parts_is_written_as_it_is_and_no_extra_leaves_an_entry_unchanged():
    document = {"instances": {}, "sync_groups": {"G": {"members": ["VI_1"]}}}
    chunks = encode_document(document, {"instances": []}, lambda key, name: {})
    assert json.loads(b"".join(chunks)) == document


def test_extended_adds_keys_to_an_empty_object_too():
    assert json.loads(extended(b"{}", {"transitions": 3})) == {"transitions": 3}
    assert json.loads(extended(b'{"a": 1}', {"transitions": 3})) == {"a": 1, "transitions": 3}
    assert extended(b'{"a": 1}', {}) == b'{"a": 1}'


def test_lazy_entries_make_each_value_when_asked_and_only_then():
    made = []

    def make(name):
        made.append(name)
        return {"name": name}

    entries = LazyEntries(["b", "a"], make)
    assert list(entries) == ["b", "a"] and len(entries) == 2 and made == []
    assert entries["a"] == {"name": "a"} and made == ["a"]
    with pytest.raises(KeyError):
        entries["c"]   # pylint: disable=pointless-statement
    assert [name for name, _value in entries.items()] == ["b", "a"] and made == ["a", "b", "a"]
