"""The top level of keepalived.conf: which blocks are translated (in keepalived's order: a vrrp_instance needs
its vrrp_scripts, a sync group its instances), which are not carried, and the translation's entry point."""

from __future__ import annotations

from typing import Any, Callable

from hanode.migrate.keepalived import reasons as why
from hanode.migrate.keepalived import static
from hanode.migrate.keepalived.checker_files import translate_ssl
from hanode.migrate.keepalived.garp_group import translate_garp_group
from hanode.migrate.keepalived.global_defs import translate_global_defs
from hanode.migrate.keepalived.lvs_options import translate_virtual_server_group
from hanode.migrate.keepalived.model import INVALID, NO_MEANING, Node, Parsed, Translation
from hanode.migrate.keepalived.table import CARRIED, Scope, Table, carried, no_meaning, same_reason, unsupported
from hanode.migrate.keepalived.translator import Translator, ordered_keys
from hanode.migrate.keepalived.track_objects import translate_track_file, translate_track_process
from hanode.migrate.keepalived.trackers import translate_vrrp_script, translate_vrrp_sync_group
from hanode.migrate.keepalived.virtual_server import translate_virtual_server
from hanode.migrate.keepalived.vrrp import translate_vrrp_instance


def _block(translate: Callable[[Translator, Node, dict[str, Any]], None]):
    def convert(tr: Translator, node: Node, scope: Scope) -> None:
        translate(tr, node, scope.out)
    return convert


_LINKS = "hanode follows links with netlink events"


def _up_down_delays(tr: Translator, block: Node, scope: Scope) -> None:
    """`ifname down_delay [up_delay]` lines (seconds, at most 255)."""
    delays: dict[str, Any] = {}
    for entry in tr.entries(block):
        label = "interface_up_down_delays " + " ".join([entry.keyword] + entry.args)
        if tr.refused(entry, label):
            continue
        numbers = [tr.number(entry, word) for word in entry.args[:2]]
        if not entry.args or None in numbers:
            if not entry.args:
                tr.skip(entry, INVALID, "no down delay (keepalived ignores the line)", label)
            continue
        if not all(0 <= n <= 255 for n in numbers):
            tr.skip(entry, INVALID, "delays must be 0..255 s (keepalived ignores the line)", label)
            continue
        if len(entry.args) > 2:
            tr.skip(entry, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(entry.args[2:]), label)
        delays[entry.keyword] = numbers[0] if len(numbers) == 1 else numbers
        tr.record("interface_up_down_delays." + entry.keyword, entry, label)
    if delays:
        scope.out["interface_up_down_delays"] = delays
        tr.record("interface_up_down_delays", block)


# the carried blocks are translated in this order, each block kind over the whole file
TOP = Table("top level", "the top level", "", [
    carried("global_defs", None, _block(translate_global_defs), "top-level settings, defaults of every instance"),
    carried("static_ipaddress", "static_ipaddress", static.static_addresses,
            "one address per line, as virtual_ipaddress; a dev is written out"),
    carried("static_routes", "static_routes", static.static_routes, "one string per line, keepalived's words"),
    carried("static_rules", "static_rules", static.static_rules, "one string per line, keepalived's words"),
    carried("vrrp_script", "vrrp_scripts.NAME", _block(translate_vrrp_script)),
    carried("vrrp_track_process", "vrrp_track_processes.NAME", _block(translate_track_process)),
    carried("track_file", "track_files.NAME", _block(translate_track_file)),
    carried("vrrp_track_file", "track_files.NAME", _block(translate_track_file), "keepalived's deprecated name"),
    carried("vrrp_instance", "vrrp_instances.NAME", _block(translate_vrrp_instance)),
    carried("vrrp_sync_group", "vrrp_sync_groups.NAME", _block(translate_vrrp_sync_group)),
    carried("virtual_server_group", "virtual_server_groups.NAME", _block(translate_virtual_server_group),
            "its entries: addresses, ranges, networks and fwmarks"),
    carried("virtual_server", "virtual_servers[]", _block(translate_virtual_server), "and lb_backend: ipvs"),
    carried("SSL", "ssl", translate_ssl, "certificate, key, password and ca of every SSL_GET"),
    *same_reason(no_meaning, why.NAMESPACE, "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets"),
    no_meaning("instance", "hanode runs one agent per config file; give each its own control_socket"),
    *same_reason(no_meaning, why.PROCESS, "use_pid_dir", "child_wait_time"),
    *same_reason(no_meaning, _LINKS, "linkbeat_use_polling", "linkbeat_interfaces"),
    unsupported("track_group", "tracking groups are not supported by hanode"),
    carried("garp_group", "garp_groups[]", _block(translate_garp_group), "keepalived's per-interface pacing"),
    unsupported("bfd_instance", "BFD is not supported by hanode"),
    carried("interface_up_down_delays", "interface_up_down_delays", _up_down_delays,
            "interface: down delay, or [down, up]"),
], note="keywords outside any block")

_TOP_ORDER = ("router_id", "script_user", "enable_script_security", "notification_email", "notification_email_from",
              "smtp_server", "smtp_port", "smtp_connect_timeout", "smtp_helo_name", "smtp_alert", "notify_fifo",
              "notify_fifo_format", "vrrp_garp_interval", "vrrp_gna_interval", "garp_groups",
              "interface_up_down_delays", "static_ipaddress", "static_routes", "static_rules", "vrrp_scripts",
              "vrrp_track_processes", "track_files", "vrrp_instances", "vrrp_sync_groups", "lb_backend",
              "checker_log_all_failures", "ssl", "lvs_timeouts",
              "virtual_server_groups", "virtual_servers")


def _run(tr: Translator) -> dict[str, Any]:
    config: dict[str, Any] = {}
    scope = Scope(config, "")
    for row in TOP.rows.values():
        if row.status == CARRIED:
            for node in tr.nodes:
                if node.keyword == row.keyword and not tr.refused(node):
                    row.convert(tr, node, scope)
    for node in tr.nodes:
        row = TOP.get(node.keyword)
        if row is None or row.status != CARRIED:
            tr.dispatch(TOP, node, scope)
    if config.get("virtual_servers"):
        config["lb_backend"] = "ipvs"
        for i in range(len(config["virtual_servers"])):
            for node, label in tr.provenance.get("virtual_servers[%d]" % i, []):
                tr.record("lb_backend", node, label)
    return ordered_keys(config, _TOP_ORDER)


def translate(parsed: Parsed, exclude: dict[int, str] | None = None) -> Translation:
    """The hanode agent config of a parsed keepalived.conf, with every keyword not carried over and why.
    exclude (node.seq -> reason): keywords an earlier pass found the agent refuses (validate.py)."""
    translator = Translator(parsed, exclude)
    config = _run(translator)
    items = sorted(translator.items, key=lambda i: (i.file, i.line))
    notes = sorted(translator.notes, key=lambda n: (n.file, n.line))
    return Translation(config, items, notes, translator.provenance)
