"""Pure parts of keepalived 2.2.7's checker options: what FILE_CHECK makes of a tracked file's number, url regex,
http_protocol's request lines, require_reply wildcard nibbles."""

from __future__ import annotations

import pytest

from hanode.health.checks.udp import reply_problem
from hanode.health.filecheck import file_outcome
from hanode.health.httpwire import build_request
from hanode.health.regex import RegexError, body_problem, compile_regex


def test_weight_zero_file_non_zero_is_down_reverse_inverts():
    assert file_outcome(0, 0, False, 5, "/f").ok
    down = file_outcome(3, 0, False, 5, "/f")
    assert not down.ok and down.reason == "tracked file /f holds 3"
    assert not file_outcome(0, 0, True, 5, "/f").ok and file_outcome(1, 0, True, 5, "/f").ok


def test_weighted_file_moves_the_real_server_weight():
    assert file_outcome(0, 2, False, 5, "/f") == (True, None, None)
    assert file_outcome(3, 2, False, 5, "/f") == (True, 11, None)
    assert file_outcome(3, 2, True, 5, "/f") == (True, 0, None)      # 5 - 6 < 0: weight 0 (keepalived's real_weight)
    assert file_outcome(100000, 1, False, 5, "/f").weight == 65535
    assert not file_outcome(-2147483648, 1, False, 5, "/f").ok       # INT32_MIN: fault
    assert not file_outcome(-2147484, 1000, False, 5, "/f").ok       # clamped to INT32_MIN: fault


def test_regex_matches_within_offsets_and_no_match_inverts():
    body = b"status: READY\nload: 3\n"
    assert body_problem(compile_regex("READY"), body, "/h") is None
    assert body_problem(compile_regex("ready", ("caseless",)), body, "/h") is None
    assert "did not match the body of /h" in body_problem(compile_regex("ready"), body, "/h")
    assert body_problem(compile_regex("READY", min_offset=8), body, "/h") is None      # starts at 8
    assert body_problem(compile_regex("READY", min_offset=9), body, "/h") is not None
    assert body_problem(compile_regex("READY", max_offset=8), body, "/h") is None
    assert "within offsets 0..7" in body_problem(compile_regex("READY", max_offset=7), body, "/h")
    assert "(regex_no_match)" in body_problem(compile_regex("load", no_match=True), body, "/h")
    assert body_problem(compile_regex("maintenance", no_match=True), body, "/h") is None


def test_regex_options_map_or_are_refused_by_name():
    body = b"a\nb"
    assert body_problem(compile_regex("^b", ("multiline",)), body, "/") is None
    assert body_problem(compile_regex("a.b", ("dotall",)), body, "/") is None
    assert body_problem(compile_regex("a.b"), body, "/") is not None
    assert body_problem(compile_regex("b", ("firstline",)), body, "/") is not None
    assert body_problem(compile_regex("a", ("firstline", "no_start_optimize")), body, "/") is None
    with pytest.raises(RegexError, match="ungreedy is not supported"):
        compile_regex("a", ("ungreedy",))
    with pytest.raises(RegexError, match="cannot compile regex"):
        compile_regex("a(")


def test_http_protocol_request_lines_as_keepalived_writes_them():
    assert build_request("/h", "site") == b"GET /h HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: site\r\n\r\n"
    assert build_request("/h", "site", "1.1") == (b"GET /h HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\n"
                                                  b"Connection: close\r\nHost: site\r\n\r\n")
    assert build_request("/h", "site", "1.0C").startswith(b"GET /h HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\n"
                                                          b"Connection: close\r\n")


def test_require_reply_wildcard_nibbles_are_not_compared():
    expected, mask = bytes([0x10, 0x02]), bytes([0x0F, 0xF0])        # "1x x2"
    assert reply_problem(bytes([0x1A, 0xF2, 0x99]), expected, 0, 255, mask) is None
    problem = reply_problem(bytes([0x2A, 0xF2]), expected, 0, 255, mask)
    assert problem == "UDP reply 0x2af2 does not match require_reply 0x1xx2"
    assert reply_problem(bytes([0x1A, 0xF3]), expected, 0, 255, mask) is not None
