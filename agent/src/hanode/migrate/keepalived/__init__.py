"""keepalived.conf -> hanode agent config: `hanode import-keepalived` and the hanode.fleet.keepalived_to_hanode
filter (which loads this package from the collection's agent source).

    parsed = parse_file("/etc/keepalived/keepalived.conf")        # or parse_text(text, name) without includes
    result = translate(parsed)                                      # result.config, result.items, result.notes

One module per part of keepalived.conf, each block's translation driven by its keyword table (table.py):
    lexer.py          the text as keepalived reads it: comments, quotes, blocks, @ID lines, $NAME definitions
    files.py          the only I/O: the file and its includes from disk
    global_defs.py    global_defs
    vrrp.py           vrrp_instance (addresses, peers, authentication, trackers, notify scripts)
    trackers.py       vrrp_script and vrrp_sync_group
    virtual_server.py virtual_server, and what keepalived changes in it as it loads it
    real_server.py    real_server, its checkers and their url blocks
    top.py            the top level: block order, blocks not carried, translate()
    report.py         the keyword tables as a listing (`hanode import-keepalived --keywords`, docs page)
"""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived.compat import OldTables
from hanode.migrate.keepalived.files import parse_file, read_includes
from hanode.migrate.keepalived.lexer import Loader, expand_braces, parse_text, split_quoted_escaped, split_words
from hanode.migrate.keepalived.model import (CATEGORIES, DEPRECATED, INVALID, NO_MEANING, UNSUPPORTED, Item,
                                             KeepalivedParseError, Node, Note, Parsed, Translation)
from hanode.migrate.keepalived.top import translate
from hanode.migrate.keepalived.translator import command_line

__all__ = ["CATEGORIES", "DEPRECATED", "INVALID", "NO_MEANING", "UNSUPPORTED", "Item", "KeepalivedParseError",
           "Loader", "Node", "Note", "Parsed", "Translation", "command_line", "expand_braces", "import_text",
           "parse_file", "parse_text", "read_includes", "split_quoted_escaped", "split_words", "translate"]

_Translator = OldTables    # the single-file importer's table names (compat.py)


def import_text(text: str, name: str = "keepalived.conf", config_id: str | None = None) -> dict[str, Any]:
    """One call for the Ansible filter: config, not_carried_over, warnings, complete (plain data).
    Raises KeepalivedParseError."""
    result = translate(parse_text(text, name, None, config_id))
    return {"config": result.config, "not_carried_over": [i.as_dict() for i in result.items],
            "warnings": [n.as_dict() for n in result.notes], "complete": result.complete}
