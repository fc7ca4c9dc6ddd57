"""keepalived.conf text -> keyword tree, as keepalived 2.2's reader (lib/parser.c) reads it. Pure: files come in
through a loader (files.py reads them from disk).

`!` and `#` start a comment anywhere outside double quotes (`\\!` and `\\#` escape them), `{` and `}` split a line
wherever they stand outside double quotes, a block may open on the keyword's line or the next one,
`include PATTERN` (and includer/m/w/b/a, which add keepalived's include checks) splices the files the loader
returns for it at any depth, `@ID` / `@^ID` lines are kept or dropped by config id, and single-line `$NAME=value`
definitions and keepalived's predefined ${_INSTANCE}, ${_PWD}, ${_HASH} and ${_BANG} are substituted. Scripts are re-read the way
keepalived reads them (single and double quotes, backslash escapes): split_quoted_escaped.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Callable, Iterator, NamedTuple

from hanode.migrate.keepalived.model import INVALID, UNSUPPORTED, Item, KeepalivedParseError, Node, Note, Parsed
from hanode.migrate.keepalived.table import CARRIED, Row, Table, same_reason, unsupported

_WS = " \t\f\n\r\v"
_MAX_INCLUDE_DEPTH = 32
_BY_HAND = "the importer stops with an error naming the line: expand it by hand"
# keepalived's include variants and the checks each adds (lib/parser.c check_include): R a file that cannot be read,
# M a missing file named without wildcards, W a wildcard that matches nothing, B a missing {a,b} alternative
INCLUDE_CHECKS = {"include": "", "includer": "R", "includem": "RM", "includew": "RMW", "includeb": "RB",
                  "includea": "RMWB"}
_CHECK_NAMES = {"R": "readable", "M": "match", "W": "wildcard_match", "B": "brace_match"}

# what the reader does with keepalived's file-level syntax (not dispatched: the lexer handles each itself)
CONFIG_FILE = Table("config file", "the config file", "", [
    Row("include", CARRIED, "followed by `hanode import-keepalived` (glob patterns with {a,b}, relative to the "
                            "including file, at any depth); the Ansible filter has one file's text and lists it"),
    *[Row(word, CARRIED, "followed as include is, with keepalived's include_check %s: what it flags is reported "
                         "as invalid (keepalived reports a configuration error), a missing {a,b} alternative "
                         "under brace_match drops the whole include as keepalived does"
          % " ".join(_CHECK_NAMES[c] for c in checks)) for word, checks in INCLUDE_CHECKS.items() if checks],
    Row("@ID", CARRIED, "the line is kept when ID is the config id (--config-id, keepalived's -i), else dropped"),
    Row("@^ID", CARRIED, "the line is kept unless ID is the config id"),
    Row("$NAME=VALUE", CARRIED, "substituted wherever $NAME or ${NAME} stands (one-line definitions)"),
    unsupported("$NAME=VALUE \\", "multi-line definitions: " + _BY_HAND),
    Row("$_INSTANCE", CARRIED, "the config id (an error when none is given)"),
    Row("${_INSTANCE}", CARRIED, "the config id (an error when none is given), in any file"),
    Row("${_PWD}", CARRIED, "the directory of the file being read (keepalived changes into it); an error when "
                            "only text without a path was given"),
    Row("${_HASH}", CARRIED, "#, after comments are removed (so it stays)"),
    Row("${_BANG}", CARRIED, "!, after comments are removed (so it stays)"),
    *same_reason(unsupported, _BY_HAND, "${_RANDOM}", "~SEQ", "~LST"),
], note="anywhere in the file (keepalived.conf(5): include, conditional configuration, parameter substitution, "
        "sequence and list blocks)")

# pattern, including file -> ([(path, text)], [(check, message about a file skipped or missing)]);
# see files.read_includes
Loader = Callable[[str, str], tuple[list[tuple[str, str]], list[str]]]


def _decomment(text: str) -> tuple[str, bool]:
    """Drops the comment; returns the text and whether a double quote was left open."""
    out = []
    quote = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            if not quote and text[i + 1] in "#!":
                out.append(text[i + 1])
            else:
                out.append(text[i:i + 2])
            i += 2
            continue
        if c == '"':
            quote = not quote
        elif c in "#!" and not quote:
            break
        out.append(c)
        i += 1
    return "".join(out).strip(_WS), quote


def _segments(text: str) -> list[str]:
    """Splits a line at every `{` and `}` outside double quotes: keepalived reads each piece as its own line."""
    out, buf, quote = [], [], False
    for c in text:
        if c == '"':
            quote = not quote
        if c in "{}" and not quote:
            chunk = "".join(buf).strip(_WS)
            if chunk:
                out.append(chunk)
            out.append(c)
            buf = []
        else:
            buf.append(c)
    chunk = "".join(buf).strip(_WS)
    if chunk:
        out.append(chunk)
    return out


def split_words(text: str) -> list[str]:
    """keepalived's alloc_strvec: words split at white space, a double-quoted string is one word."""
    words = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i >= n:
            return words
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ValueError("unterminated quote")
            words.append(text[i + 1:end])
            i = end + 1
        else:
            j = i
            while j < n and text[j] not in _WS and text[j] != '"':
                j += 1
            words.append(text[i:j])
            i = j


_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _escape(text: str, i: int) -> tuple[str, int]:
    """The character of the escape sequence starting after the backslash at text[i - 1]; the next index."""
    c = text[i]
    if c == "x" and i + 1 < len(text) and text[i + 1] in "0123456789abcdefABCDEF":
        j = i + 1
        while j < len(text) and text[j] in "0123456789abcdefABCDEF":
            j += 1
        return chr(int(text[i + 1:j], 16) & 0xFF), j
    if c == "c" and i + 1 < len(text):
        return chr(ord(text[i + 1]) & 0x1F), i + 2
    if c in "01234567":
        j = i
        while j < len(text) and j < i + 3 and text[j] in "01234567":
            j += 1
        return chr(int(text[i:j], 8) & 0xFF), j
    return _ESCAPES.get(c, c), i + 1


def split_quoted_escaped(text: str) -> list[str]:
    """keepalived's alloc_strvec_quoted_escaped, used for scripts: '...' and "..." quote, backslash escapes."""
    words = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i >= n:
            return words
        buf, quote = [], ""
        while i < n:
            c = text[i]
            if c == "\\":
                if i + 1 >= n:
                    raise ValueError("a backslash ends the text")
                char, i = _escape(text, i + 1)
                buf.append(char)
            elif quote:
                if c == quote:
                    quote = ""
                else:
                    buf.append(c)
                i += 1
            elif c in "\"'":
                quote = c
                i += 1
            elif c in _WS:
                break
            else:
                buf.append(c)
                i += 1
        if quote:
            raise ValueError("missing terminating %s" % quote)
        words.append("".join(buf))


class _Token(NamedTuple):
    kind: str            # "stmt", "{" or "}"
    words: list[str]
    raw: str
    file: str
    line: int


_PREDEFINED = {"_HASH": "#", "_BANG": "!"}
_DEFINITION = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)$")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=[ \t,)]|$)")


class _Lexer:
    def __init__(self, loader: Loader | None, config_id: str | None, items: list[Item], notes: list[Note],
                 cwd: str | None = None):
        self.loader, self.config_id, self.items, self.notes = loader, config_id, items, notes
        self.cwd = cwd      # the directory relative file names start from (for ${_PWD})
        self.definitions: dict[str, str] = {}
        self.stack: list[str] = []

    def tokens(self, text: str, name: str) -> Iterator[_Token]:
        self.stack.append(name)
        for lineno, physical in enumerate(text.split("\n"), 1):
            line, open_quote = _decomment(physical.rstrip("\r"))
            if open_quote:
                raise KeepalivedParseError(name, lineno, "unterminated quote")
            line = self._preprocess(line, name, lineno) if line else None
            if not line:
                continue
            try:
                words = split_words(line)
            except ValueError as exc:
                raise KeepalivedParseError(name, lineno, str(exc))
            if len(words) == 2 and words[0] in INCLUDE_CHECKS:
                yield from self._include(words[0], words[1], name, lineno)
                continue
            for seg in _segments(line):
                if seg in ("{", "}"):
                    yield _Token(seg, [], seg, name, lineno)
                else:
                    try:
                        yield _Token("stmt", split_words(seg), seg, name, lineno)
                    except ValueError as exc:
                        raise KeepalivedParseError(name, lineno, str(exc))
        self.stack.pop()

    def _preprocess(self, line: str, name: str, lineno: int) -> str | None:
        for _attempt in range(16):
            if line.startswith("@"):
                line = self._condition(line, name, lineno)
                if not line:
                    return None
            if line.startswith("$") and self._define(line, name, lineno):
                return None
            if line.startswith("~"):
                raise KeepalivedParseError(name, lineno, "~SEQ and other '~' lines are not supported by the importer: "
                                                         "expand them by hand")
            if "$" not in line:
                return line
            expanded = _REFERENCE.sub(lambda m: self._value(m, name, lineno), line)
            if expanded == line:
                return line
            line = expanded
        raise KeepalivedParseError(name, lineno, "$definitions nest more than 16 deep")

    def _condition(self, line: str, name: str, lineno: int) -> str | None:
        match = re.match(r"@(\^?)(\S+)[ \t]+(.*)$", line)
        if not match:
            return None
        reverse, ident, rest = match.groups()
        keep = (self.config_id is not None and ident == self.config_id) != bool(reverse)
        if keep:
            return rest
        shown = "not set" if self.config_id is None else repr(self.config_id)
        why = "line skipped: it is for config id %s%r and the config id is %s (as keepalived -i would)" % (
            "anything but " if reverse else "", ident, shown)
        self.notes.append(Note(name, lineno, "@" + reverse + ident, why))
        return None

    def _define(self, line: str, name: str, lineno: int) -> bool:
        match = _DEFINITION.match(line)
        if not match:
            return False
        key, value = match.groups()
        if value.rstrip().endswith("\\"):
            raise KeepalivedParseError(name, lineno, "multi-line $%s definition: not supported by the importer, "
                                                     "expand it by hand" % key)
        self.definitions[key] = value.rstrip()
        return True

    def _value(self, match: Any, name: str, lineno: int) -> str:
        key = match.group(1) or match.group(2)
        if key in self.definitions:
            return self.definitions[key]
        if key == "_INSTANCE" and self.config_id is not None:
            return self.config_id
        if key in _PREDEFINED:
            return _PREDEFINED[key]
        if key == "_PWD" and (self.cwd is not None or name.startswith("/")):
            return posixpath.normpath(posixpath.join(self.cwd or "/", posixpath.dirname(name)))
        if key in ("_INSTANCE", "_PWD", "_RANDOM"):
            raise KeepalivedParseError(name, lineno, "$%s cannot be reproduced by the importer: replace it by hand"
                                       % key)
        return match.group(0)

    def _include(self, keyword: str, pattern: str, name: str, lineno: int) -> Iterator[_Token]:
        if self.loader is None:
            self.items.append(Item(name, lineno, keyword, UNSUPPORTED, "%s was not read: only the text of one file "
                                   "was given (run `hanode import-keepalived` on the host to follow includes)"
                                   % pattern))
            return
        if len(self.stack) > _MAX_INCLUDE_DEPTH:
            raise KeepalivedParseError(name, lineno, "includes nest more than %d deep" % _MAX_INCLUDE_DEPTH)
        files, messages = self.loader(pattern, name)
        checks = INCLUDE_CHECKS[keyword]
        for check, message in messages:
            if check and check in checks:
                self.items.append(Item(name, lineno, keyword, INVALID, "%s: keepalived's include_check %s reports "
                                       "a configuration error" % (message, _CHECK_NAMES[check])))
            else:
                self.notes.append(Note(name, lineno, keyword, message + " (keepalived skips it too)"))
        if "B" in checks and any(check == "B" for check, _message in messages):
            return      # keepalived's open_glob_file gives up on the whole pattern
        for path, text in files:
            if path in self.stack:
                raise KeepalivedParseError(name, lineno, "include loop: %s is already being read" % path)
            yield from self.tokens(text, path)


def expand_braces(pattern: str) -> list[str]:
    """glob's GLOB_BRACE: 'a{b,c{d,e}}' -> ['ab', 'acd', 'ace']."""
    depth, start = 0, -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                parts, level, last = [], 0, start + 1
                for j in range(start + 1, i):
                    if pattern[j] == "{":
                        level += 1
                    elif pattern[j] == "}":
                        level -= 1
                    elif pattern[j] == "," and level == 0:
                        parts.append(pattern[last:j])
                        last = j + 1
                parts.append(pattern[last:i])
                head, tail = pattern[:start], pattern[i + 1:]
                out = []
                for part in parts:
                    out.extend(expand_braces(head + part + tail))
                return out
    return [pattern]


# ----- parser: tokens -> tree -------------------------------------------------------------------------------

def _build_tree(tokens: Iterator[_Token]) -> list[Node]:
    root: list[Node] = []
    stack: list[tuple[list[Node], Node | None]] = [(root, None)]
    pending: Node | None = None
    seq = 0
    for tok in tokens:
        if tok.kind == "{":
            if pending is None:
                raise KeepalivedParseError(tok.file, tok.line, "'{' without a keyword before it")
            pending.children = []
            stack.append((pending.children, pending))
            pending = None
        elif tok.kind == "}":
            if len(stack) == 1:
                raise KeepalivedParseError(tok.file, tok.line, "'}' without a matching '{'")
            stack.pop()
            pending = None
        else:
            node = Node(tok.words[0], tok.words[1:], tok.file, tok.line, tok.raw, seq)
            seq += 1
            stack[-1][0].append(node)
            pending = node
    if len(stack) > 1:
        opener = stack[-1][1]
        raise KeepalivedParseError(opener.file, opener.line,
                                   "block '%s' is never closed (missing '}')" % opener.keyword)
    return root


def parse_text(text: str, name: str = "keepalived.conf", loader: Loader | None = None,
               config_id: str | None = None, cwd: str | None = None) -> Parsed:
    """Parses one keepalived.conf given as text. Without a loader, `include` lines are reported, not followed.
    cwd: the directory a relative `name` is in (${_PWD} needs it unless name is absolute)."""
    items: list[Item] = []
    notes: list[Note] = []
    lexer = _Lexer(loader, config_id, items, notes, cwd)
    return Parsed(_build_tree(lexer.tokens(text, name)), items, notes)
