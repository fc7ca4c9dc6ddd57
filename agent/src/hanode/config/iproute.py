"""virtual_routes and static_routes: keepalived's route grammar (the words of `ip route add`), read into a Route.
Pure: a route string in, a Route or problems naming the word out.

    192.168.110.0/24 via 192.168.200.254 dev eth1 table 100 metric 5
    src 192.168.100.1 to 192.168.109.0/24 via 192.168.200.254 dev eth1 onlink
    blackhole 192.168.114.0/24
    192.168.100.0/24 table 6909 nexthop via 192.168.101.1 dev eth1 weight 1 nexthop via 192.168.101.2 weight 2

As keepalived does: the protocol is keepalived (18) unless no_track, the table main, the scope global, and the
route is prepended (the kernel's default) unless `add` or `append` says otherwise. Where keepalived logs and goes
on, hanode refuses with the reason (a destination with host bits set, `as to`, `encap`, `vrf`, `ttl-propagate`)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from hanode.config.ipnames import ROUTE_TYPES, RTPROT_KEEPALIVED, WordError, named, realms, unsigned

U32 = 0xFFFFFFFF
# metric words: (RTAX attribute name, whether `lock` may precede the value, reader)
TIME_METRICS = {"rtt": 8, "rttvar": 4, "rto_min": 1}     # kernel units per millisecond
PLAIN_METRICS = {"mtu": True, "advmss": True, "reordering": True, "cwnd": True, "ssthresh": True,
                 "window": False, "hoplimit": False, "initcwnd": False, "initrwnd": False}
_TIME = re.compile(r"(\d+(?:\.\d*)?)(ms|msec|msecs|s|sec|secs)?")
PREFS = {"low": 3, "medium": 0, "high": 1}
REFUSED = {
    "encap": "encap (lightweight tunnel) routes are not supported by hanode",
    "vrf": "VRF is not supported by hanode (run the agent inside the VRF's namespace or use table)",
    "as": "'as [to]' is for MPLS routes, which hanode does not manage (keepalived ignores it)",
    "ttl-propagate": "ttl-propagate is for MPLS routes, which hanode does not manage",
    "track_group": "track_group is not supported by hanode (tracking groups are not carried)",
}
Names = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class NextHop:
    via: str | None = None
    via_family: int | None = None   # set when the gateway is of the other family (`via inet6 ...`)
    dev: str | None = None
    weight: int = 1                 # 1..256, as written
    onlink: bool = False
    realms: int | None = None


@dataclass(frozen=True)
class Route:
    family: int
    dst: str                        # a network: "198.51.100.0/24", "0.0.0.0/0"
    type: str = "unicast"
    src: str | None = None          # preferred source address (RTA_PREFSRC)
    via: str | None = None
    via_family: int | None = None
    source_prefix: str | None = None    # `from`: IPv6 source routing (RTA_SRC)
    tos: int = 0
    table: int = 254
    protocol: int = RTPROT_KEEPALIVED
    scope: int = 0
    metric: int | None = None
    dev: str | None = None
    onlink: bool = False
    metrics: tuple[tuple[str, int], ...] = ()   # (RTAX name, value in kernel units), sorted
    locked: tuple[str, ...] = ()
    congctl: str | None = None
    realms: int | None = None
    expires: int | None = None
    pref: int | None = None
    mode: str = "prepend"           # prepend (the kernel's default, keepalived's), add, append
    nexthops: tuple[NextHop, ...] = ()
    no_track: bool = False
    text: str = field(default="", compare=False)

    def interfaces(self) -> set[str]:
        return {name for name in [self.dev, *(h.dev for h in self.nexthops)] if name}


class _Words:
    def __init__(self, words: list[str]):
        self.words, self.i = words, 0

    def more(self) -> bool:
        return self.i < len(self.words)

    def peek(self) -> str | None:
        return self.words[self.i] if self.more() else None

    def take(self, what: str = "a value") -> str:
        if not self.more():
            before = self.words[self.i - 1] if self.i else "the route"
            raise WordError(f"{before!r} needs {what}")
        self.i += 1
        return self.words[self.i - 1]


class _RouteBuilder:
    """The route being read: its fields so far, and the family its addresses fix."""

    def __init__(self, names: Names | None):
        self.names = names
        self.family: int | None = None
        self.fields: dict = {}
        self.metrics: dict[str, int] = {}
        self.locked: list[str] = []
        self.nexthops: list[NextHop] = []
        self.protocol_given: int | None = None

    def family_is(self, family: int, what: str) -> None:
        if self.family is None:
            self.family = family
        elif self.family != family:
            raise WordError(f"{what} is IPv{family} but the route is IPv{self.family} (keepalived refuses mixing)")

    def address(self, text: str, what: str) -> str:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise WordError(f"{what} {text!r} is not an IP address") from None
        self.family_is(address.version, f"{what} {text}")
        return str(address)


def prefix(text: str, what: str) -> tuple[str | None, int | None]:
    """(network text, family) of `A[/N]`; (None, None) for default/any/all (either family)."""
    if text in ("default", "any", "all"):
        return None, None
    if text == "default6":
        return "::/0", 6
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(text, strict=False)
            raise WordError(f"{what} {text} has host bits set (the kernel refuses it): did you mean {fixed}?") from None
        raise WordError(f"{what} {text!r} is not an address or prefix") from None
    return str(network), network.version


def _lock_then(words: _Words, b: _RouteBuilder, name: str, lockable: bool) -> str:
    word = words.take()
    if lockable and word == "lock":
        b.locked.append(name)
        word = words.take()
    return word


def _rtt(word: str, per_ms: int) -> int:
    """keepalived's get_time_rtt: `N` is in kernel units, `Nms` and `Ns` are converted."""
    match = _TIME.fullmatch(word.lower())
    if match is None:
        raise WordError(f"time {word!r} is not N, Nms or Ns")
    number, unit = match.groups()
    if not unit:
        return unsigned(number, U32, "time", base=10)
    scale = 1 if unit.startswith("m") else 1000
    return round(float(number) * scale * per_ms)


def _via(words: _Words, b: _RouteBuilder) -> tuple[str, int | None]:
    word = words.take("an address")
    family = None
    if word in ("inet", "inet6"):
        family = 4 if word == "inet" else 6
        word = words.take("an address")
    try:
        address = ipaddress.ip_address(word)
    except ValueError:
        raise WordError(f"via {word!r} is not an IP address") from None
    if family is not None and family != address.version:
        raise WordError(f"via {word} is not an inet{'6' if family == 6 else ''} address")
    if family is None or b.family in (None, address.version):
        b.family_is(address.version, f"via {word}")
        return str(address), None
    return str(address), address.version      # RTA_VIA: a gateway of the other family


def _metric_word(word: str, words: _Words, b: _RouteBuilder) -> bool:
    if word in PLAIN_METRICS:
        b.metrics[word] = unsigned(_lock_then(words, b, word, PLAIN_METRICS[word]), U32, word)
    elif word in TIME_METRICS:
        b.metrics[word] = _rtt(_lock_then(words, b, word, True), TIME_METRICS[word])
    elif word == "quickack":
        b.metrics[word] = unsigned(words.take(), 1, word)
    elif word == "fastopen_no_cookie":
        b.metrics[word] = unsigned(words.take(), 1, word)
    elif word == "features":
        feature = words.take("a feature")
        if feature != "ecn":
            raise WordError(f"feature {feature!r} is not supported (keepalived knows only ecn)")
        b.metrics["features"] = 1
    elif word == "congctl":
        b.fields["congctl"] = _lock_then(words, b, "congctl", True)
    else:
        return False
    return True


def _field_word(word: str, words: _Words, b: _RouteBuilder) -> bool:
    f, names = b.fields, b.names
    if word == "src":
        f["src"] = b.address(words.take("an address"), "src")
    elif word in ("via", "gw"):
        f["via"], f["via_family"] = _via(words, b)
    elif word == "from":
        network, family = prefix(words.take("a prefix"), "from")
        if family != 6:
            raise WordError("from (a source prefix) is IPv6 only, as in keepalived")
        b.family_is(6, "from")
        f["source_prefix"] = network
    elif word in ("tos", "dsfield"):
        f["tos"] = named("dsfield", words.take(), names)
    elif word == "table":
        f["table"] = named("table", words.take(), names)
    elif word in ("protocol", "proto"):
        b.protocol_given = named("protocol", words.take(), names)
    elif word == "scope":
        f["scope"] = named("scope", words.take(), names)
    elif word in ("metric", "priority", "preference"):
        f["metric"] = unsigned(words.take(), U32, word)
    elif word in ("dev", "oif"):
        f["dev"] = words.take("an interface")
    elif word == "onlink":
        f["onlink"] = True
    elif word == "realms":
        b.family_is(4, "realms")
        f["realms"] = realms(words.take(), names)
    elif word == "expires":
        b.family_is(6, "expires")
        f["expires"] = unsigned(words.take(), U32, word)
    elif word == "pref":
        b.family_is(6, "pref")
        value = words.take()
        f["pref"] = PREFS[value] if value in PREFS else unsigned(value, 255, word)
    elif word in ("add", "prepend", "append"):
        f["mode"] = word
    elif word == "no_track":
        f["no_track"] = True
    else:
        return _metric_word(word, words, b)
    return True


def _or_word(words: _Words, b: _RouteBuilder) -> None:
    """keepalived's deprecated `via A or B`: two next hops."""
    if b.nexthops:
        raise WordError("'or' given twice")
    first = b.fields.pop("via", None)
    b.fields.pop("via_family", None)
    if first is None:
        raise WordError("'or' needs a 'via' before it")
    second = b.address(words.take("an address"), "or")
    b.nexthops = [NextHop(via=first), NextHop(via=second)]


def _nexthops(words: _Words, b: _RouteBuilder) -> None:
    while words.peek() == "nexthop":
        words.take()
        hop: dict = {}
        while words.more() and words.peek() != "nexthop":
            word = words.take()
            if word == "via":
                hop["via"], hop["via_family"] = _via(words, b)
            elif word == "dev":
                hop["dev"] = words.take("an interface")
            elif word == "weight":
                hop["weight"] = unsigned(words.take(), 256, "weight")
                if hop["weight"] == 0:
                    raise WordError("nexthop weight 0 is invalid (1..256)")
            elif word == "onlink":
                hop["onlink"] = True
            elif word == "realms":
                b.family_is(4, "realms")
                hop["realms"] = realms(words.take(), b.names)
            elif word in REFUSED:
                raise WordError(REFUSED[word])
            else:
                raise WordError(f"unknown nexthop word {word!r} (expected via, dev, weight, onlink or realms)")
        b.nexthops.append(NextHop(**hop))
    if words.more():
        raise WordError(f"{words.peek()!r} after the next hops")


def _destination(word: str, words: _Words, b: _RouteBuilder) -> None:
    if word == "to":
        word = words.take("a destination")
    if word in ROUTE_TYPES:
        b.fields["type"] = word
        word = words.take("a destination")
    if "dst" in b.fields:
        raise WordError(f"{word!r} is not a route keyword (the destination is already {b.fields['dst'] or 'default'})")
    network, family = prefix(word, "destination")
    if family is not None:
        b.family_is(family, f"destination {word}")
    b.fields["dst"] = network


def parse_route(text: str, names: Names | None = None) -> tuple[Route, list[str]]:
    """The route, and warnings (keepalived's notes that do not stop it); raises WordError."""
    words, b, warnings = _Words(text.split()), _RouteBuilder(names), []
    while words.more():
        word = words.take()
        if word in ("inet", "inet6"):
            b.family_is(4 if word == "inet" else 6, word)
        elif word in REFUSED:
            raise WordError(REFUSED[word])
        elif word == "or":
            _or_word(words, b)
        elif word == "nexthop":
            words.i -= 1
            _nexthops(words, b)
        elif not _field_word(word, words, b):
            _destination(word, words, b)
    if "dst" not in b.fields:
        raise WordError("a route needs a destination (keepalived refuses it)")
    if "gw" in text.split():
        warnings.append("'gw' is deprecated in keepalived: write 'via'")
    family = b.family or 4
    fields = dict(b.fields)
    fields["dst"] = fields["dst"] or ("0.0.0.0/0" if family == 4 else "::/0")
    if b.protocol_given is not None:
        if fields.get("no_track"):
            fields["protocol"] = b.protocol_given
        elif b.protocol_given != RTPROT_KEEPALIVED:
            warnings.append(f"protocol {b.protocol_given} is replaced by keepalived (18), as keepalived does for a "
                            "tracked route (add no_track to keep it)")
    hops = tuple(b.nexthops)
    if hops and fields.get("dev"):    # `via A or B dev X`: the kernel wants the device on each hop
        hops = tuple(h if h.dev else replace(h, dev=fields["dev"])
                     for h in hops)
        del fields["dev"]
    route = Route(family=family, metrics=tuple(sorted(b.metrics.items())), locked=tuple(b.locked),
                  nexthops=hops, text=" ".join(text.split()), **fields)
    return route, warnings


def read_lines(values: list, path: str, error: Callable[[str, str], None], warn: Callable[[str, str], None],
               parse: Callable, kind: str, example: str, names: Names | None = None) -> tuple:
    """A list of route or rule strings, each read by `parse` (each problem at path[i]); one given twice is refused
    (a rule without a preference may repeat: each gets its own number)."""
    found: list = []
    for i, value in enumerate(values):
        where = f"{path}[{i}]"
        if not isinstance(value, str) or not value.strip():
            error(where, f"must be a {kind} like {example!r}, got {value!r}")
            continue
        try:
            item, warnings = parse(value, names)
        except WordError as exc:
            error(where, f"{exc} in {value!r}")
            continue
        for message in warnings:
            warn(where, message)
        if item in found and getattr(item, "priority", 0) is not None:
            error(where, f"is the same {kind} as {path}[{found.index(item)}]")
            continue
        found.append(item)
    return tuple(found)


def read_routes(values: list, path: str, error: Callable[[str, str], None], warn: Callable[[str, str], None],
                names: Names | None = None) -> tuple[Route, ...]:
    return read_lines(values, path, error, warn, parse_route, "route", "198.51.100.0/24 via 198.51.100.254 dev eth0",
                      names)
