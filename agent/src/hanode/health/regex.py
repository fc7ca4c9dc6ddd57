"""HTTP_GET / SSL_GET url regex as keepalived 2.2.7 applies it (pure).

keepalived compiles `regex` with PCRE2 and the `regex_options` named; the body (what follows the response
head) must contain a match starting within regex_min_offset..regex_max_offset, or, with regex_no_match, must
not. hanode compiles the pattern with Python's re on bytes, which reads the PCRE syntax real configs use
(classes, anchors, alternation, groups, lookarounds, possessive and lazy quantifiers); a pattern Python cannot
read is refused with its error. The options that change what matches map onto re's flags; the ones that only
tune PCRE2's compiler are accepted; the rest are refused by name.
"""

from __future__ import annotations

import re
from typing import NamedTuple

FLAGS = {"caseless": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL, "extended": re.VERBOSE}
NO_EFFECT = ("no_auto_possess", "no_start_optimize", "no_dotstar_anchor", "never_utf", "never_ucp",
             "never_backslash_c", "auto_callout", "no_auto_capture")
CHECKED = ("firstline",)         # applied to the match found (the match must start on the first line)
REFUSED = {
    "ungreedy": "Python's re has no inverted greediness; write the lazy quantifiers (*?, +?) in the pattern",
    "utf": "hanode matches the body as bytes", "ucp": "hanode matches the body as bytes",
    "dollar_endonly": "Python's $ also matches before a final newline; write \\Z in the pattern",
    "allow_empty_class": "not available in Python's re", "alt_bsux": "not available in Python's re",
    "match_unset_backref": "not available in Python's re", "alt_circumflex": "not available in Python's re",
    "alt_verbnames": "not available in Python's re", "use_offset_limit": "not available in Python's re",
    "dupnames": "Python's re refuses duplicate group names",
}
KNOWN = tuple(FLAGS) + NO_EFFECT + CHECKED + tuple(REFUSED)


class RegexError(ValueError):
    """The pattern or an option cannot be used; str() says why."""


class BodyRegex(NamedTuple):
    pattern: re.Pattern
    no_match: bool
    min_offset: int
    max_offset: int | None           # the last offset a match may start at
    firstline: bool                  # PCRE2_FIRSTLINE: the match must start before the first newline


def compile_regex(pattern: str, options: tuple[str, ...] = (), no_match: bool = False, min_offset: int = 0,
                  max_offset: int | None = None) -> BodyRegex:
    flags = 0
    for option in options:
        if option in REFUSED:
            raise RegexError(f"regex option {option} is not supported: {REFUSED[option]}")
        if option not in KNOWN:
            raise RegexError(f"unknown regex option {option!r} (keepalived's are {', '.join(sorted(KNOWN))})")
        flags |= FLAGS.get(option, 0)
    try:
        compiled = re.compile(pattern.encode("utf-8", "surrogateescape"), flags)
    except re.error as exc:
        raise RegexError(f"cannot compile regex {pattern!r}: {exc}") from None
    if max_offset is not None and min_offset > max_offset:
        raise RegexError(f"regex_min_offset {min_offset} is above regex_max_offset {max_offset}")
    return BodyRegex(compiled, no_match, min_offset, max_offset, "firstline" in options)


def body_problem(regex: BodyRegex, body: bytes, path: str) -> str | None:
    """Why the body fails the url's regex (None: it passes)."""
    found = regex.pattern.search(body, regex.min_offset)
    if found is not None and regex.max_offset is not None and found.start() > regex.max_offset:
        found = None
    if found is not None and regex.firstline and b"\n" in body[regex.min_offset:found.start()]:
        found = None
    shown = regex.pattern.pattern.decode("utf-8", "replace")
    if regex.no_match and found is not None:
        return f"regex {shown!r} matched the body of {path} at offset {found.start()} (regex_no_match)"
    if not regex.no_match and found is None:
        where = ""
        if regex.min_offset or regex.max_offset is not None:
            where = f" within offsets {regex.min_offset}..{'' if regex.max_offset is None else regex.max_offset}"
        return f"regex {shown!r} did not match the body of {path}{where}"
    return None
