"""Structured logs (daemon/logs.py): one logfmt line per event, values quoted only when they must be, the
timestamp left to journald when it collects the output."""

from __future__ import annotations

import logging
import os
import re

import pytest

from hanode.daemon.logs import LogfmtFormatter, fields


def _record(message: str, *args, extra: dict | None = None, level: int = logging.INFO) -> logging.LogRecord:
    logger = logging.getLogger("hanode.vrrp")
    record = logger.makeRecord("hanode.vrrp", level, __file__, 1, message, args, None)
    for key, value in (extra or {}).items():
        setattr(record, key, value)
    return record


def _pairs(line: str) -> dict[str, str]:
    """A logfmt parser: key=value or key="quoted \\" value"."""
    out = {}
    for match in re.finditer(r'(\w+)=("((?:[^"\\]|\\.)*)"|\S*)', line):
        raw = match.group(3)
        out[match.group(1)] = match.group(2) if raw is None else re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(
            m.group(1), m.group(1)), raw)
    return out


def test_a_transition_line():
    record = _record("%s: %s -> %s (%s)", "VI_1", "BACKUP", "MASTER", "master down timer expired",
                     extra=fields(event="transition", instance="VI_1", vrid=51, from_state="BACKUP",
                                  to_state="MASTER", priority=150, reason="master down timer expired"))
    line = LogfmtFormatter("vrrp", with_time=False).format(record)
    assert line == (f'level=info proc=vrrp pid={os.getpid()} logger=hanode.vrrp '
                    'msg="VI_1: BACKUP -> MASTER (master down timer expired)" event=transition instance=VI_1 vrid=51 '
                    'from_state=BACKUP to_state=MASTER priority=150 reason="master down timer expired"')
    assert "\n" not in line


@pytest.mark.parametrize("value, written", [
    ("plain", "plain"),
    ("198.51.100.12", "198.51.100.12"),
    ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("a=b", '"a=b"'),
    ("back\\slash", '"back\\\\slash"'),
    ("line\nbreak", '"line\\nbreak"'),
    ("", '""'),
    ("tab\there", '"tab\there"'),          # not printable: quoted
    (42, "42"),
    (True, "True"),
])
def test_values_are_quoted_only_when_needed(value, written):
    line = LogfmtFormatter("hanode", with_time=False).format(_record("m", extra=fields(reason=value)))
    assert line.endswith(f" reason={written}")
    if isinstance(value, str) and value:
        assert _pairs(line)["reason"] == value


def test_none_fields_are_left_out():
    line = LogfmtFormatter("hanode", with_time=False).format(_record("m", extra=fields(reason=None, process="vrrp")))
    assert " reason=" not in line and line.endswith(" process=vrrp")


def test_time_unless_journald_collects_the_output(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert re.match(r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} level=info ", LogfmtFormatter("hanode").format(_record("m")))
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    assert LogfmtFormatter("hanode").format(_record("m")).startswith("level=info ")


def test_an_exception_stays_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record = _record("failed", level=logging.ERROR)
        record.exc_info = sys.exc_info()
    line = LogfmtFormatter("hanode", with_time=False).format(record)
    assert "\n" not in line and "ValueError: boom" in _pairs(line)["exc"]
