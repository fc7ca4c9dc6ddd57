"""Tells the checker at once when a tracked file (FILE_CHECK) changes, as keepalived's inotify watch does.

One inotify descriptor on the event loop; the directory of each file is watched (a file replaced by rename, or
deleted and created again, is still seen), and `changed(path)` is called for each watched file an event names.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import struct
from typing import Callable, Iterable

log = logging.getLogger("hanode.health")

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
_MASK = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY
_EVENT = struct.Struct("iIII")


class FileWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[str], None]):
        self.loop, self.changed = loop, changed
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.dirs: dict[str, int] = {}            # directory -> watch descriptor
        self.names: dict[int, dict[str, str]] = {}  # watch descriptor -> file name -> path
        loop.add_reader(self.fd, self._read)

    def watch(self, paths: Iterable[str]) -> None:
        """Watches exactly these files (their directories), dropping the others."""
        wanted: dict[str, dict[str, str]] = {}
        for path in paths:
            directory, name = os.path.split(os.path.abspath(path))
            wanted.setdefault(directory, {})[name] = path
        for directory in [d for d in self.dirs if d not in wanted]:
            self.libc.inotify_rm_watch(self.fd, self.dirs.pop(directory))
        self.names = {}
        for directory, names in wanted.items():
            wd = self.dirs.get(directory)
            if wd is None:
                wd = self.libc.inotify_add_watch(self.fd, directory.encode(), _MASK)
                if wd < 0:
                    log.warning("cannot watch %s for tracked file changes (%s): checked every delay_loop only",
                                directory, os.strerror(ctypes.get_errno()))
                    continue
                self.dirs[directory] = wd
            self.names[wd] = names

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        hit: list[str] = []
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size:offset + _EVENT.size + length].split(b"\0", 1)[0].decode(errors="replace")
            offset += _EVENT.size + length
            path = self.names.get(wd, {}).get(name)
            if path is not None and path not in hit:
                hit.append(path)
        for path in hit:
            self.changed(path)

    def close(self) -> None:
        self.loop.remove_reader(self.fd)
        os.close(self.fd)
