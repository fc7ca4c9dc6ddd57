"""vrrp_script (the trackers the instances name) and vrrp_sync_group (instances that change state together)."""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived import reasons as why
from hanode.migrate.keepalived.model import INVALID, UNSUPPORTED, Node
from hanode.migrate.keepalived.table import (Scope, Table, carried, not_carried_block,
                                             unsupported, value)
from hanode.migrate.keepalived.translator import Translator, join, notify
from hanode.migrate.keepalived.track_objects import weighted
from hanode.migrate.keepalived.vrrp import NOTIFY, tracked


def _script(tr: Translator, node: Node, scope: Scope) -> None:
    command = tr.script(node, with_user=False)[0]
    if command is not None:
        tr.put(scope.out, "script", command, node, scope.path)


def _weight(tr: Translator, node: Node, scope: Scope) -> None:
    weighted(tr, node, scope, node.args[0] if node.args else None)


def _user(tr: Translator, node: Node, scope: Scope) -> None:
    tr.user(node, scope.out, scope.path)


def _init_fail(tr: Translator, node: Node, scope: Scope) -> None:
    tr.put(scope.out, "init_fail", True, node, scope.path)


VRRP_SCRIPT = Table("vrrp_script", "vrrp_script", "vrrp_scripts.NAME", [
    carried("script", "script", _script, "one shell-quoted command line, as keepalived ran it"),
    value("interval", "num"),
    value("timeout", "num"),
    value("rise", "int"),
    value("fall", "int"),
    carried("weight", "weight", _weight, "with reverse as weight_reverse"),
    carried("user", "user", _user),
    carried("init_fail", "init_fail", _init_fail),
], note="a top-level `vrrp_script NAME { }` block")

BFD_INSTANCE = not_carried_block("bfd_instance", "bfd_instance", "BFD is not supported by hanode", [
    "source_ip", "neighbor_ip", "neighbour_ip", "min_rx", "min_tx", "idle_tx", "multiplier", "passive", "ttl",
    "hoplimit", "max_hops", "weight", "vrrp", "checker"], note="a top-level `bfd_instance NAME { }` block")


def translate_vrrp_script(tr: Translator, block: Node, config: dict[str, Any]) -> None:
    name = tr.new_name(block, "vrrp_script", tr.scripts_defined)
    if name is None:
        return
    path = "vrrp_scripts." + name
    out: dict[str, Any] = {}
    scope = Scope(out, path, block=block, name=name)
    tr.walk(VRRP_SCRIPT, tr.entries(block), scope)
    if scope.stop:
        return
    if "script" not in out:
        tr.skip(block, INVALID, "has no script (keepalived removes it)", "vrrp_script " + name)
        return
    tr.scripts_defined[name] = block
    config.setdefault("vrrp_scripts", {})[name] = out
    tr.record(path, block, "vrrp_script " + name)


# ----- vrrp_sync_group ----------------------------------------------------------------------------------------

def _members(tr: Translator, block: Node, scope: Scope) -> None:
    out, path = scope.out, scope.path
    members = list(out.get("group", []))
    for entry in tr.entries(block):
        label = "group " + " ".join([entry.keyword] + entry.args)
        if tr.refused(entry, label):
            continue
        for member in [entry.keyword] + entry.args:
            if member in tr.instances_defined:
                tr.record(join(join(path, "group"), len(members)), entry, label)
                members.append(member)
            elif any(n.keyword == "vrrp_instance" and n.args[:1] == [member] for n in tr.nodes):
                tr.skip(entry, UNSUPPORTED, "vrrp_instance %s was not carried over, so it is not a member"
                        % member, "group " + member)
            else:
                tr.skip(entry, INVALID, "no vrrp_instance named %s (keepalived ignores it)" % member,
                        "group " + member)
    if members:
        out["group"] = members
        tr.record(join(path, "group"), block)


def _tracking_weight(tr: Translator, node: Node, scope: Scope) -> None:
    tr.put(scope.out, "sync_group_tracking_weight", True, node, scope.path)
    if node.keyword == "global_tracking":
        tr.note(node, "keepalived's old name of sync_group_tracking_weight (it logs it as deprecated); carried over "
                      "as sync_group_tracking_weight: true")


VRRP_SYNC_GROUP = Table("vrrp_sync_group", "vrrp_sync_group", "vrrp_sync_groups.NAME", [
    carried("group", "group", _members, "the member instances that were carried over"),
    *[carried(keyword, keyword, notify, "not its user") for keyword in NOTIFY],
    value("smtp_alert", "flag"),
    carried("track_interface", "track_interfaces", tracked("track_interfaces"), "every member tracks them"),
    carried("track_script", "track_scripts", tracked("track_scripts"), "every member tracks them"),
    carried("track_process", "track_processes", tracked("track_processes"), "every member tracks them"),
    carried("track_file", "track_files", tracked("track_files"), "every member tracks them"),
    unsupported("track_bfd", why.TRACK_OTHER),
    carried("sync_group_tracking_weight", "sync_group_tracking_weight", _tracking_weight,
            "the members' own tracker weights count (without it they do not, as in keepalived)"),
    carried("global_tracking", "sync_group_tracking_weight", _tracking_weight,
            "keepalived's deprecated name of sync_group_tracking_weight"),
    value("notify_priority_changes", "flag"),
], note="a top-level `vrrp_sync_group NAME { }` block")


def translate_vrrp_sync_group(tr: Translator, block: Node, config: dict[str, Any]) -> None:
    name = tr.named(block, "vrrp_sync_group")
    if name is None:
        return
    path = "vrrp_sync_groups." + name
    groups = config.setdefault("vrrp_sync_groups", {})
    if name in groups:
        tr.skip(block, INVALID, "vrrp_sync_group %s is defined twice (keepalived refuses the duplicate)" % name,
                "vrrp_sync_group " + name)
        return
    out: dict[str, Any] = {}
    tr.walk(VRRP_SYNC_GROUP, tr.entries(block), Scope(out, path))
    if not out.get("group"):
        tr.skip(block, INVALID, "has no member instance (keepalived removes it)", "vrrp_sync_group " + name)
        if not groups:
            del config["vrrp_sync_groups"]
        return
    groups[name] = out
    tr.record(path, block, "vrrp_sync_group " + name)
