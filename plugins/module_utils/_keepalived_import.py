# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""keepalived.conf -> hanode agent config: lexer, parser, translator and the report of what was not carried over.

Stdlib only and Python 3.8 compatible. This file is the single source of the importer: the agent imports it as
hanode.migrate.keepalived, and the Ansible collection carries a byte-identical copy as
plugins/module_utils/_keepalived_import.py, written by `python -m hanode.migrate.sync_module_utils` (a unit test
fails when the two differ). Edit this file, then run the sync.

    parsed = parse_file("/etc/keepalived/keepalived.conf")        # or parse_text(text, name) without includes
    result = translate(parsed)                                      # result.config, result.items, result.warnings

The lexer follows keepalived 2.2's reader (lib/parser.c): `!` and `#` start a comment anywhere outside double
quotes (`\\!` and `\\#` escape them), `{` and `}` split a line wherever they stand outside double quotes, a block
may open on the keyword's line or the next one, `include PATTERN` splices the matching files (glob with {a,b},
relative to the including file's directory) at any depth, `@ID` / `@^ID` lines are kept or dropped by config id,
and single-line `$NAME=value` definitions are substituted. Scripts are re-read the way keepalived reads them
(single and double quotes, backslash escapes) and written back as one shell-quoted command line.
"""

from __future__ import absolute_import, annotations, division, print_function

import glob
import ipaddress
import math
import os
import re
import shlex
import stat
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

__metaclass__ = type

UNSUPPORTED = "unsupported"
DEPRECATED = "deprecated"
NO_MEANING = "no meaning here"
INVALID = "invalid"
CATEGORIES = (UNSUPPORTED, DEPRECATED, NO_MEANING, INVALID)

_WS = " \t\f\n\r\v"
_MAX_INCLUDE_DEPTH = 32


# ----- results --------------------------------------------------------------------------------------------

class Item(NamedTuple):
    """One keyword that was not carried over, and why."""
    file: str
    line: int
    keyword: str
    category: str
    reason: str

    def __str__(self) -> str:
        return "%s:%d: %s: %s: %s" % (self.file, self.line, self.keyword, self.category, self.reason)

    def as_dict(self) -> Dict[str, Any]:
        return dict(self._asdict())


class Note(NamedTuple):
    """Something carried over that the user should know about (a default made explicit, a skipped include...)."""
    file: str
    line: int
    keyword: str
    message: str

    def __str__(self) -> str:
        return "%s:%d: %s: warning: %s" % (self.file, self.line, self.keyword, self.message)

    def as_dict(self) -> Dict[str, Any]:
        return dict(self._asdict())


class KeepalivedParseError(ValueError):
    """The file cannot be read as keepalived configuration; names the file and line."""

    def __init__(self, file: str, line: int, message: str):
        self.file, self.line, self.message = file, line, message
        super(KeepalivedParseError, self).__init__("%s:%d: %s" % (file, line, message))


class Node:
    """One keyword with its words, where it was written, and its block (None when it has none)."""

    __slots__ = ("keyword", "args", "file", "line", "raw", "children", "seq")

    def __init__(self, keyword: str, args: List[str], file: str, line: int, raw: str, seq: int):
        self.keyword, self.args, self.file, self.line, self.raw, self.seq = keyword, args, file, line, raw, seq
        self.children = None  # type: Optional[List[Node]]

    def __repr__(self) -> str:
        block = "" if self.children is None else " {%d}" % len(self.children)
        return "<Node %s %s %s:%d%s>" % (self.keyword, " ".join(self.args), self.file, self.line, block)


class Parsed(NamedTuple):
    nodes: List[Node]
    items: List[Item]
    notes: List[Note]


class Translation(NamedTuple):
    config: Dict[str, Any]
    items: List[Item]
    notes: List[Note]
    provenance: Dict[str, List[Tuple[Node, str]]]   # config field path -> the keywords it came from

    @property
    def complete(self) -> bool:
        return not self.items


# ----- lexer: keepalived's read_line ------------------------------------------------------------------------

def _decomment(text: str) -> Tuple[str, bool]:
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


def _segments(text: str) -> List[str]:
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


def split_words(text: str) -> List[str]:
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


def _escape(text: str, i: int) -> Tuple[str, int]:
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


def split_quoted_escaped(text: str) -> List[str]:
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
    words: List[str]
    raw: str
    file: str
    line: int


Loader = Callable[[str, str], Tuple[List[Tuple[str, str]], List[str]]]

_DEFINITION = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)$")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=[ \t,)]|$)")


class _Lexer:
    def __init__(self, loader: Optional[Loader], config_id: Optional[str], items: List[Item], notes: List[Note]):
        self.loader, self.config_id, self.items, self.notes = loader, config_id, items, notes
        self.definitions = {}  # type: Dict[str, str]
        self.stack = []  # type: List[str]

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
            if len(words) == 2 and words[0] == "include":
                yield from self._include(words[1], name, lineno)
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

    def _preprocess(self, line: str, name: str, lineno: int) -> Optional[str]:
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
            if "$" not in line or not self.definitions and "$_" not in line:
                return line
            expanded = _REFERENCE.sub(lambda m: self._value(m, name, lineno), line)
            if expanded == line:
                return line
            line = expanded
        raise KeepalivedParseError(name, lineno, "$definitions nest more than 16 deep")

    def _condition(self, line: str, name: str, lineno: int) -> Optional[str]:
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
        if key in ("_INSTANCE", "_PWD", "_RANDOM"):
            raise KeepalivedParseError(name, lineno, "$%s cannot be reproduced by the importer: replace it by hand"
                                       % key)
        return match.group(0)

    def _include(self, pattern: str, name: str, lineno: int) -> Iterator[_Token]:
        if self.loader is None:
            self.items.append(Item(name, lineno, "include", UNSUPPORTED, "%s was not read: only the text of one file "
                                   "was given (run `hanode import-keepalived` on the host to follow includes)"
                                   % pattern))
            return
        if len(self.stack) > _MAX_INCLUDE_DEPTH:
            raise KeepalivedParseError(name, lineno, "includes nest more than %d deep" % _MAX_INCLUDE_DEPTH)
        files, messages = self.loader(pattern, name)
        for message in messages:
            self.notes.append(Note(name, lineno, "include", message))
        for path, text in files:
            if path in self.stack:
                raise KeepalivedParseError(name, lineno, "include loop: %s is already being read" % path)
            yield from self.tokens(text, path)


def expand_braces(pattern: str) -> List[str]:
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


def read_includes(pattern: str, including_file: str) -> Tuple[List[Tuple[str, str]], List[str]]:
    """Files of an include as keepalived finds them: relative to the including file's directory, sorted per
    pattern, directories and executable files skipped."""
    base = os.path.dirname(including_file)
    files, messages = [], []
    for alternative in expand_braces(pattern):
        full = alternative if os.path.isabs(alternative) or not base else os.path.join(glob.escape(base), alternative)
        for path in sorted(glob.glob(full)):
            try:
                st = os.stat(path)
            except OSError as exc:
                messages.append("%s skipped: %s" % (path, exc.strerror))
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111:
                messages.append("%s skipped: not a regular non-executable file (keepalived skips it too)" % path)
                continue
            try:
                with open(path, "rb") as handle:
                    files.append((path, handle.read().decode("utf-8", "replace")))
            except OSError as exc:
                messages.append("%s skipped: %s" % (path, exc.strerror))
    if not files and not messages:
        messages.append("%s matched no file (keepalived skips it too)" % pattern)
    return files, messages


# ----- parser: tokens -> tree -------------------------------------------------------------------------------

def _build_tree(tokens: Iterator[_Token]) -> List[Node]:
    root = []  # type: List[Node]
    stack = [(root, None)]  # type: List[Tuple[List[Node], Optional[Node]]]
    pending = None  # type: Optional[Node]
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


def parse_text(text: str, name: str = "keepalived.conf", loader: Optional[Loader] = None,
               config_id: Optional[str] = None) -> Parsed:
    """Parses one keepalived.conf given as text. Without a loader, `include` lines are reported, not followed."""
    items, notes = [], []  # type: List[Item], List[Note]
    lexer = _Lexer(loader, config_id, items, notes)
    return Parsed(_build_tree(lexer.tokens(text, name)), items, notes)


def parse_file(path: str, config_id: Optional[str] = None) -> Parsed:
    """Parses a keepalived.conf and the files it includes. OSError when the file cannot be read."""
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8", "replace")
    return parse_text(text, path, read_includes, config_id)


# ----- what is not carried over, and why ----------------------------------------------------------------------

_PROCESS = "keepalived process tuning; hanode has no equivalent setting"
_SNMP = "SNMP and DBus are not supported by hanode (use `hanode status --json` or the metrics endpoint)"
_VMAC = "hanode puts VIPs on the interface itself (keepalived's default); virtual MAC interfaces are not supported"
_FIREWALL = "hanode installs no firewall rules for VIPs"
_ROUTES = "virtual and static routes and rules are not supported by hanode"
_TRACK_OTHER = "hanode tracks interfaces and vrrp_scripts only"
_NAMESPACE = "run hanode inside the namespace instead (ip netns exec NAME hanode run ...)"
_LVS_SYNC = "the IPVS connection sync daemon is not supported by hanode"

_SKIP_GLOBAL = {
    "vrrp_strict": (UNSUPPORTED, "hanode has no strict RFC mode (it would refuse unicast and add no_accept rules)"),
    "vrrp_mcast_group4": (UNSUPPORTED, "hanode always uses 224.0.0.18"),
    "vrrp_mcast_group6": (UNSUPPORTED, "hanode always uses ff02::12"),
    "vrrp_iptables": (NO_MEANING, _FIREWALL), "vrrp_ipsets": (NO_MEANING, _FIREWALL),
    "nftables": (NO_MEANING, _FIREWALL), "nftables_priority": (NO_MEANING, _FIREWALL),
    "nftables_ifindex": (NO_MEANING, _FIREWALL), "nftables_counters": (NO_MEANING, _FIREWALL),
    "nftables_ipvs": (UNSUPPORTED, "keepalived's nftables fwmarks for IPVS are not supported"),
    "nftables_ipvs_priority": (UNSUPPORTED, "keepalived's nftables fwmarks for IPVS are not supported"),
    "nftables_ipvs_start_fwmark": (UNSUPPORTED, "keepalived's nftables fwmarks for IPVS are not supported"),
    "vrrp_check_unicast_src": (UNSUPPORTED, "hanode does not check that adverts come from a listed peer"),
    "vrrp_skip_check_adv_addr": (UNSUPPORTED, "hanode has no switch for the advert address check"),
    "vrrp_lower_prio_no_advert": (UNSUPPORTED, "hanode always re-asserts with an advert (RFC 9568)"),
    "vrrp_higher_prio_send_advert": (UNSUPPORTED, "hanode has no such option"),
    "vrrp_garp_lower_prio_delay": (UNSUPPORTED, "hanode has no lower-priority GARP settings"),
    "vrrp_garp_lower_prio_repeat": (UNSUPPORTED, "hanode has no lower-priority GARP settings"),
    "vrrp_gna_interval": (UNSUPPORTED, "hanode has one interval for ARP and NA: garp_interval"),
    "vrrp_min_garp": (UNSUPPORTED, "hanode has no such option (set the garp_* keys per instance)"),
    "vrrp_garp_extra_if": (UNSUPPORTED, _VMAC), "vmac_prefix": (UNSUPPORTED, _VMAC),
    "vrrp_vmac_garp_intvl": (DEPRECATED, "keepalived renamed it vrrp_garp_extra_if; " + _VMAC),
    "vmac_addr_prefix": (UNSUPPORTED, _VMAC),
    "vrrp_startup_delay": (UNSUPPORTED, "hanode has no start-up delay"),
    "log_unknown_vrids": (NO_MEANING, "hanode always counts foreign VRIDs (status: vrrp.foreign_vrids)"),
    "vrrp_notify_priority_changes": (UNSUPPORTED, "hanode does not notify priority changes"),
    "dynamic_interfaces": (UNSUPPORTED, "hanode has no dynamic interface mode"),
    "disable_local_igmp": (UNSUPPORTED, "hanode has no such option"),
    "startup_script": (UNSUPPORTED, "hanode has no start-up script"),
    "startup_script_timeout": (UNSUPPORTED, "hanode has no start-up script"),
    "shutdown_script": (UNSUPPORTED, "hanode has no shutdown script"),
    "shutdown_script_timeout": (UNSUPPORTED, "hanode has no shutdown script"),
    "lvs_flush": (UNSUPPORTED, "hanode reconciles only the services it owns and never flushes others"),
    "lvs_flush_on_stop": (UNSUPPORTED, "hanode removes its own services on stop unless lb_keep_on_stop"),
    "lvs_flush_onstop": (DEPRECATED, "keepalived renamed it lvs_flush_on_stop; hanode removes its own services on "
                                     "stop unless lb_keep_on_stop"),
    "lvs_timeouts": (UNSUPPORTED, "hanode does not set IPVS connection timeouts"),
    "lvs_sync_daemon": (UNSUPPORTED, _LVS_SYNC),
    "smtp_alert_vrrp": (UNSUPPORTED, "hanode has one global smtp_alert (plus per instance, group and service)"),
    "smtp_alert_checker": (UNSUPPORTED, "hanode has one global smtp_alert (plus per instance, group and service)"),
    "no_email_faults": (UNSUPPORTED, "hanode has no such option"),
    "no_checker_emails": (UNSUPPORTED, "hanode has no such option"),
    "checker_log_all_failures": (UNSUPPORTED, "hanode reports every check result in status"),
    "rs_init_notifies": (UNSUPPORTED, "hanode has no such option"),
    "notify_fifo_script": (UNSUPPORTED, "hanode writes the FIFO but runs no FIFO reader script"),
    "vrrp_notify_fifo": (UNSUPPORTED, "hanode has one notify_fifo for every event"),
    "vrrp_notify_fifo_script": (UNSUPPORTED, "hanode runs no FIFO reader script"),
    "lvs_notify_fifo": (UNSUPPORTED, "hanode has one notify_fifo for every event"),
    "lvs_notify_fifo_script": (UNSUPPORTED, "hanode runs no FIFO reader script"),
    "max_auto_priority": (NO_MEANING, _PROCESS), "min_auto_priority_delay": (NO_MEANING, _PROCESS),
    "snmp_socket": (UNSUPPORTED, _SNMP), "enable_traps": (UNSUPPORTED, _SNMP),
    "enable_snmp_vrrp": (UNSUPPORTED, _SNMP), "enable_snmp_rfc": (UNSUPPORTED, _SNMP),
    "enable_snmp_rfcv2": (UNSUPPORTED, _SNMP), "enable_snmp_rfcv3": (UNSUPPORTED, _SNMP),
    "enable_snmp_checker": (UNSUPPORTED, _SNMP), "enable_dbus": (UNSUPPORTED, _SNMP),
    "dbus_service_name": (UNSUPPORTED, _SNMP),
    "enable_snmp_keepalived": (DEPRECATED, "keepalived renamed it enable_snmp_vrrp; " + _SNMP),
    "lvs_process_name": (DEPRECATED, "keepalived renamed it checker_process_name; " + _PROCESS),
    "vrrp_rlimit_rtime": (DEPRECATED, "keepalived renamed it vrrp_rlimit_rttime; " + _PROCESS),
    "checker_rlimit_rtime": (DEPRECATED, "keepalived renamed it checker_rlimit_rttime; " + _PROCESS),
    "bfd_rlimit_rtime": (DEPRECATED, "keepalived renamed it bfd_rlimit_rttime; " + _PROCESS),
}
for _kw in ("process_names", "process_name", "vrrp_process_name", "checker_process_name", "bfd_process_name",
            "vrrp_priority", "checker_priority", "bfd_priority", "vrrp_no_swap", "checker_no_swap", "bfd_no_swap",
            "vrrp_rt_priority", "checker_rt_priority", "bfd_rt_priority", "vrrp_cpu_affinity", "checker_cpu_affinity",
            "bfd_cpu_affinity", "vrrp_rlimit_rttime", "checker_rlimit_rttime", "bfd_rlimit_rttime",
            "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs",
            "vrrp_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force",
            "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs",
            "lvs_netlink_monitor_rcv_bufs_force", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "umask",
            "random_seed", "reload_check_config", "reload_time_file", "reload_repeat", "reload_file", "include_check",
            "tmp_config_directory", "data_use_instance", "linkbeat_use_polling"):
    _SKIP_GLOBAL[_kw] = (NO_MEANING, _PROCESS)

_SKIP_TOP = {
    "net_namespace": (NO_MEANING, _NAMESPACE), "net_namespace_ipvs": (NO_MEANING, _NAMESPACE),
    "namespace_with_ipsets": (NO_MEANING, _NAMESPACE),
    "instance": (NO_MEANING, "hanode runs one agent per config file; give each its own control_socket"),
    "use_pid_dir": (NO_MEANING, _PROCESS), "child_wait_time": (NO_MEANING, _PROCESS),
    "linkbeat_use_polling": (NO_MEANING, "hanode follows links with netlink events"),
    "linkbeat_interfaces": (NO_MEANING, "hanode follows links with netlink events"),
    "static_ipaddress": (UNSUPPORTED, "static addresses are not managed by hanode: configure them with the OS"),
    "static_routes": (UNSUPPORTED, _ROUTES), "static_rules": (UNSUPPORTED, _ROUTES),
    "track_group": (UNSUPPORTED, "tracking groups are not supported by hanode"),
    "garp_group": (UNSUPPORTED, "hanode sets GARP intervals per instance (garp_interval)"),
    "vrrp_track_process": (UNSUPPORTED, _TRACK_OTHER), "vrrp_track_file": (UNSUPPORTED, _TRACK_OTHER),
    "track_file": (UNSUPPORTED, _TRACK_OTHER),
    "bfd_instance": (UNSUPPORTED, "BFD is not supported by hanode"),
    "interface_up_down_delays": (UNSUPPORTED, "hanode has no interface debounce delays"),
    "SSL": (UNSUPPORTED, "SSL_GET uses no client certificate or custom CA in hanode"),
    "virtual_server_group": (UNSUPPORTED, "virtual server groups are not supported by hanode: write one "
                                          "virtual_server per address"),
}

_SKIP_INSTANCE = {
    "use_vmac": (UNSUPPORTED, _VMAC), "use_vmac_addr": (UNSUPPORTED, _VMAC), "vmac_xmit_base": (UNSUPPORTED, _VMAC),
    "use_ipvlan": (UNSUPPORTED, _VMAC), "garp_extra_if": (UNSUPPORTED, _VMAC),
    "vmac_garp_intvl": (DEPRECATED, "keepalived renamed it garp_extra_if; " + _VMAC),
    "unicast_fault_no_peer": (UNSUPPORTED, "hanode has no such option"),
    "check_unicast_src": (UNSUPPORTED, "hanode does not check that adverts come from a listed peer"),
    "old_unicast_checksum": (UNSUPPORTED, "hanode speaks only the current unicast checksum"),
    "native_ipv6": (NO_MEANING, "hanode takes the family from the instance's addresses"),
    "vrf": (UNSUPPORTED, "VRF is not supported by hanode"),
    "track_process": (UNSUPPORTED, _TRACK_OTHER), "track_file": (UNSUPPORTED, _TRACK_OTHER),
    "track_bfd": (UNSUPPORTED, _TRACK_OTHER),
    "mcast_dst_ip": (UNSUPPORTED, "hanode always sends to 224.0.0.18 / ff02::12 (or the unicast peers)"),
    "track_src_ip": (UNSUPPORTED, "hanode has no such option"),
    "unicast_ttl": (UNSUPPORTED, "hanode sends adverts with TTL 255, as the RFC requires"),
    "no_virtual_ipaddress": (NO_MEANING, "hanode accepts an instance without addresses (it only warns)"),
    "promote_secondaries": (UNSUPPORTED, "hanode does not change the interface's promote_secondaries setting"),
    "linkbeat_use_polling": (DEPRECATED, "keepalived deprecated it; hanode follows links with netlink events"),
    "virtual_routes": (UNSUPPORTED, _ROUTES), "virtual_rules": (UNSUPPORTED, _ROUTES),
    "accept": (NO_MEANING, "hanode never blocks traffic to its VIPs (accept mode is its behaviour)"),
    "no_accept": (UNSUPPORTED, _FIREWALL),
    "skip_check_adv_addr": (UNSUPPORTED, "hanode has no switch for the advert address check"),
    "strict_mode": (UNSUPPORTED, "hanode has no strict RFC mode"),
    "preempt": (NO_MEANING, "preemption is the default"),
    "debug": (NO_MEANING, "use hanode run --log-level debug"),
    "notify_deleted": (UNSUPPORTED, "hanode has no deleted notification"),
    "notify_master_rx_lower_pri": (UNSUPPORTED, "hanode has no such notification"),
    "notify_priority_changes": (UNSUPPORTED, "hanode does not notify priority changes"),
    "lvs_sync_daemon_interface": (DEPRECATED, "keepalived moved it to global lvs_sync_daemon; " + _LVS_SYNC),
    "garp_lower_prio_delay": (UNSUPPORTED, "hanode has no lower-priority GARP settings"),
    "garp_lower_prio_repeat": (UNSUPPORTED, "hanode has no lower-priority GARP settings"),
    "gna_interval": (UNSUPPORTED, "hanode has one interval for ARP and NA: garp_interval"),
    "down_timer_adverts": (UNSUPPORTED, "hanode uses the RFC's 3 adverts"),
    "timer_expired_backup": (UNSUPPORTED, "hanode has no such option"),
    "lower_prio_no_advert": (UNSUPPORTED, "hanode always re-asserts with an advert (RFC 9568)"),
    "higher_prio_send_advert": (UNSUPPORTED, "hanode has no such option"),
    "kernel_rx_buf_size": (NO_MEANING, _PROCESS),
}

_SKIP_SYNC_GROUP = {
    "track_interface": (UNSUPPORTED, "hanode sync groups have no trackers: track in each member instance"),
    "track_script": (UNSUPPORTED, "hanode sync groups have no trackers: track in each member instance"),
    "track_file": (UNSUPPORTED, _TRACK_OTHER), "track_process": (UNSUPPORTED, _TRACK_OTHER),
    "track_bfd": (UNSUPPORTED, _TRACK_OTHER),
    "global_tracking": (DEPRECATED, "keepalived deprecated it; hanode sync groups have no trackers"),
    "sync_group_tracking_weight": (UNSUPPORTED, "hanode sync groups have no trackers"),
    "notify_priority_changes": (UNSUPPORTED, "hanode does not notify priority changes"),
}

_SKIP_VIRTUAL_SERVER = {
    "hashed": (UNSUPPORTED, "IPVS scheduler flags are not supported by hanode"),
    "flag-1": (UNSUPPORTED, "IPVS scheduler flags are not supported by hanode"),
    "flag-2": (UNSUPPORTED, "IPVS scheduler flags are not supported by hanode"),
    "flag-3": (UNSUPPORTED, "IPVS scheduler flags are not supported by hanode"),
    "sh-port": (UNSUPPORTED, "IPVS scheduler flags are not supported by hanode"),
    "sh-fallback": (UNSUPPORTED, "IPVS scheduler flags are not supported by hanode"),
    "mh-port": (UNSUPPORTED, "IPVS scheduler flags are not supported by hanode"),
    "mh-fallback": (UNSUPPORTED, "IPVS scheduler flags are not supported by hanode"),
    "ha_suspend": (UNSUPPORTED, "hanode keeps services installed whatever the VIP state"),
    "persistence_engine": (UNSUPPORTED, "IPVS persistence engines are not supported by hanode"),
    "ip_family": (UNSUPPORTED, "hanode takes the family from the addresses"),
    "sorry_server_lvs_method": (UNSUPPORTED, "the sorry server uses the service's lb_kind in hanode"),
    "weight": (UNSUPPORTED, "hanode has no service weight"),
}

_SKIP_REAL_SERVER = {
    "lvs_method": (UNSUPPORTED, "hanode sets the forwarding method per service (lb_kind), not per real server"),
    "uthreshold": (UNSUPPORTED, "connection thresholds are not supported by hanode"),
    "lthreshold": (UNSUPPORTED, "connection thresholds are not supported by hanode"),
    "smtp_alert": (UNSUPPORTED, "hanode has smtp_alert per service, not per real server"),
    "track_file": (UNSUPPORTED, "hanode checks real servers with checkers only"),
    "track_bfd": (UNSUPPORTED, "hanode checks real servers with checkers only"),
    "FILE_CHECK": (UNSUPPORTED, "hanode checks real servers with network checkers and MISC_CHECK only"),
    "BFD_CHECK": (UNSUPPORTED, "BFD is not supported by hanode"),
}

_SKIP_CHECK = {
    "bind_if": (UNSUPPORTED, "hanode binds checks by address (bindto) only"),
    "fwmark": (UNSUPPORTED, "hanode does not mark check traffic"),
    "alpha": (UNSUPPORTED, "hanode has alpha per real server or service, not per checker"),
    "log_all_failures": (UNSUPPORTED, "hanode reports every check result in status"),
    "fast_recovery": (UNSUPPORTED, "hanode has no such option"),
    "tls_compliant": (UNSUPPORTED, "hanode has no such option"),
}


# ----- value readers ------------------------------------------------------------------------------------------

_TRUE = ("true", "on", "yes")
_FALSE = ("false", "off", "no")


def _number_text(text: str, integer: bool) -> Optional[Any]:
    try:
        if integer:
            return int(text, 10)
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return int(value) if value == int(value) else value


_SHELL_WORDS = ("|", "||", "&&", ";", ">", ">>", "<", "2>&1", "&")


def command_line(argv: List[str]) -> str:
    """The one string hanode splits (shlex) back into argv."""
    return " ".join(shlex.quote(word) for word in argv)


# ----- translator ---------------------------------------------------------------------------------------------

class _Translator:
    """Walks the tree once; `exclude` (node.seq -> reason) drops keywords the agent refused in an earlier pass."""

    def __init__(self, parsed: Parsed, exclude: Optional[Dict[int, str]] = None):
        self.nodes = parsed.nodes
        self.items = list(parsed.items)      # type: List[Item]
        self.notes = list(parsed.notes)      # type: List[Note]
        self.exclude = exclude or {}
        self.provenance = {}                 # type: Dict[str, List[Tuple[Node, str]]]
        self.defaults = {}                   # type: Dict[str, Tuple[Any, Node]]
        self.scripts_defined = {}            # type: Dict[str, Node]
        self.instances_defined = {}          # type: Dict[str, Node]
        self.vip_seen = {}                   # type: Dict[str, Dict[Tuple[str, str], Node]]
        self.sorry_inhibit = {}              # type: Dict[str, Node]

    # -- bookkeeping

    def skip(self, node: Node, category: str, reason: str, label: Optional[str] = None) -> None:
        self.items.append(Item(node.file, node.line, label or _label(node), category, reason))

    def note(self, node: Node, message: str, label: Optional[str] = None) -> None:
        self.notes.append(Note(node.file, node.line, label or _label(node), message))

    def refused(self, node: Node, label: Optional[str] = None) -> bool:
        """True when an earlier pass found that the agent refuses this keyword (reported once, here)."""
        if node.seq not in self.exclude:
            return False
        self.skip(node, UNSUPPORTED, self.exclude[node.seq], label)
        for child in _descendants(node):   # what an earlier pass refused inside it is part of the why
            if child.seq in self.exclude:
                self.skip(child, UNSUPPORTED, self.exclude[child.seq])
        return True

    def record(self, path: str, node: Node, label: Optional[str] = None) -> None:
        self.provenance.setdefault(path, []).append((node, label or _label(node)))

    def put(self, out: Dict[str, Any], key: str, value: Any, node: Node, path: str,
            label: Optional[str] = None) -> None:
        field = _join(path, key)
        for old, old_label in self.provenance.pop(field, []):
            if old is not node:
                self.skip(old, NO_MEANING, "given again on line %d: keepalived uses the last one" % node.line,
                          old_label)
        out[key] = value
        self.record(field, node, label)

    # -- value readers: report and return None when unusable

    def arg(self, node: Node, count: int = 1, label: Optional[str] = None) -> Optional[List[str]]:
        if len(node.args) < count:
            self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)", label)
            return None
        if len(node.args) > count:
            self.skip(node, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(node.args[count:]),
                      (label or node.keyword) + " " + " ".join(node.args[count:]))
        return node.args[:count]

    def integer(self, node: Node, text: Optional[str] = None) -> Optional[int]:
        if text is None:
            words = self.arg(node)
            if words is None:
                return None
            text = words[0]
        value = _number_text(text, True)
        if value is None:
            self.skip(node, INVALID, "%r is not a whole number (keepalived rejects it)" % text)
        return value

    def number(self, node: Node, text: Optional[str] = None) -> Optional[Any]:
        if text is None:
            words = self.arg(node)
            if words is None:
                return None
            text = words[0]
        value = _number_text(text, False)
        if value is None:
            self.skip(node, INVALID, "%r is not a number (keepalived rejects it)" % text)
        return value

    def text(self, node: Node) -> Optional[str]:
        words = self.arg(node)
        return None if words is None else words[0]

    def flag(self, node: Node) -> Optional[bool]:
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

    def script(self, node: Node, with_user: bool) -> Tuple[Optional[str], Optional[str]]:
        """A script keyword as keepalived reads it: the first word is the command line; with_user: the next two
        words are user [group]. Returns (command, user spec)."""
        try:
            words = split_quoted_escaped(node.raw)[1:]
            argv = split_quoted_escaped(words[0]) if words else []
        except ValueError as exc:
            self.skip(node, INVALID, "cannot read the script: %s" % exc)
            return None, None
        if not argv:
            self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)")
            return None, None
        extra_at = 3 if with_user else 1
        if len(words) > extra_at:
            extra = " ".join(words[extra_at:])
            self.skip(node, NO_MEANING, "extra words %r are ignored by keepalived (quote the whole command line to "
                      "pass arguments); carried over as keepalived ran it: %s" % (extra, command_line(argv)),
                      node.keyword + " " + extra)
        user = " ".join(words[1:3]) if with_user and len(words) > 1 else None
        if argv[0][:1] in "<>":
            # keepalived runs a command that begins with a redirection through the shell: system(3) with the
            # first word as it is and the others single-quoted (notify.c cmd_str_r)
            shell = " ".join([argv[0]] + ["'%s'" % word for word in argv[1:]])
            self.note(node, "keepalived runs it through /bin/sh (it begins with a redirection); carried over as "
                            "/bin/sh -c %s" % shlex.quote(shell))
            argv = ["/bin/sh", "-c", shell]
        else:
            shell_words = [w for w in argv[1:] if w in _SHELL_WORDS or "$(" in w or "`" in w]
            if shell_words:
                self.note(node, "%s is shell syntax, but keepalived runs this without a shell (only a command that "
                                "begins with a redirection gets one), and so does hanode: carried over as keepalived "
                                "ran it; write /bin/sh -c '...' to get a shell" % " ".join(shell_words))
        return command_line(argv), user

    def entries(self, node: Node) -> List[Node]:
        if node.children is None:
            self.skip(node, INVALID, "needs a { } block (keepalived ignores it)")
            return []
        return node.children

    def unknown(self, node: Node, where: str) -> None:
        self.skip(node, UNSUPPORTED, "not a keepalived 2.2 keyword of %s that the importer knows (keepalived "
                  "ignores unknown keywords too)" % where)

    # -- top level

    def run(self) -> Dict[str, Any]:
        config = {}  # type: Dict[str, Any]
        order = ("global_defs", "vrrp_script", "vrrp_instance", "vrrp_sync_group", "virtual_server")
        for keyword in order:
            for node in self.nodes:
                if node.keyword == keyword and not self.refused(node):
                    getattr(self, "_" + keyword)(node, config)
        for node in self.nodes:
            if node.keyword in order:
                continue
            if node.keyword in _SKIP_TOP:
                self.skip(node, *_SKIP_TOP[node.keyword])
            else:
                self.unknown(node, "the top level")
        if config.get("virtual_servers"):
            config["lb_backend"] = "ipvs"
            for i in range(len(config["virtual_servers"])):
                for node, label in self.provenance.get("virtual_servers[%d]" % i, []):
                    self.record("lb_backend", node, label)
        return _ordered(config)

    # -- global_defs

    _DEFAULTS = {"default_interface": "interface", "vrrp_version": "version",
                 "vrrp_garp_master_delay": "garp_master_delay", "vrrp_garp_master_repeat": "garp_master_repeat",
                 "vrrp_garp_master_refresh": "garp_master_refresh",
                 "vrrp_garp_master_refresh_repeat": "garp_master_refresh_repeat",
                 "vrrp_garp_interval": "garp_interval"}

    def _global_defs(self, block: Node, config: Dict[str, Any]) -> None:
        for node in self.entries(block):
            kw = node.keyword
            if self.refused(node):
                continue
            if kw == "router_id":
                value = self.text(node)
                if value is not None:
                    self.put(config, "router_id", value, node, "")
            elif kw == "script_user":
                if node.args:
                    self.put(config, "script_user", " ".join(node.args[:2]), node, "")
                    if len(node.args) > 2:
                        self.skip(node, NO_MEANING,
                                  "extra words %r are ignored by keepalived" % " ".join(node.args[2:]))
                else:
                    self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)")
            elif kw == "enable_script_security":
                self.put(config, "enable_script_security", True, node, "")
            elif kw in self._DEFAULTS:
                value = self.text(node) if kw == "default_interface" else self.number(node)
                if value is not None:
                    self.defaults[self._DEFAULTS[kw]] = (value, node)
            elif kw in ("notification_email_from", "smtp_helo_name"):
                value = self.text(node)
                if value is not None:
                    self.put(config, kw, value, node, "")
            elif kw == "smtp_connect_timeout":
                value = self.number(node)
                if value is not None:
                    self.put(config, kw, value, node, "")
            elif kw == "smtp_server":
                self._smtp_server(node, config)
            elif kw == "notification_email":
                self._notification_email(node, config)
            elif kw == "smtp_alert":
                value = self.flag(node)
                if value is not None:
                    self.put(config, "smtp_alert", value, node, "")
            elif kw == "notify_fifo":
                self._notify_fifo(node, config)
            elif kw in _SKIP_GLOBAL:
                self.skip(node, *_SKIP_GLOBAL[kw])
            else:
                self.unknown(node, "global_defs")

    def _smtp_server(self, node: Node, config: Dict[str, Any]) -> None:
        if not node.args:
            self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)")
            return
        self.put(config, "smtp_server", node.args[0], node, "")
        if len(node.args) > 1:
            port = self.integer(node, node.args[1])
            if port is not None:
                self.put(config, "smtp_port", port, node, "")
        if len(node.args) > 2:
            self.skip(node, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(node.args[2:]))

    def _notification_email(self, block: Node, config: Dict[str, Any]) -> None:
        emails = config.setdefault("notification_email", [])
        for entry in self.entries(block):
            label = "notification_email " + " ".join([entry.keyword] + entry.args)
            if self.refused(entry, label):
                continue
            for word in [entry.keyword] + entry.args:
                if "@" not in word:
                    self.skip(entry, UNSUPPORTED, "%r: hanode needs a full address (user@domain); keepalived handed "
                              "it to the SMTP server as it is" % word, "notification_email " + word)
                    continue
                self.record("notification_email[%d]" % len(emails), entry, label)
                emails.append(word)
        self.record("notification_email", block)
        if not emails:
            del config["notification_email"]

    def _notify_fifo(self, node: Node, config: Dict[str, Any]) -> None:
        if not node.args:
            self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)")
            return
        self.put(config, "notify_fifo", node.args[0], node, "")
        self.put(config, "notify_fifo_format", "keepalived", node, "")
        self.note(node, "carried over with notify_fifo_format: keepalived (keepalived's line format)")
        if len(node.args) > 1:
            self.skip(node, UNSUPPORTED, "FIFO owner %r: hanode creates the FIFO owned by root"
                      % " ".join(node.args[1:]), "notify_fifo " + " ".join(node.args[1:]))

    # -- vrrp_script

    def _vrrp_script(self, block: Node, config: Dict[str, Any]) -> None:
        name = self.named(block, "vrrp_script")
        if name is None:
            return
        if name in self.scripts_defined:
            self.skip(block, INVALID, "vrrp_script %s is already defined on line %d (keepalived refuses the "
                      "duplicate)" % (name, self.scripts_defined[name].line), "vrrp_script " + name)
            return
        path = "vrrp_scripts." + name
        out = {}  # type: Dict[str, Any]
        for node in self.entries(block):
            kw = node.keyword
            if self.refused(node):
                continue
            if kw == "script":
                command = self.script(node, with_user=False)[0]
                if command is not None:
                    self.put(out, "script", command, node, path)
            elif kw in ("interval", "timeout"):
                value = self.number(node)
                if value is not None:
                    self.put(out, kw, value, node, path)
            elif kw in ("rise", "fall"):
                value = self.integer(node)
                if value is not None:
                    self.put(out, kw, value, node, path)
            elif kw == "weight":
                if node.args[1:2] == ["reverse"]:
                    self.skip(block, UNSUPPORTED, "weight %s reverse: hanode has no reverse weights, so the script "
                              "and its trackers are not carried over" % node.args[0], "vrrp_script " + name)
                    return
                value = self.integer(node)
                if value is not None:
                    self.put(out, "weight", value, node, path)
            elif kw == "user":
                if node.args:
                    self.put(out, "user", " ".join(node.args[:2]), node, path)
                else:
                    self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)")
            elif kw == "init_fail":
                self.put(out, "init_fail", True, node, path)
            else:
                self.unknown(node, "vrrp_script")
        if "script" not in out:
            self.skip(block, INVALID, "has no script (keepalived removes it)", "vrrp_script " + name)
            return
        self.scripts_defined[name] = block
        config.setdefault("vrrp_scripts", {})[name] = out
        self.record(path, block, "vrrp_script " + name)

    def named(self, block: Node, what: str) -> Optional[str]:
        if len(block.args) != 1:
            self.skip(block, INVALID, "%s needs exactly one name (keepalived refuses it)" % what)
            return None
        if block.children is None:
            self.skip(block, INVALID, "needs a { } block (keepalived ignores it)", what + " " + block.args[0])
            return None
        return block.args[0]

    # -- vrrp_instance

    _INSTANCE_VALUES = {
        "interface": ("interface", "text"), "state": ("state", "text"),
        "virtual_router_id": ("virtual_router_id", "int"), "priority": ("priority", "int"),
        "advert_int": ("advert_int", "num"), "version": ("version", "int"),
        "preempt_delay": ("preempt_delay", "num"),
        "unicast_src_ip": ("unicast_src_ip", "text"), "mcast_src_ip": ("unicast_src_ip", "text"),
        "garp_master_delay": ("garp_master_delay", "num"), "garp_master_repeat": ("garp_master_repeat", "int"),
        "garp_master_refresh": ("garp_master_refresh", "num"),
        "garp_master_refresh_repeat": ("garp_master_refresh_repeat", "int"),
        "garp_interval": ("garp_interval", "num"),
        "nopreempt": ("nopreempt", "flag"), "dont_track_primary": ("dont_track_primary", "flag"),
        "smtp_alert": ("smtp_alert", "flag"), "v3_checksum_as_v2": ("v3_checksum_as_v2", "flag"),
    }
    _NOTIFY = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")

    def _vrrp_instance(self, block: Node, config: Dict[str, Any]) -> None:
        name = self.named(block, "vrrp_instance")
        if name is None:
            return
        if name in self.instances_defined:
            self.skip(block, INVALID, "vrrp_instance %s is already defined on line %d (keepalived refuses the "
                      "duplicate)" % (name, self.instances_defined[name].line), "vrrp_instance " + name)
            return
        path = "vrrp_instances." + name
        out = {}  # type: Dict[str, Any]
        for node in self.entries(block):
            if not self.refused(node):
                self._instance_keyword(node, out, path)
        for key, (value, node) in sorted(self.defaults.items()):
            if key not in out:
                self.put(out, key, value, node, path, node.keyword)
        if "version" not in out and ":" in (out.get("virtual_ipaddresses") or ["."])[0].split()[0]:
            out["version"] = 3
            self.record(_join(path, "version"), block, "vrrp_instance " + name)
            self.note(block, "IPv6 addresses and no version: keepalived runs VRRPv3 then; carried over as version: 3",
                      "vrrp_instance " + name)
        self.instances_defined[name] = block
        config.setdefault("vrrp_instances", {})[name] = _ordered_instance(out)
        self.record(path, block, "vrrp_instance " + name)

    def _instance_keyword(self, node: Node, out: Dict[str, Any], path: str) -> None:
        kw = node.keyword
        if kw in self._INSTANCE_VALUES:
            key, kind = self._INSTANCE_VALUES[kw]
            reader = {"text": self.text, "int": self.integer, "num": self.number, "flag": self.flag}[kind]
            value = reader(node)
            if key == "state" and value is not None and value.upper() not in ("MASTER", "BACKUP"):
                self.skip(node, INVALID, "%r is not MASTER or BACKUP (keepalived refuses it)" % value)
            elif value is not None:
                self.put(out, key, value.upper() if key == "state" else value, node, path)
        elif kw in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
            key = "virtual_ipaddresses" if kw == "virtual_ipaddress" else kw
            self._vips(node, out, _join(path, key), key)
        elif kw == "unicast_peer":
            self._peers(node, out, path)
        elif kw == "authentication":
            self._authentication(node, out, path)
        elif kw == "track_interface":
            self._tracked(node, out, path, "track_interfaces", script=False)
        elif kw == "track_script":
            self._tracked(node, out, path, "track_scripts", script=True)
        elif kw in self._NOTIFY:
            self._notify(node, out, path)
        elif kw in _SKIP_INSTANCE:
            self.skip(node, *_SKIP_INSTANCE[kw])
        else:
            self.unknown(node, "vrrp_instance")

    def _notify(self, node: Node, out: Dict[str, Any], path: str) -> None:
        command, user = self.script(node, with_user=True)
        if command is None:
            return
        self.put(out, node.keyword, command, node, path)
        if user:
            self.skip(node, UNSUPPORTED, "running it as %r: hanode runs notify scripts as script_user; the script "
                      "itself is carried over" % user, node.keyword + " " + user)

    _VIP_VALUES = ("dev", "label", "scope", "brd")
    _VIP_UNSUPPORTED_VALUES = ("peer", "track_group", "preferred_lft", "valid_lft")
    _VIP_UNSUPPORTED_FLAGS = ("home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track",
                              "use_tempaddr", "dadfailed")

    def _vips(self, block: Node, out: Dict[str, Any], path: str, key: str) -> None:
        vips = out.setdefault(key, [])  # type: List[str]
        seen = self.vip_seen.setdefault(path, {})  # type: Dict[Tuple[str, str], Node]
        for entry in self.entries(block):
            words = [entry.keyword] + entry.args
            label = "%s %s" % (block.keyword, " ".join(words))
            if self.refused(entry, label):
                continue
            text = self._vip_text(entry, words, label)
            if text is None:
                continue
            address = words[0].split("/")[0]
            dev = _word_after(words, "dev") or ""
            if (address, dev) in seen:
                self.skip(entry, NO_MEANING, "%s is already on line %d: the kernel keeps the first one (keepalived's "
                          "second add fails)" % (address, seen[(address, dev)].line), label)
                continue
            seen[(address, dev)] = entry
            self.record(_join(path, len(vips)), entry, label)
            vips.append(text)
        self.record(path, block)
        if not vips:
            del out[key]

    def _vip_text(self, entry: Node, words: List[str], label: str) -> Optional[str]:
        kept = [words[0]]
        i = 1
        while i < len(words):
            word = words[i]
            if word in self._VIP_VALUES or word in self._VIP_UNSUPPORTED_VALUES or word == "broadcast":
                if i + 1 >= len(words):
                    self.skip(entry, INVALID, "%r needs a value (keepalived rejects the address)" % word, label)
                    return None
                if word in self._VIP_UNSUPPORTED_VALUES:
                    self.skip(entry, UNSUPPORTED, "%s %s: not supported by hanode; the address is carried over "
                              "without it" % (word, words[i + 1]), label)
                else:
                    kept += ["brd" if word == "broadcast" else word, words[i + 1]]
                i += 2
            elif word in self._VIP_UNSUPPORTED_FLAGS:
                self.skip(entry, UNSUPPORTED, "%s: not supported by hanode; the address is carried over without it"
                          % word, label)
                i += 1
            else:
                self.skip(entry, INVALID, "unknown word %r (keepalived ignores it)" % word, label)
                i += 1
        return " ".join(kept)

    def _peers(self, block: Node, out: Dict[str, Any], path: str) -> None:
        peers = list(out.get("unicast_peers", []))
        for entry in self.entries(block):
            label = "unicast_peer " + " ".join([entry.keyword] + entry.args)
            if self.refused(entry, label):
                continue
            if entry.args:
                self.skip(entry, UNSUPPORTED, "%s: hanode has no per-peer TTL limits; the peer is carried over"
                          % " ".join(entry.args), label)
            self.record(_join(_join(path, "unicast_peers"), len(peers)), entry, label)
            peers.append(entry.keyword)
        if peers:
            out["unicast_peers"] = peers
            self.record(_join(path, "unicast_peers"), block)

    def _authentication(self, block: Node, out: Dict[str, Any], path: str) -> None:
        auth = {}  # type: Dict[str, Any]
        apath = _join(path, "authentication")
        for node in self.entries(block):
            if self.refused(node):
                continue
            if node.keyword == "auth_type":
                value = self.text(node)
                if value is not None and value.upper() == "AH":
                    self.skip(block, UNSUPPORTED, "auth_type AH: hanode does not speak IPsec AH (RFC 3768 removed it); "
                              "the instance is carried over without authentication")
                    return
                if value is not None:
                    self.put(auth, "auth_type", value.upper(), node, apath)
            elif node.keyword == "auth_pass":
                value = self.text(node)
                if value is not None:
                    self.put(auth, "auth_pass", value, node, apath)
            else:
                self.unknown(node, "authentication")
        if auth:
            self.put(out, "authentication", auth, block, path)

    def _tracked(self, block: Node, out: Dict[str, Any], path: str, key: str, script: bool) -> None:
        tracked = list(out.get(key, []))
        for entry in self.entries(block):
            label = "%s %s" % (block.keyword, " ".join([entry.keyword] + entry.args))
            if self.refused(entry, label):
                continue
            item = {"name": entry.keyword}  # type: Dict[str, Any]
            args = entry.args
            if args[:1] == ["weight"] and len(args) >= 2:
                if args[2:3] == ["reverse"]:
                    self.skip(entry, UNSUPPORTED, "weight %s reverse: hanode has no reverse weights; the tracker is "
                              "not carried over" % args[1], label)
                    continue
                weight = self.integer(entry, args[1])
                if weight is None:
                    continue
                item["weight"] = weight
                if len(args) > 2:
                    self.skip(entry, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(args[2:]), label)
            elif args:
                self.skip(entry, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(args), label)
            if script and entry.keyword not in self.scripts_defined:
                self._missing_script(entry, label)
                continue
            self.record(_join(_join(path, key), len(tracked)), entry, label)
            tracked.append(item)
        if tracked:
            out[key] = tracked
            self.record(_join(path, key), block)

    def _missing_script(self, entry: Node, label: str) -> None:
        defined = [n for n in self.nodes if n.keyword == "vrrp_script" and n.args[:1] == [entry.keyword]]
        if defined:
            self.skip(entry, UNSUPPORTED, "vrrp_script %s (line %d) was not carried over, so neither is this tracker"
                      % (entry.keyword, defined[0].line), label)
        else:
            self.skip(entry, INVALID, "no vrrp_script named %s (keepalived ignores the tracker)" % entry.keyword, label)

    # -- vrrp_sync_group

    def _vrrp_sync_group(self, block: Node, config: Dict[str, Any]) -> None:
        name = self.named(block, "vrrp_sync_group")
        if name is None:
            return
        path = "vrrp_sync_groups." + name
        groups = config.setdefault("vrrp_sync_groups", {})
        if name in groups:
            self.skip(block, INVALID, "vrrp_sync_group %s is defined twice (keepalived refuses the duplicate)" % name,
                      "vrrp_sync_group " + name)
            return
        out = {}  # type: Dict[str, Any]
        for node in self.entries(block):
            if self.refused(node):
                continue
            if node.keyword == "group":
                self._members(node, out, path)
            elif node.keyword in self._NOTIFY:
                self._notify(node, out, path)
            elif node.keyword == "smtp_alert":
                value = self.flag(node)
                if value is not None:
                    self.put(out, "smtp_alert", value, node, path)
            elif node.keyword in _SKIP_SYNC_GROUP:
                self.skip(node, *_SKIP_SYNC_GROUP[node.keyword])
            else:
                self.unknown(node, "vrrp_sync_group")
        if not out.get("group"):
            self.skip(block, INVALID, "has no member instance (keepalived removes it)", "vrrp_sync_group " + name)
            if not groups:
                del config["vrrp_sync_groups"]
            return
        groups[name] = out
        self.record(path, block, "vrrp_sync_group " + name)

    def _members(self, block: Node, out: Dict[str, Any], path: str) -> None:
        members = list(out.get("group", []))
        for entry in self.entries(block):
            label = "group " + " ".join([entry.keyword] + entry.args)
            if self.refused(entry, label):
                continue
            for member in [entry.keyword] + entry.args:
                if member in self.instances_defined:
                    self.record(_join(_join(path, "group"), len(members)), entry, label)
                    members.append(member)
                elif any(n.keyword == "vrrp_instance" and n.args[:1] == [member] for n in self.nodes):
                    self.skip(entry, UNSUPPORTED, "vrrp_instance %s was not carried over, so it is not a member"
                              % member, "group " + member)
                else:
                    self.skip(entry, INVALID, "no vrrp_instance named %s (keepalived ignores it)" % member,
                              "group " + member)
        if members:
            out["group"] = members
            self.record(_join(path, "group"), block)

    # -- virtual_server

    _VS_VALUES = {
        "delay_loop": "num", "lb_algo": "text", "lvs_sched": "text", "lb_kind": "word", "lvs_method": "word",
        "persistence_timeout": "int", "persistence_granularity": "text", "protocol": "text", "quorum": "int",
        "hysteresis": "int", "virtualhost": "text", "retry": "int", "delay_before_retry": "num", "warmup": "num",
        "connect_timeout": "num", "inhibit_on_failure": "flag", "alpha": "flag", "omega": "flag", "ops": "flag",
        "smtp_alert": "flag",
    }
    _VS_ALIASES = {"lvs_sched": "lb_algo", "lvs_method": "lb_kind"}

    def _virtual_server(self, block: Node, config: Dict[str, Any]) -> None:
        label = "virtual_server " + " ".join(block.args)
        if block.children is None:
            self.skip(block, INVALID, "needs a { } block (keepalived ignores it)", label)
            return
        servers = config.setdefault("virtual_servers", [])
        path = "virtual_servers[%d]" % len(servers)
        out = self._service_address(block, label)
        if out is None:
            if not servers:
                del config["virtual_servers"]
            return
        self.record(path, block, label)
        for field in out:
            self.record(_join(path, field), block, label)
        real_servers = []  # type: List[Dict[str, Any]]
        for node in block.children:
            if self.refused(node):
                continue
            self._vs_keyword(node, out, path, real_servers)
        if "protocol" not in out and "address" in out:
            out["protocol"] = "UDP"
            self.record(_join(path, "protocol"), block, label)
            self.note(block, "no protocol given: keepalived 2.2 uses UDP then ('no protocol set - defaulting to "
                      "UDP'); carried over as protocol: UDP", label)
        inhibit = self.sorry_inhibit.pop(path, None)
        if inhibit is not None and "sorry_server" in out:
            out["sorry_server"]["inhibit"] = True
            self.record(_join(path, "sorry_server.inhibit"), inhibit)
        elif inhibit is not None:
            self.skip(inhibit, NO_MEANING, "this virtual_server has no sorry_server")
        if not real_servers:
            for field in [f for f in self.provenance if f == path or f.startswith(path + ".")]:
                del self.provenance[field]
            self.skip(block, INVALID, "has no real_server: keepalived ignores it ('has no real servers - "
                                      "ignoring')", label)
            if not servers:
                del config["virtual_servers"]
            return
        out["real_servers"] = real_servers
        self._as_keepalived_loads(out, path)
        self._checker_defaults(block, out, path)
        servers.append(_ordered_service(out))

    def _source(self, field: str) -> Tuple[Node, str]:
        """The keyword a field came from (the last one recorded), else the one its parent came from."""
        while field not in self.provenance and "." in field:
            field = field.rsplit(".", 1)[0]
        return self.provenance[field][-1]

    def _as_keepalived_loads(self, vs: Dict[str, Any], path: str) -> None:
        """What keepalived 2.2 changes in a virtual_server as it loads it (check_parser.c, check_data.c), written
        out so that hanode programs the same table; every change is a note (ops on TCP is an item)."""
        self._loaded_flags(vs, path)
        self._loaded_quorum(vs, path)
        if str(vs.get("lb_kind", "NAT")).upper() != "NAT":
            self._loaded_ports(vs, path)

    def _loaded_flags(self, vs: Dict[str, Any], path: str) -> None:
        if "ops" in vs and "address" in vs and str(vs.get("protocol")).upper() != "UDP":
            node, label = self._source(_join(path, "ops"))
            del self.provenance[_join(path, "ops")]
            self.skip(node, NO_MEANING, "one-packet scheduling needs UDP: keepalived ignores it for %s ('one packet "
                                        "scheduling requires UDP - resetting')" % vs.get("protocol"), label)
            del vs["ops"]
        if not vs.get("persistence_timeout") and (vs.get("port") == 0 or "persistence_granularity" in vs):
            why = ("a service on port 0 (all ports) must be persistent ('zero port only valid for persistent "
                   "services - setting')" if vs.get("port") == 0 else "with persistence_granularity")
            node, label = self._source(_join(path, "port" if vs.get("port") == 0 else "persistence_granularity"))
            self.note(node, "keepalived makes the service persistent for 360 s: %s; carried over as "
                            "persistence_timeout: 360" % why, label)
            vs["persistence_timeout"] = 360
            self.record(_join(path, "persistence_timeout"), node, label)

    def _loaded_quorum(self, vs: Dict[str, Any], path: str) -> None:
        total = sum(rs.get("weight", 1) for rs in vs["real_servers"])
        quorum = vs.get("quorum", 1)
        if quorum > total >= 1:   # total 0: keepalived's quorum 0 never comes up, as hanode's minimum of 1
            node, label = self._source(_join(path, "quorum"))
            self.note(node, "%d exceeds the total weight of the real servers, %d: keepalived lowers the quorum to "
                            "it ('reducing quorum to %d'); carried over as quorum: %d" % (quorum, total, total, total),
                      label)
            vs["quorum"] = quorum = total
        hysteresis = vs.get("hysteresis", 0)
        if hysteresis >= quorum >= 1:
            node, label = self._source(_join(path, "hysteresis"))
            self.note(node, "%d is not below the quorum, %d: keepalived sets it to %d ('setting hysteresis to %d'); "
                            "carried over as hysteresis: %d" % (hysteresis, quorum, quorum - 1, quorum - 1,
                                                                quorum - 1), label)
            vs["hysteresis"] = quorum - 1

    def _loaded_ports(self, vs: Dict[str, Any], path: str) -> None:
        """DR and TUN cannot change the destination port: keepalived gives the real servers and the sorry server
        the service's port (none for a fwmark service)."""
        entries = [(_join(path, "real_servers[%d]" % i), rs) for i, rs in enumerate(vs["real_servers"])]
        if "sorry_server" in vs:
            entries.append((_join(path, "sorry_server"), vs["sorry_server"]))
        for field, entry in entries:
            if "port" not in entry or entry["port"] == vs.get("port"):
                continue
            node, label = self._source(_join(field, "port"))
            if "fwmark" in vs:
                self.note(node, "port %d: a fwmark service forwarded by %s has none, keepalived clears it "
                                "('has port specified - clearing'); carried over without a port"
                          % (entry.pop("port"), vs["lb_kind"]), label)
            else:
                self.note(node, "port %d: %s forwarding does not change ports, keepalived uses the service's "
                                "('ports don't match - resetting'); carried over as port: %d"
                          % (entry["port"], vs["lb_kind"], vs["port"]), label)
                entry["port"] = vs["port"]

    # keepalived.conf(5): retry is 1 "unless specified below" (DNS_CHECK 3, MISC_CHECK 0); delay_before_retry is
    # 3 s for HTTP_GET and SSL_GET, delay_loop for DNS_CHECK and 1 s otherwise. The agent's defaults are 1 and 1 s
    # for every checker, so the ones that differ are written out.
    _CHECK_DEFAULTS = {"HTTP_GET": {"delay_before_retry": 3}, "SSL_GET": {"delay_before_retry": 3},
                       "DNS_CHECK": {"retry": 3, "delay_before_retry": "delay_loop"}, "MISC_CHECK": {"retry": 0}}

    def _checker_defaults(self, block: Node, vs: Dict[str, Any], path: str) -> None:
        for r, rs in enumerate(vs["real_servers"]):
            for c, check in enumerate(rs.get("checks", [])):
                made = []
                for key, value in sorted(self._CHECK_DEFAULTS.get(check["type"], {}).items()):
                    if key in check or key in rs or key in vs:
                        continue
                    if value == "delay_loop":
                        value = check.get("delay_loop", rs.get("delay_loop", vs.get("delay_loop", 60)))
                    check[key] = value
                    self.record("%s.real_servers[%d].checks[%d].%s" % (path, r, c, key), block)
                    made.append("%s %s" % (key, value))
                if made:
                    self.note(block, "%s of real_server %s: keepalived's defaults made explicit (%s)"
                              % (check["type"], rs["address"], ", ".join(made)), _label(block))

    def _service_address(self, block: Node, label: str) -> Optional[Dict[str, Any]]:
        args = block.args
        if args[:1] == ["group"]:
            self.skip(block, UNSUPPORTED, "virtual_server group: virtual server groups are not supported by hanode; "
                      "write one virtual_server per address", label)
            return None
        if args[:1] == ["fwmark"] and len(args) == 2:
            mark = _number_text(args[1], True)
            if mark is None:
                self.skip(block, INVALID, "fwmark %r is not a whole number" % args[1], label)
                return None
            return {"fwmark": mark}
        if len(args) in (1, 2) and _is_ip(args[0]):
            out = {"address": args[0]}  # type: Dict[str, Any]
            if len(args) == 2:
                port = _number_text(args[1], True)
                if port is None:
                    self.skip(block, INVALID, "port %r is not a whole number" % args[1], label)
                    return None
                out["port"] = port
            else:
                out["port"] = 0
            return out
        self.skip(block, INVALID, "needs an address and port, fwmark N or group NAME", label)
        return None

    def _vs_keyword(self, node: Node, out: Dict[str, Any], path: str, real_servers: List[Dict[str, Any]]) -> None:
        kw = node.keyword
        if kw == "persistence_timeout" and not node.args:
            self.note(node, "no value: keepalived uses 360 s; carried over as persistence_timeout: 360")
            self.put(out, kw, 360, node, path)
        elif kw in self._VS_VALUES:
            key = self._VS_ALIASES.get(kw, kw)
            value = self._value(node, self._VS_VALUES[kw])
            if value is not None and key == "lb_kind" and len(node.args) > 1:
                self.skip(node, UNSUPPORTED,
                          "tunnel options %r: hanode uses plain IPIP tunnels" % " ".join(node.args[1:]),
                          "lb_kind " + " ".join(node.args[1:]))
            if value is not None:
                if key == "protocol" and str(value).upper() == "SCTP":
                    self.skip(node, UNSUPPORTED, "SCTP services are not supported by hanode (TCP and UDP only)")
                    return
                self.put(out, key, value, node, path)
        elif kw == "sorry_server":
            self._sorry_server(node, out, path)
        elif kw == "sorry_server_inhibit":
            if self.flag(node):
                self.sorry_inhibit[path] = node
        elif kw in ("quorum_up", "quorum_down"):
            self._notify(node, out, path)
        elif kw == "real_server":
            self._real_server(node, out, path, real_servers)
        elif kw in _SKIP_VIRTUAL_SERVER:
            self.skip(node, *_SKIP_VIRTUAL_SERVER[kw])
        else:
            self.unknown(node, "virtual_server")

    def _value(self, node: Node, kind: str) -> Any:
        if kind == "word":  # the first word; the caller reports the others
            return node.args[0] if node.args else self.text(node)
        return {"text": self.text, "int": self.integer, "num": self.number, "flag": self.flag}[kind](node)

    def _sorry_server(self, node: Node, out: Dict[str, Any], path: str) -> None:
        if not node.args or len(node.args) > 2:
            self.skip(node, INVALID, "needs an address and an optional port")
            return
        sorry = {"address": node.args[0]}  # type: Dict[str, Any]
        if len(node.args) == 2:
            port = self.integer(node, node.args[1])
            if port:   # keepalived takes port 0 as none given
                sorry["port"] = port
        self.put(out, "sorry_server", sorry, node, path)

    # -- real_server and checkers

    _RS_VALUES = {"weight": "int", "delay_loop": "num", "retry": "int", "delay_before_retry": "num", "warmup": "num",
                  "connect_timeout": "num", "inhibit_on_failure": "flag", "alpha": "flag"}
    _CHECKS = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "PING_CHECK", "UDP_CHECK", "DNS_CHECK", "SMTP_CHECK")

    def _real_server(self, block: Node, vs: Dict[str, Any], vs_path: str, real_servers: List[Dict[str, Any]]) -> None:
        label = "real_server " + " ".join(block.args)
        if not block.args or len(block.args) > 2 or not _is_ip(block.args[0]):
            self.skip(block, INVALID, "needs an address and an optional port", label)
            return
        path = "%s.real_servers[%d]" % (vs_path, len(real_servers))
        out = {"address": block.args[0]}  # type: Dict[str, Any]
        if len(block.args) == 2:
            port = self.integer(block, block.args[1])
            if port is None:
                return
            if port:   # keepalived takes port 0 as none given
                out["port"] = port
        self.record(path, block, label)
        for field in out:
            self.record(_join(path, field), block, label)
        checks = []  # type: List[Dict[str, Any]]
        virtualhost = None  # type: Optional[Tuple[str, Node]]
        for node in block.children or []:
            if self.refused(node):
                continue
            kw = node.keyword
            if kw in self._RS_VALUES:
                value = self._value(node, self._RS_VALUES[kw])
                if value is not None:
                    self.put(out, kw, value, node, path)
            elif kw in ("notify_up", "notify_down"):
                self._notify(node, out, path)
            elif kw == "virtualhost":
                value = self.text(node)
                if value is not None:
                    virtualhost = (value, node)
            elif kw in self._CHECKS:
                self._check(node, path, checks)
            elif kw in _SKIP_REAL_SERVER:
                self.skip(node, *_SKIP_REAL_SERVER[kw])
            else:
                self.unknown(node, "real_server")
        if virtualhost is not None:
            self._push_virtualhost(virtualhost, checks, path)
        if checks:
            out["checks"] = checks
        real_servers.append(out)

    def _push_virtualhost(self, virtualhost: Tuple[str, Node], checks: List[Dict[str, Any]], path: str) -> None:
        value, node = virtualhost
        used = False
        for i, check in enumerate(checks):
            if check["type"] in ("HTTP_GET", "SSL_GET") and "virtualhost" not in check:
                check["virtualhost"] = value
                self.record("%s.checks[%d].virtualhost" % (path, i), node)
                used = True
        if not used:
            self.skip(node, NO_MEANING, "no HTTP_GET or SSL_GET check of this real server uses it")

    def _check(self, block: Node, rs_path: str, checks: List[Dict[str, Any]]) -> None:
        kind = block.keyword
        out = {"type": kind}  # type: Dict[str, Any]
        hosts = []  # type: List[Tuple[Node, Dict[str, Any]]]
        path = "%s.checks[%d]" % (rs_path, len(checks))
        urls = []  # type: List[Dict[str, Any]]
        sni = None  # type: Optional[Node]
        for node in block.children or []:
            if self.refused(node):
                continue
            kw = node.keyword
            if kw == "url" and kind in ("HTTP_GET", "SSL_GET"):
                url = self._url(node, "%s.urls[%d]" % (path, len(urls)))
                if url is not None:
                    urls.append(url)
            elif kw == "host" and kind == "SMTP_CHECK":
                hosts.append((node, {}))
            elif kw == "enable_sni" and kind == "SSL_GET":
                if self.flag(node):
                    sni = node
            elif not self._check_keyword(node, kind, out, path):
                self.unknown(node, kind)
        if urls:
            out["urls"] = urls
            self.record(_join(path, "urls"), block)
        if sni is not None:
            if "virtualhost" in out:
                self.put(out, "sni", out["virtualhost"], sni, path)
            else:
                self.skip(sni, UNSUPPORTED, "hanode sends the server name given as the check's virtualhost; set "
                          "virtualhost in the SSL_GET block")
        if not hosts:
            self.record(path, block, kind)
            checks.append(out)
            return
        for node, _host in hosts:
            hpath = "%s.checks[%d]" % (rs_path, len(checks))
            host = dict(out)
            for key in out:
                self.record(_join(hpath, key), block, kind)
            for entry in node.children or []:
                if not self.refused(entry) and not self._check_keyword(entry, "host", host, hpath):
                    self.unknown(entry, "SMTP_CHECK host")
            self.record(hpath, node, "SMTP_CHECK host")
            self.note(node, "carried over as its own SMTP_CHECK (hanode needs every check of a real server to pass, "
                            "as keepalived needs every host)", "SMTP_CHECK host")
            checks.append(host)

    _CHECK_VALUES = {
        "connect_ip": "text", "connect_port": "int", "bindto": "text", "bind_port": "int", "connect_timeout": "num",
        "retry": "int", "nb_get_retry": "int", "delay_before_retry": "num", "warmup": "num", "delay_loop": "num",
    }
    _KIND_VALUES = {
        "HTTP_GET": {"virtualhost": "text"}, "SSL_GET": {"virtualhost": "text"},
        "MISC_CHECK": {"misc_timeout": "num", "misc_dynamic": "flag"},
        "UDP_CHECK": {}, "DNS_CHECK": {"type": "text", "name": "text"},
        "SMTP_CHECK": {"helo_name": "text"}, "TCP_CHECK": {}, "PING_CHECK": {}, "host": {},
    }
    _RENAMED = {"nb_get_retry": "retry", "type": "dns_type", "name": "dns_name"}

    def _check_keyword(self, node: Node, kind: str, out: Dict[str, Any], path: str) -> bool:
        kw = node.keyword
        values = dict(self._CHECK_VALUES)
        values.update(self._KIND_VALUES.get(kind, {}))
        if kw in values:
            value = self._value(node, values[kw])
            if value is not None:
                if kw == "nb_get_retry":
                    self.note(node, "keepalived deprecated nb_get_retry; carried over as retry")
                self.put(out, self._RENAMED.get(kw, kw), value, node, path)
        elif kw == "misc_path" and kind == "MISC_CHECK":
            command = self.script(node, with_user=False)[0]
            if command is not None:
                self.put(out, "misc_path", command, node, path)
        elif kw == "user" and kind == "MISC_CHECK":
            if node.args:
                self.put(out, "user", " ".join(node.args[:2]), node, path)
            else:
                self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)")
        elif kw == "payload" and kind == "UDP_CHECK":
            self._hex(node, out, path, "payload")
        elif kw == "require_reply" and kind == "UDP_CHECK":
            if node.args:
                self._hex(node, out, path, "require_reply")
            else:
                self.put(out, "require_reply", True, node, path)
        elif kw in ("min_reply_length", "max_reply_length") and kind == "UDP_CHECK":
            value = self.integer(node)
            if value is not None:
                self.put(out, kw, value, node, path)
        elif kw == "http_protocol" and kind in ("HTTP_GET", "SSL_GET"):
            if node.args[:1] == ["1.0"]:
                self.skip(node, NO_MEANING, "HTTP/1.0 is what hanode sends (keepalived's default)")
            else:
                self.skip(node, UNSUPPORTED, "hanode sends HTTP/1.0 requests (keepalived's default) only")
        elif kw in _SKIP_CHECK:
            self.skip(node, *_SKIP_CHECK[kw])
        else:
            return False
        return True

    def _hex(self, node: Node, out: Dict[str, Any], path: str, key: str) -> None:
        """payload / require_reply: keepalived's hex string, as hanode's '0x...'."""
        text = "".join(node.args)
        try:
            bytes.fromhex(text)
        except ValueError:
            self.skip(node, INVALID, "%r is not hex digits (keepalived rejects it)" % text)
            return
        if not text:
            self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)")
            return
        self.put(out, key, "0x" + text.lower(), node, path)

    def _url(self, block: Node, path: str) -> Optional[Dict[str, Any]]:
        if self.refused(block):
            return None
        out = {}  # type: Dict[str, Any]
        for node in self.entries(block):
            if self.refused(node):
                continue
            kw = node.keyword
            if kw in ("path", "digest"):
                value = self.text(node)
                if value is not None:
                    self.put(out, kw, value, node, path)
            elif kw == "status_code":
                codes = self._status_codes(node)
                if codes is not None:
                    self.put(out, "status_code", codes, node, path)
            elif kw == "virtualhost":
                self.skip(node, UNSUPPORTED, "hanode sets virtualhost per check, not per url")
            elif kw.startswith("regex"):
                self.skip(node, UNSUPPORTED, "hanode matches URLs by status code and digest only")
            else:
                self.unknown(node, "url")
        self.record(path, block)
        return _ordered_keys(out, ("path", "status_code", "digest"))

    def _status_codes(self, node: Node) -> Any:
        if not node.args:
            self.skip(node, INVALID, "missing a value (keepalived refuses the whole configuration)")
            return None
        codes = []  # type: List[Any]
        for word in node.args:
            if re.match(r"^\d+$", word):
                codes.append(int(word))
            elif re.match(r"^\d+-\d+$", word):
                codes.append(word)
            else:
                self.skip(node, INVALID, "%r is not a status code or a range like 200-299" % word)
                return None
        return codes[0] if len(codes) == 1 else codes


def translate(parsed: Parsed, exclude: Optional[Dict[int, str]] = None) -> Translation:
    """The hanode agent config of a parsed keepalived.conf, with every keyword not carried over and why."""
    translator = _Translator(parsed, exclude)
    config = translator.run()
    items = sorted(translator.items, key=lambda i: (i.file, i.line))
    notes = sorted(translator.notes, key=lambda n: (n.file, n.line))
    return Translation(config, items, notes, translator.provenance)


def import_text(text: str, name: str = "keepalived.conf", config_id: Optional[str] = None) -> Dict[str, Any]:
    """One call for the Ansible filter: config, not_carried_over, warnings, complete (plain data).
    Raises KeepalivedParseError."""
    result = translate(parse_text(text, name, None, config_id))
    return {"config": result.config, "not_carried_over": [i.as_dict() for i in result.items],
            "warnings": [n.as_dict() for n in result.notes], "complete": result.complete}


# ----- helpers --------------------------------------------------------------------------------------------------

def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    return "%s.%s" % (path, key) if path else str(key)


def _label(node: Node) -> str:
    """How the report names a keyword: blocks with their name ('vrrp_instance VI_1'), others by keyword."""
    if node.children is not None and node.args:
        return "%s %s" % (node.keyword, " ".join(node.args))
    return node.keyword


def _descendants(node: Node) -> Iterator[Node]:
    for child in node.children or []:
        yield child
        yield from _descendants(child)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _word_after(words: List[str], key: str) -> Optional[str]:
    for i, word in enumerate(words[:-1]):
        if word == key:
            return words[i + 1]
    return None


def _ordered_keys(data: Dict[str, Any], first: Tuple[str, ...]) -> Dict[str, Any]:
    out = dict((k, data[k]) for k in first if k in data)
    out.update((k, v) for k, v in data.items() if k not in out)
    return out


_TOP_ORDER = ("router_id", "script_user", "enable_script_security", "notification_email", "notification_email_from",
              "smtp_server", "smtp_port", "smtp_connect_timeout", "smtp_helo_name", "smtp_alert", "notify_fifo",
              "notify_fifo_format", "vrrp_scripts", "vrrp_instances", "vrrp_sync_groups", "lb_backend",
              "virtual_servers")
_INSTANCE_ORDER = ("state", "interface", "virtual_router_id", "priority", "advert_int", "version", "nopreempt",
                   "preempt_delay", "unicast_src_ip", "unicast_peers", "authentication", "virtual_ipaddresses",
                   "virtual_ipaddress_excluded", "track_interfaces", "track_scripts", "dont_track_primary")
_SERVICE_ORDER = ("address", "port", "fwmark", "protocol", "lb_algo", "lb_kind", "persistence_timeout",
                  "persistence_granularity", "delay_loop")


def _ordered(config: Dict[str, Any]) -> Dict[str, Any]:
    return _ordered_keys(config, _TOP_ORDER)


def _ordered_instance(data: Dict[str, Any]) -> Dict[str, Any]:
    return _ordered_keys(data, _INSTANCE_ORDER)


def _ordered_service(data: Dict[str, Any]) -> Dict[str, Any]:
    out = _ordered_keys(data, _SERVICE_ORDER)
    if "real_servers" in out:
        out["real_servers"] = out.pop("real_servers")
    return out
