#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ha_plan
short_description: Check a whole hanode fleet's cluster model and show its failover plan, before any host is touched
version_added: "0.1.0"
description:
  - Runs on the controller (an action plugin); use it once per play (C(run_once)). It reads every play host's
    node model (the variable named by O(model_var), set by the C(hanode.fleet.ha_node) role) and the hosts'
    network facts, renders every node's agent config and checks the fleet across nodes.
  - Fails, naming host and variable, when members of one instance disagree on VRID, version, advert_int,
    authentication or VIPs; priorities collide; more than one node owns the addresses (255); unicast peer
    lists are asymmetric or unicast and multicast are mixed; two instances share a VRID on one L2 segment;
    nopreempt is combined with state MASTER; a VIP is outside every subnet of its interface; an interface does
    not exist; and for every error the agent's own C(hanode check-config) would raise (the collection's agent
    source is imported on the controller for that).
  - C(lb_backend=auto) is judged per host by that host's capabilities (does its kernel have IPVS), which the
    role's model step gathers on the host (the agent's own probe run with the host's Python) into the model's
    C(host_caps); never by the controller's kernel, so a controller on macOS or in a container gets each
    host right. Without C(host_caps) in a model, that host's C(auto) is left to its own agent (a warning says so).
  - Unicast peers are derived from the inventory for instances with C(unicast=true), never containing the node itself.
  - Returns per node its config, and per instance each node's effective priority, Skew_Time,
    Master_Down_Interval and who becomes master after each single node failure.
author:
  - hanode contributors (@hanode)
options:
  hosts:
    description: The fleet; defaults to every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
  model_var:
    description: Host variable that holds each node's model.
    type: str
    default: ha_node_model
  agent_check:
    description: Also run the agent's own config checks on every rendered config, on the controller.
    type: bool
    default: true
  agent_source:
    description: Directory holding the agent's C(hanode) package; defaults to the collection's C(agent/src).
    type: path
  fail_on_warnings:
    description: Treat warnings (for example an unmanaged unicast peer) as errors.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
seealso:
  - module: hanode.fleet.ha_config
"""

EXAMPLES = r"""
- name: Check the fleet and compute every node's config
  hanode.fleet.ha_plan:
  run_once: true
  register: ha_node_plan

- name: Show the failover plan
  ansible.builtin.debug:
    msg: "{{ ha_node_plan.plan_text }}"
  run_once: true
"""

RETURN = r"""
configs:
  description: Per host, the agent config to push (a mapping of keepalived keywords).
  returned: always
  type: dict
plans:
  description: Per instance, per node priority, effective_priority, skew_time_ms, master_down_interval_ms,
    the expected master, and after_failure_of each node the new master and its takeover time.
  returned: always
  type: list
  elements: dict
plan_text:
  description: The plans as a readable table, one line per element.
  returned: always
  type: list
  elements: str
members:
  description: Per cluster/instance, its member hosts.
  returned: always
  type: dict
errors:
  description: Every problem found, as C(host - variable.path - message) lines (colon separated).
  returned: always
  type: list
  elements: str
warnings:
  description: Problems that do not stop the play.
  returned: always
  type: list
  elements: str
agent_check:
  description: V(ran), V(off), or why the agent's own checks could not run on the controller.
  returned: always
  type: str
"""
