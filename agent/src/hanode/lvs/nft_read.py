"""Reading hanode's nftables table back over netlink (pure: request bytes out, reply bytes in, small tuples out).

The backend's dump (nft.py) asks the kernel, on its NETLINK_NETFILTER socket, for what `nft -j list table`
used to print, and decodes each reply message as it arrives into just what the planner and the backend's
bookkeeping need: no `nft` process, no JSON document (for 8,000 destinations ~4 MB of text, ~10x the state
made from it, which left the checker ~11 MB larger: docs/benchmarks.md, "Checker memory").

    NFT_MSG_GETGEN                 the ruleset generation, before and after (changed: the dump is done again)
    NFT_MSG_GETTABLE  ip hanode    does the family's table exist (ENOENT: no)
    NFT_MSG_GETSETELEM (dump)      services (addr . proto . port : jump chain), nodest, w_<chain>, d_<chain>
    NFT_MSG_GETRULE    (dump)      every rule of the table: chain, handle, comment (user data), expressions

TableReader collects one family's replies and makes the same KernelState and Slots that nft_parse.py makes
from the JSON (the integration test test_lvs_nft_read.py compares both on real tables). Element and rule
layouts are nftnl.py's (what the backend writes).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import struct
from itertools import repeat
from operator import itemgetter, le, lt, sub
from typing import Iterator, Mapping

from hanode.lvs import nftnl
from hanode.lvs.kernel import Dest, DestKey, Entry, KernelState, Service, ServiceKey
from hanode.lvs.nft_layout import FAMILIES, SCHEDULERS, TABLE, NftError, Slots
from hanode.lvs.nft_parse import check_slots
from hanode.lvs.slots import SlotError, SlotTable

NLM_F_DUMP = 0x300
NLM_F_DUMP_INTR = 0x10
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE = 0, 1
NFT_MSG_NEWGEN, NFT_MSG_GETGEN = 15, 16
TABLE_NAME = 1
GEN_ID = 1
SET_ELEM_LIST_ELEMENTS = nftnl.ELEM_LIST_ELEMENTS
DATA_VERDICT = 2
VERDICT_CODE, VERDICT_CHAIN = 1, 2
NFT_JUMP = -3
NAT_TYPE, NFT_NAT_DNAT = 1, 1
NG_MODULUS, HASH_MODULUS = 2, 4
log = logging.getLogger("hanode.lvs")

PROTOCOL_NAMES = {number: name for name, number in nftnl.PROTO.items()}
_U32 = struct.Struct("!I")
_HOST_U32 = struct.Struct("=I")
_PORT = struct.Struct("!H")
_HH = struct.Struct("=HH")
_NAT_DEFAULTS = ("NAT", 0, 0, 0, 0, 0)     # a Dest's fields after the weight, as nftables holds them


# ----- requests -----------------------------------------------------------------------------------------

def gen_request(seq: int) -> bytes:
    return nftnl.message(nftnl.NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, nftnl.NLM_F_REQUEST, seq, 0, b"")


def table_request(seq: int, family: int) -> bytes:
    return nftnl.message(nftnl.NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE, nftnl.NLM_F_REQUEST, seq,
                         nftnl.NFPROTO[family], nftnl.string(TABLE_NAME, TABLE))


def elements_request(seq: int, family: int, set_name: str) -> bytes:
    attrs = nftnl.string(nftnl.ELEM_LIST_TABLE, TABLE) + nftnl.string(nftnl.ELEM_LIST_SET, set_name)
    return nftnl.message(nftnl.nft_type("getsetelem"), nftnl.NLM_F_REQUEST | NLM_F_DUMP, seq,
                         nftnl.NFPROTO[family], attrs)


def rules_request(seq: int, family: int) -> bytes:
    return nftnl.message(nftnl.nft_type("getrule"), nftnl.NLM_F_REQUEST | NLM_F_DUMP, seq, nftnl.NFPROTO[family],
                         nftnl.string(nftnl.RULE_TABLE, TABLE))


def gen_id(reply: nftnl.Reply) -> int:
    """The generation of an NFT_MSG_NEWGEN answer."""
    try:
        return _U32.unpack(nftnl.parse_attrs(reply.payload, 4)[GEN_ID][:4])[0]
    except (KeyError, struct.error) as exc:
        raise nftnl.NftnlError(f"NEWGEN message without its generation ({exc})") from exc


# ----- attribute walking ----------------------------------------------------------------------------------

def _find(data: bytes, start: int, end: int, kind: int) -> tuple[int, int] | None:
    for k, s, e in nftnl.walk_attrs(data, start, end):
        if k == kind:
            return s, e
    return None


def elements(reply: nftnl.Reply) -> Iterator[tuple[bytes, bytes | None, str | None, int]]:
    """(key, data value, jump target, flags) of each element of an NFT_MSG_NEWSETELEM message. One flat loop
    per element (a dump of 8,000 destinations is 24,000 elements: no generator per attribute level)."""
    data = reply.payload
    found = _find(data, 4, len(data), SET_ELEM_LIST_ELEMENTS)
    if found is None:
        return
    offset, end = found
    unpack = _HH.unpack_from
    while offset + 4 <= end:
        length, _kind = unpack(data, offset)
        if length < 4 or offset + length > end:
            raise nftnl.NftnlError(f"set element at byte {offset} claims {length} bytes")
        at, stop = offset + 4, offset + length
        offset += (length + 3) & ~3
        key = value = target = None
        flags = 0
        while at + 4 <= stop:
            alen, kind = unpack(data, at)
            if alen < 4 or at + alen > stop:
                raise nftnl.NftnlError(f"attribute at byte {at} claims {alen} bytes")
            kind &= 0x3FFF
            if kind == nftnl.ELEM_KEY or kind == nftnl.ELEM_DATA:     # a nest of one NFTA_DATA_* attribute
                ilen, inner = unpack(data, at + 4) if alen >= 8 else (0, 0)
                if ilen < 4 or ilen + 4 > alen:
                    raise nftnl.NftnlError(f"set element data at byte {at} is not a nest of one value")
                inner &= 0x3FFF
                if inner == nftnl.DATA_VALUE:
                    if kind == nftnl.ELEM_KEY:
                        key = data[at + 8:at + 4 + ilen]
                    else:
                        value = data[at + 8:at + 4 + ilen]
                elif inner == DATA_VERDICT and kind == nftnl.ELEM_DATA:
                    target = _jump_target(data, at + 8, at + 4 + ilen)
            elif kind == nftnl.ELEM_FLAGS and alen >= 8:
                flags = _U32.unpack_from(data, at + 4)[0]
            at += (alen + 3) & ~3
        if key is None:
            raise nftnl.NftnlError("set element without a key")
        yield key, value, target, flags


def _hh(length: int, kind: int) -> bytes:
    return re.escape(_HH.pack(length, kind))


@functools.lru_cache(maxsize=4)
def _layouts(family: int) -> dict[str, tuple[re.Pattern, re.Pattern]]:
    """The element layouts the kernel dumps for hanode's maps, as regular expressions over the attribute
    bytes (the values as groups): {"slots": d_ map start | end, "weights": w_ map}, each (one element, a
    whole run of them)."""
    size = (4 if family == 4 else 16) + 4                # address . port, padded
    end = (_hh(24, 1) + _hh(12, nftnl.ELEM_KEY) + _hh(8, nftnl.DATA_VALUE) + b"(.{4})"
           + _hh(8, nftnl.ELEM_FLAGS) + re.escape(_U32.pack(nftnl.SET_ELEM_INTERVAL_END)))
    start = (_hh(24 + size, 1) + _hh(12, nftnl.ELEM_KEY) + _hh(8, nftnl.DATA_VALUE) + b"(.{4})"
             + _hh(8 + size, nftnl.ELEM_DATA) + _hh(4 + size, nftnl.DATA_VALUE) + b"(.{%d})" % size)
    weight = (_hh(24 + size, 1) + _hh(8 + size, nftnl.ELEM_KEY) + _hh(4 + size, nftnl.DATA_VALUE)
              + b"(.{%d})" % size + _hh(12, nftnl.ELEM_DATA) + _hh(8, nftnl.DATA_VALUE) + b"(.{4})")
    out = {}
    for name, one in (("slots", end + b"|" + start), ("weights", weight)):
        out[name] = (re.compile(one, re.DOTALL), re.compile(b"(?:" + one + b")*", re.DOTALL))
    return out


def value_elements(reply: nftnl.Reply, family: int, layout: str) -> Iterator[tuple[bytes, bytes | None, None, int]]:
    """elements() of a w_ ("weights") or d_ ("slots") map's message, at C speed when every element has the
    layout the kernel dumps for them (checked for the whole message at once); any other message goes
    through elements()."""
    data = reply.payload
    found = _find(data, 4, len(data), SET_ELEM_LIST_ELEMENTS)
    one, run = _layouts(family)[layout]
    if found is None or not run.fullmatch(data, *found):
        yield from elements(reply)
        return
    if layout == "weights":
        for match in one.finditer(data, *found):
            yield match[1], match[2], None, 0
        return
    for end_key, start_key, value in (match.groups() for match in one.finditer(data, *found)):
        if end_key is not None:
            yield end_key, None, None, nftnl.SET_ELEM_INTERVAL_END
        else:
            yield start_key, value, None, 0


def _jump_target(data: bytes, start: int, end: int) -> str | None:
    code, chain = None, None
    for kind, s, e in nftnl.walk_attrs(data, start, end):
        if kind == VERDICT_CODE and e - s >= 4:
            code = struct.unpack_from("!i", data, s)[0]
        elif kind == VERDICT_CHAIN:
            chain = data[s:e].rstrip(b"\0").decode(errors="replace")
    return chain if code == NFT_JUMP else None


def rule_info(reply: nftnl.Reply) -> tuple[str, int, str | None, int | None]:
    """(chain, handle, comment, modulus) of an NFT_MSG_NEWRULE message: modulus 0 for a rule that is
    `counter` alone, N for `dnat ... to numgen/jhash ... mod N map @...`, None for anything else (what
    nft_parse._rule_of reads from the JSON)."""
    data = reply.payload
    chain, handle, comment, modulus = "", 0, None, None
    for kind, s, e in nftnl.walk_attrs(data, 4):
        if kind == nftnl.RULE_CHAIN:
            chain = data[s:e].rstrip(b"\0").decode(errors="replace")
        elif kind == nftnl.RULE_HANDLE and e - s >= 8:
            handle = struct.unpack_from("!Q", data, s)[0]
        elif kind == nftnl.RULE_USERDATA:
            comment = _comment(data[s:e])
        elif kind == nftnl.RULE_EXPRESSIONS:
            modulus = _modulus(data, s, e)
    return chain, handle, comment, modulus


def _comment(udata: bytes) -> str | None:
    offset = 0
    while offset + 2 <= len(udata):
        kind, length = udata[offset], udata[offset + 1]
        if kind == nftnl.UDATA_RULE_COMMENT:
            return udata[offset + 2:offset + 2 + length].rstrip(b"\0").decode(errors="replace")
        offset += 2 + length
    return None


def _modulus(data: bytes, start: int, end: int) -> int | None:
    names, modulus, dnat = [], None, False
    for _i, es, ee in nftnl.walk_attrs(data, start, end):
        name, body = "", None
        for kind, s, e in nftnl.walk_attrs(data, es, ee):
            if kind == nftnl.EXPR_NAME:
                name = data[s:e].rstrip(b"\0").decode(errors="replace")
            elif kind == nftnl.EXPR_DATA:
                body = (s, e)
        names.append(name)
        wanted = {"numgen": NG_MODULUS, "hash": HASH_MODULUS}.get(name)
        if body is not None and wanted is not None:
            found = _find(data, body[0], body[1], wanted)
            if found and found[1] - found[0] >= 4:
                modulus = _U32.unpack_from(data, found[0])[0]
        elif body is not None and name == "nat":
            found = _find(data, body[0], body[1], NAT_TYPE)
            dnat = bool(found) and _U32.unpack_from(data, found[0])[0] == NFT_NAT_DNAT
    if names == ["counter"]:
        return 0
    return modulus if dnat and "lookup" in names else None


# ----- values -----------------------------------------------------------------------------------------------

def address_of(packed: bytes) -> str:
    """Canonical text of a 4- or 16-byte address (kernel.canonical_address's form). Not cached: a cache of
    8,000 addresses holds ~1.5 MB; the reader keeps the objects of the state it already had instead."""
    if len(packed) == 4:
        return f"{packed[0]}.{packed[1]}.{packed[2]}.{packed[3]}"
    return str(ipaddress.IPv6Address(packed))


def _split(family: int, key: bytes, words: int) -> tuple[str, bytes]:
    size = 4 if family == 4 else 16
    if len(key) != size + 4 * words:
        raise nftnl.NftnlError(f"element of {len(key)} bytes where IPv{family} needs {size + 4 * words}")
    return address_of(key[:size]), key[size:]


def dest_key(family: int, value: bytes) -> DestKey:
    """`ip daddr . tcp dport` (nftnl.dest_value) -> DestKey."""
    address, rest = _split(family, value, 1)
    return DestKey(address, _PORT.unpack_from(rest)[0])


def service_key(family: int, key: bytes) -> ServiceKey:
    """`addr . inet_proto . inet_service` (nftnl.service_value) -> ServiceKey."""
    address, rest = _split(family, key, 2)
    protocol = PROTOCOL_NAMES.get(rest[0], str(rest[0]))
    return ServiceKey(family, protocol, address, _PORT.unpack_from(rest, 4)[0], 0)


# ----- one family's table -------------------------------------------------------------------------------------

class TableReader:
    """Collects the replies of one family's dumps (in the order nft.py asks them: services, nodest, rules,
    then per service begin_service, its w_ and d_ maps, end_service) into the state and the slots.

    `previous` (the state the backend last knew) and `previous_slots` lend their objects: a destination whose
    weight is unchanged keeps its Dest (and DestKey), a slot map that reads back unchanged keeps its SlotTable,
    a service read back unchanged keeps its Entry. A dump that finds what was known then leaves nothing new
    behind: no second copy of 8,000 destinations made while the first is alive, whose freed objects would
    leave the heap fragmented and larger."""

    def __init__(self, family: int, previous: Mapping[ServiceKey, Entry] | None = None,
                 previous_slots: Mapping[ServiceKey, Slots] | None = None):
        self.family = family
        self.previous = previous or {}
        self.previous_slots = previous_slots or {}
        self.services: list[tuple[ServiceKey, str]] = []
        self.nodest: set[ServiceKey] = set()
        self.rules: dict[str, list[tuple[int, str | None, int | None]]] = {}
        self.state: KernelState = {}
        self.slots: dict[ServiceKey, Slots] = {}
        self._old: Mapping[DestKey, Dest] = {}
        self._dests: dict[DestKey, Dest] = {}
        self._raw: dict[bytes, DestKey] = {}          # a w_ key's bytes (= a d_ value's) -> its DestKey
        self._starts: list[tuple[int, DestKey]] = []
        self._ends: list[int] = []

    def add_services(self, reply: nftnl.Reply) -> None:
        for key, _value, target, _flags in elements(reply):
            if target is not None:
                self.services.append((service_key(self.family, key), target))

    def add_nodest(self, reply: nftnl.Reply) -> None:
        for key, _value, _target, _flags in elements(reply):
            self.nodest.add(service_key(self.family, key))

    def add_rule(self, reply: nftnl.Reply) -> None:
        chain, handle, comment, modulus = rule_info(reply)
        self.rules.setdefault(chain, []).append((handle, comment, modulus))

    def begin_service(self, key: ServiceKey) -> None:
        entry = self.previous.get(key)
        self._old = entry.dests if entry is not None else {}
        self._dests, self._raw, self._starts, self._ends = {}, {}, [], []

    def add_weights(self, reply: nftnl.Reply) -> None:
        old_dests = self._old
        for key, value, _target, _flags in value_elements(reply, self.family, "weights"):
            dk = dest_key(self.family, key)
            weight = _HOST_U32.unpack(value)[0] if value and len(value) == 4 else 0
            old = old_dests.get(dk)
            if old is None:
                dest = Dest(dk, weight, "NAT")
            elif old.weight == weight and old[2:] == _NAT_DEFAULTS:
                dest = old
            else:
                dest = Dest(old.key, weight, "NAT")
            self._dests[dest.key] = dest
            self._raw[key] = dest.key

    def add_slots(self, reply: nftnl.Reply) -> None:
        known = self._raw
        for key, value, _target, flags in value_elements(reply, self.family, "slots"):
            slot = _U32.unpack(key)[0] if len(key) == 4 else -1
            if flags & nftnl.SET_ELEM_INTERVAL_END:
                self._ends.append(slot)
            elif value is not None:
                owner = known.get(value)
                self._starts.append((slot, owner if owner is not None else dest_key(self.family, value)))

    def scheduler(self, chain: str) -> str:
        scheduler = next((c for _h, c, _m in self.rules.get(chain, []) if c in SCHEDULERS), None)
        if scheduler is None:
            raise NftError(f"table {FAMILIES[self.family]} {TABLE}: chain {chain} has no scheduler rule "
                           "(edited by hand?)")
        return scheduler

    def slot_runs(self) -> list[tuple[int, int, DestKey]]:
        """The service's slot map as runs (first, last, owner), from the d_ elements read."""
        return _runs(self._starts, self._ends)

    def end_service(self, key: ServiceKey, chain: str, runs: list[tuple[int, int, DestKey]] | None = None) -> None:
        """After the service's w_ and d_ dumps: its Entry and Slots (nft_parse.parse_table / parse_slots).
        `runs`: slot_runs(), when the caller let the event loop run in between."""
        self.state[key] = Entry(Service(key, self.scheduler(chain)).normalized(), self._dests)
        runs = self.slot_runs() if runs is None else runs
        before = self.previous_slots.get(key)
        if before is not None and before.table is not None and before.table.runs() == runs:
            table: SlotTable | None = before.table
        else:
            try:
                table = SlotTable.from_runs(runs)
            except SlotError as exc:
                log.warning("nftables: slot map d_%s is damaged (%s); it is rebuilt at the next change", chain, exc)
                table = None
        rules = self.rules.get(chain, [])
        handle, comment, modulus = rules[0] if len(rules) == 1 else (None, None, None)
        rule = (comment, modulus) if comment in SCHEDULERS and modulus is not None else None
        self.slots[key] = Slots(table, rule, handle if rule is not None else None, key in self.nodest)
        self._old, self._dests, self._raw, self._starts, self._ends = {}, {}, {}, [], []

    def result(self) -> tuple[KernelState, dict[ServiceKey, Slots]]:
        state = check_slots(self.state, self.slots)
        for key, entry in state.items():
            before = self.previous.get(key)
            if before is not None and before == entry:
                state[key] = before
        return state, self.slots


def _runs(starts: list[tuple[int, DestKey]], ends: list[int]) -> list[tuple[int, int, DestKey]]:
    """Interval map elements -> (first, last, owner): a start runs to the next end key above it (a start
    with no end above it is one slot, as nft prints it). When each start has its own end before the next
    start (a clean map: always, unless edited by hand), at C speed."""
    ends = sorted(set(ends))
    starts = sorted(starts, key=itemgetter(0))
    firsts = list(map(itemgetter(0), starts))
    if len(ends) == len(firsts) and all(map(lt, firsts, ends)) and all(map(le, ends, firsts[1:])):
        return list(zip(firsts, map(sub, ends, repeat(1)), map(itemgetter(1), starts)))
    out = []
    i = 0
    for first, owner in starts:
        while i < len(ends) and ends[i] <= first:
            i += 1
        out.append((first, ends[i] - 1 if i < len(ends) else first, owner))
    return out
