"""What the importer reads and returns: the keyword tree of a keepalived.conf, and the report items."""

from __future__ import annotations

from typing import Any, NamedTuple

UNSUPPORTED = "unsupported"
DEPRECATED = "deprecated"
NO_MEANING = "no meaning here"
INVALID = "invalid"
CATEGORIES = (UNSUPPORTED, DEPRECATED, NO_MEANING, INVALID)


class Item(NamedTuple):
    """One keyword that was not carried over, and why."""
    file: str
    line: int
    keyword: str
    category: str
    reason: str

    def __str__(self) -> str:
        return "%s:%d: %s: %s: %s" % (self.file, self.line, self.keyword, self.category, self.reason)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._asdict())


class Note(NamedTuple):
    """Something carried over that the user should know about (a default made explicit, a skipped include...)."""
    file: str
    line: int
    keyword: str
    message: str

    def __str__(self) -> str:
        return "%s:%d: %s: warning: %s" % (self.file, self.line, self.keyword, self.message)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._asdict())


class KeepalivedParseError(ValueError):
    """The file cannot be read as keepalived configuration; names the file and line."""

    def __init__(self, file: str, line: int, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__("%s:%d: %s" % (file, line, message))


class Node:
    """One keyword with its words, where it was written, and its block (None when it has none)."""

    __slots__ = ("keyword", "args", "file", "line", "raw", "children", "seq")

    def __init__(self, keyword: str, args: list[str], file: str, line: int, raw: str, seq: int):
        self.keyword, self.args, self.file, self.line, self.raw, self.seq = keyword, args, file, line, raw, seq
        self.children: list[Node] | None = None

    def __repr__(self) -> str:
        block = "" if self.children is None else " {%d}" % len(self.children)
        return "<Node %s %s %s:%d%s>" % (self.keyword, " ".join(self.args), self.file, self.line, block)


class Parsed(NamedTuple):
    nodes: list[Node]
    items: list[Item]
    notes: list[Note]


class Translation(NamedTuple):
    config: dict[str, Any]
    items: list[Item]
    notes: list[Note]
    provenance: dict[str, list[tuple[Node, str]]]   # config field path -> the keywords it came from

    @property
    def complete(self) -> bool:
        return not self.items
