# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster model: every node's variables in, every node's agent config, the cross-node problems and
the failover plan out (pure, stdlib only).

A node's model is what the role collects per host (see roles/ha_node/meta/argument_specs.yml)::

    {"cluster": "web", "router_id": "lb1", "control_socket": "/run/hanode/agent.sock",
     "priority": 150, "instances": {...}, "instance_overrides": {...}, "scripts": {...},
     "sync_groups": {...}, "virtual_servers": [...], "lb_backend": None, "agent_options": {...},
     "interfaces": {"eth0": ["198.51.100.11/24", "2001:db8:100::11/64"]},
     "host_caps": {"ipvs": {"available": True, "why": "..."}, "kernel": "6.1.0-18-amd64"}}

``host_caps`` is what the host can do, gathered on the host (the agent's hanode/lvs/caps.py run there by the
role's model step); ha_plan hands it to the agent's parser, which judges ``lb_backend: auto`` by it.

Problems name the host and the Ansible variable: ``lb2: ha_node_instances.VI_1.virtual_router_id: ...``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.hanode.fleet.plugins.module_utils import _plan

# Instance keys the model consumes; everything else goes to the agent unchanged.
MODEL_KEYS = ("unicast", "priority_order")
PRIORITY_ORDER_TOP = 200
PRIORITY_ORDER_STEP = 10
DEFAULT_PRIORITY = 100
DEFAULT_VERSION = 2
DEFAULT_ADVERT_INT = 1
RESERVED_TOP_LEVEL = ("router_id", "control_socket", "vrrp_scripts", "vrrp_instances", "vrrp_sync_groups",
                      "virtual_servers", "lb_backend")
AGENT_TO_VAR = (("vrrp_instances", "ha_node_instances"), ("vrrp_scripts", "ha_node_scripts"),
                ("vrrp_sync_groups", "ha_node_sync_groups"), ("virtual_servers", "ha_node_virtual_servers"),
                ("lb_backend", "ha_node_lb_backend"), ("router_id", "ha_node_router_id"),
                ("control_socket", "ha_node_control_socket"))


class Problems:
    """Errors and warnings, each naming a host and an Ansible variable path."""

    def __init__(self):
        self.errors = []
        self.warnings = []

    def error(self, host, field, message):
        line = "%s: %s: %s" % (host, field, message)
        if line not in self.errors:
            self.errors.append(line)

    def warn(self, host, field, message):
        line = "%s: %s: %s" % (host, field, message)
        if line not in self.warnings:
            self.warnings.append(line)


def agent_path_to_var(path):
    """vrrp_instances.VI_1.priority -> ha_node_instances.VI_1.priority (the variable a user edits)."""
    for agent, var in AGENT_TO_VAR:
        if path == agent or path.startswith(agent + ".") or path.startswith(agent + "["):
            return var + path[len(agent):]
    return "ha_node_agent_options." + path if path else "ha_node_agent_options"


# ----- interfaces and addresses -------------------------------------------------------------------

def interfaces_from_facts(facts):
    """ansible_facts (network subset) -> {ifname: ["198.51.100.11/24", ...]}."""
    out = {}
    for name in facts.get("interfaces") or []:
        info = facts.get(name.replace("-", "_").replace(":", "_").replace(".", "_")) or {}
        cidrs = []
        ipv4 = info.get("ipv4")
        for entry in ([ipv4] if isinstance(ipv4, dict) else []) + list(info.get("ipv4_secondaries") or []):
            if entry.get("address") and entry.get("netmask"):
                cidrs.append(str(ipaddress.ip_interface(u"%s/%s" % (entry["address"], entry["netmask"]))))
        for entry in info.get("ipv6") or []:
            if entry.get("address") and entry.get("prefix") is not None:
                cidrs.append(u"%s/%s" % (entry["address"].split("%")[0], entry["prefix"]))
        out[name] = cidrs
    return out


def _ifaces(cidrs):
    out = []
    for cidr in cidrs or []:
        try:
            out.append(ipaddress.ip_interface(u"%s" % cidr))
        except ValueError:
            continue
    return out


def _segment_networks(cidrs):
    """Networks that identify an L2 segment (link-local and loopback say nothing about the segment)."""
    return set(i.network for i in _ifaces(cidrs) if not (i.ip.is_link_local or i.ip.is_loopback))


def primary_address(cidrs, family):
    for iface in _ifaces(cidrs):
        if iface.version == family and not iface.ip.is_link_local and not iface.ip.is_loopback:
            return str(iface.ip)
    return None


def parse_vip(vip):
    """(ip_interface or None, dev or None) from keepalived's string form or the mapping form."""
    if isinstance(vip, dict):
        text = u"%s" % vip.get("address", "")
        if vip.get("prefix") is not None:
            text = u"%s/%s" % (text, vip["prefix"])
        dev = vip.get("dev")
    else:
        words = (u"%s" % vip).split()
        if not words:
            return None, None
        text = words[0]
        dev = words[words.index("dev") + 1] if "dev" in words[:-1] else None
    try:
        return ipaddress.ip_interface(text), dev
    except ValueError:
        return None, dev


def instance_family(instance):
    for vip in instance.get("virtual_ipaddresses") or []:
        iface = parse_vip(vip)[0]
        if iface is not None:
            return iface.version
    src = instance.get("unicast_src_ip")
    if src and ":" in u"%s" % src:
        return 6
    return 4


# ----- one node ---------------------------------------------------------------------------------------

class Member:
    """One node's view of one VRRP instance."""

    def __init__(self, host, name, spec, priority, priority_field):
        self.host = host
        self.name = name
        self.spec = spec
        self.priority = priority
        self.priority_field = priority_field
        self.source = None


def _as_int(value):
    try:
        if isinstance(value, bool):
            return None
        return int(value)
    except (TypeError, ValueError):
        return None


def _merged_instances(host, model, problems):
    instances = model.get("instances") or {}
    overrides = model.get("instance_overrides") or {}
    for name in overrides:
        if name not in instances:
            problems.error(host, "ha_node_instance_overrides.%s" % name,
                           "no instance %s in ha_node_instances (known: %s)" % (name, ", ".join(sorted(instances)) or "none"))
    merged = {}
    for name, body in instances.items():
        if not isinstance(body, dict):
            problems.error(host, "ha_node_instances.%s" % name, "must be a mapping of keepalived keywords")
            continue
        spec = dict(body)
        spec.update(overrides.get(name) or {})
        merged[name] = spec
    return merged, overrides


def _priority(host, name, spec, overrides, model, problems):
    own = overrides.get(name) or {}
    if "priority" in own:
        return _as_int(own["priority"]), "ha_node_instance_overrides.%s.priority" % name
    order = spec.get("priority_order")
    if order:
        order = [u"%s" % h for h in order]
        if host not in order:
            problems.error(host, "ha_node_instances.%s.priority_order" % name,
                           "this node is a member of %s but not in priority_order %s" % (name, order))
            return None, "ha_node_instances.%s.priority_order" % name
        return PRIORITY_ORDER_TOP - PRIORITY_ORDER_STEP * order.index(host), "ha_node_instances.%s.priority_order" % name
    if model.get("priority") is not None:
        return _as_int(model["priority"]), "ha_node_priority"
    if "priority" in spec:
        return _as_int(spec["priority"]), "ha_node_instances.%s.priority" % name
    return DEFAULT_PRIORITY, "ha_node_priority"


def node_members(host, model, problems):
    """{instance name: Member} for one host."""
    merged, overrides = _merged_instances(host, model, problems)
    members = {}
    for name, spec in merged.items():
        priority, field = _priority(host, name, spec, overrides, model, problems)
        members[name] = Member(host, name, spec, priority, field)
    return members


# ----- cross-node checks ----------------------------------------------------------------------------

def _norm_value(key, value):
    if key == "virtual_router_id":
        return _as_int(value)
    if key == "version":
        return _as_int(value if value is not None else DEFAULT_VERSION)
    if key == "advert_int":
        try:
            return round(float(value if value is not None else DEFAULT_ADVERT_INT), 3)
        except (TypeError, ValueError):
            return value
    if key == "virtual_ipaddresses":
        out = set()
        for vip in value or []:
            iface = parse_vip(vip)[0]
            out.add(str(iface) if iface is not None else u"%s" % vip)
        return tuple(sorted(out))
    if key == "authentication":
        return tuple(sorted((u"%s" % k, u"%s" % v) for k, v in (value or {}).items())) if isinstance(value, dict) else value
    return value


def _show(key, value):
    if key == "virtual_ipaddresses":
        return "[%s]" % ", ".join(value)
    if key == "authentication":
        return "{%s}" % ", ".join("%s: %s" % (k, "***" if k == "auth_pass" else v) for k, v in value) if value else "none"
    return u"%s" % (value,)


AGREE_KEYS = ("virtual_router_id", "version", "advert_int", "authentication", "virtual_ipaddresses")


def _check_agreement(name, members, problems):
    for key in AGREE_KEYS:
        groups = {}
        for m in members:
            groups.setdefault(_norm_value(key, m.spec.get(key)), []).append(m.host)
        if len(groups) < 2:
            continue
        reference = max(groups.items(), key=lambda kv: (len(kv[1]), -min(members_index(members, h) for h in kv[1])))[0]
        ref_hosts = ", ".join(groups[reference])
        for value, hosts in groups.items():
            if value == reference:
                continue
            for host in hosts:
                problems.error(host, "ha_node_instances.%s.%s" % (name, key),
                               "%s here but %s on %s: every member of instance %s must agree" % (
                                   _show(key, value), _show(key, reference), ref_hosts, name))


def members_index(members, host):
    for i, m in enumerate(members):
        if m.host == host:
            return i
    return len(members)


def _check_priorities(name, members, problems):
    seen = {}
    owners = [m.host for m in members if m.priority == _plan.OWNER_PRIORITY]
    if len(owners) > 1:
        for host in owners:
            problems.error(host, "ha_node_instances.%s.priority" % name,
                           "255 (address owner) on %s: at most one member of %s may own the addresses" % (", ".join(owners), name))
    for m in members:
        if m.priority is None:
            continue
        if m.priority in seen and m.priority != _plan.OWNER_PRIORITY:
            problems.error(m.host, m.priority_field,
                           "priority %d of %s collides with %s: give each member its own priority (or use priority_order)" % (
                               m.priority, name, seen[m.priority]))
        seen.setdefault(m.priority, m.host)


def _check_nopreempt(name, members, problems):
    for m in members:
        if m.spec.get("nopreempt") and u"%s" % (m.spec.get("state") or "BACKUP").upper() == "MASTER":
            problems.error(m.host, "ha_node_instances.%s.nopreempt" % name,
                           "nopreempt with state MASTER: keepalived silently ignores nopreempt then; use state BACKUP")


def _unicast_mode(spec):
    if spec.get("unicast"):
        return "derived"
    if spec.get("unicast_peers"):
        return "explicit"
    return "multicast"


def _check_unicast(name, members, problems):
    modes = {}
    for m in members:
        modes.setdefault(_unicast_mode(m.spec), []).append(m.host)
    if len(modes) > 1:
        for mode, hosts in modes.items():
            for host in hosts:
                problems.error(host, "ha_node_instances.%s.unicast_peers" % name,
                               "members of %s mix unicast and multicast (%s): they would not hear each other" % (
                                   name, "; ".join("%s: %s" % (k, ", ".join(v)) for k, v in sorted(modes.items()))))
        return
    mode = list(modes)[0]
    for m in members:
        if m.source is None and mode != "multicast":
            problems.error(m.host, "ha_node_instances.%s.unicast_src_ip" % name,
                           "no unicast source address: set unicast_src_ip or give %s an address (facts)" % m.spec.get("interface"))
    if mode != "explicit":
        return
    peers = dict((m.host, set(u"%s" % p for p in m.spec.get("unicast_peers") or [])) for m in members)
    sources = dict((m.host, m.source) for m in members if m.source)
    for a in members:
        if a.source in peers[a.host]:
            problems.error(a.host, "ha_node_instances.%s.unicast_peers" % name,
                           "contains this node's own address %s" % a.source)
        for b in members:
            if b.host == a.host or b.host not in sources or sources[b.host] in peers[a.host]:
                continue
            if a.source in peers[b.host]:
                why = "%s (%s) lists this node, so the peer lists are asymmetric" % (b.host, sources[b.host])
            else:
                why = "so %s (%s) never hears it" % (b.host, sources[b.host])
            problems.error(a.host, "ha_node_instances.%s.unicast_peers" % name,
                           "does not list member %s, %s" % (b.host, why))
        known = set(sources.values())
        for peer in sorted(peers[a.host] - known - set([a.source])):
            problems.warn(a.host, "ha_node_instances.%s.unicast_peers" % name,
                          "%s is not a member of %s in this play; its peer list cannot be checked" % (peer, name))


def _check_vips(host, name, spec, interfaces, problems):
    default_dev = spec.get("interface")
    for i, vip in enumerate(spec.get("virtual_ipaddresses") or []):
        iface, dev = parse_vip(vip)
        dev = dev or default_dev
        if iface is None or dev is None:
            continue  # the agent's own check names it
        if dev not in interfaces:
            problems.error(host, "ha_node_instances.%s.virtual_ipaddresses[%d]" % (name, i),
                           "interface %s does not exist on this node (has: %s)" % (dev, ", ".join(sorted(interfaces)) or "none"))
            continue
        nets = [n for n in _segment_networks(interfaces[dev]) if n.version == iface.version]
        if not any(iface.ip in n for n in nets):
            problems.error(host, "ha_node_instances.%s.virtual_ipaddresses[%d]" % (name, i),
                           "%s is outside every subnet of %s on this node (%s): nobody on the segment could reach it" % (
                               iface.ip, dev, ", ".join(str(n) for n in sorted(nets, key=str)) or "no IPv%d address" % iface.version))


def _check_vrid_segments(identities, models, problems):
    """Two different instances (any cluster) with one VRID and family on one L2 segment collide."""
    seen = []
    for ident in sorted(identities):
        members = identities[ident]
        vrid = _as_int(members[0].spec.get("virtual_router_id"))
        family = instance_family(members[0].spec)
        nets = set()
        for m in members:
            nets |= _segment_networks((models[m.host].get("interfaces") or {}).get(m.spec.get("interface"), []))
        for other, o_vrid, o_family, o_nets, o_members in seen:
            shared = sorted((n for n in nets & o_nets), key=str)
            if vrid is not None and vrid == o_vrid and family == o_family and shared:
                for mine, theirs, their_ident in ((members, o_members, other), (o_members, members, ident)):
                    for m in mine:
                        problems.error(m.host, "ha_node_instances.%s.virtual_router_id" % m.name,
                                       "%d is also used by instance %s of cluster %s (%s) on the same segment %s: "
                                       "their adverts would mix; pick another VRID" % (
                                           vrid, their_ident[1], their_ident[0], ", ".join(x.host for x in theirs), shared[0]))
        seen.append((ident, vrid, family, nets, members))


# ----- rendering ---------------------------------------------------------------------------------------

def _source_address(member, interfaces):
    explicit = member.spec.get("unicast_src_ip")
    if explicit:
        return u"%s" % explicit
    return primary_address(interfaces.get(member.spec.get("interface"), []), instance_family(member.spec))


def _render_instance(member, peers):
    out = dict((k, v) for k, v in member.spec.items() if k not in MODEL_KEYS)
    if member.priority is not None:
        out["priority"] = member.priority
    if member.spec.get("unicast"):
        out["unicast_src_ip"] = member.source
        out["unicast_peers"] = [p for p in peers if p != member.source]
    return out


def render_config(host, model, members, peers_by_name, problems):
    """The agent config (a plain dict, keys in the agent's order) for one node."""
    config = {"router_id": model.get("router_id") or host}
    if model.get("control_socket"):
        config["control_socket"] = model["control_socket"]
    for key, value in (model.get("agent_options") or {}).items():
        if key in RESERVED_TOP_LEVEL:
            problems.error(host, "ha_node_agent_options.%s" % key,
                           "is set by the role from %s; set that variable instead" % agent_path_to_var(key))
            continue
        config[key] = value
    config["vrrp_scripts"] = dict(model.get("scripts") or {})
    config["vrrp_instances"] = dict((name, _render_instance(m, peers_by_name.get(name, [])))
                                    for name, m in members.items())
    if model.get("sync_groups"):
        config["vrrp_sync_groups"] = dict(model["sync_groups"])
    if model.get("lb_backend"):
        config["lb_backend"] = model["lb_backend"]
    if model.get("virtual_servers"):
        config["virtual_servers"] = list(model["virtual_servers"])
    return config


def _weights(member, scripts):
    weights = []
    for tracked in member.spec.get("track_scripts") or []:
        entry = tracked if isinstance(tracked, dict) else {"name": tracked}
        script = scripts.get(entry.get("name")) or {}
        weight = entry.get("weight", script.get("weight", 0) if isinstance(script, dict) else 0)
        weights.append(_as_int(weight) or 0)
    for tracked in member.spec.get("track_interfaces") or []:
        if isinstance(tracked, dict):
            weights.append(_as_int(tracked.get("weight")) or 0)
    return weights


def _plans(identities, models):
    plans = []
    for ident in sorted(identities):
        members = identities[ident]
        if any(m.priority is None for m in members):
            continue
        version = _as_int(members[0].spec.get("version") or DEFAULT_VERSION) or DEFAULT_VERSION
        try:
            adv_cs = _plan.advert_int_cs(members[0].spec.get("advert_int") or DEFAULT_ADVERT_INT, version)
        except (TypeError, ValueError):
            continue
        rows = [{"host": m.host, "configured_priority": m.priority, "nopreempt": m.spec.get("nopreempt"),
                 "priority": _plan.effective_priority(m.priority, _weights(m, models[m.host].get("scripts") or {})),
                 "address": m.source} for m in members]
        plan = _plan.instance_plan(ident[1], version, adv_cs, rows)
        plan["cluster"] = ident[0]
        plans.append(plan)
    return plans


def build(models, host_order=None):
    """All nodes' models -> {"configs", "errors", "warnings", "plans", "members"}."""
    problems = Problems()
    hosts = list(host_order or sorted(models))
    identities = {}
    all_members = {}
    for host in hosts:
        model = models[host]
        interfaces = model.get("interfaces") or {}
        if not interfaces:
            problems.error(host, "ha_node_interfaces",
                           "no interface addresses known for this node: gather facts (network) or set ha_node_interfaces")
        members = node_members(host, model, problems)
        all_members[host] = members
        for name, member in members.items():
            member.source = _source_address(member, interfaces)
            identities.setdefault((u"%s" % (model.get("cluster") or ""), name), []).append(member)
            if interfaces:
                iface = member.spec.get("interface")
                if iface and iface not in interfaces:
                    problems.error(host, "ha_node_instances.%s.interface" % name,
                                   "%s does not exist on this node (has: %s)" % (iface, ", ".join(sorted(interfaces))))
                else:
                    _check_vips(host, name, member.spec, interfaces, problems)
    peers = {}
    for ident, members in identities.items():
        _check_agreement(ident[1], members, problems)
        _check_priorities(ident[1], members, problems)
        _check_nopreempt(ident[1], members, problems)
        _check_unicast(ident[1], members, problems)
        for m in members:
            peers.setdefault(m.host, {})[ident[1]] = [o.source for o in members if o.host != m.host and o.source]
    _check_vrid_segments(identities, models, problems)
    configs = dict((host, render_config(host, models[host], all_members[host], peers.get(host, {}), problems))
                   for host in hosts)
    return {
        "configs": configs,
        "errors": problems.errors,
        "warnings": problems.warnings,
        "plans": _plans(identities, models),
        "members": dict(("%s/%s" % ident, [m.host for m in ms]) for ident, ms in sorted(identities.items())),
    }
