#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ha_config
short_description: Push a node's hanode agent config, validated, atomically, with a reload
version_added: "0.1.0"
description:
  - Renders O(config) as the agent's YAML config, validates it with the agent on the host
    (C(hanode check-config)), writes it atomically, asks the running agent to reload and waits until the
    agent reports the new config applied (its C(applied_digest) equals the digest of the file written).
  - Never restarts the agent. A config the agent refuses on reload is rolled back on disk and the task fails
    with the agent's messages; the running config stays.
  - Idempotent; a second run with the same O(config) reports no change and does not reload. When the file is
    right but the running agent still runs another config, the module reloads it (and reports a change).
author:
  - hanode contributors (@hanode)
options:
  config:
    description:
      - The agent config as a mapping (keys follow keepalived's keywords), usually the C(configs) entry of
        M(hanode.fleet.ha_plan) for this host.
    type: dict
    required: true
  path:
    description: Where the agent reads its config.
    type: path
    default: /etc/hanode/agent.yaml
  socket:
    description: The agent's control socket (the config's C(control_socket)).
    type: path
    default: /run/hanode/agent.sock
  validate:
    description:
      - Command that validates the rendered file before it is installed; V(%s) is the file.
      - An empty string skips validation. In check mode a missing validator only warns.
    type: str
    default: hanode check-config %s
  reload:
    description: Reload a running agent when its config changes (never a restart).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the reload and for the agent to report the new config applied.
    type: int
    default: 30
  mode:
    description: File mode of the config (it may hold an authentication password).
    type: raw
    default: "0600"
extends_documentation_fragment:
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Validates the rendered config in a temporary file; nothing managed is written or reloaded.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
notes:
  - The agent computes its digest over the file's bytes; the module waits for that digest, so a task that
    returns has the new config running, not only written.
seealso:
  - module: hanode.fleet.ha_plan
  - module: hanode.fleet.ha_info
"""

EXAMPLES = r"""
- name: Push the node's config and wait until the agent runs it
  hanode.fleet.ha_config:
    config: "{{ ha_node_plan.configs[inventory_hostname] }}"
    path: /etc/hanode/agent.yaml
    socket: /run/hanode/agent.sock
    validate: /opt/hanode/venv/bin/hanode check-config %s

- name: A minimal config written by hand
  hanode.fleet.ha_config:
    config:
      router_id: lb1
      vrrp_instances:
        VI_1:
          interface: eth0
          virtual_router_id: 51
          priority: 150
          virtual_ipaddresses: [198.51.100.100/24]
"""

RETURN = r"""
path:
  description: The config file.
  returned: always
  type: str
  sample: /etc/hanode/agent.yaml
digest:
  description: SHA-256 of the rendered file; the agent reports the same value once it runs this config.
  returned: always
  type: str
  sample: 6f1c0b0d5e8a4b3e2d1c0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c
reasons:
  description: Why the module changed something (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["the config file differs"]
agent_running:
  description: Whether an agent answered on O(socket) before the change.
  returned: always
  type: bool
reloaded:
  description: Whether the agent was asked to reload.
  returned: always
  type: bool
instances:
  description: Per VRRP instance state after the change (from the agent's status).
  returned: when an agent answers
  type: dict
  sample: {"VI_1": {"state": "MASTER", "priority": 150, "effective_priority": 150, "master_address": "198.51.100.11",
           "vips": ["198.51.100.100/24"], "drained": false, "fault_reasons": []}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hanode.fleet.plugins.module_utils._config_push import run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="dict", required=True),
            path=dict(type="path", default="/etc/hanode/agent.yaml"),
            socket=dict(type="path", default="/run/hanode/agent.sock"),
            validate=dict(type="str", default="hanode check-config %s"),
            reload=dict(type="bool", default=True),
            timeout=dict(type="int", default=30),
            mode=dict(type="raw", default="0600"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
