"""virtual_server_groups: keepalived's `virtual_server_group NAME { ... }` in YAML, resolved into the kernel
services of each `virtual_servers[]` entry that names the group (`group: NAME`).

    virtual_server_groups:
      web:
        - {address: 198.51.100.10-12, port: 80}      # 198.51.100.10, .11 and .12 (keepalived: 10.0.0.1-10 80)
        - {address: 198.51.100.64/30, port: 80}      # .64 to .67
        - {address: "2001:db8::10-1f", port: 80}     # IPv6: the last 16 bits, in hex, as keepalived reads them
        - {fwmark: 7, family: inet6}                 # family: inet | inet6 (default: the virtual server's)

A range is one kernel service per address, as keepalived's ipvs_group_range_cmd adds them. keepalived steps
only the last octet (IPv4) or the last 16 bits (IPv6) of a range: a range that spans more loops for ever there
(IPv4) or yields other addresses than written (IPv6); hanode refuses it, naming the entry.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

from hanode.config.problems import Problems, Reader, join
from hanode.lvs.model import GroupMember

FAMILIES = {"inet": 4, "inet6": 6}
STEP_BITS = {4: 8, 6: 16}        # what keepalived's range loop steps: the last octet / the last 16-bit group


def parse_groups(data: Mapping, path: str, problems: Problems) -> dict[str, tuple[dict, ...]]:
    """name -> its entries ({address, family, port} or {fwmark, family}); an entry with a problem is left out."""
    groups: dict[str, tuple[dict, ...]] = {}
    for name, entries in data.items():
        gpath = join(path, name)
        if not isinstance(entries, list) or not entries:
            problems.error(gpath, "must be a non-empty list of entries ({address, port} or {fwmark})")
            continue
        parsed = tuple(e for e in (_entry(v, join(gpath, i), problems) for i, v in enumerate(entries)) if e)
        if parsed:
            groups[str(name)] = parsed
    return groups


def _entry(value: Any, path: str, problems: Problems) -> dict | None:
    reader = Reader(value, path, problems)
    if not reader.ok:
        return None
    fwmark = reader.integer("fwmark", None, 1, 0xFFFFFFFF)
    text = reader.string("address", None)
    port = reader.integer("port", 0, 0, 65535)
    family_name = reader.string("family", None, tuple(FAMILIES))
    reader.finish()
    if (fwmark is None) == (text is None):
        problems.error(path, "give either address (and port) or fwmark")
        return None
    if fwmark is not None:
        if reader.has("port"):
            problems.error(reader.at("port"), "a fwmark entry has no port")
        return {"fwmark": fwmark, "family": FAMILIES.get(family_name or "")}
    try:
        addresses = expand_range(text)
    except ValueError as exc:
        problems.error(reader.at("address"), str(exc))
        return None
    family = ipaddress.ip_address(addresses[0]).version
    if family_name is not None and FAMILIES[family_name] != family:
        problems.error(reader.at("family"), f"{family_name} does not match {text}")
    return {"addresses": addresses, "family": family, "port": port}


def expand_range(text: str) -> tuple[str, ...]:
    """'198.51.100.1', '198.51.100.1-10', '198.51.100.1-198.51.100.10', '198.51.100.0/30', '2001:db8::1-f'
    -> every address, in order. Raises ValueError saying what is wrong."""
    text = text.strip()
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a network with its host bits zero ({exc})") from None
        first, last = net.network_address, net.broadcast_address
    else:
        start_text, dash, end_text = text.partition("-")
        try:
            first = ipaddress.ip_address(start_text)
        except ValueError:
            raise ValueError(f"{start_text!r} is not an IP address") from None
        last = _range_end(text, first, end_text) if dash else first
    bits = STEP_BITS[first.version]
    if int(first) >> bits != int(last) >> bits:
        raise ValueError(f"{text}: a range may only vary the last {'octet' if bits == 8 else '16 bits'} "
                         "(keepalived steps only those and never reaches the end of a longer range)")
    return tuple(str(ipaddress.ip_address(n)) for n in range(int(first), int(last) + 1))


def _range_end(text: str, first, end_text: str):
    """The end of `A-E`: a whole address, or the last octet in decimal (IPv4) / last 16 bits in hex (IPv6)."""
    if ("." if first.version == 4 else ":") in end_text:
        try:
            last = ipaddress.ip_address(end_text)
        except ValueError:
            raise ValueError(f"{text}: {end_text!r} is not an IP address") from None
        if last.version != first.version:
            raise ValueError(f"{text}: the range's ends are of different families")
        if last < first:
            raise ValueError(f"{text}: the range ends before it starts")
        return last
    base = 10 if first.version == 4 else 16
    try:
        end = int(end_text, base)
    except ValueError:
        raise ValueError(f"{text}: {end_text!r} is not a {'decimal' if base == 10 else 'hex'} number") from None
    bits = STEP_BITS[first.version]
    if end >= 1 << bits:
        raise ValueError(f"{text}: the range end {end_text} is too large (at most {(1 << bits) - 1:{'d' if base == 10 else 'x'}})")
    low = int(first) & ((1 << bits) - 1)
    if low >= end:
        raise ValueError(f"{text}: the range end is not greater than its start (keepalived skips it)")
    return ipaddress.ip_address(int(first) - low + end)


def members_of(entries: tuple[dict, ...], default_family: int) -> tuple[GroupMember, ...]:
    """The group's kernel services for one virtual server: a fwmark entry without family takes the virtual
    server's (keepalived: the entry's family, else the virtual server's, else IPv4)."""
    members = []
    for entry in entries:
        if "fwmark" in entry:
            members.append(GroupMember(entry["family"] or default_family, fwmark=entry["fwmark"]))
        else:
            members.extend(GroupMember(entry["family"], address, entry["port"]) for address in entry["addresses"])
    return tuple(members)
