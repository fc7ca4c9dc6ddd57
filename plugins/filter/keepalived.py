# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hanode.fleet.keepalived_to_hanode: the text of a keepalived.conf -> the hanode agent config, and every keyword
that was not carried over (documented in keepalived_to_hanode.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.hanode.fleet.plugins.module_utils._keepalived_import import KeepalivedParseError, import_text


def keepalived_to_hanode(text, name="keepalived.conf", config_id=None):
    if not isinstance(text, (str, bytes)):
        raise AnsibleFilterError("keepalived_to_hanode: expects the text of a keepalived.conf, got %s"
                                 % type(text).__name__)
    try:
        return import_text(to_text(text, errors="surrogate_or_replace"), name=to_text(name),
                           config_id=None if config_id is None else to_text(config_id))
    except KeepalivedParseError as exc:
        raise AnsibleFilterError("keepalived_to_hanode: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"keepalived_to_hanode": keepalived_to_hanode}
