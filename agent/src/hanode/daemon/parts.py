"""A status too large to hold at once, made, sent, kept and written one entry at a time (pure).

`hanode status` for 1,000 VRRP instances is 1.6 MB of JSON. Built as one document it was ~100,000 small objects
in the VRRP process, again in the supervisor (which also kept its last copy of them for a stale answer), and a
1.6 MB string in each; once freed, those objects left pymalloc's arenas pinned (~3 MB a process). Now a child's
status may give a large mapping as LazyEntries: the child makes and sends one entry at a time (a `part`
message each, daemon/child_main.py), the supervisor keeps the entries as their JSON, compressed (PackedEntries,
daemon/child.py), and writes the document from them (encode_document), never holding the whole of it as
objects. The checker's real servers are given the same way as LazyItems (a list, inside each virtual server):
a part's key is then the path to the list, e.g. `virtual_servers/0/real_servers`, and its entries have no name."""

from __future__ import annotations

import json
import zlib
from array import array
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterable, Iterator


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


class LazyItems(Sequence):
    """A list whose items are made when asked for, one at a time, from `items` by `make`."""

    def __init__(self, items: Sequence[Any], make: Callable[[Any], Any]):
        self._items = items
        self._make = make

    def __getitem__(self, index):   # type: ignore[override] - an int index only
        return self._make(self._items[index])

    def __iter__(self) -> Iterator[Any]:
        return map(self._make, self._items)

    def __len__(self) -> int:
        return len(self._items)


def lazy_values(document: dict[str, Any]) -> list[tuple[str, Any, Any, LazyEntries | LazyItems]]:
    """Every LazyEntries or LazyItems in a status, at the top or inside its dicts and lists, as (path, holder,
    key in holder, the lazy value)."""
    found: list[tuple[str, Any, Any, LazyEntries | LazyItems]] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, holder = stack.pop()
        keys = holder.keys() if isinstance(holder, dict) else range(len(holder))
        for key in keys:
            value = holder[key]
            where = f"{path}/{key}" if path else str(key)
            if isinstance(value, (LazyEntries, LazyItems)):
                found.append((where, holder, key, value))
            elif isinstance(value, (dict, list)):
                stack.append((where, value))
    return found


class Encoded:
    """An answer already encoded as JSON (the control socket writes it as it is)."""

    def __init__(self, data: bytearray):
        self.data = data


class PackedEntries:
    """A mapping's entries as the supervisor keeps them between status requests: their JSON compressed as they
    arrive (zlib level 1: 1,000 VRRP instances' 1.7 MB in ~0.1 MB), decompressed only to be written."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.ends = array("L")   # where each entry's JSON ends in the decompressed data
        self.blob = b""
        self._size = 0
        self._compressor: Any = zlib.compressobj(1)
        self._chunks: list[bytes] = []

    def add(self, name: str, encoded: bytes) -> None:
        self.names.append(name)
        self._size += len(encoded)
        self.ends.append(self._size)
        self._chunks.append(self._compressor.compress(encoded))

    def finish(self) -> PackedEntries:
        self._chunks.append(self._compressor.flush())
        self.blob, self._chunks, self._compressor = b"".join(self._chunks), [], None
        return self

    def __iter__(self) -> Iterator[tuple[str, memoryview]]:
        view = memoryview(zlib.decompress(self.blob) if self.blob else b"")
        start = 0
        for name, end in zip(self.names, self.ends):
            yield name, view[start:end]
            start = end


def encode_value(value: Any) -> bytes:
    """JSON as the control socket writes it (json.dumps's default separators, control/server.py)."""
    return json.dumps(value, default=str).encode()


def write_extended(out: bytearray, encoded: bytes | memoryview, extra: dict[str, Any]) -> None:
    """Appends an encoded JSON object to `out`, with `extra`'s keys added at its end."""
    if not extra:
        out += encoded
        return
    out += encoded[:-1]
    if len(encoded) > 2:   # not {}
        out += b", "
    out += encode_value(extra)[1:]


def encode_document(document: dict[str, Any], parts: dict[str, Iterable[tuple[str | None, bytes | memoryview]]],
                    extra: Callable[[str, str], dict[str, Any]], out: bytearray | None = None) -> bytearray:
    """`document` as JSON (what encode_value(document) would be) appended to `out` (a new one by default),
    except that each path in `parts` (a top-level key, or `key/index/key...` inside) is written from its entries
    (name, JSON), in their order: an object of the named entries, each extended by extra(path, name), where the
    document holds a dict, a list of them where it holds a list."""
    out = bytearray() if out is None else out
    _write(out, document, "", parts, extra)
    return out


def _write(out: bytearray, value: Any, path: str, parts: dict, extra: Callable[[str, str], dict[str, Any]]) -> None:
    if path in parts:
        as_list = isinstance(value, list)
        out += b"[" if as_list else b"{"
        for number, (name, encoded) in enumerate(parts[path]):
            out += b", " if number else b""
            if as_list:
                out += encoded
            else:
                out += encode_value(name) + b": "
                write_extended(out, encoded, extra(path, name))
        out += b"]" if as_list else b"}"
        return
    prefix = f"{path}/" if path else ""
    if not isinstance(value, (dict, list)) or not any(key.startswith(prefix) for key in parts):
        out += encode_value(value)
        return
    if isinstance(value, list):
        out += b"["
        for index, item in enumerate(value):
            out += b", " if index else b""
            _write(out, item, f"{prefix}{index}", parts, extra)
        out += b"]"
        return
    out += b"{"
    for index, (key, item) in enumerate(value.items()):
        out += (b", " if index else b"") + encode_value(key) + b": "
        _write(out, item, f"{prefix}{key}", parts, extra)
    out += b"}"
