"""static_ipaddress, static_routes and static_rules: top-level blocks of lines, carried over line by line under
the same names (in place from the agent's start to its stop, as keepalived's)."""

from __future__ import annotations

from hanode.migrate.keepalived.model import Node
from hanode.migrate.keepalived.table import Scope
from hanode.migrate.keepalived.translator import Translator, word_after
from hanode.migrate.keepalived.vrrp import _vip_text
from hanode.migrate.keepalived.vrrp_net import _lines

KEEPALIVED_DEFAULT_INTERFACE = "eth0"


def static_addresses(tr: Translator, block: Node, scope: Scope) -> None:
    """Each address as virtual_ipaddress writes it; one without dev gets keepalived's default_interface."""
    out: list[str] = list(scope.out.get("static_ipaddress", []))
    for entry in tr.entries(block):
        words = [entry.keyword] + entry.args
        label = "static_ipaddress " + " ".join(words)
        if tr.refused(entry, label):
            continue
        text = _vip_text(tr, entry, words, label)
        if text is None:
            continue
        if word_after(words, "dev") is None:
            found = tr.defaults.get("interface")
            dev = found[0] if found else KEEPALIVED_DEFAULT_INTERFACE
            text += " dev " + dev
            tr.note(entry, "no dev: keepalived puts it on %s (%s); carried over with dev %s"
                    % (dev, "default_interface" if found else "its default_interface default", dev), label)
        tr.record("static_ipaddress[%d]" % len(out), entry, label)
        out.append(text)
    if out:
        scope.out["static_ipaddress"] = out
        tr.record("static_ipaddress", block)


static_routes = _lines("static_routes")
static_rules = _lines("static_rules")
