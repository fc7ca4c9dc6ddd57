"""virtual_server: the service, its sorry server, and what keepalived changes in it as it loads it."""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived.lvs_options import (VIRTUAL_SERVER_GROUP, group_reference, put_forwarding,
                                                   sched_flag)
from hanode.migrate.keepalived.model import INVALID, NO_MEANING, Node
from hanode.migrate.keepalived.real_server import translate_real_server
from hanode.migrate.keepalived import reasons as why
from hanode.migrate.keepalived.table import (Scope, Table, carried, no_meaning, unsupported,
                                             value)
from hanode.migrate.keepalived.translator import Translator, is_ip, join, label_of, notify, number_text, ordered_keys


def _forwarding(tr: Translator, node: Node, scope: Scope) -> None:
    """lb_kind / lvs_method NAT|DR|TUN [tunnel options]."""
    put_forwarding(tr, node, scope.out, scope.path, "lb_kind")


def _sorry_forwarding(tr: Translator, node: Node, scope: Scope) -> None:
    """sorry_server_lvs_method: joined to the sorry server once the block is read (it may come first)."""
    scope.sorry_method = node


def _protocol(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.text(node)
    if found is None:
        return
    tr.put(scope.out, "protocol", found, node, scope.path)


def _persistence_timeout(tr: Translator, node: Node, scope: Scope) -> None:
    if node.args:
        found = tr.integer(node)
        if found is not None:
            tr.put(scope.out, "persistence_timeout", found, node, scope.path)
        return
    tr.note(node, "no value: keepalived uses 360 s; carried over as persistence_timeout: 360")
    tr.put(scope.out, "persistence_timeout", 360, node, scope.path)


def _sorry_server(tr: Translator, node: Node, scope: Scope) -> None:
    if not node.args or len(node.args) > 2:
        tr.skip(node, INVALID, "needs an address and an optional port")
        return
    sorry: dict[str, Any] = {"address": node.args[0]}
    if len(node.args) == 2:
        port = tr.integer(node, node.args[1])
        if port:   # keepalived takes port 0 as none given
            sorry["port"] = port
    tr.put(scope.out, "sorry_server", sorry, node, scope.path)


def _sorry_server_inhibit(tr: Translator, node: Node, scope: Scope) -> None:
    if tr.flag(node):
        tr.sorry_inhibit[scope.path] = node


def _ha_suspend(tr: Translator, node: Node, scope: Scope) -> None:
    """keepalived sets it whatever follows the keyword, and clears it for a fwmark service (or a group with
    fwmark entries): 'cannot use ha_suspend with fwmarks - clearing ha_suspend'."""
    if "fwmark" in scope.out or _group_has_fwmarks(tr, scope.out):
        tr.skip(node, NO_MEANING, "keepalived clears it for a service with fwmarks ('cannot use ha_suspend with "
                                  "fwmarks - clearing ha_suspend')")
        return
    if node.args:
        tr.note(node, "keepalived ignores %r after ha_suspend and sets it; carried over as ha_suspend: true"
                % " ".join(node.args))
    tr.put(scope.out, "ha_suspend", True, node, scope.path)


def _group_has_fwmarks(tr: Translator, out: dict[str, Any]) -> bool:
    if "group" not in out:
        return False
    node, _label = tr.source("virtual_server_groups.%s" % out["group"])
    return any(entry.keyword == "fwmark" for entry in node.children or [])


def _real_server(tr: Translator, node: Node, scope: Scope) -> None:
    translate_real_server(tr, node, scope.path, scope.real_servers)


_TUNNEL = "NAT, DR or TUN; TUN's options as tunnel_type, tunnel_port, tunnel_csum"
_FLAG = "IPVS scheduler flag (sh-/mh- ones only where lb_algo is sh/mh at that line, as keepalived)"

VIRTUAL_SERVER = Table("virtual_server", "virtual_server", "virtual_servers[]", [
    value("delay_loop", "num"),
    value("lb_algo", "text"),
    value("lvs_sched", "text", key="lb_algo"),
    carried("lb_kind", "lb_kind", _forwarding, _TUNNEL, kind="word"),
    carried("lvs_method", "lb_kind", _forwarding, _TUNNEL, kind="word"),
    carried("persistence_timeout", "persistence_timeout", _persistence_timeout, "360 when given no value",
            kind="int"),
    value("persistence_granularity", "text"),
    carried("protocol", "protocol", _protocol, "TCP, UDP or SCTP", kind="text"),
    value("quorum", "int"),
    value("hysteresis", "int"),
    value("virtualhost", "text"),
    value("retry", "int"),
    value("delay_before_retry", "num"),
    value("warmup", "num"),
    value("connect_timeout", "num"),
    value("inhibit_on_failure", "flag"),
    value("alpha", "flag"),
    value("omega", "flag"),
    value("ops", "flag"),
    value("smtp_alert", "flag"),
    carried("sorry_server", "sorry_server", _sorry_server),
    carried("sorry_server_inhibit", "sorry_server.inhibit", _sorry_server_inhibit),
    carried("quorum_up", "quorum_up", notify, "not its user"),
    carried("quorum_down", "quorum_down", notify, "not its user"),
    carried("real_server", "real_servers[]", _real_server),
    *[carried(flag, flag, sched_flag, _FLAG) for flag in ("flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback",
                                                          "mh-port", "mh-fallback")],
    no_meaning("hashed", "keepalived 2.2.7 ignores it ('hashed only applies to sh scheduler'): IPVS hashes every "
                         "service itself"),
    carried("ha_suspend", "ha_suspend", _ha_suspend, "true: the checks probe nothing while none of the service's "
            "addresses is on this host (the service stays; its servers keep their health), as in keepalived 2.2.7; "
            "dropped for a fwmark service, as keepalived clears it", kind="flag"),
    value("persistence_engine", "text"),
    unsupported("ip_family", "hanode takes the family from the addresses"),
    carried("sorry_server_lvs_method", "sorry_server.lvs_method", _sorry_forwarding, _TUNNEL),
    unsupported("weight", "hanode has no service weight"),
    unsupported("snmp_name", why.SNMP),
], note="a top-level `virtual_server ADDRESS PORT { }` or `virtual_server fwmark N { }` block")

__all__ = ["VIRTUAL_SERVER", "VIRTUAL_SERVER_GROUP", "translate_virtual_server"]


def _service_address(tr: Translator, block: Node, label: str, config: dict[str, Any]) -> dict[str, Any] | None:
    args = block.args
    if args[:1] == ["group"]:
        return group_reference(tr, block, config, label)
    if args[:1] == ["fwmark"] and len(args) == 2:
        mark = number_text(args[1], True)
        if mark is None:
            tr.skip(block, INVALID, "fwmark %r is not a whole number" % args[1], label)
            return None
        return {"fwmark": mark}
    if len(args) in (1, 2) and is_ip(args[0]):
        out: dict[str, Any] = {"address": args[0]}
        if len(args) == 2:
            port = number_text(args[1], True)
            if port is None:
                tr.skip(block, INVALID, "port %r is not a whole number" % args[1], label)
                return None
            out["port"] = port
        else:
            out["port"] = 0
        return out
    tr.skip(block, INVALID, "needs an address and port, fwmark N or group NAME", label)
    return None


def translate_virtual_server(tr: Translator, block: Node, config: dict[str, Any]) -> None:
    label = "virtual_server " + " ".join(block.args)
    if block.children is None:
        tr.skip(block, INVALID, "needs a { } block (keepalived ignores it)", label)
        return
    servers = config.setdefault("virtual_servers", [])
    path = "virtual_servers[%d]" % len(servers)
    out = _service_address(tr, block, label, config)
    if out is None:
        if not servers:
            del config["virtual_servers"]
        return
    tr.record(path, block, label)
    for field in out:
        tr.record(join(path, field), block, label)
    real_servers: list[dict[str, Any]] = []
    scope = Scope(out, path, real_servers=real_servers, sorry_method=None)
    tr.walk(VIRTUAL_SERVER, block.children, scope)
    _defaults(tr, block, out, path, label)
    _sorry_method(tr, scope)
    if not real_servers:
        for field in [f for f in tr.provenance if f == path or f.startswith(path + ".")]:
            del tr.provenance[field]
        tr.skip(block, INVALID, "has no real_server: keepalived ignores it ('has no real servers - ignoring')", label)
        if not servers:
            del config["virtual_servers"]
        return
    out["real_servers"] = real_servers
    _as_keepalived_loads(tr, out, path)
    _checker_defaults(tr, block, out, path)
    servers.append(_ordered_service(out))


def _defaults(tr: Translator, block: Node, out: dict[str, Any], path: str, label: str) -> None:
    """The protocol keepalived defaults to, and sorry_server_inhibit joined to its sorry_server."""
    if "protocol" not in out and ("address" in out or _group_has_addresses(tr, out)):
        out["protocol"] = "UDP"
        tr.record(join(path, "protocol"), block, label)
        tr.note(block, "no protocol given: keepalived 2.2 uses UDP then ('no protocol set - defaulting to UDP'); "
                "carried over as protocol: UDP", label)
    inhibit = tr.sorry_inhibit.pop(path, None)
    if inhibit is not None and "sorry_server" in out:
        out["sorry_server"]["inhibit"] = True
        tr.record(join(path, "sorry_server.inhibit"), inhibit)
    elif inhibit is not None:
        tr.skip(inhibit, NO_MEANING, "this virtual_server has no sorry_server")


def _group_has_addresses(tr: Translator, out: dict[str, Any]) -> bool:
    if "group" not in out:
        return False
    node, _label = tr.source("virtual_server_groups.%s" % out["group"])
    return any(entry.keyword != "fwmark" for entry in node.children or [])


def _sorry_method(tr: Translator, scope: Scope) -> None:
    node = scope.sorry_method
    if node is None:
        return
    if "sorry_server" not in scope.out:
        tr.skip(node, NO_MEANING, "this virtual_server has no sorry_server")
        return
    put_forwarding(tr, node, scope.out["sorry_server"], join(scope.path, "sorry_server"), "lvs_method")


# ----- what keepalived changes as it loads a virtual_server --------------------------------------------------

def _as_keepalived_loads(tr: Translator, vs: dict[str, Any], path: str) -> None:
    """What keepalived 2.2 changes in a virtual_server as it loads it (check_parser.c, check_data.c), written
    out so that hanode programs the same table; every change is a note (ops on TCP is an item)."""
    _loaded_flags(tr, vs, path)
    _loaded_quorum(tr, vs, path)
    if str(vs.get("protocol")).upper() == "SCTP":
        _sctp_check_ports(tr, vs, path)
    if "group" not in vs:         # for a group keepalived only warns; hanode gives DR/TUN the member's port
        _loaded_ports(tr, vs, path)


def _loaded_flags(tr: Translator, vs: dict[str, Any], path: str) -> None:
    if "ops" in vs and "address" in vs and str(vs.get("protocol")).upper() != "UDP":
        node, label = tr.source(join(path, "ops"))
        del tr.provenance[join(path, "ops")]
        tr.skip(node, NO_MEANING, "one-packet scheduling needs UDP: keepalived ignores it for %s ('one packet "
                                  "scheduling requires UDP - resetting')" % vs.get("protocol"), label)
        del vs["ops"]
    if not vs.get("persistence_timeout") and (vs.get("port") == 0 or "persistence_granularity" in vs):
        why = ("a service on port 0 (all ports) must be persistent ('zero port only valid for persistent "
               "services - setting')" if vs.get("port") == 0 else "with persistence_granularity")
        node, label = tr.source(join(path, "port" if vs.get("port") == 0 else "persistence_granularity"))
        tr.note(node, "keepalived makes the service persistent for 360 s: %s; carried over as "
                      "persistence_timeout: 360" % why, label)
        vs["persistence_timeout"] = 360
        tr.record(join(path, "persistence_timeout"), node, label)


_PORTLESS_ON_SCTP = ("PING_CHECK", "MISC_CHECK")


def _sctp_check_ports(tr: Translator, vs: dict[str, Any], path: str) -> None:
    """keepalived's TCP and UDP checks of an SCTP service probe the real server's port over TCP or UDP; hanode
    wants that port spelled out (connect_port), so it is written out, as keepalived probes it."""
    for i, rs in enumerate(vs["real_servers"]):
        for j, check in enumerate(rs.get("checks", [])):
            if check.get("type") in _PORTLESS_ON_SCTP or "connect_port" in check:
                continue
            port = rs.get("port", vs.get("port"))
            if not port:
                continue
            field = "%s.real_servers[%d].checks[%d]" % (path, i, j)
            node, label = tr.source(field)
            check["connect_port"] = port
            tr.record(join(field, "connect_port"), node, label)
            tr.note(node, "%s of an SCTP service: keepalived probes port %d over %s, not SCTP; carried over as "
                    "connect_port: %d" % (check["type"], port, "UDP" if check["type"] in ("UDP_CHECK", "DNS_CHECK")
                                          else "TCP", port), label)


def _loaded_quorum(tr: Translator, vs: dict[str, Any], path: str) -> None:
    total = sum(rs.get("weight", 1) for rs in vs["real_servers"])
    quorum = vs.get("quorum", 1)
    if quorum > total >= 1:   # total 0: keepalived's quorum 0 never comes up, as hanode's minimum of 1
        node, label = tr.source(join(path, "quorum"))
        tr.note(node, "%d exceeds the total weight of the real servers, %d: keepalived lowers the quorum to it "
                      "('reducing quorum to %d'); carried over as quorum: %d" % (quorum, total, total, total), label)
        vs["quorum"] = quorum = total
    hysteresis = vs.get("hysteresis", 0)
    if hysteresis >= quorum >= 1:
        node, label = tr.source(join(path, "hysteresis"))
        tr.note(node, "%d is not below the quorum, %d: keepalived sets it to %d ('setting hysteresis to %d'); "
                      "carried over as hysteresis: %d" % (hysteresis, quorum, quorum - 1, quorum - 1, quorum - 1),
                label)
        vs["hysteresis"] = quorum - 1


def _loaded_ports(tr: Translator, vs: dict[str, Any], path: str) -> None:
    """DR and TUN cannot change the destination port: keepalived gives the real servers and the sorry server
    the service's port (none for a fwmark service)."""
    entries = [(join(path, "real_servers[%d]" % i), rs) for i, rs in enumerate(vs["real_servers"])]
    if "sorry_server" in vs:
        entries.append((join(path, "sorry_server"), vs["sorry_server"]))
    for field, entry in entries:
        if "port" not in entry or entry["port"] == vs.get("port"):
            continue
        if entry.get("lvs_method", vs.get("lb_kind", "NAT")) == "NAT":
            continue
        node, label = tr.source(join(field, "port"))
        if "fwmark" in vs:
            port = entry.pop("port")
            tr.note(node, "port %d: a fwmark service forwarded by %s has none, keepalived clears it ('has port "
                          "specified - clearing'); carried over without a port" % (port, entry.get("lvs_method", vs.get("lb_kind"))),
                    label)
            _keep_check_port(tr, entry, field, port)
        else:
            tr.note(node, "port %d: %s forwarding does not change ports, keepalived uses the service's ('ports "
                          "don't match - resetting'); carried over as port: %d"
                    % (entry["port"], entry.get("lvs_method", vs.get("lb_kind")), vs["port"]), label)
            entry["port"] = vs["port"]


_PORTLESS_CHECKS = ("PING_CHECK", "MISC_CHECK", "FILE_CHECK")


def _keep_check_port(tr: Translator, rs: dict[str, Any], path: str, port: int) -> None:
    """keepalived's checkers copied the real server's address and port when they were read, before the port was
    cleared: they still probe it. Written out as connect_port."""
    for c, check in enumerate(rs.get("checks", [])):
        if check["type"] in _PORTLESS_CHECKS or "connect_port" in check:
            continue
        node, label = tr.source("%s.checks[%d]" % (path, c))
        check["connect_port"] = port
        tr.record("%s.checks[%d].connect_port" % (path, c), node, label)
        tr.note(node, "%s probes port %d, the real server's before keepalived cleared it; carried over as "
                      "connect_port: %d" % (check["type"], port, port), label)


# keepalived.conf(5): retry is 1 "unless specified below" (DNS_CHECK 3, MISC_CHECK 0); delay_before_retry is
# 3 s for HTTP_GET and SSL_GET, delay_loop for DNS_CHECK and 1 s otherwise. The agent's defaults are 1 and 1 s
# for every checker, so the ones that differ are written out.
_CHECK_DEFAULTS = {"HTTP_GET": {"delay_before_retry": 3}, "SSL_GET": {"delay_before_retry": 3},
                   "DNS_CHECK": {"retry": 3, "delay_before_retry": "delay_loop"}, "MISC_CHECK": {"retry": 0}}


def _checker_defaults(tr: Translator, block: Node, vs: dict[str, Any], path: str) -> None:
    for r, rs in enumerate(vs["real_servers"]):
        for c, check in enumerate(rs.get("checks", [])):
            made = []
            for key, default in sorted(_CHECK_DEFAULTS.get(check["type"], {}).items()):
                if key in check or key in rs or key in vs:
                    continue
                if default == "delay_loop":
                    default = check.get("delay_loop", rs.get("delay_loop", vs.get("delay_loop", 60)))
                check[key] = default
                tr.record("%s.real_servers[%d].checks[%d].%s" % (path, r, c, key), block)
                made.append("%s %s" % (key, default))
            if made:
                tr.note(block, "%s of real_server %s: keepalived's defaults made explicit (%s)"
                        % (check["type"], rs["address"], ", ".join(made)), label_of(block))


_SERVICE_ORDER = ("address", "port", "fwmark", "protocol", "lb_algo", "lb_kind", "persistence_timeout",
                  "persistence_granularity", "delay_loop")


def _ordered_service(data: dict[str, Any]) -> dict[str, Any]:
    out = ordered_keys(data, _SERVICE_ORDER)
    if "real_servers" in out:
        out["real_servers"] = out.pop("real_servers")
    return out
