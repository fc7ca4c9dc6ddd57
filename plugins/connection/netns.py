# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a Linux network namespace on the controller
version_added: "0.1.0"
description:
  - Runs every command of a task inside a network namespace of the controller (C(ip netns exec NAME)),
    so that a namespace lab host (see C(hanode lab up)) is managed like a remote host. Files are copied
    directly, as the namespace shares the controller's file system; give each lab host its own
    directories through host variables.
  - Needs root (or CAP_SYS_ADMIN) on the controller. Pipelining works.
author:
  - hanode contributors (@hanode)
options:
  netns_name:
    description: The namespace; defaults to the host's address (C(ansible_host)), else its inventory name.
    type: str
    vars:
      - name: ansible_netns_name
      - name: ansible_host
  ip_command:
    description: The iproute2 command.
    type: str
    default: ip
    vars:
      - name: ansible_netns_ip_command
extends_documentation_fragment:
  - connection_pipelining
"""

EXAMPLES = r"""
# inventories/lab/hosts.yml
# all:
#   children:
#     ha_nodes:
#       hosts:
#         n1: {ansible_host: hnlab-n1}
#         n2: {ansible_host: hnlab-n2}
#       vars:
#         ansible_connection: hanode.fleet.netns
"""

import os
import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.connection.local import Connection as LocalConnection

NETNS_RUN_DIR = "/run/netns"


class Connection(LocalConnection):
    """The local connection, with every command prefixed by `ip netns exec NAME`."""

    transport = "hanode.fleet.netns"
    has_pipelining = True

    def _netns(self) -> str:
        name = self.get_option("netns_name") or self._play_context.remote_addr
        if not name or "/" in name or name.startswith("."):
            raise AnsibleConnectionFailure("hanode.fleet.netns: invalid namespace name %r" % name)
        return name

    def _connect(self):
        name = self._netns()
        if not os.path.exists(os.path.join(NETNS_RUN_DIR, name)):
            raise AnsibleConnectionFailure("hanode.fleet.netns: no network namespace %s (see `ip netns list`)" % name)
        return super()._connect()

    def exec_command(self, cmd, in_data=None, sudoable=True):
        prefix = "%s netns exec %s " % (shlex.quote(self.get_option("ip_command")), shlex.quote(self._netns()))
        return super().exec_command(prefix + to_text(cmd), in_data=in_data, sudoable=sudoable)
