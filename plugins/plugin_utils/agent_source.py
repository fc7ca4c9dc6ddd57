# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Agent code for controller-side plugins (the ha_plan action, the keepalived_to_hanode filter): imported from the
agent source this collection ships (<collection>/agent/src), so the controller runs the same code as the hosts."""

from __future__ import annotations

import importlib
import os
import sys

AGENT_MIN_PYTHON = (3, 11)


def default_agent_source() -> str:
    """The agent source shipped in this collection: <collection>/agent/src."""
    collection = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(collection, "agent", "src")


def import_agent_modules(names, source=None):
    """The agent's modules (e.g. "hanode.config.parse") from source (default: the collection's own agent source):
    (list of modules, None), or (None, why they cannot be imported)."""
    source = source or default_agent_source()
    if sys.version_info < AGENT_MIN_PYTHON:
        return None, "the agent's code needs Python %d.%d or later on the controller" % AGENT_MIN_PYTHON
    if not os.path.isdir(os.path.join(source, "hanode")):
        return None, "no agent source at %s" % source
    added = source not in sys.path
    if added:
        sys.path.insert(0, source)
    try:
        return [importlib.import_module(name) for name in names], None
    except ImportError as exc:
        return None, "cannot import %s from %s: %s" % (", ".join(names), source, exc)
    finally:
        if added:
            sys.path.remove(source)
