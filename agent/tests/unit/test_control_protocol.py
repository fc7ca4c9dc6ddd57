"""The control protocol's schema: what a client may send, and what reaches the children."""

from __future__ import annotations

import json
import random

import pytest

from hanode.control.protocol import (COMMANDS, MAX_REQUEST_BYTES, Request, RequestError, child_message, control_event,
                                     parse_request)


def req(obj) -> Request:
    return parse_request(json.dumps(obj).encode() + b"\n")


def refused(obj_or_bytes) -> str:
    line = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    with pytest.raises(RequestError) as info:
        parse_request(line)
    return str(info.value)


def test_every_command_with_its_defaults():
    assert req({"cmd": "status"}) == Request("status", {})
    assert req({"cmd": "events"}) == Request("events", {"since": 0, "follow": False})
    assert req({"cmd": "events", "since": 7, "follow": True}).fields == {"since": 7, "follow": True}
    assert req({"cmd": "drain"}).fields == {"instances": None}
    assert req({"cmd": "enable", "instances": ["VI_1", "VI_2"]}).fields == {"instances": ["VI_1", "VI_2"]}
    rs = req({"cmd": "rs_disable", "virtual_server": "198.51.100.100:80/TCP", "real_server": "203.0.113.11:80"})
    assert rs.fields == {"virtual_server": "198.51.100.100:80/TCP", "real_server": "203.0.113.11:80"}


def test_the_forged_config_message_of_issue_15_is_refused_naming_the_fields():
    error = refused({"cmd": "drain", "type": "config", "config": {"vrrp_instances": {}}})
    assert error == "drain: unknown field 'config', 'type' (allowed: instances)"


@pytest.mark.parametrize("obj, expected", [
    ({"cmd": "status", "verbose": True}, "status: unknown field 'verbose' (allowed: none)"),
    ({"cmd": "events", "since": "5"}, "events: field 'since' must be an integer >= 0 (an event sequence number), "
                                      "got a string '5'"),
    ({"cmd": "events", "since": -1}, "events: field 'since' must be an integer >= 0"),
    ({"cmd": "events", "since": 1.5}, "field 'since' must be an integer"),
    ({"cmd": "events", "follow": 1}, "events: field 'follow' must be true or false, got an integer 1"),
    ({"cmd": "events", "since": True}, "field 'since' must be an integer >= 0"),
    ({"cmd": "drain", "instances": "VI_1"}, "drain: field 'instances' must be a list of instance names"),
    ({"cmd": "drain", "instances": [1]}, "got a list holding an integer"),
    ({"cmd": "drain", "instances": [["VI_1"]]}, "got a list holding a list"),
    ({"cmd": "drain", "instances": [""]}, "got a list holding a string ''"),
    ({"cmd": "drain", "instances": ["x" * 256]}, "got a list holding a string"),
    ({"cmd": "rs_enable", "virtual_server": "198.51.100.100:80/TCP"}, "rs_enable: field 'real_server' is required"),
    ({"cmd": "rs_enable", "virtual_server": {}, "real_server": "a"}, "field 'virtual_server' must be a virtual server"),
    ({"cmd": "bogus"}, "unknown command 'bogus' (known: drain, enable, events, ping, reload, rs_disable, "
                       "rs_enable, status)"),
    ({"cmd": 5}, "field 'cmd' must be a string"),
    ({"command": "status"}, "field 'cmd' must be a string"),
    ([{"cmd": "status"}], "a request is a JSON object with a string 'cmd', got a list"),
    ("status", "a request is a JSON object with a string 'cmd', got a string 'status'"),
])
def test_wrong_types_and_unknown_fields_are_refused_naming_the_field(obj, expected):
    assert expected in refused(obj)


def test_bad_lines_are_refused():
    assert refused(b'{"cmd": "status"').startswith("not JSON")
    assert refused(b'\xff\xfe{"cmd": "status"}').startswith("not JSON")
    assert refused(b'{"cmd": "status", "cmd": "drain"}') == "field 'cmd' is given twice"
    assert refused(b'{"cmd": "events", "since": NaN}') == "NaN is not a JSON number"
    assert refused(b"[" * 30_000 + b"]" * 30_000) == "request is nested too deeply"
    assert refused(b'{"cmd": "status", "x": "' + b"a" * MAX_REQUEST_BYTES + b'"}').startswith("request is larger")
    assert len(refused({"cmd": "x" * 10_000})) < 200, "the error quotes a long value shortened"
    assert "a list of 5000 items" in refused({"cmd": "drain", "instances": ["a"] * 5000})


def test_child_messages_and_events_hold_only_the_declared_fields():
    drain = req({"cmd": "drain", "instances": ["VI_1"]})
    assert child_message(drain) == {"type": "control", "action": "drain", "instances": ["VI_1"]}
    assert control_event(drain) == {"event": "control", "action": "drain", "instances": ["VI_1"]}
    rs = req({"cmd": "rs_enable", "virtual_server": "v", "real_server": "r"})
    assert child_message(rs) == {"type": "control", "action": "rs_enable", "virtual_server": "v", "real_server": "r"}
    with pytest.raises(ValueError):
        child_message(req({"cmd": "status"}))


def test_no_declared_field_can_shadow_an_internal_key():
    reserved = {"type", "id", "action", "event", "seq", "ts", "cmd", "config", "generation", "digest", "resume"}
    for cmd, schema in COMMANDS.items():
        assert not reserved & set(schema), cmd


def _junk(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-2 ** 70, 2 ** 70)
    if kind == 2:
        return rng.random() * 10 ** rng.randint(-5, 300)
    if kind in (3, 4):
        return "".join(chr(rng.randrange(1, 0x2FF)) for _count in range(rng.randrange(12)))
    if kind in (5, 6):
        return {rng.choice(["cmd", "type", "config", "instances", "since", "follow", "id", "x"]): _junk(rng, depth + 1)
                for _count in range(rng.randrange(5))}
    return [_junk(rng, depth + 1) for _count in range(rng.randrange(5))]


def test_random_requests_are_either_a_valid_request_or_a_request_error():
    rng = random.Random(15)
    accepted = 0
    for _count in range(5000):
        obj = _junk(rng)
        if isinstance(obj, dict) and rng.random() < 0.5:
            obj["cmd"] = rng.choice(sorted(COMMANDS))
        try:
            request = req(obj)
        except RequestError:
            continue
        accepted += 1
        assert set(request.fields) == set(COMMANDS[request.cmd])
        assert set(obj) <= set(request.fields) | {"cmd"}
    assert accepted > 50   # some random requests are valid ones (status with no fields, drain of all...)
