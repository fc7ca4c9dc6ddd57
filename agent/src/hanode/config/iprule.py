"""virtual_rules and static_rules: keepalived's rule grammar (the words of `ip rule add`), read into a Rule. Pure.

    from 192.168.2.0/24 table 1 preference 100
    from 192.168.28.0/24 to 192.168.29.0/26 table small iif eth0 oif eth1 tos 22 fwmark 24/12 preference 39 goto 40
    to 2001:db8::/64 from 2001:db8:1::/64 table 6908 uidrange 10000-19999 ipproto udp sport 10-20 dport 20-30

As keepalived does: exactly one action (table/lookup, goto, nop, blackhole, unreachable, prohibit, l3mdev), the
protocol keepalived (18) unless no_track, goto only with a preference below its target, realms and suppressors
only with a table. A rule without a preference gets one from 16384 down (keepalived's numbering, with its warning);
hanode numbers them at start (hanode.vrrp.routes_plan), static rules first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from hanode.config.iproute import REFUSED, U32, WordError, prefix, read_lines
from hanode.config.ipnames import RTPROT_KEEPALIVED, named, realms, unsigned

ACTIONS = ("table", "goto", "nop", "blackhole", "unreachable", "prohibit")
IP_PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58,
                "ipv6-icmp": 58, "ospf": 89, "pim": 103, "vrrp": 112, "sctp": 132, "udplite": 136}
FIRST_PRIORITY = 16384
Names = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class Rule:
    family: int
    action: str                     # one of ACTIONS
    table: int | None = None
    goto: int | None = None
    priority: int | None = None     # None: numbered at start, as keepalived does
    source: str | None = None       # from
    destination: str | None = None  # to
    invert: bool = False            # not
    tos: int = 0
    fwmark: int | None = None
    fwmask: int | None = None
    realms: int | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    iif: str | None = None
    oif: str | None = None
    tunnel_id: int | None = None
    uidrange: tuple[int, int] | None = None
    l3mdev: bool = False
    protocol: int = RTPROT_KEEPALIVED
    ipproto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    no_track: bool = False
    text: str = field(default="", compare=False)


def _range(word: str, what: str, limit: int, sep: str = "-") -> tuple[int, int]:
    low, _sep, high = word.partition(sep)
    start = unsigned(low, limit, what, base=10)
    end = unsigned(high, limit, what, base=10) if high else start
    if end < start:
        raise WordError(f"{what} {word}: the end is below the start")
    return start, end


def _fwmark(word: str) -> tuple[int, int | None]:
    mark, slash, mask = word.partition("/")
    return unsigned(mark, U32, "fwmark"), unsigned(mask, U32, "fwmark mask") if slash else None


def _ipproto(word: str) -> int:
    if word.lower() in IP_PROTOCOLS:
        return IP_PROTOCOLS[word.lower()]
    return unsigned(word, 255, "ipproto", base=10)


class _RuleReader:
    def __init__(self, text: str, names: Names | None):
        self.words, self.i, self.names = text.split(), 0, names
        self.family: int | None = None
        self.fields: dict = {}
        self.protocol_given: int | None = None
        self.table_option = False

    def take(self, what: str = "a value") -> str:
        if self.i >= len(self.words):
            raise WordError(f"{self.words[self.i - 1]!r} needs {what}")
        self.i += 1
        return self.words[self.i - 1]

    def family_is(self, family: int, what: str) -> None:
        if self.family is None:
            self.family = family
        elif self.family != family:
            raise WordError(f"{what} is IPv{family} but the rule is IPv{self.family} (keepalived refuses mixing)")

    def action(self, action: str) -> None:
        if "action" in self.fields:
            raise WordError(f"{action} and {self.fields['action']}: a rule has one action "
                            "(table, goto, nop, blackhole, unreachable, prohibit or l3mdev)")
        self.fields["action"] = action

    def address(self, key: str, word: str) -> None:
        network, family = prefix(self.take("a prefix"), word)
        if family is not None:
            self.family_is(family, f"{word} {network}")
        self.fields[key] = network

    def word(self, word: str) -> None:
        f, names = self.fields, self.names
        if word in ("inet", "inet6"):
            self.family_is(4 if word == "inet" else 6, word)
        elif word == "from":
            self.address("source", word)
        elif word == "to":
            self.address("destination", word)
        elif word in ("table", "lookup"):
            f["table"] = named("table", self.take(), names)
            if f["table"] == 0:
                raise WordError("table 0 is not valid for a rule")
            self.action("table")
        elif word == "not":
            f["invert"] = True
        elif word in ("preference", "order", "priority", "pref", "prio"):
            f["priority"] = unsigned(self.take(), U32, word)
        elif word in ("tos", "dsfield"):
            f["tos"] = named("dsfield", self.take(), names)
        elif word == "fwmark":
            f["fwmark"], f["fwmask"] = _fwmark(self.take())
        elif word == "realms":
            f["realms"] = realms(self.take(), names)
            self.table_option = True
            self.family_is(4, "realms")
        elif word in ("suppress_prefixlength", "sup_pl"):
            f["suppress_prefixlength"] = unsigned(self.take(), 0x7FFFFFFF, word, base=10)
            self.table_option = True
        elif word in ("suppress_ifgroup", "sup_group"):
            value = self.take()
            f["suppress_ifgroup"] = 0 if value == "default" else unsigned(value, 0x7FFFFFFF, word)
            self.table_option = True
        elif word in ("dev", "iif"):
            f["iif"] = self.take("an interface")
        elif word == "oif":
            f["oif"] = self.take("an interface")
        elif word == "tunnel-id":
            f["tunnel_id"] = unsigned(self.take(), 0xFFFFFFFFFFFFFFFF, word, base=10)
        elif word == "uidrange":
            f["uidrange"] = _range(self.take(), word, U32)
        elif word == "l3mdev":
            f["l3mdev"] = True
            self.action("table")
        elif word == "protocol":
            self.protocol_given = named("protocol", self.take(), names)
        elif word == "ipproto":
            f["ipproto"] = _ipproto(self.take())
        elif word in ("sport", "dport"):
            f[word] = _range(self.take(), word, 0xFFFF)
        elif word == "no_track":
            f["no_track"] = True
        elif word in ("track_group", "vrf"):
            raise WordError(REFUSED[word])
        else:
            self.action_word(word)

    def action_word(self, word: str) -> None:
        if word == "type":
            word = self.take("an action")
        if word == "goto":
            self.fields["goto"] = unsigned(self.take(), U32, "goto", base=10)
        elif word not in ("nop", "blackhole", "unreachable", "prohibit"):
            raise WordError(f"unknown rule word {word!r}")
        self.action(word)


def parse_rule(text: str, names: Names | None = None) -> tuple[Rule, list[str]]:
    """The rule and warnings; raises WordError."""
    reader, warnings = _RuleReader(text, names), []
    while reader.i < len(reader.words):
        reader.word(reader.take())
    f = reader.fields
    if "action" not in f:
        raise WordError("no action (table, goto, nop, blackhole, unreachable, prohibit or l3mdev): keepalived "
                        "ignores such a rule")
    if f["action"] == "goto" and (f.get("priority") is None or f["priority"] >= f["goto"]):
        raise WordError(f"goto {f['goto']} needs a preference below it")
    if reader.table_option and f["action"] != "table":
        raise WordError("realms and suppress_* need a table action")
    if f.get("l3mdev") and "table" in f:
        raise WordError("l3mdev takes no table")
    if reader.protocol_given is not None:
        if f.get("no_track"):
            f["protocol"] = reader.protocol_given
        elif reader.protocol_given != RTPROT_KEEPALIVED:
            warnings.append(f"protocol {reader.protocol_given} is replaced by keepalived (18), as keepalived does "
                            "for a tracked rule (add no_track to keep it)")
    if f.get("priority") is None:
        warnings.append(f"has no preference: hanode numbers it from {FIRST_PRIORITY} down, as keepalived does, "
                        "which is probably not what you want: give it one")
    return Rule(family=reader.family or 4, text=" ".join(text.split()), **f), warnings


def read_rules(values: list, path: str, error: Callable[[str, str], None], warn: Callable[[str, str], None],
               names: Names | None = None) -> tuple[Rule, ...]:
    return read_lines(values, path, error, warn, parse_rule, "rule", "from 198.51.100.0/24 table 100 preference 100",
                      names)
