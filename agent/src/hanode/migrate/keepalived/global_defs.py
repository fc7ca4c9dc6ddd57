"""global_defs: the agent config's top-level settings, and the defaults global_defs gives every vrrp_instance."""

from __future__ import annotations

from hanode.migrate.keepalived import reasons as why
from hanode.migrate.keepalived.lvs_options import lvs_timeouts
from hanode.migrate.keepalived.model import INVALID, NO_MEANING, UNSUPPORTED, Node
from hanode.migrate.keepalived.table import (Row, Scope, Table, carried, deprecated, foreign, no_meaning,
                                             same_reason, unsupported, value)
from hanode.migrate.keepalived.translator import MISSING, Translator, notify
from hanode.migrate.keepalived.vrrp_net import GLOBAL_ROWS
from hanode.migrate.keepalived.vrrp_strict import GLOBAL_ROWS as STRICT_GLOBAL_ROWS


def _script_user(tr: Translator, node: Node, scope: Scope) -> None:
    if not node.args:
        tr.skip(node, INVALID, MISSING)
        return
    tr.put(scope.out, "script_user", " ".join(node.args[:2]), node, "")
    if len(node.args) > 2:
        tr.skip(node, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(node.args[2:]))


def _enabled(tr: Translator, node: Node, scope: Scope) -> None:
    tr.put(scope.out, node.keyword, True, node, "")


def _instance_default(key: str, kind: str):
    def convert(tr: Translator, node: Node, scope: Scope) -> None:
        del scope
        found = tr.read(node, kind)
        if found is not None:
            tr.defaults[key] = (found, node)
    return convert


def _default(keyword: str, key: str, kind: str = "num") -> Row:
    return carried(keyword, None, _instance_default(key, kind),
                   "the %s of every vrrp_instance that sets none" % key, kind=kind)


def _smtp_server(tr: Translator, node: Node, scope: Scope) -> None:
    if not node.args:
        tr.skip(node, INVALID, MISSING)
        return
    tr.put(scope.out, "smtp_server", node.args[0], node, "")
    if len(node.args) > 1:
        port = tr.integer(node, node.args[1])
        if port is not None:
            tr.put(scope.out, "smtp_port", port, node, "")
    if len(node.args) > 2:
        tr.skip(node, NO_MEANING, "extra words %r are ignored by keepalived" % " ".join(node.args[2:]))


def _notification_email(tr: Translator, block: Node, scope: Scope) -> None:
    config = scope.out
    emails = config.setdefault("notification_email", [])
    for entry in tr.entries(block):
        label = "notification_email " + " ".join([entry.keyword] + entry.args)
        if tr.refused(entry, label):
            continue
        for word in [entry.keyword] + entry.args:
            if "@" not in word:
                tr.skip(entry, UNSUPPORTED, "%r: hanode needs a full address (user@domain); keepalived handed it "
                        "to the SMTP server as it is" % word, "notification_email " + word)
                continue
            tr.record("notification_email[%d]" % len(emails), entry, label)
            emails.append(word)
    tr.record("notification_email", block)
    if not emails:
        del config["notification_email"]


def _notify_fifo(tr: Translator, node: Node, scope: Scope) -> None:
    if not node.args:
        tr.skip(node, INVALID, MISSING)
        return
    tr.put(scope.out, "notify_fifo", node.args[0], node, "")
    tr.put(scope.out, "notify_fifo_format", "keepalived", node, "")
    tr.note(node, "carried over with notify_fifo_format: keepalived (keepalived's line format)")
    if len(node.args) > 1:
        tr.skip(node, UNSUPPORTED, "FIFO owner %r: hanode creates the FIFO owned by root"
                % " ".join(node.args[1:]), "notify_fifo " + " ".join(node.args[1:]))


def _script(tr: Translator, node: Node, scope: Scope) -> None:
    """startup_script / shutdown_script: run as script_user (a user of its own is not carried)."""
    notify(tr, node, scope)


def _has(scope: Scope, keyword: str) -> bool:
    return any(node.keyword == keyword for node in scope.block.children or ())


def _fifo_script(tr: Translator, node: Node, scope: Scope) -> None:
    """notify_fifo_script, or vrrp_notify_fifo_script when vrrp_notify_fifo is the FIFO carried over."""
    fifo = "notify_fifo" if node.keyword == "notify_fifo_script" else "vrrp_notify_fifo"
    if not _has(scope, fifo) or (fifo == "vrrp_notify_fifo" and _has(scope, "notify_fifo")):
        tr.skip(node, UNSUPPORTED, "the reader of %s, which is not carried over (%s)" % (fifo, _FIFO_ONE))
        return
    command, user = tr.script(node, with_user=True)
    if command is None:
        return
    tr.put(scope.out, "notify_fifo_script", command, node, scope.path)
    if user:
        tr.skip(node, UNSUPPORTED, "running it as %r: hanode runs scripts as script_user; the script itself is "
                "carried over" % user, node.keyword + " " + user)


def _vrrp_fifo(tr: Translator, node: Node, scope: Scope) -> None:
    if _has(scope, "notify_fifo"):
        tr.skip(node, UNSUPPORTED, _FIFO_ONE + " (notify_fifo is carried over)")
        return
    _notify_fifo(tr, node, scope)


def _min_garp(tr: Translator, node: Node, scope: Scope) -> None:
    del scope
    if not tr.flag(node):
        return
    for key, found in (("garp_master_repeat", 1), ("garp_master_delay", 0)):
        tr.defaults.setdefault(key, (found, node))


_SYNC_OPTIONS = {"id": "id", "maxlen": "maxlen", "port": "port", "ttl": "ttl", "group": "group"}


def _lvs_sync_daemon(tr: Translator, node: Node, scope: Scope) -> None:
    """`lvs_sync_daemon <INTERFACE> [<VRRP_INSTANCE> | inst <NAME>] [id N] [maxlen N] [port N] [ttl N] [group ADDR]`,
    read as keepalived 2.2.7's lvs_syncd_handler reads it (an old-style SYNC_ID after the instance is taken,
    with keepalived's warning). With an instance, conntrack_sync follows the same one, so that a node whose
    backend is nftables keeps its connections too (conntrackd)."""
    if not node.args:
        tr.skip(node, INVALID, "lvs_sync_daemon requires interface (keepalived ignores it)")
        return
    sync: dict = {"interface": node.args[0]}
    words, i = node.args, 1
    while i < len(words):
        word, arg = words[i], words[i + 1] if i + 1 < len(words) else None
        if word in _SYNC_OPTIONS or word == "inst":
            if arg is None:
                tr.skip(node, INVALID, "no value for %s (keepalived ignores it)" % word, "lvs_sync_daemon " + word)
            elif word == "inst":
                sync["instance"] = arg
            elif word == "group":
                sync["group"] = arg
            else:
                found = tr.integer(node, arg)
                if found is not None:
                    sync[_SYNC_OPTIONS[word]] = found
            i += 2
            continue
        if i == 1:                            # keepalived's strvec slot 2 (slot 0 is the keyword)
            sync["instance"] = word
        elif i == 2 and word.isdigit():
            sync["id"] = int(word)
            tr.note(node, "an old-style sync id %s after the instance: carried over as id %s (keepalived asks for "
                    "the keyword \"id\")" % (word, word))
        else:
            tr.skip(node, INVALID, "unknown option %r (keepalived ignores it)" % word, "lvs_sync_daemon " + word)
        i += 1
    tr.put(scope.out, "lvs_sync_daemon", sync, node, "")
    if "instance" in sync:
        tr.put(scope.out, "conntrack_sync", {"interface": sync["interface"], "instance": sync["instance"]}, node, "")
        tr.note(node, "also carried over as conntrack_sync (conntrackd, the same interface and instance): the "
                "connections survive on a node whose backend is nftables too")


_SMTP_ALERTS = "hanode has one global smtp_alert (plus per instance, group and service)"
_IPVS_FWMARKS = "keepalived's nftables fwmarks for IPVS are not supported"
_FIFO_ONE = "hanode has one notify_fifo for every event"
_FIFO_READER = "hanode runs one FIFO reader script, notify_fifo_script"
_FLUSH_ON_STOP = "hanode removes its own services on stop unless lb_keep_on_stop"

GLOBAL_DEFS = Table("global_defs", "global_defs", "", [
    value("router_id", "text"),
    carried("script_user", "script_user", _script_user),
    carried("enable_script_security", "enable_script_security", _enabled),
    _default("default_interface", "interface", "text"),
    _default("vrrp_version", "version"),
    _default("vrrp_garp_master_delay", "garp_master_delay"),
    _default("vrrp_garp_master_repeat", "garp_master_repeat"),
    _default("vrrp_garp_master_refresh", "garp_master_refresh"),
    _default("vrrp_garp_master_refresh_repeat", "garp_master_refresh_repeat"),
    value("vrrp_garp_interval", "num", text="keepalived's pacing of GARPs on each interface"),
    value("notification_email_from", "text"),
    value("smtp_helo_name", "text"),
    value("smtp_connect_timeout", "num"),
    carried("smtp_server", "smtp_server", _smtp_server, "and smtp_port when a port is given"),
    carried("notification_email", "notification_email", _notification_email, "full addresses only"),
    value("smtp_alert", "flag"),
    carried("notify_fifo", "notify_fifo", _notify_fifo, "with notify_fifo_format: keepalived; no FIFO owner"),
    *STRICT_GLOBAL_ROWS,
    *GLOBAL_ROWS,
    *same_reason(no_meaning, why.FIREWALL, "vrrp_iptables", "vrrp_ipsets", "nftables", "nftables_priority",
                 "nftables_ifindex", "nftables_counters"),
    *same_reason(unsupported, _IPVS_FWMARKS, "nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark"),
    unsupported("vrrp_higher_prio_send_advert", why.NO_OPTION),
    _default("vrrp_garp_lower_prio_delay", "garp_lower_prio_delay"),
    _default("vrrp_garp_lower_prio_repeat", "garp_lower_prio_repeat"),
    value("vrrp_gna_interval", "num", text="keepalived's pacing of NAs on each interface"),
    carried("vrrp_min_garp", None, _min_garp, "garp_master_repeat 1 and garp_master_delay 0 for every vrrp_instance "
            "that sets neither (and no global_defs default sets them)", kind="flag"),
    value("vrrp_startup_delay", "num"),
    value("vrrp_down_timer_adverts", "int"),
    unsupported("fifo_write_vrrp_states_on_reload", "hanode writes no instance states to the FIFO on reload"),
    no_meaning("config_save_dir", "keepalived's own reload debugging (copies of the config and its state); hanode "
               "has no equivalent setting"),
    no_meaning("log_unknown_vrids", "hanode always counts foreign VRIDs (status: vrrp.foreign_vrids)"),
    value("vrrp_notify_priority_changes", "flag"),
    no_meaning("dynamic_interfaces", "superseded: hanode always works so (an instance whose interface is missing is "
               "in FAULT until it appears, and follows it being deleted and made again, whatever its type)"),
    unsupported("disable_local_igmp", why.NO_OPTION),
    carried("startup_script", "startup_script", _script, "not its user"),
    value("startup_script_timeout", "num"),
    carried("shutdown_script", "shutdown_script", _script, "not its user"),
    value("shutdown_script_timeout", "num"),
    unsupported("lvs_flush", "hanode reconciles only the services it owns and never flushes others"),
    unsupported("lvs_flush_on_stop", _FLUSH_ON_STOP),
    deprecated("lvs_flush_onstop", "keepalived renamed it lvs_flush_on_stop; " + _FLUSH_ON_STOP),
    carried("lvs_timeouts", "lvs_timeouts", lvs_timeouts, "{tcp, tcpfin, udp} in seconds: IPVS's own; on nftables conntrack "
            "timeout policies for the connections to the services (tcp: established; tcpfin: fin_wait, close_wait, "
            "last_ack, time_wait; udp: unreplied, replied)"),
    carried("lvs_sync_daemon", None, _lvs_sync_daemon, "lvs_sync_daemon: {interface, instance, id, maxlen, port, ttl, "
            "group} for IPVS, and conntrack_sync: {interface, instance} (conntrackd) for nftables"),
    *same_reason(unsupported, _SMTP_ALERTS, "smtp_alert_vrrp", "smtp_alert_checker"),
    *same_reason(unsupported, why.NO_OPTION, "no_email_faults", "no_checker_emails"),
    value("checker_log_all_failures", "flag"),
    unsupported("rs_init_notifies", why.NO_OPTION),
    carried("notify_fifo_script", "notify_fifo_script", _fifo_script, "the FIFO's path is its last argument; not "
            "its user"),
    carried("vrrp_notify_fifo", "notify_fifo", _vrrp_fifo, "when there is no notify_fifo (hanode's one FIFO also "
            "carries the load balancer's lines); no FIFO owner"),
    carried("vrrp_notify_fifo_script", "notify_fifo_script", _fifo_script, "with vrrp_notify_fifo carried over"),
    unsupported("lvs_notify_fifo", _FIFO_ONE),
    unsupported("lvs_notify_fifo_script", _FIFO_READER),
    *same_reason(no_meaning, why.PROCESS, "max_auto_priority", "min_auto_priority_delay"),
    *same_reason(unsupported, why.SNMP, "snmp_socket", "enable_traps", "enable_snmp_vrrp", "enable_snmp_rfc",
                 "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_snmp_checker", "enable_dbus", "dbus_service_name"),
    deprecated("enable_snmp_keepalived", "keepalived renamed it enable_snmp_vrrp; " + why.SNMP),
    deprecated("lvs_process_name", "keepalived renamed it checker_process_name; " + why.PROCESS),
    deprecated("vrrp_rlimit_rtime", "keepalived renamed it vrrp_rlimit_rttime; " + why.PROCESS),
    deprecated("checker_rlimit_rtime", "keepalived renamed it checker_rlimit_rttime; " + why.PROCESS),
    deprecated("bfd_rlimit_rtime", "keepalived renamed it bfd_rlimit_rttime; " + why.PROCESS),
    *same_reason(no_meaning, why.PROCESS,
                 "process_names", "process_name", "vrrp_process_name", "checker_process_name", "bfd_process_name",
                 "vrrp_priority", "checker_priority", "bfd_priority", "vrrp_no_swap", "checker_no_swap", "bfd_no_swap",
                 "vrrp_rt_priority", "checker_rt_priority", "bfd_rt_priority", "vrrp_cpu_affinity",
                 "checker_cpu_affinity", "bfd_cpu_affinity", "vrrp_rlimit_rttime", "checker_rlimit_rttime",
                 "bfd_rlimit_rttime", "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force",
                 "vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs",
                 "process_monitor_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
                 "lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force", "vrrp_rx_bufs_policy",
                 "vrrp_rx_bufs_multiplier", "umask", "random_seed", "reload_check_config", "reload_time_file",
                 "reload_repeat", "reload_file", "include_check", "tmp_config_directory", "data_use_instance"),
    foreign(no_meaning("linkbeat_use_polling", why.PROCESS)),
], note="the `global_defs { }` block")


def translate_global_defs(tr: Translator, block: Node, config: dict) -> None:
    scope = Scope(config, "", block=block)
    for node in tr.entries(block):
        if not tr.refused(node):
            tr.dispatch(GLOBAL_DEFS, node, scope)
    # keepalived: the lower priority GARP defaults are the global master ones (vrrp_garp_master_*, vrrp_min_garp)
    pairs = (("garp_lower_prio_repeat", "garp_master_repeat"), ("garp_lower_prio_delay", "garp_master_delay"))
    for lower, master in pairs:
        if lower not in tr.defaults and master in tr.defaults:
            tr.defaults[lower] = tr.defaults[master]
