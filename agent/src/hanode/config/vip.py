"""Virtual IP addresses in keepalived's string form ("10.0.0.1/24 dev eth0 label eth0:1") or as a mapping."""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

from hanode.config.model import Vip
from hanode.config.problems import Problems, Reader

IFNAME_MAX = 15
SCOPES = ("global", "site", "link", "host", "nowhere")
WORDS = {"dev": "dev", "label": "label", "scope": "scope", "brd": "broadcast", "broadcast": "broadcast"}
FLAGS = {"use_vmac": "use_vmac"}   # words without a value


def parse_vip(value: Any, path: str, problems: Problems) -> Vip | None:
    if isinstance(value, str):
        fields = _fields_from_text(value, path, problems)
    elif isinstance(value, Mapping):
        fields = _fields_from_mapping(value, path, problems)
    else:
        problems.error(path, f"must be a string like '198.51.100.100/24 dev eth0' or a mapping, got {value!r}")
        return None
    if fields is None:
        return None
    return _build(fields, path, problems)


def _fields_from_text(text: str, path: str, problems: Problems) -> dict | None:
    words = text.split()
    if not words:
        problems.error(path, "is empty")
        return None
    fields: dict[str, Any] = {"address": words[0]}
    rest = words[1:]
    while rest:
        word = rest.pop(0)
        if word in FLAGS:
            fields[FLAGS[word]] = True
            continue
        if word not in WORDS:
            problems.error(path, f"unknown word {word!r} in {text!r} (expected dev, label, scope, brd or use_vmac)")
            return None
        if not rest:
            problems.error(path, f"{word!r} needs a value in {text!r}")
            return None
        fields[WORDS[word]] = rest.pop(0)
    return fields


def _fields_from_mapping(data: Mapping, path: str, problems: Problems) -> dict | None:
    reader = Reader(data, path, problems)
    fields = {
        "address": reader.string("address"),
        "prefix": reader.integer("prefix", None, 0, 128),
        "dev": reader.string("dev", None),
        "label": reader.string("label", None),
        "scope": reader.string("scope", None),
        "broadcast": reader.string("broadcast", None) or reader.string("brd", None),  # brd: keepalived's word
        "use_vmac": reader.boolean("use_vmac", False),
    }
    reader.finish()
    if fields["address"] is None:
        return None
    if fields["prefix"] is not None:
        fields["address"] = f"{fields['address']}/{fields['prefix']}"
    return fields


def _build(fields: dict, path: str, problems: Problems) -> Vip | None:
    text = str(fields["address"])
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        problems.error(path, f"{text!r} is not an IP address with an optional /prefix")
        return None
    ok = True
    dev, label, scope = fields.get("dev"), fields.get("label"), fields.get("scope")
    if dev is not None and (len(dev) > IFNAME_MAX or "/" in dev or " " in dev):
        problems.error(path, f"dev {dev!r} is not a valid interface name")
        ok = False
    if label is not None:
        if iface.version == 6:
            problems.error(path, "label applies to IPv4 addresses only")
            ok = False
        elif len(label) > IFNAME_MAX:
            problems.error(path, f"label {label!r} is longer than {IFNAME_MAX} characters")
            ok = False
    broadcast = fields.get("broadcast")
    if broadcast is not None:
        if iface.version == 6:
            problems.error(path, "brd applies to IPv4 addresses only")
            ok = False
        elif not _is_ipv4(broadcast):
            problems.error(path, f"brd {broadcast!r} is not an IPv4 address")
            ok = False
    if scope is not None and scope not in SCOPES:
        problems.error(path, f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        ok = False
    if not ok:
        return None
    return Vip(address=str(iface.ip), prefixlen=iface.network.prefixlen, family=iface.version,
               dev=dev, label=label, scope=scope, broadcast=fields.get("broadcast"),
               use_vmac=bool(fields.get("use_vmac")))


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def check_label_prefix(vip: Vip, interface: str, path: str, problems: Problems) -> None:
    """The kernel and iproute2 want a label to start with its device's name."""
    dev = vip.dev or interface
    if vip.label and not vip.label.startswith(dev):
        problems.error(path, f"label {vip.label!r} must start with the interface name {dev!r} (e.g. {dev}:vip)")
