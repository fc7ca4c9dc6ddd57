#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ha_control
short_description: Drain or enable a hanode node, take a real server out, or fail over to a named node
version_added: "0.1.0"
description:
  - V(drained) - the node gives up MASTER with a priority-0 advert (the backup takes over in about Skew_Time),
    removes its VIPs and stays BACKUP until enabled, also when its VRRP process or the agent restarts. The
    module waits until another node's adverts confirm the VIP is elsewhere; if nobody takes over within
    O(timeout) it enables the node again (so the VIP comes back) and fails.
  - V(enabled) - undoes V(drained).
  - V(real_server_disabled) / V(real_server_enabled) - weight 0 for one real server of a virtual server
    (existing connections finish), and back. A disabled real server stays disabled when the agent's checker
    process or the agent restarts, until it is enabled.
  - V(failover) - run on every member at once; O(failover_to) is enabled and the others are drained, so
    O(failover_to) becomes MASTER and stays it until the others are enabled again.
author:
  - hanode contributors (@hanode)
options:
  state:
    description: The operation.
    type: str
    required: true
    choices: [drained, enabled, real_server_disabled, real_server_enabled, failover]
  instances:
    description: VRRP instances to act on; all of the node's instances when omitted.
    type: list
    elements: str
  socket:
    description: The agent's control socket.
    type: path
    default: /run/hanode/agent.sock
  node:
    description: This node's inventory name (for O(state=failover)), normally C({{ inventory_hostname }}).
    type: str
  failover_to:
    description: Inventory name of the node that must become MASTER (for O(state=failover)).
    type: str
  virtual_server:
    description: The virtual server as the agent's status names it, for example V(198.51.100.100:80/TCP).
    type: str
  real_server:
    description: The real server as the agent's status names it, for example V(203.0.113.11:8080).
    type: str
  wait:
    description: Wait until the operation has taken effect (VIP confirmed elsewhere, node MASTER).
    type: bool
    default: true
  timeout:
    description: Seconds to wait.
    type: int
    default: 30
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the operation would change anything; sends nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: hanode.fleet.ha_info
"""

EXAMPLES = r"""
- name: Take lb1 out before maintenance; returns once another node holds the VIP
  hanode.fleet.ha_control:
    state: drained
  when: inventory_hostname == 'lb1'

- name: Put it back
  hanode.fleet.ha_control:
    state: enabled

- name: Make lb2 master of VI_1 (run on every member)
  hanode.fleet.ha_control:
    state: failover
    instances: [VI_1]
    node: "{{ inventory_hostname }}"
    failover_to: lb2

- name: Drain one real server (weight 0)
  hanode.fleet.ha_control:
    state: real_server_disabled
    virtual_server: 198.51.100.100:80/TCP
    real_server: 203.0.113.11:8080
"""

RETURN = r"""
command:
  description: The control command sent to the agent (none when nothing had to change).
  returned: always
  type: str
  sample: drain
instances_targeted:
  description: The VRRP instances the operation applied to.
  returned: always
  type: list
  elements: str
before:
  description: Per instance state before the operation.
  returned: always
  type: dict
instances:
  description: Per instance state after the operation (and the waits).
  returned: when not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hanode.fleet.plugins.module_utils._agent_client import AgentError
from ansible_collections.hanode.fleet.plugins.module_utils._control import STATES, ControlError, make_client, run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=list(STATES)),
            instances=dict(type="list", elements="str"),
            socket=dict(type="path", default="/run/hanode/agent.sock"),
            node=dict(type="str"),
            failover_to=dict(type="str"),
            virtual_server=dict(type="str"),
            real_server=dict(type="str"),
            wait=dict(type="bool", default=True),
            timeout=dict(type="int", default=30),
        ),
        required_if=[
            ("state", "failover", ("node", "failover_to")),
            ("state", "real_server_disabled", ("virtual_server", "real_server")),
            ("state", "real_server_enabled", ("virtual_server", "real_server")),
        ],
        supports_check_mode=True,
    )
    try:
        result = run(make_client(module.params), module.params, module.check_mode)
    except (AgentError, ControlError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
