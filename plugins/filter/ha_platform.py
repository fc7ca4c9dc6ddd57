# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hanode.fleet.wheelhouse_platforms: the hosts of a play grouped by wheel platform, as build_wheelhouse.py's
--platform TAG=HOST,HOST arguments."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def wheelhouse_platforms(hosts, hostvars, preflight_var="ha_node_preflight"):
    by_tag = {}
    for host in hosts:
        preflight = hostvars[host].get(preflight_var) or {}
        tag = (preflight.get("platform") or {}).get("tag") if isinstance(preflight, dict) else None
        if not tag:
            raise AnsibleFilterError("%s: no wheel platform (run the role's preflight on every host of the play first)" % host)
        by_tag.setdefault(tag, []).append(host)
    return ["%s=%s" % (tag, ",".join(members)) for tag, members in sorted(by_tag.items())]


class FilterModule:
    def filters(self):
        return {"wheelhouse_platforms": wheelhouse_platforms}
