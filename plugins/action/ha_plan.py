# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of hanode.fleet.ha_plan: the whole play's cluster model, checked before any host is touched."""

from __future__ import annotations

import json

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.hanode.fleet.plugins.module_utils import _cluster, _plan
from ansible_collections.hanode.fleet.plugins.plugin_utils.agent_source import import_agent_modules

ARGUMENT_SPEC = dict(
    hosts=dict(type="list", elements="str"),
    model_var=dict(type="str", default="ha_node_model"),
    agent_check=dict(type="bool", default=True),
    agent_source=dict(type="path"),
    fail_on_warnings=dict(type="bool", default=False),
)


def _plain(value):
    """Template results carry Ansible's tagged types; the model works on plain JSON data."""
    return json.loads(json.dumps(value, default=str))


def load_agent_parser(source: str | None = None):
    """(parse_config, ConfigError, HostCaps) from the collection's own agent source, or (None, reason)."""
    modules, why = import_agent_modules(("hanode.config.parse", "hanode.config.problems", "hanode.config.host"),
                                        source)
    if modules is None:
        return None, why
    parse, problems, host = modules
    return (parse.parse_config, problems.ConfigError, host.HostCaps), None


def agent_problems(parser, host: str, config: dict, host_caps=None):
    """Every error (and warning) the agent's check-config would raise for this node's config ON THAT HOST:
    `host_caps` is what the role's model step gathered there (the agent's probe, hanode/lvs/caps.py, run with
    the host's Python). Without it, what depends on the host (lb_backend auto) is left to the host's own agent;
    the controller's kernel is never asked."""
    parse_config, config_error, caps_type = parser
    try:
        caps = None if host_caps is None else caps_type.from_facts(host_caps, "ha_node_model.host_caps")
    except ValueError as exc:
        return ["%s: %s" % (host, exc)], []
    try:
        found = parse_config(config, default_router_id=host, host=caps)[1]
        return [], ["%s: %s: %s" % (host, _cluster.agent_path_to_var(p.path), p.message) for p in found.warnings]
    except config_error as exc:
        return ["%s: %s: %s" % (host, _cluster.agent_path_to_var(p.path), p.message) for p in exc.problems], []


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hosts = args["hosts"] or list(task_vars.get("ansible_play_hosts_all") or [])
        hostvars = task_vars["hostvars"]
        models, missing = {}, []
        for host in hosts:
            hv = hostvars[host]
            model = hv.get(args["model_var"])
            if model is None:
                missing.append("%s: %s: not set (run the role's model step on every host of the play)" % (host, args["model_var"]))
                continue
            model = _plain(model)
            if not model.get("interfaces"):
                model["interfaces"] = _cluster.interfaces_from_facts(_plain(hv.get("ansible_facts") or {}))
            models[host] = model
        if missing:
            raise AnsibleActionFail("hanode cluster model incomplete:\n" + "\n".join(missing))
        built = _cluster.build(models, hosts)
        errors, warnings = list(built["errors"]), list(built["warnings"])
        result["agent_check"] = "off"
        if args["agent_check"]:
            parser, why = load_agent_parser(args["agent_source"])
            result["agent_check"] = why or "ran"
            if parser is None:
                self._display.warning("hanode.fleet.ha_plan: agent checks skipped (%s); each host still validates its "
                                      "config with its own agent before it is installed" % why)
            else:
                for host in hosts:
                    errs, warns = agent_problems(parser, host, built["configs"][host], models[host].get("host_caps"))
                    errors += [e for e in errs if e not in errors]
                    warnings += [w for w in warns if w not in warnings]
        for warning in warnings:
            self._display.warning(warning)
        result.update(configs=built["configs"], plans=built["plans"], plan_text=_plan.plan_lines(built["plans"]),
                      members=built["members"], errors=errors, warnings=warnings, changed=False)
        if errors or (warnings and args["fail_on_warnings"]):
            result["failed"] = True
            problems = errors + (warnings if args["fail_on_warnings"] else [])
            result["msg"] = "hanode cluster model: %d problem(s), no host was touched:\n%s" % (len(problems), "\n".join(problems))
        return result
