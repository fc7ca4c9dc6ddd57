"""track_file's I/O: inotify on each file's directory (as keepalived watches them), the file read again when it
is written, moved in or removed; init_file written at start. Values go to `report({name: value})`."""

from __future__ import annotations

import ctypes
import logging
import os
import struct
from typing import Callable, Mapping

from hanode.config.model import TrackFile
from hanode.vrrp.track import parse_file_value

log = logging.getLogger("hanode.vrrp.filetrack")

IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x8, 0x40, 0x80, 0x100, 0x200
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
EVENT = struct.Struct("=iIII")
WATCHED = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE


def read_value(path: str) -> int | None:
    """The file's value: 0 when it is missing or empty; None when the number is out of range (keep the last)."""
    try:
        with open(path, "rb") as handle:
            return parse_file_value(handle.read(127))
    except OSError:
        return 0


def init_file(spec: TrackFile) -> None:
    """keepalived's init_file: written when the file does not exist (with overwrite: always, if it is a regular
    file), so that a tracker starts from a known value."""
    if spec.init_value is None:
        return
    exists = os.path.lexists(spec.file)
    if exists and (not spec.init_overwrite or not os.path.isfile(spec.file)):
        return
    try:
        with open(spec.file, "w", encoding="ascii") as handle:
            handle.write(f"{spec.init_value}\n")
    except OSError as exc:
        log.error("track_file %s: cannot initialise %s: %s", spec.name, spec.file, exc)


class FileMonitor:
    def __init__(self, loop, specs: Mapping[str, TrackFile], report: Callable[[dict[str, int]], None]):
        self.loop, self.specs, self.report = loop, dict(specs), report
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = -1
        self.dirs: dict[int, str] = {}          # watch descriptor -> directory

    def start(self, initial: bool) -> dict[str, int]:
        """Watches every directory, then reads every file (a write in between is seen twice, not missed)."""
        if initial:
            for spec in self.specs.values():
                init_file(spec)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for directory in sorted({os.path.dirname(s.file) for s in self.specs.values()}):
            wd = self.libc.inotify_add_watch(self.fd, directory.encode(), WATCHED)
            if wd < 0:
                log.error("track_file: cannot watch %s: %s", directory, os.strerror(ctypes.get_errno()))
            else:
                self.dirs[wd] = directory
        self.loop.add_reader(self.fd, self._readable)
        return self._read(self.specs.values())

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1

    def _readable(self) -> None:
        touched: set[str] = set()
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        at = 0
        while at + EVENT.size <= len(data):
            wd, _mask, _cookie, length = EVENT.unpack_from(data, at)
            name = data[at + EVENT.size:at + EVENT.size + length].split(b"\0", 1)[0].decode(errors="surrogateescape")
            at += EVENT.size + length
            touched.add(os.path.join(self.dirs.get(wd, ""), name))
        changed = self._read([s for s in self.specs.values() if s.file in touched])
        if changed:
            self.report(changed)

    def _read(self, specs) -> dict[str, int]:
        values = {}
        for spec in specs:
            value = read_value(spec.file)
            if value is None:
                log.warning("track_file %s: the number in %s is out of range: ignored", spec.name, spec.file)
            else:
                values[spec.name] = value
        return values
