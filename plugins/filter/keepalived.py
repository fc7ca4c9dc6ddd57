# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hanode.fleet.keepalived_to_hanode: the text of a keepalived.conf -> the hanode agent config, and every keyword
that was not carried over (documented in keepalived_to_hanode.yml). The translation is the agent's own importer
(hanode.migrate.keepalived), loaded from the agent source the collection ships, as ha_plan loads the agent's
parser."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible_collections.hanode.fleet.plugins.plugin_utils.agent_source import import_agent_modules


def keepalived_to_hanode(text, name="keepalived.conf", config_id=None):
    if not isinstance(text, (str, bytes)):
        raise AnsibleFilterError("keepalived_to_hanode: expects the text of a keepalived.conf, got %s"
                                 % type(text).__name__)
    modules, why = import_agent_modules(("hanode.migrate.keepalived",))
    if modules is None:
        raise AnsibleFilterError("keepalived_to_hanode: %s" % why)
    importer = modules[0]
    try:
        return importer.import_text(to_text(text, errors="surrogate_or_replace"), name=to_text(name),
                                    config_id=None if config_id is None else to_text(config_id))
    except importer.KeepalivedParseError as exc:
        raise AnsibleFilterError("keepalived_to_hanode: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"keepalived_to_hanode": keepalived_to_hanode}
