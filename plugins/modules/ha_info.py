#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ha_info
short_description: Read a hanode agent's state (instances, VIPs, virtual servers, counters)
version_added: "0.1.0"
description:
  - Asks the agent on the host for its status over the control socket and returns it unchanged
    (the agent's status JSON, with its C(schema_version)), plus a short per-instance summary and
    RV(summary), lines a person reads at a glance.
  - Read-only; for ad-hoc queries such as C(ansible all -m hanode.fleet.ha_info).
  - When no agent answers the module does not fail unless O(require_running=true); it returns
    RV(running=false) and the reason, so a play can tell a new node from a running one.
author:
  - hanode contributors (@hanode)
options:
  socket:
    description: The agent's control socket.
    type: path
    default: /run/hanode/agent.sock
  require_running:
    description: Fail when no agent answers.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for the agent's answer.
    type: int
    default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: hanode.fleet.ha_control
"""

EXAMPLES = r"""
- name: Every node's state
  hanode.fleet.ha_info:
    socket: /run/hanode/agent.sock
  register: ha

- name: Show who is master
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} is master of {{ ha.masters }}"

- name: Every node at a glance
  ansible.builtin.debug:
    var: ha.summary

# Ad hoc, in the namespace lab where each node has its own socket:
#   ansible -i inventories/lab all -m hanode.fleet.ha_info -a 'socket={{ ha_node_control_socket }}'
"""

RETURN = r"""
running:
  description: Whether an agent answered.
  returned: always
  type: bool
error:
  description: Why no agent answered.
  returned: when RV(running=false)
  type: str
status:
  description: The agent's full status document (instances, virtual_servers, agent, counters).
  returned: when RV(running=true)
  type: dict
instances:
  description: Per VRRP instance state, priority, effective priority, master address, VIPs, drained flag and fault reasons.
  returned: when RV(running=true)
  type: dict
  sample: {"VI_1": {"state": "BACKUP", "priority": 100, "effective_priority": 100, "master_address": "198.51.100.11",
           "vips": ["198.51.100.100/24"], "drained": false, "fault_reasons": []}}
masters:
  description: Names of the instances this node is MASTER of.
  returned: always
  type: list
  elements: str
virtual_servers:
  description: The load balancer part of the status (empty without virtual servers).
  returned: when RV(running=true)
  type: raw
summary:
  description:
    - What a person reads at a glance, one line each - the host (instances by state, real servers up, stale
      processes), each VRRP instance (state, VRID, interface, effective/configured priority, VIPs, and why
      it is in FAULT or who is master), each sync group, each virtual server with its real servers that are
      not up, a refused reload. When no agent answers, one line saying so.
  returned: always
  type: list
  elements: str
  sample: ["lb1 (hanode 0.1.0): MASTER VI_1; 1 virtual server, 1/2 real servers up",
           "VI_1 MASTER vrid 51 eth0 prio 150/150 198.51.100.100/24",
           "198.51.100.100:80/TCP: 1/2 real servers up, quorum up; 203.0.113.12:8080 down (connection refused)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hanode.fleet.plugins.module_utils._agent_client import AgentClient, AgentError, summary
from ansible_collections.hanode.fleet.plugins.module_utils._plan import masters_of
from ansible_collections.hanode.fleet.plugins.module_utils._summary import summary_lines


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", default="/run/hanode/agent.sock"),
            require_running=dict(type="bool", default=False),
            timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    client = AgentClient(module.params["socket"], timeout_s=module.params["timeout"])
    try:
        status = client.status()
    except AgentError as exc:
        if module.params["require_running"]:
            module.fail_json(msg=str(exc), running=False)
        module.exit_json(changed=False, running=False, error=str(exc), masters=[],
                         summary=["no agent answers: %s" % exc])
    module.exit_json(changed=False, running=True, status=status, instances=summary(status),
                     masters=masters_of(status), virtual_servers=status.get("virtual_servers") or {},
                     summary=summary_lines(status))


if __name__ == "__main__":
    main()
