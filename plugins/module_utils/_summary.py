# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a person reads at a glance from an agent's status document: one line for the host, then one per
VRRP instance, sync group and virtual server (with its real servers that are not up), and a refused reload.
Pure and stdlib only (runs on managed hosts, Python 3.8)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _vips(inst):
    return ",".join(vip.split()[0] for vip in inst.get("vips") or []) or "no VIPs"


def _instance_line(name, inst):
    state = inst.get("state", "?")
    line = "%s %s%s vrid %s %s prio %s/%s %s" % (
        name, state, " (drained)" if inst.get("drained") else "", inst.get("virtual_router_id"),
        inst.get("interface", "?"), inst.get("effective_priority"), inst.get("priority"), _vips(inst))
    if inst.get("fault_reasons"):
        line += ": " + "; ".join(inst["fault_reasons"])
    elif state != "MASTER" and inst.get("master_address"):
        line += ", master %s" % inst["master_address"]
    return line


def _virtual_server_line(vs):
    line = "%s: %s" % (vs.get("name", "?"), vs.get("summary") or "")
    if vs.get("sorry_server_active"):
        line += ", on sorry server %s" % vs.get("sorry_server")
    not_up = ["%s %s%s" % (rs.get("name"), rs.get("health"), " (%s)" % rs["failure_reason"] if rs.get("failure_reason") else "")
              for rs in vs.get("real_servers") or [] if rs.get("health") != "up"]
    if not_up:
        line += "; " + ", ".join(not_up)
    return line


def _host_line(status):
    agent = status.get("agent") or {}
    instances = status.get("instances") or {}
    by_state = {}
    for name in sorted(instances):
        by_state.setdefault(instances[name].get("state", "?"), []).append(name)
    parts = ["%s %s" % (state, ",".join(names)) for state, names in sorted(by_state.items())] or ["no VRRP instances"]
    servers = status.get("virtual_servers") or []
    if servers:
        real = [rs for vs in servers for rs in vs.get("real_servers") or []]
        parts.append("%d virtual server%s, %d/%d real servers up" % (
            len(servers), "" if len(servers) == 1 else "s", sum(1 for rs in real if rs.get("health") == "up"), len(real)))
    stale = agent.get("stale") or []
    if stale:
        parts.append("STALE: %s restarting" % ", ".join(stale))
    return "%s (hanode %s): %s" % (agent.get("router_id", "?"), agent.get("version", "?"), "; ".join(parts))


def summary_lines(status):
    """The lines, host line first."""
    status = status or {}
    instances = status.get("instances") or {}
    lines = [_host_line(status)]
    lines += [_instance_line(name, instances[name]) for name in sorted(instances)]
    for name, group in sorted((status.get("sync_groups") or {}).items()):
        lines.append("sync group %s %s (%s)" % (name, group.get("state"), ", ".join(group.get("members") or [])))
    lines += [_virtual_server_line(vs) for vs in status.get("virtual_servers") or []]
    last = ((status.get("agent") or {}).get("config") or {}).get("last_reload")
    if last and not last.get("ok"):
        lines.append("last reload REFUSED: " + "; ".join(last.get("errors") or []))
    return lines
