"""vrrp_instance: the instance's values, its addresses, peers, authentication, trackers and notify scripts."""

from __future__ import annotations

from typing import Any

from hanode.migrate.keepalived import reasons as why
from hanode.migrate.keepalived.model import INVALID, NO_MEANING, UNSUPPORTED, Node
from hanode.migrate.keepalived.table import (CARRIED, Row, Scope, Table, carried, deprecated, foreign, no_meaning,
                                             not_carried_block, same_reason, unsupported, value)
from hanode.migrate.keepalived.translator import Translator, join, notify, ordered_keys, word_after
from hanode.migrate.keepalived.vrrp_net import INSTANCE_ROWS, finish_instance
from hanode.migrate.keepalived.vrrp_strict import INSTANCE_ROWS as STRICT_ROWS
from hanode.migrate.keepalived.vrrp_strict import finish_strict


def _state(tr: Translator, node: Node, scope: Scope) -> None:
    """keepalived's vrrp_state_handler: MASTER and BACKUP compared case-sensitively, anything else runs as BACKUP,
    and BACKUP after MASTER is ignored."""
    found = tr.text(node)
    if found is None:
        return
    if found == "BACKUP" and scope.out.get("state") == "MASTER":
        tr.skip(node, NO_MEANING, "state MASTER was given before: keepalived keeps it (\"state previously set as "
                "MASTER - ignoring BACKUP\")")
        return
    if found not in ("MASTER", "BACKUP"):
        tr.skip(node, INVALID, "%r is not MASTER or BACKUP (keepalived compares case-sensitively: \"unknown state, "
                "defaulting to BACKUP\"); carried over as state: BACKUP, as keepalived runs it" % found)
        found = "BACKUP"
    tr.put(scope.out, "state", found, node, scope.path)


# ----- virtual_ipaddress ---------------------------------------------------------------------------------------

_NOT_HERE = "not supported by hanode"

# the words after an address: kind "text" takes a value
VIP_OPTIONS = Table("virtual_ipaddress", "virtual_ipaddress", "", [
    Row("dev", CARRIED, "the address's dev", kind="text"),
    Row("label", CARRIED, "the address's label", kind="text"),
    Row("scope", CARRIED, "the address's scope", kind="text"),
    Row("brd", CARRIED, "the address's brd", kind="text"),
    Row("broadcast", CARRIED, "the address's brd", kind="text"),
    Row("use_vmac", CARRIED, "the address's use_vmac (a VMAC of its own on its dev)", kind="flag"),
    *[Row(word, UNSUPPORTED, _NOT_HERE, kind="text") for word in ("peer", "track_group", "preferred_lft", "valid_lft")],
    *same_reason(unsupported, _NOT_HERE, "home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin",
                 "no_track", "use_tempaddr", "dadfailed"),
], note="words after an address in virtual_ipaddress and virtual_ipaddress_excluded")


def _vips(tr: Translator, block: Node, scope: Scope) -> None:
    key = "virtual_ipaddresses" if block.keyword == "virtual_ipaddress" else block.keyword
    out, path = scope.out, join(scope.path, key)
    vips: list[str] = out.setdefault(key, [])
    seen = tr.vip_seen.setdefault(path, {})
    for entry in tr.entries(block):
        words = [entry.keyword] + entry.args
        label = "%s %s" % (block.keyword, " ".join(words))
        if tr.refused(entry, label):
            continue
        text = _vip_text(tr, entry, words, label)
        if text is None:
            continue
        address = words[0].split("/")[0]
        dev = word_after(words, "dev") or ""
        if (address, dev) in seen:
            tr.skip(entry, NO_MEANING, "%s is already on line %d: the kernel keeps the first one (keepalived's "
                    "second add fails)" % (address, seen[(address, dev)].line), label)
            continue
        seen[(address, dev)] = entry
        tr.record(join(path, len(vips)), entry, label)
        vips.append(text)
    tr.record(path, block)
    if not vips:
        del out[key]


def _vip_text(tr: Translator, entry: Node, words: list[str], label: str) -> str | None:
    kept = [words[0]]
    i = 1
    while i < len(words):
        word = words[i]
        row = VIP_OPTIONS.get(word)
        if row is None:
            tr.skip(entry, INVALID, "unknown word %r (keepalived ignores it)" % word, label)
            i += 1
        elif row.kind == "flag":
            kept.append(word)
            i += 1
        elif row.kind is None:
            tr.skip(entry, row.status, "%s: %s; the address is carried over without it" % (word, row.text), label)
            i += 1
        elif i + 1 >= len(words):
            tr.skip(entry, INVALID, "%r needs a value (keepalived rejects the address)" % word, label)
            return None
        else:
            if row.status == UNSUPPORTED:
                tr.skip(entry, UNSUPPORTED, "%s %s: %s; the address is carried over without it"
                        % (word, words[i + 1], row.text), label)
            else:
                kept += ["brd" if word == "broadcast" else word, words[i + 1]]
            i += 2
    return " ".join(kept)


# ----- unicast_peer, authentication, trackers -------------------------------------------------------------------

def _peers(tr: Translator, block: Node, scope: Scope) -> None:
    out, path = scope.out, scope.path
    peers = list(out.get("unicast_peers", []))
    for entry in tr.entries(block):
        label = "unicast_peer " + " ".join([entry.keyword] + entry.args)
        if tr.refused(entry, label):
            continue
        if entry.args:
            tr.skip(entry, UNSUPPORTED, "%s: hanode has no per-peer TTL limits; the peer is carried over"
                    % " ".join(entry.args), label)
        tr.record(join(join(path, "unicast_peers"), len(peers)), entry, label)
        peers.append(entry.keyword)
    if peers:
        out["unicast_peers"] = peers
        tr.record(join(path, "unicast_peers"), block)


def _auth_type(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.text(node)
    if found is not None:
        tr.put(scope.out, "auth_type", found.upper(), node, scope.path)


AUTHENTICATION = Table("authentication", "authentication", "vrrp_instances.NAME.authentication", [
    carried("auth_type", "auth_type", _auth_type, "PASS or AH (IPsec AH with HMAC-MD5-96, wire-compatible with "
            "keepalived's)"),
    value("auth_pass", "text"),
], note="inside vrrp_instance")


def _authentication(tr: Translator, block: Node, scope: Scope) -> None:
    auth: dict[str, Any] = {}
    inner = Scope(auth, join(scope.path, "authentication"), block=block)
    tr.walk(AUTHENTICATION, tr.entries(block), inner)
    if auth and "auth_pass" not in auth:
        tr.skip(block, NO_MEANING, "no password: keepalived ignores the authentication (\"Authentication specified "
                "but no password given\")")
    elif auth and not inner.stop:
        tr.put(scope.out, "authentication", auth, block, scope.path)


# the tracker kinds an instance or sync group names: which blocks define them, and where the translator keeps them
_TRACKED_BLOCKS = {"track_scripts": (("vrrp_script",), "scripts_defined"),
                   "track_processes": (("vrrp_track_process",), "processes_defined"),
                   "track_files": (("track_file", "vrrp_track_file"), "files_defined")}


def tracked(key: str):
    """track_interface / track_script / track_process / track_file of an instance or sync group."""
    def convert(tr: Translator, block: Node, scope: Scope) -> None:
        out, path = scope.out, scope.path
        tracked_items = list(out.get(key, []))
        blocks, attribute = _TRACKED_BLOCKS.get(key, ((), None))
        for entry in tr.entries(block):
            label = "%s %s" % (block.keyword, " ".join([entry.keyword] + entry.args))
            if tr.refused(entry, label):
                continue
            item = _tracker(tr, entry, label, interface=key == "track_interfaces")
            if item is None:
                continue
            if attribute and entry.keyword not in getattr(tr, attribute):
                _missing_tracker(tr, entry, label, blocks)
                continue
            tr.record(join(join(path, key), len(tracked_items)), entry, label)
            tracked_items.append(item)
        if tracked_items:
            out[key] = tracked_items
            tr.record(join(path, key), block)
    return convert


def _tracker(tr: Translator, entry: Node, label: str, interface: bool = False) -> dict[str, Any] | None:
    """`NAME [weight N [reverse|noreverse]]` (a track_interface takes reverse only; keepalived ignores noreverse
    there); None (reported) when it cannot be carried."""
    item: dict[str, Any] = {"name": entry.keyword}
    args = entry.args
    if args[:1] == ["weight"] and len(args) >= 2:
        weight = tr.integer(entry, args[1])
        if weight is None:
            return None
        item["weight"] = weight
        extra = args[2:]
        if extra[:1] == ["reverse"] or (extra[:1] == ["noreverse"] and not interface):
            item["weight_reverse"] = extra[0] == "reverse"
            extra = extra[1:]
        if extra:
            tr.skip(entry, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(extra), label)
    elif args:
        tr.skip(entry, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(args), label)
    return item


def _missing_tracker(tr: Translator, entry: Node, label: str, blocks: tuple[str, ...]) -> None:
    defined = [n for n in tr.nodes if n.keyword in blocks and n.args[:1] == [entry.keyword]]
    if defined:
        tr.skip(entry, UNSUPPORTED, "%s %s (line %d) was not carried over, so neither is this tracker"
                % (defined[0].keyword, entry.keyword, defined[0].line), label)
    else:
        tr.skip(entry, INVALID, "no %s named %s (keepalived ignores the tracker)" % (blocks[0], entry.keyword), label)


# ----- the instance -------------------------------------------------------------------------------------------

NOTIFY = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")

VRRP_INSTANCE = Table("vrrp_instance", "vrrp_instance", "vrrp_instances.NAME", [
    value("interface", "text"),
    carried("state", "state", _state, "MASTER or BACKUP", kind="text"),
    value("virtual_router_id", "int"),
    value("priority", "int"),
    value("advert_int", "num"),
    value("version", "int"),
    value("preempt_delay", "num"),
    value("unicast_src_ip", "text"),
    value("mcast_src_ip", "text", key="unicast_src_ip"),
    value("garp_master_delay", "num"),
    value("garp_master_repeat", "int"),
    value("garp_master_refresh", "num"),
    value("garp_master_refresh_repeat", "int"),
    foreign(no_meaning("garp_interval", "keepalived 2.2.7 has no garp_interval in vrrp_instance and ignores it "
                       "(vrrp_garp_interval in global_defs is carried)")),
    value("nopreempt", "flag"),
    value("dont_track_primary", "flag"),
    value("smtp_alert", "flag"),
    foreign(no_meaning("v3_checksum_as_v2", "keepalived 2.2.7 has no such keyword and ignores it")),
    carried("virtual_ipaddress", "virtual_ipaddresses", _vips),
    carried("virtual_ipaddress_excluded", "virtual_ipaddress_excluded", _vips),
    carried("unicast_peer", "unicast_peers", _peers, "no per-peer TTL limits"),
    carried("authentication", "authentication", _authentication),
    carried("track_interface", "track_interfaces", tracked("track_interfaces"), "weight N [reverse] as weight / weight_reverse"),
    carried("track_script", "track_scripts", tracked("track_scripts"), "weight N [reverse] as weight / weight_reverse"),
    carried("track_process", "track_processes", tracked("track_processes"), "weight N [reverse] as weight / weight_reverse"),
    carried("track_file", "track_files", tracked("track_files"), "weight N [reverse] as weight / weight_reverse"),
    *[carried(keyword, keyword, notify, "not its user") for keyword in NOTIFY],
    *INSTANCE_ROWS,
    unsupported("old_unicast_checksum", "hanode speaks only the current unicast checksum"),
    no_meaning("native_ipv6", "hanode takes the family from the instance's addresses"),
    unsupported("vrf", "VRF is not supported by hanode"),
    unsupported("track_bfd", why.TRACK_OTHER),
    unsupported("track_src_ip", why.NO_OPTION),
    foreign(no_meaning("no_virtual_ipaddress", "hanode accepts an instance without addresses (it only warns)")),
    deprecated("linkbeat_use_polling", "keepalived deprecated it; hanode follows links with netlink events"),
    *STRICT_ROWS,
    no_meaning("preempt", "preemption is the default"),
    no_meaning("debug", "use hanode run --log-level debug"),
    unsupported("notify_deleted", "hanode has no deleted notification"),
    carried("notify_master_rx_lower_pri", "notify_master_rx_lower_pri", notify, "not its user"),
    value("notify_priority_changes", "flag"),
    deprecated("lvs_sync_daemon_interface", "keepalived moved it to global_defs: write `lvs_sync_daemon <INTERFACE> "
               "<THIS_INSTANCE>` there, which is carried over"),
    value("garp_lower_prio_delay", "num"),
    value("garp_lower_prio_repeat", "int"),
    foreign(unsupported("gna_interval", why.GNA)),
    value("down_timer_adverts", "int"),
    foreign(unsupported("timer_expired_backup", why.NO_OPTION)),
    unsupported("higher_prio_send_advert", why.NO_OPTION),
    no_meaning("kernel_rx_buf_size", why.PROCESS),
], note="a `vrrp_instance NAME { }` block")

TRACK_GROUP = not_carried_block("track_group", "track_group", "tracking groups are not supported by hanode",
                                ["group"], note="a top-level `track_group NAME { }` block")

_INSTANCE_ORDER = ("state", "interface", "virtual_router_id", "priority", "advert_int", "version", "nopreempt",
                   "preempt_delay", "unicast_src_ip", "unicast_peers", "authentication", "virtual_ipaddresses",
                   "virtual_ipaddress_excluded", "track_interfaces", "track_scripts", "track_processes", "track_files",
                   "dont_track_primary")


def translate_vrrp_instance(tr: Translator, block: Node, config: dict[str, Any]) -> None:
    name = tr.new_name(block, "vrrp_instance", tr.instances_defined)
    if name is None:
        return
    path = "vrrp_instances." + name
    out: dict[str, Any] = {}
    tr.walk(VRRP_INSTANCE, tr.entries(block), Scope(out, path))
    finish_instance(tr, out, path)
    for key, (found, node) in sorted(tr.defaults.items()):
        if key not in out:
            tr.put(out, key, found, node, path, node.keyword)
    if "version" not in out and ":" in (out.get("virtual_ipaddresses") or ["."])[0].split()[0]:
        out["version"] = 3
        tr.record(join(path, "version"), block, "vrrp_instance " + name)
        tr.note(block, "IPv6 addresses and no version: keepalived runs VRRPv3 then; carried over as version: 3",
                "vrrp_instance " + name)
    finish_strict(tr, out, path, block, config)
    tr.instances_defined[name] = block
    config.setdefault("vrrp_instances", {})[name] = ordered_keys(out, _INSTANCE_ORDER)
    tr.record(path, block, "vrrp_instance " + name)
