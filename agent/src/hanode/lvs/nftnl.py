"""nftables netlink messages for the load-balancer's hot path (pure: bytes out, bytes in).

Only what the nftables backend changes per destination goes through here: set/map elements
(NFT_MSG_NEWSETELEM / DELSETELEM), its one scheduling rule per service (NFT_MSG_NEWRULE, replaced by handle,
or DELRULE + NEWRULE when the handle is unknown) and the removal of a service (DELRULE, DELSET, DELCHAIN),
all inside one NFNL_MSG_BATCH_BEGIN .. NFNL_MSG_BATCH_END transaction. Tables, chains and maps are created
by `nft -f` (rare), which also writes the maps' `typeof` user data that `nft list` needs.

The bytes are the ones nft 1.0.6 sends for the same commands (the unit tests hold captures of
`nft --debug=mnl`), except that padding is zeroed and NFTA_*_SET_ID (only used for sets created in the same
batch) is left out. The layouts, as `nft --debug=netlink` prints them:

    meta l4proto tcp dnat ip to numgen inc mod N map @d_x          (rr, wrr)
      [ meta load l4proto => reg 1 ] [ cmp eq reg 1 0x00000006 ] [ numgen reg 1 = inc mod N ]
      [ byteorder reg 1 = hton(reg 1, 4, 4) ] [ lookup reg 1 set d_x dreg 1 ]
      [ nat dnat ip addr_min reg 1 proto_min reg 9 ]                 (ip6: proto_min reg 2)
    ... dnat ip to jhash ip saddr mod N seed S map @d_x               (sh; dh hashes daddr)
      [ payload load 4b @ network header + 12 => reg 2 ] [ hash reg 1 = jhash(reg 2, 4, S) % mod N ] ...
    slot map d_x (interval, keys big-endian u32): run first..last -> elements first (data ip . port) and
      last+1 (flag INTERVAL_END); weight map w_x: ip . port -> weight (u32, host order: nft's `mark`);
      set nodest: ip . proto . port. Concatenated fields are padded to 4 bytes each.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from typing import Iterable, Iterator, NamedTuple

NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFT_MSG = {"newchain": 3, "delchain": 5, "newrule": 6, "getrule": 7, "delrule": 8, "newset": 9, "delset": 11,
           "newsetelem": 12, "getsetelem": 13, "delsetelem": 14}
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ECHO = 0x8
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLA_F_NESTED = 0x8000
NFPROTO = {4: 2, 6: 10}                      # NFPROTO_IPV4, NFPROTO_IPV6
PROTO = {"TCP": 6, "UDP": 17, "SCTP": 132}
SET_ELEM_INTERVAL_END = 0x1
NEST_LIMIT = 60_000                          # an attribute's length is a u16: elements go in nests below it

# attribute numbers (linux/netfilter/nf_tables.h)
RULE_TABLE, RULE_CHAIN, RULE_HANDLE, RULE_EXPRESSIONS, RULE_USERDATA = 1, 2, 3, 4, 7
ELEM_LIST_TABLE, ELEM_LIST_SET, ELEM_LIST_ELEMENTS = 1, 2, 3
ELEM_KEY, ELEM_DATA, ELEM_FLAGS = 1, 2, 3
DATA_VALUE = 1
LIST_ELEM = 1
EXPR_NAME, EXPR_DATA = 1, 2
SET_TABLE, SET_NAME = 1, 2
CHAIN_TABLE, CHAIN_NAME = 1, 3
UDATA_RULE_COMMENT = 0
REG_1, REG_2 = 1, 2                          # 16-byte registers; REG32_01 (9) is the second word of REG_1
REG32_01 = 9
HEADER = struct.Struct("=IHHII")
_HH = struct.Struct("=HH").pack


_ATTR_HEADER = struct.Struct("=HH")   # struct nlattr: length, type


class NftnlError(ValueError):
    """A reply that is not a well-formed netlink message."""


# ----- attributes ----------------------------------------------------------------------------------

def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length & 3)


def nest(kind: int, payload: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, payload)


def be32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!I", value))


def be64(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!Q", value))


def string(kind: int, text: str) -> bytes:
    return attr(kind, text.encode() + b"\0")


def message(msg_type: int, flags: int, seq: int, family: int, attrs: bytes, res_id: int = 0) -> bytes:
    """One nfnetlink message: nlmsghdr, nfgenmsg (family, version 0, res_id big-endian), attributes."""
    body = struct.pack("!BBH", family, 0, res_id) + attrs
    return HEADER.pack(16 + len(body), msg_type, flags, seq, 0) + body


def nft_type(name: str) -> int:
    return NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG[name]


# ----- element values -------------------------------------------------------------------------------

def slot_key(slot: int) -> bytes:
    """A slot of an interval map keyed by `numgen`/`jhash` (nft converts the register to big-endian)."""
    return struct.pack("!I", slot)


@functools.lru_cache(maxsize=256)
def _packed(address: str) -> bytes:
    """A canonical address (kernel.canonical_address) in network order; IPv4 without ipaddress's cost. The
    cache is for the few addresses met again and again (services, the dests of health changes): one of 65,536
    entries held every real server's (~1 MB in the checker with 8,000), for a render of them all that is rare
    (start, a rebuilt table) and costs ~1 µs an address uncached."""
    if ":" in address:
        return ipaddress.IPv6Address(address).packed
    parts = address.split(".")
    if len(parts) != 4:
        raise ValueError(f"not an IPv4 address: {address!r}")
    return bytes(int(part) for part in parts)


def dest_value(address: str, port: int) -> bytes:
    """`ip daddr . tcp dport` (or ip6): the address, then the port (big-endian) padded to 4 bytes."""
    return _packed(address) + struct.pack("!H", port) + b"\0\0"


def weight_value(weight: int) -> bytes:
    return struct.pack("=I", weight)


def service_value(address: str, protocol: str, port: int) -> bytes:
    """`addr . inet_proto . inet_service`: address, protocol byte padded to 4, port padded to 4."""
    return _packed(address) + bytes((PROTO[protocol], 0, 0, 0)) + struct.pack("!H", port) + b"\0\0"


_END_FLAG = be32(ELEM_FLAGS, SET_ELEM_INTERVAL_END)
_KEY_NEST, _DATA_NEST = ELEM_KEY | NLA_F_NESTED, ELEM_DATA | NLA_F_NESTED


def element(key: bytes, data: bytes | None = None, flags: int = 0) -> bytes:
    """One element's attributes; Batch.elements nests each under its index in the message (1, 2, ...: the
    kernel ignores that type, libnftnl numbers them so). Keys and data here are whole 4-byte words, so no
    padding: 10,000 elements take milliseconds."""
    if len(key) & 3 or (data is not None and len(data) & 3):
        raise ValueError("set element keys and data are padded to 4 bytes")
    body = (_END_FLAG if flags == SET_ELEM_INTERVAL_END else be32(ELEM_FLAGS, flags) if flags else b"")
    body += _HH(8 + len(key), _KEY_NEST) + _HH(4 + len(key), DATA_VALUE) + key
    if data is not None:
        body += _HH(8 + len(data), _DATA_NEST) + _HH(4 + len(data), DATA_VALUE) + data
    return body


def run_elements(first: int, last: int, data: bytes | None) -> list[bytes]:
    """The two elements of slots first..last in an interval map: its start (with the data when adding) and
    the end, last+1, flagged INTERVAL_END. The end of one run and the start of the next share a key."""
    return [element(slot_key(first), data), element(slot_key(last + 1), None, SET_ELEM_INTERVAL_END)]


# ----- rule expressions -------------------------------------------------------------------------------

def _expr(name: str, body: bytes) -> bytes:
    return nest(LIST_ELEM, string(EXPR_NAME, name) + nest(EXPR_DATA, body))


def _l4proto(protocol: str) -> bytes:
    return (_expr("meta", be32(2, 0x10) + be32(1, REG_1))                        # key l4proto, dreg
            + _expr("cmp", be32(1, REG_1) + be32(2, 0) + nest(3, attr(DATA_VALUE, bytes((PROTO[protocol],))))))


def _selector(family: int, scheduler: str, modulus: int, seed: int) -> bytes:
    if scheduler in ("sh", "dh"):
        size = 4 if family == 4 else 16
        offset = {(4, "sh"): 12, (4, "dh"): 16, (6, "sh"): 8, (6, "dh"): 24}[family, scheduler]
        return (_expr("payload", be32(1, REG_2) + be32(2, 1) + be32(3, offset) + be32(4, size))   # network header
                + _expr("hash", be32(1, REG_2) + be32(2, REG_1) + be32(3, size) + be32(4, modulus)
                        + be32(5, seed) + be32(6, 0) + be32(7, 0)))                                 # jhash
    return _expr("numgen", be32(1, REG_1) + be32(2, modulus) + be32(3, 0) + be32(4, 0))        # inc, offset 0


def lb_expressions(family: int, protocol: str, scheduler: str, modulus: int, slot_map: str, seed: int) -> bytes:
    """`meta l4proto P dnat ip to <selector> mod N map @slot_map`: the body of NFTA_RULE_EXPRESSIONS."""
    return (_l4proto(protocol) + _selector(family, scheduler, modulus, seed)
            + _expr("byteorder", be32(1, REG_1) + be32(2, REG_1) + be32(3, 1) + be32(4, 4) + be32(5, 4))  # hton
            + _expr("lookup", be32(2, REG_1) + be32(3, REG_1) + string(1, slot_map))
            + _expr("nat", be32(1, 1) + be32(2, NFPROTO[family]) + be32(3, REG_1)                   # dnat
                    + be32(5, REG32_01 if family == 4 else REG_2)))


def counter_expressions() -> bytes:
    """`counter`: the rule of a service with nothing to schedule (its traffic is rejected via @nodest)."""
    return _expr("counter", b"")


def comment(text: str) -> bytes:
    """The rule's user data as nft writes it: TLV (type NFTNL_UDATA_RULE_COMMENT, length, text NUL)."""
    raw = text.encode() + b"\0"
    return bytes((UDATA_RULE_COMMENT, len(raw))) + raw


# ----- one transaction -----------------------------------------------------------------------------------

class Batch:
    """Messages of one nftables transaction. Every message asks for an ACK, so the kernel answers each
    one (0 or an errno) and a caller knows the transaction committed when all answers are 0. `what` maps a
    sequence number to what that message did, for error messages."""

    def __init__(self, first_seq: int):
        self.seq = first_seq
        self.parts: list[bytes] = [message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, self._next(), 0, b"",
                                           NFNL_SUBSYS_NFTABLES)]
        self.what: dict[int, str] = {}

    def _next(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) & 0xFFFFFFFF or 1
        return seq

    def add(self, name: str, flags: int, family: int, attrs: bytes, what: str) -> int:
        seq = self._next()
        self.parts.append(message(nft_type(name), NLM_F_REQUEST | NLM_F_ACK | flags, seq, NFPROTO[family], attrs))
        self.what[seq] = what
        return seq

    def elements(self, name: str, family: int, table: str, set_name: str, elements: Iterable[bytes],
                 what: str) -> None:
        """NEWSETELEM / DELSETELEM for many elements: as many messages as the nest limit needs."""
        head = string(ELEM_LIST_TABLE, table) + string(ELEM_LIST_SET, set_name)
        chunk: list[bytes] = []
        size = 0
        for elem in elements:
            if chunk and size + len(elem) + 4 > NEST_LIMIT:
                self.add(name, NLM_F_CREATE if name == "newsetelem" else 0, family,
                         head + nest(ELEM_LIST_ELEMENTS, b"".join(chunk)), what)
                chunk, size = [], 0
            chunk.append(_HH(4 + len(elem), (len(chunk) + 1) | NLA_F_NESTED) + elem)
            size += len(elem) + 4
        if chunk:
            self.add(name, NLM_F_CREATE if name == "newsetelem" else 0, family,
                     head + nest(ELEM_LIST_ELEMENTS, b"".join(chunk)), what)

    def flush_set(self, family: int, table: str, set_name: str, what: str) -> None:
        """DELSETELEM without elements: the kernel removes every element of the set."""
        self.add("delsetelem", 0, family, string(ELEM_LIST_TABLE, table) + string(ELEM_LIST_SET, set_name), what)

    def rule(self, family: int, table: str, chain: str, expressions: bytes, userdata: bytes,
             handle: int | None, what: str) -> int:
        """Replaces the rule `handle` in place (NLM_F_REPLACE), or appends one when handle is None.
        NLM_F_ECHO: the kernel sends the new rule back, with its handle."""
        attrs = string(RULE_TABLE, table) + string(RULE_CHAIN, chain)
        if handle is not None:
            attrs += be64(RULE_HANDLE, handle)
        attrs += nest(RULE_EXPRESSIONS, expressions) + attr(RULE_USERDATA, userdata)
        flags = NLM_F_ECHO | (NLM_F_REPLACE if handle is not None else NLM_F_CREATE | NLM_F_APPEND)
        return self.add("newrule", flags, family, attrs, what)

    def flush_chain(self, family: int, table: str, chain: str, what: str) -> None:
        self.add("delrule", 0, family, string(RULE_TABLE, table) + string(RULE_CHAIN, chain), what)

    def delete_set(self, family: int, table: str, set_name: str, what: str) -> None:
        self.add("delset", 0, family, string(SET_TABLE, table) + string(SET_NAME, set_name), what)

    def delete_chain(self, family: int, table: str, chain: str, what: str) -> None:
        self.add("delchain", 0, family, string(CHAIN_TABLE, table) + string(CHAIN_NAME, chain), what)

    @property
    def count(self) -> int:
        return len(self.what)

    def finish(self) -> bytes:
        self.parts.append(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, self._next(), 0, b"", NFNL_SUBSYS_NFTABLES))
        return b"".join(self.parts)


# ----- replies -------------------------------------------------------------------------------------------

class Reply(NamedTuple):
    type: int
    flags: int
    seq: int
    payload: bytes          # after the nlmsghdr


def parse_messages(data: bytes) -> list[Reply]:
    out = []
    offset = 0
    while offset < len(data):
        if offset + 16 > len(data):
            raise NftnlError(f"truncated netlink header at byte {offset}")
        length, kind, flags, seq, _pid = HEADER.unpack_from(data, offset)
        if length < 16 or offset + length > len(data):
            raise NftnlError(f"netlink message at byte {offset} claims {length} bytes, {len(data) - offset} left")
        out.append(Reply(kind, flags, seq, data[offset + 16:offset + length]))
        offset += (length + 3) & ~3
    return out


def error_code(reply: Reply) -> int:
    """The errno of an NLMSG_ERROR (0 for an ACK), positive."""
    if len(reply.payload) < 4:
        raise NftnlError("NLMSG_ERROR without an error code")
    return -struct.unpack_from("=i", reply.payload)[0]


def acked_seq(reply: Reply) -> int:
    """The sequence number of the request an NLMSG_ERROR answers (from the echoed header)."""
    if len(reply.payload) < 20:
        raise NftnlError("NLMSG_ERROR without the request header")
    return HEADER.unpack_from(reply.payload, 4)[3]


def walk_attrs(data: bytes, offset: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(type, start, end) of each attribute in data[offset:end], without copying their payloads."""
    end = len(data) if end is None else end
    while offset + 4 <= end:
        length, kind = _ATTR_HEADER.unpack_from(data, offset)
        if length < 4 or offset + length > end:
            raise NftnlError(f"attribute at byte {offset} claims {length} bytes")
        yield kind & 0x3FFF, offset + 4, offset + length
        offset += (length + 3) & ~3


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    return {kind: data[start:end] for kind, start, end in walk_attrs(data, offset)}


def rule_of(reply: Reply) -> tuple[int, str, str, int]:
    """(family, table, chain, handle) of an NFT_MSG_NEWRULE message (the echo of a rule just written);
    family is 4 or 6."""
    if len(reply.payload) < 4:
        raise NftnlError("NEWRULE message without its nfgenmsg header")
    family = {v: k for k, v in NFPROTO.items()}.get(reply.payload[0], 0)
    attrs = parse_attrs(reply.payload, 4)
    try:
        return (family, attrs[RULE_TABLE].rstrip(b"\0").decode(), attrs[RULE_CHAIN].rstrip(b"\0").decode(),
                struct.unpack("!Q", attrs[RULE_HANDLE][:8])[0])
    except (KeyError, struct.error, UnicodeDecodeError) as exc:
        raise NftnlError(f"NEWRULE message without table, chain or handle ({exc})") from exc
