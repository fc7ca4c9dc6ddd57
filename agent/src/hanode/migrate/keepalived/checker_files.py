"""The files of keepalived 2.2.7's checkers: FILE_CHECK, which names a track_file block, and the SSL block
(SSL_GET's client certificate, key, CA and password).

A FILE_CHECK names a top-level `track_file NAME { }` (or vrrp_track_file), carried as the agent's
`track_files.NAME` (track_objects.py); it becomes `{type: FILE_CHECK, track_file: NAME}` with its own
`weight` / `weight_reverse` when it gives one (keepalived's file_end_handler: else the track_file's weight).
The SSL block becomes the agent's top-level `ssl` mapping.
"""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived.model import INVALID, NO_MEANING, Node
from hanode.migrate.keepalived.table import Scope, Table, carried, unsupported, value
from hanode.migrate.keepalived.translator import Translator, join, number_text, ordered_keys

TRACK_FILE_KEYWORDS = ("track_file", "vrrp_track_file")
_WEIGHT_LIMIT = 2 ** 31 - 1


def _read_weight(tr: Translator, node: Node, limit: int) -> tuple[int, bool] | None:
    """`weight N [reverse|noreverse]`; None (reported) when keepalived ignores it."""
    if not node.args:
        tr.skip(node, INVALID, "no weight given (keepalived ignores it)")
        return None
    weight = number_text(node.args[0], True)
    if weight is None or not -limit <= weight <= limit:
        tr.skip(node, INVALID, "%r is not a weight within -%d..%d (keepalived ignores it)" % (node.args[0], limit, limit))
        return None
    if len(node.args) > 1 and node.args[1] not in ("reverse", "noreverse"):
        tr.skip(node, INVALID, "unknown weight option %r (keepalived ignores the weight)" % node.args[1])
        return None
    return weight, node.args[1:2] == ["reverse"]


def _fc_track_file(tr: Translator, node: Node, scope: Scope) -> None:
    if not node.args:
        tr.skip(node, INVALID, "no track_file name given")
        return
    name = node.args[0]
    if name not in tr.files_defined:
        known = any(block.keyword in TRACK_FILE_KEYWORDS and block.args[:1] == [name] for block in tr.nodes)
        tr.skip(node, INVALID, "track_file %s %s (keepalived ignores the FILE_CHECK)"
                % (name, "was not carried over, see its block" if known else "not found"))
        return
    tr.put(scope.out, "track_file", name, node, scope.path)


def _fc_weight(tr: Translator, node: Node, scope: Scope) -> None:
    weight = _read_weight(tr, node, _WEIGHT_LIMIT)
    if weight is not None:
        scope.weight = (weight, node)


FILE_CHECK = Table("FILE_CHECK", "FILE_CHECK", "virtual_servers[].real_servers[].checks[]", [
    carried("track_file", "track_file", _fc_track_file, "the track_files entry it names (a check of type FILE_CHECK)"),
    carried("weight", "weight", _fc_weight, "with reverse as weight_reverse; without it the track_file's weight"),
    unsupported("dynamic", "not in keepalived 2.2.7's parser (keepalived.conf(5) names it)"),
], note="a `FILE_CHECK { }` block of a real_server")


def translate_file_check(tr: Translator, block: Node, scope: Scope) -> None:
    """FILE_CHECK { track_file NAME; weight N [reverse] } of a real server -> a FILE_CHECK check naming the
    track_files entry (the agent reads its file, its weight when the check has none, and its init_file)."""
    path = "%s.checks[%d]" % (scope.path, len(scope.checks))
    out: dict[str, Any] = {"type": "FILE_CHECK"}
    inner = Scope(out, path, weight=None)
    tr.walk(FILE_CHECK, tr.entries(block), inner)
    if "track_file" not in out:
        if not any(child.keyword == "track_file" for child in block.children or []):
            tr.skip(block, INVALID, "FILE_CHECK has no track_file (keepalived ignores it)")
        return
    if inner.weight is not None:
        (weight, reverse), node = inner.weight
        tr.put(out, "weight", weight, node, path)
        if reverse:
            tr.put(out, "weight_reverse", True, node, path)
    tr.record(path, block, "FILE_CHECK")
    tr.record(join(path, "type"), block, "FILE_CHECK")
    scope.checks.append(out)


# ----- the SSL block -----------------------------------------------------------------------------------------------

def _ssl_key(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.text(node)
    if found is not None:
        scope.key = (found, node)


SSL = Table("SSL", "SSL", "ssl", [
    value("password", "text", text="decrypts the key"),
    value("ca", "text"),
    value("certificate", "text", text="the client certificate chain SSL_GET presents"),
    carried("key", "key", _ssl_key, "its private key (PEM)"),
], note="the top-level `SSL { }` block: every SSL_GET's client certificate (keepalived loads the CA but verifies "
        "no server, and nor does hanode)")


def translate_ssl(tr: Translator, block: Node, scope: Scope) -> None:
    out: dict[str, Any] = {}
    inner = Scope(out, "ssl", key=None)
    tr.walk(SSL, tr.entries(block), inner)
    if inner.key is not None:
        if "certificate" in out:
            tr.put(out, "key", inner.key[0], inner.key[1], "ssl")
        else:
            tr.skip(inner.key[1], NO_MEANING, "no certificate in the SSL block: a key alone is never presented")
    if out:
        tr.put(scope.out, "ssl", ordered_keys(out, ("certificate", "key", "password", "ca")), block, "")
