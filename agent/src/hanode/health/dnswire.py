"""DNS_CHECK wire format (pure): one query, and the reply fields the check looks at."""

from __future__ import annotations

import struct
from dataclasses import dataclass

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}  # keepalived's set + PTR
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
FLAG_QR = 0x8000
FLAG_RD = 0x0100


class DnsError(ValueError):
    """Not a DNS reply to our query; str() is the reason."""


@dataclass(frozen=True)
class Reply:
    ident: int
    rcode: int
    answers: int

    @property
    def rcode_name(self) -> str:
        return RCODES.get(self.rcode, str(self.rcode))


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.strip(".").split(".") if name.strip(".") else []:
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) < 64:
            raise DnsError(f"bad DNS label {label!r} in {name!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out) + b"\0"


def build_query(ident: int, name: str, qtype: str) -> bytes:
    try:
        code = QTYPES[qtype.upper()]
    except KeyError:
        raise DnsError(f"unknown dns_type {qtype!r} (known: {', '.join(QTYPES)})") from None
    return struct.pack("!HHHHHH", ident, FLAG_RD, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", code, 1)


def parse_reply(data: bytes) -> Reply:
    if len(data) < 12:
        raise DnsError(f"DNS reply too short ({len(data)} bytes)")
    ident, flags, _qd, answers, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    if not flags & FLAG_QR:
        raise DnsError("DNS packet is a query, not a reply")
    return Reply(ident, flags & 0x000F, answers)
