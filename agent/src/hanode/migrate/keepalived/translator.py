"""The translators' shared state and tools: reporting, provenance, value readers, scripts, table dispatch. Pure.

A Translator walks the parsed tree once. Each block module (global_defs, vrrp, trackers, virtual_server,
real_server) has a keyword table (table.py) whose converters get (translator, node, scope)."""

from __future__ import annotations

import ipaddress
import math
import shlex
from typing import Any, Iterator

from hanode.migrate.keepalived.lexer import split_quoted_escaped
from hanode.migrate.keepalived.model import INVALID, NO_MEANING, UNSUPPORTED, Item, Node, Note, Parsed
from hanode.migrate.keepalived.table import Scope, Table

_TRUE = ("true", "on", "yes")
_FALSE = ("false", "off", "no")
_SHELL_WORDS = ("|", "||", "&&", ";", ">", ">>", "<", "2>&1", "&")
_SHELLS = ("sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox")
MISSING = "missing a value (keepalived refuses the whole configuration)"


class Translator:
    """Walks the tree once; `exclude` (node.seq -> reason) drops keywords the agent refused in an earlier pass."""

    def __init__(self, parsed: Parsed, exclude: dict[int, str] | None = None):
        self.nodes = parsed.nodes
        self.items: list[Item] = list(parsed.items)
        self.notes: list[Note] = list(parsed.notes)
        self.exclude = exclude or {}
        self.provenance: dict[str, list[tuple[Node, str]]] = {}
        self.defaults: dict[str, tuple[Any, Node]] = {}          # global_defs' defaults for every vrrp_instance
        self.scripts_defined: dict[str, Node] = {}
        self.processes_defined: dict[str, Node] = {}    # vrrp_track_process
        self.files_defined: dict[str, Node] = {}        # track_file / vrrp_track_file
        self.instances_defined: dict[str, Node] = {}
        self.vip_seen: dict[str, dict[tuple[str, str], Node]] = {}
        self.sorry_inhibit: dict[str, Node] = {}

    # -- the report and the provenance of every field

    def skip(self, node: Node, category: str, reason: str, label: str | None = None) -> None:
        self.items.append(Item(node.file, node.line, label or label_of(node), category, reason))

    def note(self, node: Node, message: str, label: str | None = None) -> None:
        self.notes.append(Note(node.file, node.line, label or label_of(node), message))

    def refused(self, node: Node, label: str | None = None) -> bool:
        """True when an earlier pass found that the agent refuses this keyword (reported once, here)."""
        if node.seq not in self.exclude:
            return False
        self.skip(node, UNSUPPORTED, self.exclude[node.seq], label)
        for child in descendants(node):   # what an earlier pass refused inside it is part of the why
            if child.seq in self.exclude:
                self.skip(child, UNSUPPORTED, self.exclude[child.seq])
        return True

    def record(self, path: str, node: Node, label: str | None = None) -> None:
        self.provenance.setdefault(path, []).append((node, label or label_of(node)))

    def put(self, out: dict[str, Any], key: str, value: Any, node: Node, path: str, label: str | None = None) -> None:
        field = join(path, key)
        for old, old_label in self.provenance.pop(field, []):
            if old is not node:
                self.skip(old, NO_MEANING, "given again on line %d: keepalived uses the last one" % node.line,
                          old_label)
        out[key] = value
        self.record(field, node, label)

    def source(self, field: str) -> tuple[Node, str]:
        """The keyword a field came from (the last one recorded), else the one its parent came from."""
        while field not in self.provenance and "." in field:
            field = field.rsplit(".", 1)[0]
        return self.provenance[field][-1]

    # -- the tables

    def dispatch(self, table: Table, node: Node, scope: Scope) -> None:
        row = table.get(node.keyword)
        if row is None:
            self.unknown(node, table.where)
        elif row.convert is None:
            self.skip(node, row.status, row.text)
        else:
            row.convert(self, node, scope)

    def walk(self, table: Table, nodes: list[Node], scope: Scope) -> None:
        """Every keyword of a block through its table, until a converter sets scope.stop."""
        for node in nodes:
            if not self.refused(node):
                self.dispatch(table, node, scope)
                if scope.stop:
                    return

    def unknown(self, node: Node, where: str) -> None:
        self.skip(node, UNSUPPORTED, "not a keepalived 2.2 keyword of %s that the importer knows (keepalived "
                  "ignores unknown keywords too)" % where)

    # -- value readers: report and return None when unusable

    def arg(self, node: Node, count: int = 1, label: str | None = None) -> list[str] | None:
        if len(node.args) < count:
            self.skip(node, INVALID, MISSING, label)
            return None
        if len(node.args) > count:
            self.skip(node, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(node.args[count:]),
                      (label or node.keyword) + " " + " ".join(node.args[count:]))
        return node.args[:count]

    def integer(self, node: Node, text: str | None = None) -> int | None:
        return self._numeric(node, text, True)

    def number(self, node: Node, text: str | None = None) -> Any:
        return self._numeric(node, text, False)

    def _numeric(self, node: Node, text: str | None, integer: bool) -> Any:
        """The node's value (or text) as a number; None, reported, when it is missing or not one."""
        if text is None:
            words = self.arg(node)
            if words is None:
                return None
            text = words[0]
        value = number_text(text, integer)
        if value is None:
            self.skip(node, INVALID, "%r is not %s (keepalived rejects it)"
                      % (text, "a whole number" if integer else "a number"))
        return value

    def text(self, node: Node) -> str | None:
        words = self.arg(node)
        return None if words is None else words[0]

    def flag(self, node: Node) -> bool | None:
        if not node.args:
            return True
        words = self.arg(node)
        if words is None:
            return None
        word = words[0].lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        self.skip(node, INVALID, "%r is not true/false, on/off or yes/no" % words[0])
        return None

    def read(self, node: Node, kind: str) -> Any:
        """A value as a table's row reads it; "word" is the first word (the caller reports the others)."""
        if kind == "word":
            return node.args[0] if node.args else self.text(node)
        return {"text": self.text, "int": self.integer, "num": self.number, "flag": self.flag}[kind](node)

    def user(self, node: Node, out: dict[str, Any], path: str, key: str = "user") -> None:
        """`user USER [GROUP]` (script_user, a vrrp_script's or MISC_CHECK's user)."""
        if node.args:
            self.put(out, key, " ".join(node.args[:2]), node, path)
        else:
            self.skip(node, INVALID, MISSING)

    def script(self, node: Node, with_user: bool) -> tuple[str | None, str | None]:
        """A script keyword as keepalived reads it: the first word is the command line; with_user: the next two
        words are user [group]. Returns (command, user spec)."""
        try:
            words = split_quoted_escaped(node.raw)[1:]
            argv = split_quoted_escaped(words[0]) if words else []
        except ValueError as exc:
            self.skip(node, INVALID, "cannot read the script: %s" % exc)
            return None, None
        if not argv:
            self.skip(node, INVALID, MISSING)
            return None, None
        extra_at = 3 if with_user else 1
        if len(words) > extra_at:
            extra = " ".join(words[extra_at:])
            self.skip(node, NO_MEANING, "extra words %r are ignored by keepalived (quote the whole command line to "
                      "pass arguments); carried over as keepalived ran it: %s" % (extra, command_line(argv)),
                      node.keyword + " " + extra)
        user = " ".join(words[1:3]) if with_user and len(words) > 1 else None
        return self._shell(node, argv), user

    def _shell(self, node: Node, argv: list[str]) -> str:
        if argv[0][:1] in "<>":
            # keepalived runs a command that begins with a redirection through the shell: system(3) with the
            # first word as it is and the others single-quoted (notify.c cmd_str_r)
            shell = " ".join([argv[0]] + ["'%s'" % word for word in argv[1:]])
            self.note(node, "keepalived runs it through /bin/sh (it begins with a redirection); carried over as "
                            "/bin/sh -c %s" % shlex.quote(shell))
            argv = ["/bin/sh", "-c", shell]
        elif not _runs_a_shell(argv):
            shell_words = [w for w in argv[1:] if w in _SHELL_WORDS or "$(" in w or "`" in w]
            if shell_words:
                self.note(node, "%s is shell syntax, but keepalived runs this without a shell (only a command that "
                                "begins with a redirection gets one), and so does hanode: carried over as keepalived "
                                "ran it; write /bin/sh -c '...' to get a shell" % " ".join(shell_words))
        return command_line(argv)

    def entries(self, node: Node) -> list[Node]:
        if node.children is None:
            self.skip(node, INVALID, "needs a { } block (keepalived ignores it)")
            return []
        return node.children

    def new_name(self, block: Node, what: str, defined: dict[str, Node]) -> str | None:
        """named(), and not one of `defined` (keepalived refuses a second block of that name)."""
        name = self.named(block, what)
        if name is not None and name in defined:
            self.skip(block, INVALID, "%s %s is already defined on line %d (keepalived refuses the duplicate)"
                      % (what, name, defined[name].line), what + " " + name)
            return None
        return name

    def named(self, block: Node, what: str) -> str | None:
        if len(block.args) != 1:
            self.skip(block, INVALID, "%s needs exactly one name (keepalived refuses it)" % what)
            return None
        if block.children is None:
            self.skip(block, INVALID, "needs a { } block (keepalived ignores it)", what + " " + block.args[0])
            return None
        return block.args[0]


def notify(tr: Translator, node: Node, scope: Scope) -> None:
    """A notify script (notify_master, quorum_up, notify_up...): carried under its own name; its user is not."""
    command, user = tr.script(node, with_user=True)
    if command is None:
        return
    tr.put(scope.out, node.keyword, command, node, scope.path)
    if user:
        tr.skip(node, UNSUPPORTED, "running it as %r: hanode runs notify scripts as script_user; the script "
                "itself is carried over" % user, node.keyword + " " + user)


# ----- helpers --------------------------------------------------------------------------------------------------

def number_text(text: str, integer: bool) -> Any:
    try:
        if integer:
            return int(text, 10)
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return int(value) if value == int(value) else value


def command_line(argv: list[str]) -> str:
    """The one string hanode splits (shlex) back into argv."""
    return " ".join(shlex.quote(word) for word in argv)


def join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    return "%s.%s" % (path, key) if path else str(key)


def _runs_a_shell(argv: list[str]) -> bool:
    """`/bin/bash -c '...'` (or `busybox sh -c`): the shell syntax is the shell's, as written."""
    words = argv[1:] if argv[0].rsplit("/", 1)[-1] != "busybox" else argv[2:]
    return argv[0].rsplit("/", 1)[-1] in _SHELLS and bool(words) and words[0].startswith("-") and "c" in words[0]


def label_of(node: Node) -> str:
    """How the report names a keyword: blocks with their name ('vrrp_instance VI_1'), others by keyword."""
    if node.children is not None and node.args:
        return "%s %s" % (node.keyword, " ".join(node.args))
    return node.keyword


def descendants(node: Node) -> Iterator[Node]:
    for child in node.children or []:
        yield child
        yield from descendants(child)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def word_after(words: list[str], key: str) -> str | None:
    for i, word in enumerate(words[:-1]):
        if word == key:
            return words[i + 1]
    return None


def ordered_keys(data: dict[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    out = dict((k, data[k]) for k in first if k in data)
    out.update((k, v) for k, v in data.items() if k not in out)
    return out
