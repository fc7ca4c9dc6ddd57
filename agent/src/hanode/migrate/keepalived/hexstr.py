"""keepalived's hex strings (lib/parser.c read_hex_str), as UDP_CHECK's payload and require_reply are read. Pure."""

from __future__ import annotations


def _nibble(char: str, wildcards: bool) -> int | None:
    """hex_val(): 0..15, 16 for a wildcard (x or X where allowed), None for anything else."""
    if char in "0123456789abcdefABCDEF":
        return int(char, 16)
    if wildcards and char in "xX":
        return 16
    return None


def read_hex_str(text: str, wildcards: bool) -> tuple[bytes, bytes | None] | None:
    """keepalived's read_hex_str: blanks separate words; two characters make an octet, a single one before a
    space or the end makes one of its own (so '1 23' is 01 23 and '123' is 12 03); x/X is a wildcard nibble
    where allowed (require_reply, not payload). Returns (data, mask or None), or None where keepalived finds
    the string invalid (a character that is not a hex digit, or nothing at all)."""
    data, mask = bytearray(), bytearray()
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        high = _nibble(text[i], wildcards)
        i += 1
        if high is None:
            return None
        value, bits = (0, 0x0F) if high == 16 else (high, 0)
        if i < n and text[i] != " ":
            low = _nibble(text[i], wildcards)
            i += 1
            if low is None:
                return None
            value, bits = value << 4, bits << 4
            if low == 16:
                bits |= 0x0F
            else:
                value |= low
        data.append(value)
        mask.append(bits)
    if not data:
        return None
    return bytes(data), bytes(mask) if any(mask) else None


def hex_text(data: bytes, mask: bytes | None) -> str:
    """The agent config's form: '0x' and two characters an octet, x for a wildcard nibble."""
    text = data.hex()
    if mask is not None:
        text = "".join("x" if m == "f" else c for c, m in zip(text, mask.hex()))
    return "0x" + text
