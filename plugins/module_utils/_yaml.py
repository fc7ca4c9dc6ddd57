# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A deterministic YAML emitter for agent configs (stdlib only: managed hosts may lack PyYAML).

Mappings keep their key order, lists are block lists, strings are plain when YAML 1.1 would read
them back as the same string and double-quoted (JSON escapes, valid YAML) otherwise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@+-]*(:[A-Za-z0-9_./@+-]+)*$")
# Words YAML 1.1 (PyYAML) resolves to booleans or null.
_SPECIAL = frozenset(
    "y n yes no true false on off null ~".split()
)


def scalar(value):
    """One scalar as YAML text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    text = value if isinstance(value, str) else str(value)
    if _PLAIN.match(text) and text.lower() not in _SPECIAL:
        return text
    return json.dumps(text, ensure_ascii=False)


def _float(value):
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text or "E" in text:
        text = ("%.17f" % value).rstrip("0")
    if "." not in text:
        text += ".0"
    if text.endswith("."):
        text += "0"
    return text


def _is_block(value):
    return isinstance(value, (dict, list, tuple)) and len(value) > 0


def _empty(value):
    return "{}" if isinstance(value, dict) else "[]"


def _lines(value, indent):
    pad = " " * indent
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            head = "%s%s:" % (pad, scalar(key))
            if _is_block(item):
                out.append(head)
                out.extend(_lines(item, indent + 2))
            elif isinstance(item, (dict, list, tuple)):
                out.append("%s %s" % (head, _empty(item)))
            else:
                out.append("%s %s" % (head, scalar(item)))
    else:
        for item in value:
            if _is_block(item):
                inner = _lines(item, indent + 2)
                out.append("%s- %s" % (pad, inner[0][indent + 2:]))
                out.extend(inner[1:])
            elif isinstance(item, (dict, list, tuple)):
                out.append("%s- %s" % (pad, _empty(item)))
            else:
                out.append("%s- %s" % (pad, scalar(item)))
    return out


def dump(data, header=None):
    """The YAML document for a mapping; header lines become comments at the top."""
    if not isinstance(data, dict):
        raise TypeError("an agent config is a mapping, got %s" % type(data).__name__)
    lines = ["# " + line if line else "#" for line in (header or [])]
    lines.extend(_lines(data, 0) if data else ["{}"])
    return "\n".join(lines) + "\n"
