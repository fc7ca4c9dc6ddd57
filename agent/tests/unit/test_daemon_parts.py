"""A status written from its parts is the document json.dumps would write (daemon/parts.py)."""

import json

import pytest

from hanode.daemon.parts import (LazyEntries, LazyItems, PackedEntries, encode_document, encode_value, lazy_values,
                                 write_extended)

INSTANCES = {"VI_1": {"state": "MASTER", "vips": ["198.51.100.1/32"]}, "VI_é": {"state": "BACKUP"}, "VI_0": {}}


def packed(entries: dict) -> PackedEntries:
    kept = PackedEntries()
    for name, value in entries.items():
        kept.add(name, encode_value(value))
    return kept.finish()


def test_encode_document_is_json_dumps_of_the_whole_document_with_the_extra_keys():
    document = {"schema_version": 1, "agent": {"pid": 7}, "instances": {}, "vrrp": {"stats": {}}}
    counts = {"VI_1": 2, "VI_é": 0, "VI_0": 5}

    out = encode_document(document, {"instances": packed(INSTANCES)}, lambda key, name: {"transitions": counts[name]},
                          bytearray(b"["))

    expected = dict(document, instances={name: dict(value, transitions=counts[name]) for name, value in INSTANCES.items()})
    assert out == b"[" + json.dumps(expected).encode()


def test_packed_entries_give_back_what_was_added_in_order_and_can_be_read_again():
    kept = packed(INSTANCES)
    for _reading in range(2):
        assert [(name, json.loads(bytes(value))) for name, value in kept] == list(INSTANCES.items())
    assert list(PackedEntries().finish()) == []


def test_a_key_without_parts_is_written_as_it_is_and_no_extra_leaves_an_entry_unchanged():
    document = {"instances": {}, "sync_groups": {"G": {"members": ["VI_1"]}}}
    assert json.loads(encode_document(document, {"instances": []}, lambda key, name: {})) == document
    assert json.loads(encode_document(document, {}, lambda key, name: {})) == document


def test_write_extended_adds_keys_to_an_empty_object_too():
    for encoded, extra, expected in ((b"{}", {"transitions": 3}, {"transitions": 3}),
                                     (b'{"a": 1}', {"transitions": 3}, {"a": 1, "transitions": 3}),
                                     (b'{"a": 1}', {}, {"a": 1})):
        out = bytearray()
        write_extended(out, memoryview(encoded), extra)
        assert json.loads(out) == expected


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


def test_a_list_inside_the_document_is_written_from_its_parts_where_the_document_holds_it():
    servers = [{"name": "203.0.113.11:8080", "health": "up"}, {"name": "203.0.113.12:8080", "health": "down"}]
    document = {"agent": {"pid": 7}, "instances": {},
                "virtual_servers": [{"name": "vs1", "real_servers": [], "diff": []},
                                    {"name": "vs2", "real_servers": [], "diff": ["x"]}]}
    kept = PackedEntries()
    for server in servers:
        kept.add(None, encode_value(server))
    parts = {"instances": packed(INSTANCES), "virtual_servers/0/real_servers": kept.finish(),
             "virtual_servers/1/real_servers": PackedEntries().finish()}

    out = encode_document(document, parts, lambda key, name: {})

    expected = json.loads(json.dumps(document))
    expected["instances"] = INSTANCES
    expected["virtual_servers"][0]["real_servers"] = servers
    assert out == json.dumps(expected).encode()


def test_lazy_values_finds_lazy_mappings_and_lists_at_any_depth_and_lazy_items_make_each_item_when_asked():
    made = []

    def make(item):
        made.append(item)
        return {"n": item}

    items = LazyItems((1, 2, 3), make)
    entries = LazyEntries(["a"], dict)
    status = {"instances": entries, "virtual_servers": [{"real_servers": items}], "lvs": {"checks": 3}}
    found = lazy_values(status)
    assert sorted((path, key) for path, _holder, key, _value in found) == [
        ("instances", "instances"), ("virtual_servers/0/real_servers", "real_servers")]
    assert made == [] and len(items) == 3
    assert items[1] == {"n": 2} and made == [2]
    assert list(items) == [{"n": 1}, {"n": 2}, {"n": 3}]
