"""The control socket's protocol as a schema: per command, the fields a request may carry and their types.

A request is one line of JSON, at most MAX_REQUEST_BYTES, naming its command in `cmd`. It is checked here,
whole, before anything acts on it: an unknown command, an unknown field, a field of the wrong type, a key
given twice or a value nested too deeply is refused with an error naming the field. Everything past this
module sees a `Request` holding only declared fields; the messages to the children and the events published
are built from those by name (`child_message`, `control_event`), so a client's keys never reach them.

Pure: bytes in, a Request or RequestError out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

MAX_REQUEST_BYTES = 64 * 1024      # the longest request line (names of a few thousand instances fit)
REQUEST_TIMEOUT_MS = 5_000         # a client has this long to send a complete request line
WRITE_TIMEOUT_MS = 10_000          # ... and to take an answer (a client that does not read is dropped)
MAX_CLIENTS = 512                  # connections served at once; past it the longest-idle one is dropped
MAX_NAME_LENGTH = 255              # an instance, virtual server or real server name
MAX_LIST_LENGTH = 4096             # instance names in one drain/enable


class RequestError(ValueError):
    """A request the agent refuses; the message names the command and the field."""


@dataclass(frozen=True)
class Field:
    kind: str                                  # what the error says the value must be
    check: Callable[[Any], bool]               # True when the value is acceptable
    required: bool = False
    default: Any = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME_LENGTH


def _names_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, list) and len(value) <= MAX_LIST_LENGTH
                             and all(_is_name(v) for v in value))


SEQ = Field("an integer >= 0 (an event sequence number)", lambda v: _is_int(v) and 0 <= v < 2 ** 63, default=0)
FOLLOW = Field("true or false", lambda v: isinstance(v, bool), default=False)
INSTANCES = Field(f"a list of instance names (strings of 1..{MAX_NAME_LENGTH} characters) or null for all",
                  _names_or_null)
VIRTUAL_SERVER = Field("a virtual server name (e.g. 198.51.100.100:80/TCP)", _is_name, required=True)
REAL_SERVER = Field("a real server name (e.g. 203.0.113.11:8080)", _is_name, required=True)

# The commands, their fields, and which process carries out the operator commands.
COMMANDS: dict[str, dict[str, Field]] = {
    "status": {},
    "ping": {},
    "reload": {},
    "events": {"since": SEQ, "follow": FOLLOW},
    "drain": {"instances": INSTANCES},
    "enable": {"instances": INSTANCES},
    "rs_disable": {"virtual_server": VIRTUAL_SERVER, "real_server": REAL_SERVER},
    "rs_enable": {"virtual_server": VIRTUAL_SERVER, "real_server": REAL_SERVER},
}
CHILD_COMMANDS = {"drain": "vrrp", "enable": "vrrp", "rs_disable": "checker", "rs_enable": "checker"}


@dataclass(frozen=True)
class Request:
    cmd: str
    fields: dict[str, Any] = field(default_factory=dict)   # every declared field, defaults filled in

    def get(self, name: str) -> Any:
        return self.fields[name]


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise RequestError(f"field {key!r} is given twice")
        seen[key] = value
    return seen


def decode(line: bytes) -> Any:
    """One request line -> the JSON value in it (RequestError when it is not JSON)."""
    if len(line) > MAX_REQUEST_BYTES:
        raise RequestError(f"request is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        return json.loads(line, object_pairs_hook=_refuse_duplicates,
                          parse_constant=_refuse_constant)
    except RecursionError:
        raise RequestError("request is nested too deeply") from None
    except RequestError:
        raise
    except ValueError as exc:   # includes UnicodeDecodeError
        raise RequestError(f"not JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise RequestError(f"{name} is not a JSON number")


def validate(value: Any) -> Request:
    """A decoded request -> Request, or RequestError naming the command and the field."""
    if not isinstance(value, dict):
        raise RequestError(f"a request is a JSON object with a string 'cmd', got {_type_name(value)}")
    cmd = value.get("cmd")
    if not isinstance(cmd, str):
        raise RequestError(f"field 'cmd' must be a string (one of: {', '.join(sorted(COMMANDS))})")
    schema = COMMANDS.get(cmd)
    if schema is None:
        raise RequestError(f"unknown command {_short(cmd)} (known: {', '.join(sorted(COMMANDS))})")
    unknown = sorted(k for k in value if k != "cmd" and k not in schema)
    if unknown:
        allowed = ", ".join(sorted(schema)) or "none"
        raise RequestError(f"{cmd}: unknown field {', '.join(_short(k) for k in unknown)} (allowed: {allowed})")
    fields = {}
    for name, spec in schema.items():
        if name not in value:
            if spec.required:
                raise RequestError(f"{cmd}: field {name!r} is required: {spec.kind}")
            fields[name] = spec.default
            continue
        if not spec.check(value[name]):
            raise RequestError(f"{cmd}: field {name!r} must be {spec.kind}, got {_type_name(value[name])}")
        fields[name] = value[name]
    return Request(cmd, fields)


def parse_request(line: bytes) -> Request:
    return validate(decode(line))


def child_message(request: Request) -> dict[str, Any]:
    """The IPC message that carries an operator command to its child, built field by field."""
    if request.cmd in ("drain", "enable"):
        return {"type": "control", "action": request.cmd, "instances": request.get("instances")}
    if request.cmd in ("rs_disable", "rs_enable"):
        return {"type": "control", "action": request.cmd, "virtual_server": request.get("virtual_server"),
                "real_server": request.get("real_server")}
    raise ValueError(f"{request.cmd} is not carried out by a child")


def control_event(request: Request) -> dict[str, Any]:
    """The event published when an operator command succeeded."""
    message = child_message(request)
    event = {"event": "control", "action": message["action"]}
    for name in COMMANDS[request.cmd]:
        event[name] = message[name]
    return event


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
               int: "an integer", float: "a number"}


def _type_name(value: Any) -> str:
    name = _TYPE_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return f"{name} {_short(value)}"
    if isinstance(value, list) and len(value) > MAX_LIST_LENGTH:
        return f"a list of {len(value)} items (at most {MAX_LIST_LENGTH})"
    if isinstance(value, list):
        bad = [v for v in value if not _is_name(v)]
        if bad:
            inner = _TYPE_NAMES.get(type(bad[0]), type(bad[0]).__name__)
            return f"{name} holding {inner}" + (f" {_short(bad[0])}" if isinstance(bad[0], str) else "")
    return name
