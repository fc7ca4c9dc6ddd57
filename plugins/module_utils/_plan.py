# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""VRRP timers and the failover plan of a cluster (pure; RFC 3768 / RFC 5798 names kept verbatim).

Times are integer microseconds inside, milliseconds (rounded to 0.001) in what is returned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

US_PER_CS = 10000
US_PER_S = 1000000
OWNER_PRIORITY = 255


def advert_int_cs(advert_int, version):
    """advert_int in seconds (as users write it) -> centiseconds."""
    return int(round(float(advert_int) * 100))


def skew_time_us(priority, master_adver_int_cs, version):
    """v2: (256 - priority) / 256 s.  v3: ((256 - priority) * Master_Adver_Interval) / 256."""
    if version == 2:
        return (256 - priority) * US_PER_S // 256
    return (256 - priority) * master_adver_int_cs * US_PER_CS // 256


def master_down_interval_us(priority, master_adver_int_cs, version):
    """3 * Master_Adver_Interval + Skew_Time."""
    return 3 * master_adver_int_cs * US_PER_CS + skew_time_us(priority, master_adver_int_cs, version)


def effective_priority(priority, weights):
    """The priority while every tracker is healthy: positive weights add, negative ones only subtract on
    failure. The address owner (255) is never changed; others are clamped to 1..254."""
    if priority == OWNER_PRIORITY:
        return priority
    total = priority + sum(w for w in weights if w > 0)
    return max(1, min(254, total))


def _address_key(address):
    try:
        return int(ipaddress.ip_address(address))
    except ValueError:
        return -1


def elect(members):
    """The master among members [{'host', 'priority', 'address'}]: highest priority, then highest
    primary address (RFC 5798 6.4.3). None when nobody is left."""
    best = None
    for member in members:
        key = (member["priority"], _address_key(member.get("address") or ""))
        if best is None or key > best[0]:
            best = (key, member)
    return best[1]["host"] if best else None


def _ms(us):
    return round(us / 1000.0, 3)


def instance_plan(name, version, adv_cs, members):
    """Per node timers and who is master after each single node failure."""
    nodes = {}
    for m in members:
        nodes[m["host"]] = {
            "priority": m["configured_priority"],
            "effective_priority": m["priority"],
            "skew_time_ms": _ms(skew_time_us(m["priority"], adv_cs, version)),
            "master_down_interval_ms": _ms(master_down_interval_us(m["priority"], adv_cs, version)),
            "nopreempt": bool(m.get("nopreempt")),
        }
    master = elect(members)
    failover = {}
    for m in members:
        rest = [o for o in members if o["host"] != m["host"]]
        new_master = elect(rest) if m["host"] == master else master
        entry = {"new_master": new_master, "takeover_ms": None}
        if m["host"] == master and new_master is not None:
            entry["takeover_ms"] = nodes[new_master]["master_down_interval_ms"]
            entry["graceful_takeover_ms"] = nodes[new_master]["skew_time_ms"]
        failover[m["host"]] = entry
    return {"instance": name, "version": version, "advert_int_ms": adv_cs * 10, "master": master,
            "nodes": nodes, "after_failure_of": failover}


def plan_lines(plans):
    """A readable table of instance plans (for the play output)."""
    lines = []
    for plan in plans:
        lines.append("%s (%s): VRRPv%d, advert %g ms, master %s" % (
            plan["instance"], plan.get("cluster", ""), plan["version"], plan["advert_int_ms"], plan["master"]))
        lines.append("  %-16s %8s %9s %10s %12s  %s" % ("node", "priority", "effective", "skew ms", "down ms", "if this node fails"))
        for host, node in sorted(plan["nodes"].items(), key=lambda kv: -kv[1]["effective_priority"]):
            after = plan["after_failure_of"][host]
            if host == plan["master"]:
                what = "-> %s takes over within %s ms" % (after["new_master"], after["takeover_ms"]) if after["new_master"] else "-> nobody left"
            else:
                what = "%s stays master" % after["new_master"]
            lines.append("  %-16s %8d %9d %10.3f %12.3f  %s" % (
                host, node["priority"], node["effective_priority"], node["skew_time_ms"],
                node["master_down_interval_ms"], what))
    return lines


def masters_of(status):
    """Instance names an agent status document reports as MASTER."""
    instances = (status or {}).get("instances") or {}
    return sorted(name for name, inst in instances.items() if (inst or {}).get("state") == "MASTER")


def rollout_order(hosts, statuses):
    """Backups first, current masters last (fewest master instances first), inventory order kept
    otherwise: the VIP then moves at most once per master, after every backup already runs the change."""
    indexed = list(enumerate(hosts))
    return [ih[1] for ih in sorted(indexed, key=lambda ih: (len(masters_of(statuses.get(ih[1]))), ih[0]))]


def _vip_addresses(vips):
    out = set()
    for vip in vips or []:
        text = vip.get("address", "") if isinstance(vip, dict) else (u"%s" % vip).split(" ")[0]
        try:
            out.add(str(ipaddress.ip_interface(u"%s" % text).ip))
        except ValueError:
            out.add(u"%s" % text)
    return out


def advert_changes(configs, statuses):
    """Changes a rolling update cannot make seamlessly: while some members run the old config and others the new
    one, adverts whose address list, VRID, version (or v2 interval) differ are ignored (addr_list_err,
    advert_interval_err), so both sides become MASTER. -> ["host: variable: message", ...]"""
    problems = []
    for host in sorted(configs):
        running = ((statuses.get(host) or {}).get("instances")) or {}
        for name, new in ((configs[host] or {}).get("vrrp_instances") or {}).items():
            old = running.get(name)
            if not old:
                continue
            field = "ha_node_instances.%s." % name
            old_vips, new_vips = _vip_addresses(old.get("vips")), _vip_addresses(new.get("virtual_ipaddresses"))
            if old_vips != new_vips:
                problems.append("%s: %svirtual_ipaddresses: advertised addresses change from %s to %s" % (
                    host, field, ", ".join(sorted(old_vips)) or "none", ", ".join(sorted(new_vips)) or "none"))
            version = int(new.get("version") or 2)
            for key, old_value, new_value in (("virtual_router_id", old.get("virtual_router_id"), new.get("virtual_router_id")),
                                              ("version", old.get("version"), version)):
                if old_value is not None and new_value is not None and int(old_value) != int(new_value):
                    problems.append("%s: %s%s: changes from %s to %s" % (host, field, key, old_value, new_value))
            if version == 2 and old.get("advert_int") is not None and \
                    float(old["advert_int"]) != float(new.get("advert_int") or 1):
                problems.append("%s: %sadvert_int: VRRPv2 interval changes from %g to %g s" % (
                    host, field, float(old["advert_int"]), float(new.get("advert_int") or 1)))
    return problems
