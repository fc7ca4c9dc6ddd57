"""The keyword tables: for every keepalived block, one table says per keyword what it becomes in the hanode agent
config (and which converter makes it), or why it is not carried over. The translators dispatch on these tables
and take the report's keyword-level reasons from them; `hanode import-keepalived --keywords` and
docs/keepalived-keywords.md print them.

Adding a keyword is one row:
    value("garp_interval", "num")                              # a plain value under the same name
    value("mcast_src_ip", "text", key="unicast_src_ip")        # ... under another name
    carried("virtual_routes", "virtual_routes", _routes)       # a converter of its own
    unsupported("use_vmac", "why not, naming what is missing")  # or deprecated / no_meaning
A converter is f(translator, node, scope): it reads the node, puts values into scope.out at scope.path and
reports what it cannot carry (see translator.py). A new table goes into report.TABLES; after any change,
regenerate docs/keepalived-keywords.md (scripts/keepalived_keywords_doc.py; a unit test says when it is stale).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from hanode.migrate.keepalived.model import DEPRECATED, NO_MEANING, UNSUPPORTED

CARRIED = "carried"
STATUSES = (CARRIED, UNSUPPORTED, DEPRECATED, NO_MEANING)

Converter = Callable[[Any, Any, Any], None]     # (Translator, Node, Scope) -> None


@dataclass(frozen=True)
class Row:
    keyword: str
    status: str                       # CARRIED or the report category given when the keyword is met
    text: str                         # carried: what it becomes; otherwise: why it is not carried over
    convert: Converter | None = None  # None: not carried, reported with status and text as they stand
    kind: str | None = None           # a plain value: how it is read (text, word, int, num, flag)
    key: str | None = None            # the agent key it is written to, below the table's prefix
    in_keepalived: bool = True        # False: keepalived 2.2.7 has no such keyword in this block (see foreign)


class Scope:
    """What a block's converters write to: its output (a dict), its path in the agent config, `stop` to abandon
    the rest of the block, and whatever else the block collects on the way (real servers, URLs...)."""

    def __init__(self, out: dict[str, Any], path: str, **extra: Any):
        self.out, self.path, self.stop = out, path, False
        self.__dict__.update(extra)


class Table:
    """One block's keywords. `where` names the block in the report of an unknown keyword; `prefix` is where its
    values go in the agent config (for the listing); a keyword not found here is looked up in `parent`."""

    def __init__(self, block: str, where: str, prefix: str, rows: Iterable[Row], parent: Table | None = None,
                 note: str = ""):
        self.block, self.where, self.prefix, self.parent, self.note = block, where, prefix, parent, note
        self.rows: dict[str, Row] = {}
        for row in rows:
            if row.keyword in self.rows:
                raise ValueError("%s: %s is in the table twice" % (block, row.keyword))
            if row.status not in STATUSES:
                raise ValueError("%s: %s has no status %r" % (block, row.keyword, row.status))
            if row.key is not None:
                where_to = "%s.%s" % (prefix, row.key) if prefix else row.key
                row = replace(row, text=where_to + (" (%s)" % row.text if row.text else ""))
            self.rows[row.keyword] = row

    def get(self, keyword: str) -> Row | None:
        row = self.rows.get(keyword)
        if row is None and self.parent is not None:
            return self.parent.get(keyword)
        return row

    def plain(self) -> set[str]:
        """The keywords carried as plain values (the parent's not included)."""
        return {row.keyword for row in self.rows.values() if row.kind is not None}


def put_value(kind: str, key: str) -> Converter:
    def convert(tr: Any, node: Any, scope: Scope) -> None:
        value = tr.read(node, kind)
        if value is not None:
            tr.put(scope.out, key, value, node, scope.path)
    return convert


def value(keyword: str, kind: str, key: str | None = None, text: str = "") -> Row:
    """A keyword whose value is read as `kind` and written, as it is, to the agent key `key` (default: itself)."""
    key = key or keyword
    return Row(keyword, CARRIED, text, put_value(kind, key), kind, key)


def carried(keyword: str, key: str | None, convert: Converter, text: str = "", kind: str | None = None) -> Row:
    """A keyword a converter of its own carries over; key (None: several or none) is where it goes."""
    return Row(keyword, CARRIED, text, convert, kind, key)


def unsupported(keyword: str, why: str, convert: Converter | None = None) -> Row:
    return Row(keyword, UNSUPPORTED, why, convert)


def deprecated(keyword: str, why: str) -> Row:
    return Row(keyword, DEPRECATED, why)


def no_meaning(keyword: str, why: str, convert: Converter | None = None) -> Row:
    return Row(keyword, NO_MEANING, why, convert)


def foreign(row: Row) -> Row:
    """A row for a keyword keepalived 2.2.7 does not accept in this block (other versions do, or it never did):
    kept so that configs written for them are reported as they were."""
    return replace(row, in_keepalived=False)


def not_carried_block(block: str, where: str, why: str, keywords: Iterable[str], note: str = "") -> Table:
    """The keywords of a block that is not carried over as a whole: each is reported with its block."""
    reason = "part of %s, which is not carried over: %s" % (block, why)
    return Table(block, where, "", [unsupported(keyword, reason) for keyword in keywords], note=note)


def same_reason(rows: Callable[[str, str], Row], why: str, *keywords: str) -> list[Row]:
    """Several keywords not carried for one reason: same_reason(unsupported, WHY, "a", "b")."""
    return [rows(keyword, why) for keyword in keywords]
