"""The names ip-route(8) and keepalived accept for numbers (tables, protocols, scopes, route types, DS fields,
realms), and the number readers the route and rule grammars share. Pure: the names iproute2 ships are built in;
a host's own ones (e.g. a table named in /etc/iproute2/rt_tables) come in as `extra` (read on the host by
hanode.lvs.caps, passed in as HostCaps.iproute2)."""

from __future__ import annotations

from typing import Mapping

TABLES = {"unspec": 0, "default": 253, "main": 254, "local": 255}
PROTOCOLS = {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9, "mrt": 10,
             "zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15, "dhcp": 16, "keepalived": 18,
             "babel": 42, "openr": 99, "bgp": 186, "isis": 187, "ospf": 188, "rip": 189, "eigrp": 192}
SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
ROUTE_TYPES = {"unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5, "blackhole": 6,
               "unreachable": 7, "prohibit": 8, "throw": 9, "nat": 10, "xresolve": 11}
DSFIELDS = {"default": 0x0, "AF11": 0x28, "AF12": 0x30, "AF13": 0x38, "AF21": 0x48, "AF22": 0x50, "AF23": 0x58,
            "AF31": 0x68, "AF32": 0x70, "AF33": 0x78, "AF41": 0x88, "AF42": 0x90, "AF43": 0x98, "CS1": 0x20,
            "CS2": 0x40, "CS3": 0x60, "CS4": 0x80, "CS5": 0xA0, "CS6": 0xC0, "CS7": 0xE0, "EF": 0xB8}
REALMS = {"cosmos": 0}
BUILTIN = {"table": TABLES, "protocol": PROTOCOLS, "scope": SCOPES, "dsfield": DSFIELDS, "realm": REALMS}
FILES = {"table": "rt_tables", "protocol": "rt_protos", "scope": "rt_scopes", "dsfield": "rt_dsfield",
         "realm": "rt_realms"}
LIMITS = {"table": 0xFFFFFFFF, "protocol": 255, "scope": 255, "dsfield": 255, "realm": 0xFFFF}

RTPROT_KEEPALIVED = 18


class WordError(ValueError):
    """A word of a route or rule that cannot be read; the message says why."""


def unsigned(word: str, limit: int, what: str, base: int = 0) -> int:
    """A whole number 0..limit (decimal, or 0x hex as strtoul reads it)."""
    try:
        value = int(word, base)
    except ValueError:
        raise WordError(f"{what} {word!r} is not a whole number") from None
    if not 0 <= value <= limit:
        raise WordError(f"{what} {word} is out of range 0..{limit}")
    return value


def named(kind: str, word: str, extra: Mapping[str, Mapping[str, int]] | None = None) -> int:
    """A table / protocol / scope / DS field / realm given by name or number."""
    names = dict(BUILTIN[kind])
    names.update((extra or {}).get(kind, {}))
    if word in names:
        return names[word]
    try:
        return unsigned(word, LIMITS[kind], kind)
    except WordError:
        known = ", ".join(sorted(names))
        raise WordError(f"{kind} {word!r} is neither a number nor a name in /etc/iproute2/{FILES[kind]} "
                        f"(known: {known})") from None


def realms(word: str, extra: Mapping[str, Mapping[str, int]] | None = None) -> int:
    """`[FROM/]TO` as ip-route(8) reads it: FROM in the upper 16 bits."""
    if "/" in word:
        source, dest = word.split("/", 1)
        return named("realm", source, extra) << 16 | named("realm", dest, extra)
    return named("realm", word, extra)
