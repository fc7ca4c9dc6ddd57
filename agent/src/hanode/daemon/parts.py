"""A status too large to hold at once, made, sent, kept and written one entry at a time (pure).

`hanode status` for 1,000 VRRP instances is 1.6 MB of JSON. Built as one document it was ~100,000 small objects
in the VRRP process, again in the supervisor (which also kept its last copy of them for a stale answer), and a
1.6 MB string in each; once freed, those objects left pymalloc's arenas pinned (~3 MB a process). Now a child's
status may give a large mapping as LazyEntries: the child makes and sends one entry at a time (a `part`
message each, daemon/child_main.py), the supervisor keeps each entry as its JSON bytes (daemon/child.py) and
writes the document from them (encode_document), never holding the whole of it as objects."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator

Entry = tuple[str, bytes]   # (name, the entry's value as JSON)


class LazyEntries(Mapping):
    """A mapping whose values are made when asked for, one at a time."""

    def __init__(self, keys: Iterable[str], make: Callable[[str], Any]):
        self._keys = dict.fromkeys(keys)   # ordered, and a quick `in`
        self._make = make

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._make(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class Encoded:
    """An answer already encoded as JSON, in chunks (the control socket writes it as it is)."""

    def __init__(self, chunks: list[bytes]):
        self.chunks = chunks


def encode_value(value: Any) -> bytes:
    """JSON as the control socket writes it (json.dumps's default separators, control/server.py)."""
    return json.dumps(value, default=str).encode()


def extended(encoded: bytes, extra: dict[str, Any]) -> bytes:
    """An encoded JSON object with `extra`'s keys added at its end."""
    if not extra:
        return encoded
    more = encode_value(extra)[1:-1]
    return encoded[:-1] + (b", " + more if encoded.rstrip() != b"{}" else more) + b"}"


def encode_document(document: dict[str, Any], parts: dict[str, list[Entry]],
                    extra: Callable[[str, str], dict[str, Any]]) -> list[bytes]:
    """`document` as JSON chunks (what encode_value(document) would be), except that each key in `parts` maps
    its entries, in their order, each entry's object extended by extra(key, name)."""
    chunks = [b"{"]
    for index, (key, value) in enumerate(document.items()):
        chunks.append((b", " if index else b"") + encode_value(key) + b": ")
        if key not in parts:
            chunks.append(encode_value(value))
            continue
        chunks.append(b"{")
        for number, (name, encoded) in enumerate(parts[key]):
            chunks.append((b", " if number else b"") + encode_value(name) + b": " + extended(encoded, extra(key, name)))
        chunks.append(b"}")
    chunks.append(b"}")
    return chunks
