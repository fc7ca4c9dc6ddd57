#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ha_preflight
short_description: Check that a host can run the hanode agent, before anything is changed
version_added: "0.1.0"
description:
  - Read-only. Checks the Python that will create the agent's virtual environment (version, venv module,
    a platform the agent's wheels exist for), the C(nft) binary and the kernel modules the config needs
    (C(ip_vs) and the schedulers' modules for O(lb_backend=ipvs); C(nf_tables), C(nf_nat) for
    O(lb_backend=nftables)), systemd, and free space where the agent is installed.
  - Returns every unmet need in RV(problems) (the role's preflight fails naming the host and each need)
    and the host's wheel platform in RV(platform) (the controller builds one wheelhouse per platform).
author:
  - hanode contributors (@hanode)
options:
  python:
    description: The Python that creates the agent's virtual environment.
    type: path
    default: /usr/bin/python3
  min_python:
    description: The oldest Python the agent runs on (its C(requires-python)).
    type: str
    default: "3.11"
  install_dir:
    description: Where the agent is installed (the free space is checked on its file system).
    type: path
    default: /opt/hanode
  min_free_mb:
    description: MiB that must be free for the agent's builds.
    type: int
    default: 150
  service_mode:
    description:
      - The role's C(ha_node_service_mode). V(auto) and V(systemd) need systemd running as PID 1;
        V(auto) without it is a problem (ask for V(lab) explicitly).
    type: str
    choices: [auto, systemd, lab, none]
    default: auto
  lb_backend:
    description: The agent's C(lb_backend) (empty is the agent's default, auto).
    type: str
    default: ""
  virtual_servers:
    description: How many virtual servers the config has (none needs neither nft nor kernel modules).
    type: int
    default: 0
  lb_algos:
    description: The virtual servers' C(lb_algo) values (IPVS loads one scheduler module each).
    type: list
    elements: str
    default: []
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
  - module: hanode.fleet.ha_plan
"""

EXAMPLES = r"""
- name: What the agent needs on this host
  hanode.fleet.ha_preflight:
    python: /usr/bin/python3
    lb_backend: ipvs
    virtual_servers: 1
    lb_algos: [wrr]
  register: preflight

- name: Stop naming the host and each need
  ansible.builtin.fail:
    msg: "{{ inventory_hostname }}: {{ preflight.problems | join('; ') }}"
  when: preflight.problems | length > 0
"""

RETURN = r"""
problems:
  description: Every unmet need, each naming what is needed and what the host has.
  returned: always
  type: list
  elements: str
  sample: ["kernel module ip_vs (lb_backend ipvs): neither loaded, built in nor in /lib/modules/6.1.0-28-amd64"]
platform:
  description: The host's wheel platform (None when its Python does not run).
  returned: always
  type: dict
  sample: {"tag": "cp313-glibc2.41-x86_64", "python_version": "3.13.5", "python_tag": "cp313",
           "implementation": "cpython", "machine": "x86_64", "libc": "glibc", "libc_version": "2.41"}
service_mode:
  description: The service mode the role will use (O(service_mode) with V(auto) resolved).
  returned: always
  type: str
  sample: systemd
systemd:
  description: Whether systemd runs as PID 1.
  returned: always
  type: bool
systemd_version:
  description: systemd's version (0 without systemd); the unit uses Type=notify-reload from 253 on.
  returned: always
  type: int
  sample: 257
pid1:
  description: The name of PID 1.
  returned: always
  type: str
kernel:
  description: The running kernel's release.
  returned: always
  type: str
kernel_modules:
  description: Each needed kernel module and whether it is loaded, builtin, loadable or missing.
  returned: always
  type: dict
  sample: {"ip_vs": "loadable"}
nft:
  description: Path of the nft binary (None when absent).
  returned: always
  type: str
free_mb:
  description: MiB free on the file system of O(install_dir).
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hanode.fleet.plugins.module_utils._preflight import run


def main():
    module = AnsibleModule(
        argument_spec=dict(
            python=dict(type="path", default="/usr/bin/python3"),
            min_python=dict(type="str", default="3.11"),
            install_dir=dict(type="path", default="/opt/hanode"),
            min_free_mb=dict(type="int", default=150),
            service_mode=dict(type="str", default="auto", choices=["auto", "systemd", "lab", "none"]),
            lb_backend=dict(type="str", default=""),
            virtual_servers=dict(type="int", default=0),
            lb_algos=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
