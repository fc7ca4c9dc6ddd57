# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hanode.fleet.rollout_order: backups first, current masters last."""

from __future__ import annotations

from ansible_collections.hanode.fleet.plugins.module_utils import _plan


def rollout_order(hosts, hostvars, info_var="ha_node_info"):
    statuses = {}
    for host in hosts:
        info = hostvars[host].get(info_var) or {}
        statuses[host] = info.get("status") if isinstance(info, dict) else None
    return _plan.rollout_order(list(hosts), statuses)


class FilterModule:
    def filters(self):
        return {"rollout_order": rollout_order}
