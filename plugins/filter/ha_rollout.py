# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hanode.fleet.rollout_order (backups first, current masters last) and hanode.fleet.advert_changes."""

from __future__ import annotations

from ansible_collections.hanode.fleet.plugins.module_utils import _plan


def rollout_order(hosts, hostvars, info_var="ha_node_info"):
    statuses = {}
    for host in hosts:
        info = hostvars[host].get(info_var) or {}
        statuses[host] = info.get("status") if isinstance(info, dict) else None
    return _plan.rollout_order(list(hosts), statuses)


def advert_changes(hosts, hostvars, plan_var="ha_node_plan", info_var="ha_node_info"):
    configs, statuses = {}, {}
    for host in hosts:
        plan = hostvars[host].get(plan_var) or {}
        configs[host] = (plan.get("configs") or {}).get(host) or {}
        info = hostvars[host].get(info_var) or {}
        statuses[host] = info.get("status") if isinstance(info, dict) else None
    return _plan.advert_changes(configs, statuses)


class FilterModule:
    def filters(self):
        return {"rollout_order": rollout_order, "advert_changes": advert_changes}
