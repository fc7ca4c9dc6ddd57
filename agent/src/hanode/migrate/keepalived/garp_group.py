"""garp_group (keepalived's per-interface GARP / NA pacing) carried to garp_groups[], and the global intervals."""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived.model import INVALID, Node
from hanode.migrate.keepalived.table import Scope, Table, carried, value
from hanode.migrate.keepalived.translator import Translator, join


def _interfaces(tr: Translator, block: Node, scope: Scope) -> None:
    names = []
    for entry in tr.entries(block):
        for name in [entry.keyword] + entry.args:
            names.append(name)
        tr.record(join(scope.path, "interfaces"), entry, "interfaces " + " ".join([entry.keyword] + entry.args))
    if names:
        scope.out["interfaces"] = names


GARP_GROUP = Table("garp_group", "garp_group", "garp_groups[]", [
    value("garp_interval", "num"),
    value("gna_interval", "num"),
    value("interface", "text"),
    carried("interfaces", "interfaces", _interfaces, "one timeline for all of them"),
], note="a top-level `garp_group { }` block")


def translate_garp_group(tr: Translator, block: Node, config: dict[str, Any]) -> None:
    groups = config.setdefault("garp_groups", [])
    path = "garp_groups[%d]" % len(groups)
    out: dict[str, Any] = {}
    tr.walk(GARP_GROUP, tr.entries(block), Scope(out, path))
    if ("interface" in out) == ("interfaces" in out) or not ({"garp_interval", "gna_interval"} & set(out)):
        tr.skip(block, INVALID, "needs one of interface or interfaces and a garp_interval or gna_interval "
                "(keepalived drops the group)", "garp_group")
        if not groups:
            del config["garp_groups"]
        return
    groups.append(out)
    tr.record(path, block, "garp_group")
