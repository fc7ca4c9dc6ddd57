"""vrrp_track_process and track_file (vrrp_track_file): the process and file trackers instances and sync groups
name, carried to vrrp_track_processes.NAME and track_files.NAME."""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived.model import INVALID, NO_MEANING, Node
from hanode.migrate.keepalived.table import Scope, Table, carried, value
from hanode.migrate.keepalived.translator import Translator

_PARAM_MATCHES = ("initial", "partial")


def _process(tr: Translator, node: Node, scope: Scope) -> None:
    if not node.args:
        tr.skip(node, INVALID, "needs a process name (keepalived drops the tracker)")
        return
    tr.put(scope.out, "process", " ".join(node.args), node, scope.path)


def _param_match(tr: Translator, node: Node, scope: Scope) -> None:
    if not node.args:
        tr.put(scope.out, "param_match", "exact", node, scope.path)
    elif node.args[0] in _PARAM_MATCHES:
        tr.put(scope.out, "param_match", node.args[0], node, scope.path)
    else:
        tr.skip(node, INVALID, "%r is not initial or partial (keepalived ignores it)" % node.args[0])


def weighted(tr: Translator, node: Node, scope: Scope, word: str | None) -> None:
    """`weight N [reverse]` of a vrrp_script / vrrp_track_process / track_file -> weight (and weight_reverse);
    another word after N is reported and ignored, as keepalived ignores it."""
    found = tr.integer(node, word)
    if found is None:
        return
    tr.put(scope.out, "weight", found, node, scope.path)
    if node.args[1:2] == ["reverse"]:
        tr.put(scope.out, "weight_reverse", True, node, scope.path)
    elif node.args[1:]:
        tr.skip(node, NO_MEANING, "unknown weight option %r: keepalived ignores it" % " ".join(node.args[1:]))


def _weight(tr: Translator, node: Node, scope: Scope) -> None:
    weighted(tr, node, scope, node.args[0] if node.args else None)


def _flag_true(tr: Translator, node: Node, scope: Scope) -> None:
    tr.put(scope.out, node.keyword, True, node, scope.path)


def _init_file(tr: Translator, node: Node, scope: Scope) -> None:
    """`init_file [VALUE] [overwrite]`: written at start when missing (with overwrite: always)."""
    found, overwrite = 0, False
    for word in node.args:
        if word == "overwrite":
            overwrite = True
        else:
            number = tr.integer(node, word)
            if number is None:
                return
            found = number
    tr.put(scope.out, "init_file", {"value": found, "overwrite": True} if overwrite else found, node, scope.path)


VRRP_TRACK_PROCESS = Table("vrrp_track_process", "vrrp_track_process", "vrrp_track_processes.NAME", [
    carried("process", "process", _process, "the name, or argv[0] and its arguments (an exact match of them)"),
    carried("param_match", "param_match", _param_match, "exact (no word), initial or partial"),
    carried("weight", "weight", _weight, "with reverse as weight_reverse"),
    value("quorum", "int"),
    value("quorum_max", "int"),
    value("delay", "num"),
    value("terminate_delay", "num"),
    value("fork_delay", "num"),
    carried("full_command", "full_command", _flag_true),
], note="a top-level `vrrp_track_process NAME { }` block")

_FILE_ROWS = [
    value("file", "text"),
    carried("weight", "weight", _weight, "with reverse as weight_reverse"),
    carried("init_file", "init_file", _init_file, "the value, and overwrite"),
]
TRACK_FILE = Table("track_file", "track_file", "track_files.NAME", _FILE_ROWS,
                   note="a top-level `track_file NAME { }` block")
VRRP_TRACK_FILE = Table("vrrp_track_file", "vrrp_track_file", "track_files.NAME", _FILE_ROWS,
                        note="a top-level `vrrp_track_file NAME { }` block (track_file's older name)")


def _quorum_max_zero(tr: Translator, block: Node, out: dict[str, Any]) -> None:
    """keepalived: quorum_max 0 makes the quorum 0 (the process must not run), unless quorum is above 1, when it
    refuses quorum_max instead."""
    if out.get("quorum", 1) <= 1:
        if "quorum" in out:
            tr.skip(block, NO_MEANING, "quorum %d: quorum_max 0 makes the quorum 0 (keepalived's rule)"
                    % out.pop("quorum"), "quorum")
    else:
        tr.skip(block, INVALID, "quorum_max 0 is less than quorum %d (keepalived ignores quorum_max)" % out["quorum"],
                "quorum_max")
        del out["quorum_max"]


def translate_track_process(tr: Translator, block: Node, config: dict[str, Any]) -> None:
    _translate(tr, block, config, VRRP_TRACK_PROCESS, "vrrp_track_processes", tr.processes_defined, "process")


def translate_track_file(tr: Translator, block: Node, config: dict[str, Any]) -> None:
    table = VRRP_TRACK_FILE if block.keyword == "vrrp_track_file" else TRACK_FILE
    if block.keyword == "vrrp_track_file":
        tr.note(block, "keepalived calls vrrp_track_file deprecated (track_file is its name now)")
    _translate(tr, block, config, table, "track_files", tr.files_defined, "file")


def _translate(tr: Translator, block: Node, config: dict[str, Any], table: Table, key: str,
               defined: dict[str, Node], required: str) -> None:
    name = tr.new_name(block, block.keyword, defined)
    if name is None:
        return
    path = "%s.%s" % (key, name)
    out: dict[str, Any] = {}
    scope = Scope(out, path, block=block, name=name)
    tr.walk(table, tr.entries(block), scope)
    if scope.stop:
        return
    if required not in out:
        tr.skip(block, INVALID, "has no %s (keepalived drops it)" % required, "%s %s" % (block.keyword, name))
        return
    if out.get("quorum_max") == 0:
        _quorum_max_zero(tr, block, out)
    defined[name] = block
    config.setdefault(key, {})[name] = out
    tr.record(path, block, "%s %s" % (block.keyword, name))
