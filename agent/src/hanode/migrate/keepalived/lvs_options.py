"""The load-balancer keywords issue 13 added: `virtual_server_group` blocks, the forwarding method with its
tunnel options (virtual server, real server and sorry server), IPVS scheduler flags, thresholds and
lvs_timeouts, read as keepalived 2.2.7's check_parser.c / global_parser.c read them."""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived.model import INVALID, NO_MEANING, Node
from hanode.migrate.keepalived.table import Scope, Table, carried
from hanode.migrate.keepalived.translator import Translator, join, number_text

# ----- virtual_server_group -------------------------------------------------------------------------------------

_GROUP = "virtual_server_groups.NAME[]"
VIRTUAL_SERVER_GROUP = Table("virtual_server_group", "virtual_server_group", _GROUP, [
    carried("IP [PORT]", "address, port", None, "one kernel service (port 0 or none: all ports)"),
    carried("IP-END [PORT]", "address, port", None, "a range: END is the last octet (decimal, IPv4), the last 16 "
            "bits (hex, IPv6) or a whole address; one kernel service per address. A range keepalived cannot "
            "step (beyond the last octet / 16 bits) is refused by the agent (the import report names the line)"),
    carried("IP/MASK [PORT]", "address, port", None, "every address of the network, as keepalived"),
    carried("fwmark", "fwmark, family", None, "fwmark N [inet|inet6]"),
], note="a top-level `virtual_server_group NAME { }` block; its entries are addresses, ranges or networks with "
        "a port, and fwmarks")


def translate_virtual_server_group(tr: Translator, block: Node, config: dict[str, Any]) -> None:
    name = tr.named(block, "virtual_server_group")
    if name is None:
        return
    path = "virtual_server_groups.%s" % name
    entries: list[dict[str, Any]] = []
    for node in block.children or []:
        if tr.refused(node):
            continue
        entry = _group_entry(tr, node)
        if entry is not None:
            tr.record(join(path, len(entries)), node)
            entries.append(entry)
    if not entries:
        tr.skip(block, INVALID, "has no entries: keepalived removes it ('virtual server group %s has no entries - "
                "removing')" % name, "virtual_server_group " + name)
        return
    tr.put(config.setdefault("virtual_server_groups", {}), name, entries, block, "virtual_server_groups",
           "virtual_server_group " + name)


def _group_entry(tr: Translator, node: Node) -> dict[str, Any] | None:
    if node.children is not None:
        tr.skip(node, INVALID, "a virtual_server_group entry is one line, not a block")
        return None
    if node.keyword == "fwmark":
        mark = number_text(node.args[0], True) if node.args else None
        if mark is None or len(node.args) > 2 or (len(node.args) == 2 and node.args[1] not in ("inet", "inet6")):
            tr.skip(node, INVALID, "needs fwmark N [inet|inet6] (keepalived ignores the entry)")
            return None
        return {"fwmark": mark, **({"family": node.args[1]} if len(node.args) == 2 else {})}
    entry: dict[str, Any] = {"address": node.keyword}
    if node.args:
        port = number_text(node.args[0], True)
        if port is None or len(node.args) > 1:
            tr.skip(node, INVALID, "needs ADDRESS [PORT] (keepalived skips the entry)")
            return None
        entry["port"] = port
    return entry


def group_reference(tr: Translator, block: Node, config: dict[str, Any], label: str) -> dict[str, Any] | None:
    """`virtual_server group NAME`: the service names a group defined before (keepalived drops it otherwise)."""
    if len(block.args) != 2:
        tr.skip(block, INVALID, "needs group NAME", label)
        return None
    name = block.args[1]
    if name not in config.get("virtual_server_groups", {}):
        tr.skip(block, INVALID, "virtual_server_group %s is not defined (keepalived: 'Virtual server group %s "
                "not found - removing')" % (name, name), label)
        return None
    return {"group": name}


# ----- lb_kind / lvs_method / sorry_server_lvs_method with tunnel options ---------------------------------------

_CSUM = ("nocsum", "csum", "remcsum")


def forwarding(tr: Translator, node: Node, key: str = "lb_kind") -> dict[str, Any] | None:
    """`NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]` -> {key, tunnel_type, tunnel_port,
    tunnel_csum}; None (reported) where keepalived ignores the line."""
    if not node.args:
        tr.skip(node, INVALID, "needs NAT, DR or TUN")
        return None
    method, words, out = node.args[0], node.args[1:], {}
    if method not in ("NAT", "DR", "TUN"):
        tr.skip(node, INVALID, "unknown routing method %r (keepalived ignores it)" % method)
        return None
    out[key] = method
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("type", "port") and i + 1 < len(words):
            value = words[i + 1] if word == "type" else number_text(words[i + 1], True)
            if value is None or (word == "type" and value not in ("ipip", "gue", "gre")):
                tr.skip(node, INVALID, "bad tunnel %s %r (keepalived ignores the line)" % (word, words[i + 1]))
                return None
            out["tunnel_" + word] = value
            i += 2
        elif word in _CSUM:
            out["tunnel_csum"] = word
            i += 1
        else:
            tr.skip(node, INVALID, "invalid tunnel option %r (keepalived ignores the line)" % word)
            return None
    return _tunnel_checked(tr, node, out)


def _tunnel_checked(tr: Translator, node: Node, out: dict[str, Any]) -> dict[str, Any] | None:
    kind = out.get("tunnel_type", "ipip")
    if (kind == "gue") != ("tunnel_port" in out):
        tr.skip(node, INVALID, "gue tunnels require port, otherwise cannot have port (keepalived ignores the line)")
        return None
    if (kind == "ipip" and out.get("tunnel_csum", "nocsum") != "nocsum") or \
            (kind == "gre" and out.get("tunnel_csum") == "remcsum"):
        tr.skip(node, INVALID, "%s tunnels do not support that checksum option (keepalived ignores the line)" % kind)
        return None
    if out.get("tunnel_csum") == "nocsum":
        del out["tunnel_csum"]               # the default
    return out


def put_forwarding(tr: Translator, node: Node, out: dict[str, Any], path: str, key: str) -> None:
    found = forwarding(tr, node, key)
    if found is not None:
        for field in ("tunnel_type", "tunnel_port", "tunnel_csum"):
            out.pop(field, None)            # a later lvs_method replaces the earlier one's options
        for field, value in found.items():
            tr.put(out, field, value, node, path)


# ----- scheduler flags --------------------------------------------------------------------------------------------

_OWNER = {"sh-port": "sh", "sh-fallback": "sh", "mh-port": "mh", "mh-fallback": "mh"}


def sched_flag(tr: Translator, node: Node, scope: Scope) -> None:
    """flag-1..3 always; sh-*/mh-* only when lb_algo (as read so far: keepalived checks it at this line) is
    their scheduler."""
    owner = _OWNER.get(node.keyword)
    if owner is not None and scope.out.get("lb_algo") != owner:
        tr.skip(node, NO_MEANING, "keepalived ignores it: lb_algo is %s at this line ('%s only applies to %s "
                "scheduler - ignoring')" % (scope.out.get("lb_algo", "not set"), node.keyword, owner))
        return
    tr.put(scope.out, node.keyword, True, node, scope.path)


# ----- lvs_timeouts (global_defs) -------------------------------------------------------------------------------

def lvs_timeouts(tr: Translator, node: Node, scope: Scope) -> None:
    """`lvs_timeouts [tcp N] [tcpfin N] [udp N]` (seconds); 0 leaves the kernel's value, as keepalived does."""
    words, out, i = node.args, {}, 0
    while i < len(words):
        word = words[i]
        value = number_text(words[i + 1], True) if i + 1 < len(words) else None
        if word not in ("tcp", "tcpfin", "udp") or value is None:
            tr.skip(node, INVALID, "%r: keepalived ignores it" % " ".join(words[i:i + 2]), "lvs_timeouts " + word)
            i += 1 if word not in ("tcp", "tcpfin", "udp") else 2
            continue
        if value:
            out[word] = value
        i += 2
    if not out:
        tr.skip(node, INVALID, "no timeout to set (keepalived: 'lvs_timeouts requires at least one option')")
        return
    tr.put(scope.out, "lvs_timeouts", out, node, "")
