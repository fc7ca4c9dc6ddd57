# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ha_control's work: operator commands (drain, enable, real server weight 0, failover to a node).

decide() is pure (status in, what to send and what to wait for out); run() sends and waits.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hanode.fleet.plugins.module_utils._agent_client import AgentClient, AgentError, summary

STATES = ("drained", "enabled", "real_server_disabled", "real_server_enabled", "failover")


class ControlError(Exception):
    pass


def _targets(status, names):
    instances = (status or {}).get("instances") or {}
    if names is None:
        return sorted(instances)
    unknown = [n for n in names if n not in instances]
    if unknown:
        raise ControlError("unknown instance(s) %s (this agent has: %s)" % (", ".join(unknown), ", ".join(sorted(instances)) or "none"))
    return list(names)


def taken_over_elsewhere(inst):
    """A drained former master sees another node's adverts: the VIP is confirmed elsewhere."""
    source = inst.get("source_address")
    master = inst.get("master_address")
    return inst.get("state") != "MASTER" and master is not None and master != source


def _named(items):
    """The agent lists virtual servers and real servers with a "name"; accept a mapping by name too."""
    if isinstance(items, dict):
        return dict((k, v) for k, v in items.items())
    return dict(((item or {}).get("name"), item) for item in items or [])


def _vs_matches(name, wanted):
    return wanted in (name, name.rsplit("/", 1)[0])


def _rs_matches(name, wanted):
    host = name[1:name.index("]")] if name.startswith("[") else (name.rsplit(":", 1)[0] if name.count(":") == 1 else name)
    return wanted in (name, host)


def find_real_server(status, virtual_server, real_server):
    """The real server's status entry; names as the agent's status shows them ('198.51.100.100:80/TCP',
    '203.0.113.11:8080'), or without the protocol / port."""
    servers = _named((status or {}).get("virtual_servers"))
    matches = [vs for name, vs in servers.items() if name and _vs_matches(name, virtual_server)]
    if len(matches) != 1:
        raise ControlError("no virtual server %s (this agent has: %s)" % (virtual_server, ", ".join(sorted(n for n in servers if n)) or "none"))
    rss = _named(matches[0].get("real_servers"))
    found = [rs for name, rs in rss.items() if name and _rs_matches(name, real_server)]
    if len(found) != 1:
        raise ControlError("virtual server %s has no real server %s (has: %s)" % (
            virtual_server, real_server, ", ".join(sorted(n for n in rss if n)) or "none"))
    return found[0]


def real_server_disabled(rs):
    """True/False when the status says, None when it does not."""
    if "health" in rs:
        return rs["health"] == "disabled"
    if "disabled" in rs:
        return bool(rs["disabled"])
    return None


def decide(status, state, instances=None, node=None, failover_to=None, virtual_server=None, real_server=None):
    """-> {"changed", "command": (cmd, args) or None, "wait_master_elsewhere": [...], "wait_master": [...]}"""
    inst = (status or {}).get("instances") or {}
    out = {"changed": False, "command": None, "wait_master_elsewhere": [], "wait_master": [], "instances": []}
    if state in ("real_server_disabled", "real_server_enabled"):
        rs = find_real_server(status, virtual_server, real_server)
        disable = state == "real_server_disabled"
        already = real_server_disabled(rs)
        out["changed"] = already is None or bool(already) != disable
        if out["changed"]:
            out["command"] = ("rs_disable" if disable else "rs_enable",
                              {"virtual_server": virtual_server, "real_server": real_server})
        return out
    names = _targets(status, instances)
    out["instances"] = names
    if state == "failover":
        state = "enabled" if node == failover_to else "drained"
        if state == "enabled":
            out["wait_master"] = list(names)
    drain = state == "drained"
    todo = [n for n in names if bool(inst[n].get("drained")) != drain]
    out["changed"] = bool(todo)
    if todo:
        out["command"] = ("drain" if drain else "enable", {"instances": None if instances is None else todo})
    if drain:
        out["wait_master_elsewhere"] = [n for n in names if inst[n].get("state") == "MASTER"]
    return out


def run(client, params, check_mode):
    """-> result dict; raises ControlError / AgentError."""
    status = client.status()
    decision = decide(status, params["state"], params.get("instances"), params.get("node"), params.get("failover_to"),
                      params.get("virtual_server"), params.get("real_server"))
    result = {"changed": decision["changed"], "instances_targeted": decision["instances"],
              "before": summary(status), "command": decision["command"][0] if decision["command"] else None}
    if check_mode:
        return result
    command = decision["command"]
    if command is not None:
        client.command(command[0], **command[1])
    timeout = params.get("timeout") or 30
    if params.get("wait", True) and decision["wait_master_elsewhere"]:
        names = decision["wait_master_elsewhere"]
        try:
            status = client.wait_for(lambda st: all(taken_over_elsewhere(st["instances"][n]) for n in names), timeout,
                                     "another node to take over %s" % ", ".join(names))
        except AgentError:
            client.command("enable", instances=names)
            raise ControlError("no other node took over %s within %d s; this node was enabled again so the VIP stays up"
                               % (", ".join(names), timeout))
    if params.get("wait", True) and decision["wait_master"]:
        names = decision["wait_master"]
        status = client.wait_for(lambda st: all(st["instances"][n].get("state") == "MASTER" for n in names), timeout,
                                 "this node to become MASTER of %s" % ", ".join(names))
    result["instances"] = summary(client.status())
    return result


def make_client(params):
    return AgentClient(params["socket"], timeout_s=10.0)
