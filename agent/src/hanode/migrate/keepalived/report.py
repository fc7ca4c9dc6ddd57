"""The keyword tables as one listing: `hanode import-keepalived --keywords` and docs/keepalived-keywords.md
(scripts/keepalived_keywords_doc.py writes it; a unit test keeps it current). Pure."""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from hanode.migrate.keepalived.checker_files import FILE_CHECK, SSL
from hanode.migrate.keepalived.global_defs import GLOBAL_DEFS
from hanode.migrate.keepalived.lexer import CONFIG_FILE
from hanode.migrate.keepalived.real_server import BFD_CHECK, CHECKER, CHECKS, REAL_SERVER, SMTP_HOST, URL
from hanode.migrate.keepalived.table import STATUSES, Table
from hanode.migrate.keepalived.top import TOP
from hanode.migrate.keepalived.track_objects import TRACK_FILE, VRRP_TRACK_FILE, VRRP_TRACK_PROCESS
from hanode.migrate.keepalived.trackers import BFD_INSTANCE, VRRP_SCRIPT, VRRP_SYNC_GROUP
from hanode.migrate.keepalived.virtual_server import VIRTUAL_SERVER, VIRTUAL_SERVER_GROUP
from hanode.migrate.keepalived.garp_group import GARP_GROUP
from hanode.migrate.keepalived.vrrp import AUTHENTICATION, TRACK_GROUP, VIP_OPTIONS, VRRP_INSTANCE

TABLES: tuple[Table, ...] = (
    CONFIG_FILE, TOP, GLOBAL_DEFS,
    VRRP_SCRIPT, VRRP_TRACK_PROCESS, VRRP_TRACK_FILE, TRACK_FILE, BFD_INSTANCE,
    VRRP_INSTANCE, AUTHENTICATION, VIP_OPTIONS, VRRP_SYNC_GROUP, GARP_GROUP, TRACK_GROUP,
    VIRTUAL_SERVER_GROUP, VIRTUAL_SERVER, SSL, REAL_SERVER, CHECKER, *CHECKS.values(), URL, SMTP_HOST,
    FILE_CHECK, BFD_CHECK,
)
NOT_IN_KEEPALIVED = "not a keepalived 2.2.7 keyword here"
_HEAD = ("block", "keyword", "status", "what it becomes / why not")


class Entry(NamedTuple):
    block: str
    keyword: str
    status: str
    text: str


def entries() -> list[Entry]:
    """Every row of every table, in the tables' order (a table lists its own rows, not its parent's)."""
    out = []
    for table in TABLES:
        for row in table.rows.values():
            text = row.text if row.in_keepalived else "%s [%s]" % (row.text, NOT_IN_KEEPALIVED)
            out.append(Entry(table.block, row.keyword, row.status, text))
    return out


def counts() -> dict[str, int]:
    found = Counter(entry.status for entry in entries())
    return {status: found[status] for status in STATUSES}


def listing() -> str:
    """Aligned text, one keyword a line."""
    rows = [_HEAD] + [tuple(entry) for entry in entries()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3] for row in rows]
    total = ", ".join("%d %s" % (n, status) for status, n in counts().items())
    return "\n".join(lines + ["", "%d keywords: %s" % (len(rows) - 1, total)]) + "\n"


def markdown() -> str:
    """docs/keepalived-keywords.md."""
    out = ["# keepalived keywords in hanode", "",
           "<!-- Generated from the importer's keyword tables (agent/src/hanode/migrate/keepalived/) by "
           "scripts/keepalived_keywords_doc.py: do not edit. -->", "",
           "What `hanode import-keepalived` (and the `hanode.fleet.keepalived_to_hanode` filter) does with every "
           "keyword of keepalived 2.2.7's keepalived.conf(5) and parser: **carried** (what it becomes in the agent "
           "config), or not carried over and why. A keyword that is not carried is listed in the import's report "
           "with its line and this reason; `hanode import-keepalived --keywords` prints the same table.", "",
           "| status | keywords |", "| --- | --- |"]
    out += ["| %s | %d |" % (status, n) for status, n in counts().items()]
    out += ["| all | %d |" % len(entries()), ""]
    for table in TABLES:
        out += ["## %s" % table.block, ""]
        if table.note:
            out += ["Where: %s." % table.note, ""]
        out += ["| keyword | status | what it becomes / why not |", "| --- | --- | --- |"]
        for row in table.rows.values():
            text = row.text if row.in_keepalived else "%s (%s)" % (row.text, NOT_IN_KEEPALIVED)
            out.append("| `%s` | %s | %s |" % (row.keyword, row.status, _cell(text)))
        out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
