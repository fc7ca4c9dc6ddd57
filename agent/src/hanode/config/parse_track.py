"""vrrp_track_processes, track_files, the track_processes / track_files of an instance, and a sync group's own
trackers (keepalived's keywords, checked with field paths)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from hanode.config.model import TrackedRef, TrackFile, TrackProcess
from hanode.config.problems import Problems, Reader, join

TRACK_WEIGHT_MAX = 254
COMM_MAX = 15            # the kernel's TASK_COMM_LEN - 1: a longer name never matches without full_command
PARAM_MATCHES = ("exact", "initial", "partial")
DELAY_MAX_S = 3600


def _named(data: Mapping, path: str, problems: Problems, parse_one: Callable[[str, Any, str, Problems], Any]) -> dict:
    """NAME: {...} blocks, each parsed by parse_one(name, body, path, problems); the unusable ones left out."""
    found = {}
    for name, body in data.items():
        parsed = parse_one(str(name), body, join(path, name), problems)
        if parsed is not None:
            found[str(name)] = parsed
    return found


def parse_track_processes(data: Mapping, path: str, problems: Problems) -> dict[str, TrackProcess]:
    return _named(data, path, problems, _track_process)


def _track_process(name: str, body: Any, path: str, problems: Problems) -> TrackProcess | None:
    reader = Reader(body, path, problems)
    if not reader.ok:
        return None
    words = (reader.string("process") or "").split()
    param_match = reader.string("param_match", None, PARAM_MATCHES)
    full_command = reader.boolean("full_command", False) or bool(param_match) or len(words) > 1
    if len(words) > 1 and param_match is None:
        param_match = "exact"    # keepalived: arguments after the name mean an exact match of them
    quorum_max = reader.integer("quorum_max", None, 0, 65535)
    quorum = reader.integer("quorum", 0 if quorum_max == 0 else 1, 0 if quorum_max == 0 else 1, 65535)
    if quorum_max is not None and quorum > quorum_max:
        problems.error(reader.at("quorum"), f"{quorum} is more than quorum_max {quorum_max}")
    delay_ms = _delay_ms(reader, "delay", 0)
    tracker = TrackProcess(
        name=name, process=words[0] if words else "", params=tuple(words[1:]), param_match=param_match or "none",
        full_command=full_command, weight=reader.integer("weight", 0, -TRACK_WEIGHT_MAX, TRACK_WEIGHT_MAX),
        quorum=quorum, quorum_max=quorum_max,
        fork_delay_ms=_delay_ms(reader, "fork_delay", delay_ms),
        terminate_delay_ms=_delay_ms(reader, "terminate_delay", delay_ms),
        weight_reverse=reader.boolean("weight_reverse", False))
    reader.finish()
    if words and not full_command and len(words[0]) > COMM_MAX:
        problems.error(reader.at("process"), f"{words[0]!r} is longer than a process name can be ({COMM_MAX} "
                                             "characters, the kernel's comm): set full_command to match argv[0]")
    return tracker if words else None


def _delay_ms(reader: Reader, key: str, default_ms: int) -> int:
    seconds = reader.number(key, None, 0.000001, DELAY_MAX_S)
    return default_ms if seconds is None else max(1, round(seconds * 1000))


def parse_track_files(data: Mapping, path: str, problems: Problems) -> dict[str, TrackFile]:
    return _named(data, path, problems, _track_file)


def _track_file(name: str, body: Any, path: str, problems: Problems) -> TrackFile | None:
    reader = Reader(body, path, problems)
    if not reader.ok:
        return None
    file = reader.string("file")
    if file is not None and not file.startswith("/"):
        problems.error(reader.at("file"), f"must be an absolute path, got {file!r}")
    init_value, overwrite = _init_file(reader, problems)
    weight = reader.integer("weight", 1, -TRACK_WEIGHT_MAX, TRACK_WEIGHT_MAX)
    tracker = TrackFile(name=name, file=file or "", weight=weight, init_value=init_value, init_overwrite=overwrite,
                        weight_reverse=reader.boolean("weight_reverse", False))
    reader.finish()
    return tracker if file else None


def _init_file(reader: Reader, problems: Problems) -> tuple[int | None, bool]:
    """init_file: true (write 0), a number, or {value: N, overwrite: true}."""
    raw = reader.raw("init_file")
    if raw is None or raw is False:
        return None, False
    if raw is True:
        return 0, False
    if isinstance(raw, int):
        return _init_value(raw, reader.at("init_file"), problems), False
    sub = Reader(raw, reader.at("init_file"), problems)
    value = sub.integer("value", 0)
    overwrite = sub.boolean("overwrite", False)
    sub.finish()
    return _init_value(value, sub.at("value"), problems), overwrite


def _init_value(value: int, path: str, problems: Problems) -> int:
    if not -TRACK_WEIGHT_MAX <= value <= TRACK_WEIGHT_MAX:
        problems.warn(path, f"{value} is outside the sensible range -254..254 (keepalived warns the same)")
    return value


def tracked_refs(reader: Reader, key: str, known: Mapping[str, Any], what: str) -> tuple[TrackedRef, ...]:
    """An instance's or group's track_processes / track_files: NAME or {name, weight, weight_reverse}."""
    return reader.items(key, ref_reader(reader.problems, known, what))


def ref_reader(problems: Problems, known: Mapping[str, Any], what: str, weight_max: int = TRACK_WEIGHT_MAX,
               make: Callable[..., Any] = TrackedRef) -> Callable[[Any, str], Any]:
    """Reads one reference to a named tracker (NAME or {name, weight, weight_reverse}) into make(name=, weight=,
    weight_reverse=); an unknown name is an error naming the known ones. Also serves track_scripts
    (what="vrrp_script", its own weight bound). Unset weight / weight_reverse: the tracker's own (keepalived)."""
    def read(value: Any, path: str) -> Any:
        if isinstance(value, str):
            value = {"name": value}
        sub = Reader(value, path, problems)
        name = sub.string("name")
        weight = sub.integer("weight", None, -weight_max, weight_max)
        reverse = sub.boolean("weight_reverse", None)
        sub.finish()
        if name is None:
            return None
        if name not in known:
            problems.error(sub.at("name"), f"no {what} named {name!r} (known: {', '.join(sorted(known)) or 'none'})")
            return None
        return make(name=name, weight=weight, weight_reverse=reverse)
    return read
