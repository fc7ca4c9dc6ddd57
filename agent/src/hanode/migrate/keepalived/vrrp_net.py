"""The interface keywords of vrrp_instance and global_defs: virtual MAC (use_vmac, use_vmac_addr,
vmac_xmit_base, use_ipvlan, garp_extra_if), multicast groups and unicast peers (mcast_dst_ip, check_unicast_src,
unicast_fault_no_peer, unicast_ttl, vrrp_mcast_group4/6), and virtual_routes / virtual_rules: carried over under
their own names. Where keepalived 2.2.7 ignores a keyword in the company it keeps, the importer says so and leaves
it out (see finish_instance)."""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived.model import NO_MEANING, Node
from hanode.migrate.keepalived.table import Row, Scope, carried, value
from hanode.migrate.keepalived.translator import Translator, join

_ROUTE_GRAMMAR = "one string per line, keepalived's words (ip route / ip rule syntax)"


def _flag(key: str):
    """A keyword keepalived takes without a value (it ignores any words after it)."""
    def convert(tr: Translator, node: Node, scope: Scope) -> None:
        if node.args:
            tr.skip(node, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(node.args),
                    node.keyword + " " + " ".join(node.args))
        tr.put(scope.out, key, True, node, scope.path)
    return convert


def _words(key: str):
    """`KEYWORD [WORDS...]`: true without words, else the words as one string (the agent reads keepalived's)."""
    def convert(tr: Translator, node: Node, scope: Scope) -> None:
        tr.put(scope.out, key, " ".join(node.args) if node.args else True, node, scope.path)
    return convert


def _garp_extra_if(key: str):
    def convert(tr: Translator, node: Node, scope: Scope) -> None:
        words = node.args
        if words[:1] == ["all"] and len(words) == 2:
            number, found = tr.number(node, words[1]), "all " + words[1]
        else:
            number, found = (tr.number(node) if words else None), None
        if number is None:
            return
        tr.put(scope.out, key, found if found else number, node, scope.path)
        if node.keyword.endswith("vmac_garp_intvl"):
            tr.note(node, "keepalived's deprecated name of %s; carried over as %s" % (key, key))
    return convert


def _lines(key: str):
    """A block of route or rule lines: each line one string, with its own provenance (the agent's check names the
    line it refuses)."""
    def convert(tr: Translator, block: Node, scope: Scope) -> None:
        lines: list[str] = list(scope.out.get(key, []))
        path = join(scope.path, key)
        for entry in tr.entries(block):
            text = " ".join([entry.keyword] + entry.args)
            label = "%s %s" % (block.keyword, text)
            if tr.refused(entry, label):
                continue
            tr.record(join(path, len(lines)), entry, label)
            lines.append(text)
        if lines:
            scope.out[key] = lines
            tr.record(path, block)
    return convert


INSTANCE_ROWS: list[Row] = [
    carried("use_vmac", "use_vmac", _words("use_vmac"),
            "true, or keepalived's [NAME] [MAC] words; hanode also sets arp_announce=2 on the base interface "
            "(keepalived does not, and its base then asks for neighbours naming the VIP with the base's MAC, which "
            "moves clients off the virtual MAC)"),
    carried("use_vmac_addr", "use_vmac_addr", _flag("use_vmac_addr")),
    carried("vmac_xmit_base", "vmac_xmit_base", _flag("vmac_xmit_base")),
    carried("use_ipvlan", "use_ipvlan", _words("use_ipvlan"),
            "true, or [NAME] [ADDRESS/PREFIX] [bridge|private|vepa]; hanode check-config refuses it on a host whose "
            "kernel has no ipvlan"),
    carried("garp_extra_if", "garp_extra_if", _garp_extra_if("garp_extra_if"), "N or 'all N'"),
    carried("vmac_garp_intvl", "garp_extra_if", _garp_extra_if("garp_extra_if"),
            "keepalived's deprecated name of garp_extra_if"),
    value("mcast_dst_ip", "text", text="dropped, as keepalived drops it, when the instance has unicast peers"),
    carried("check_unicast_src", "check_unicast_src", _flag("check_unicast_src"),
            "a dropped advert is counted as addr_list_err (keepalived counts nothing) and moves no timer"),
    carried("unicast_fault_no_peer", "unicast_fault_no_peer", _flag("unicast_fault_no_peer")),
    value("unicast_ttl", "int", text="dropped without unicast peers (keepalived 2.2.7 then sends TTL 0)"),
    carried("virtual_routes", "virtual_routes", _lines("virtual_routes"),
            _ROUTE_GRAMMAR + "; a destination with host bits set, encap, vrf and MPLS words are refused by name (keepalived "
                             "logs and goes on); only routes the agent added are ever removed"),
    carried("virtual_rules", "virtual_rules", _lines("virtual_rules"), _ROUTE_GRAMMAR),
]

GLOBAL_ROWS: list[Row] = [
    value("vrrp_mcast_group4", "text"),
    value("vrrp_mcast_group6", "text"),
    carried("vrrp_check_unicast_src", "vrrp_check_unicast_src", _flag("vrrp_check_unicast_src"),
            "check_unicast_src for every unicast instance"),
    carried("vrrp_garp_extra_if", "vrrp_garp_extra_if", _garp_extra_if("vrrp_garp_extra_if"),
            "garp_extra_if of every instance that sets none"),
    carried("vrrp_vmac_garp_intvl", "vrrp_garp_extra_if", _garp_extra_if("vrrp_garp_extra_if"),
            "keepalived's deprecated name of vrrp_garp_extra_if"),
    value("vmac_prefix", "text"),
    value("vmac_addr_prefix", "text"),
]


def finish_instance(tr: Translator, out: dict[str, Any], path: str) -> None:
    """What keepalived 2.2.7 drops once the whole instance is read (vrrp_parser.c vrrp_end_handler, vrrp.c
    vrrp_complete_instance)."""
    unicast = bool(out.get("unicast_peers"))
    if unicast and "mcast_dst_ip" in out:
        _drop(tr, out, path, "mcast_dst_ip", "the instance has unicast peers: keepalived ignores mcast_dst_ip "
                                             "(\"multicast destination specified with unicast - ignoring\")")
    if not unicast and "unicast_ttl" in out:
        _drop(tr, out, path, "unicast_ttl", "no unicast peers: keepalived resets it (and then sends its multicast "
                                            "adverts with TTL 0, which every receiver drops); hanode keeps TTL 255")
    if "vmac_xmit_base" in out and "use_vmac" not in out:
        _drop(tr, out, path, "vmac_xmit_base", "without use_vmac keepalived ignores it (\"vmac_xmit_base is only "
                                               "valid with a vmac\")")


def _drop(tr: Translator, out: dict[str, Any], path: str, key: str, why: str) -> None:
    node, label = tr.source(join(path, key))
    tr.skip(node, NO_MEANING, why, label)
    tr.provenance.pop(join(path, key), None)
    del out[key]
