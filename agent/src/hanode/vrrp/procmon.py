"""vrrp_track_process's I/O: the kernel's proc connector (NETLINK_CONNECTOR, CN_IDX_PROC: an event the moment a
process forks, execs, renames itself or exits, as keepalived uses it) and /proc, feeding proctrack.ProcessTable.

The connector exists only in the initial network namespace: an agent in another one (a container, the lab's
namespaces) opens its socket there, from a thread that enters the namespace of PID 1, else of the nearest
ancestor process that is in another namespace, and leaves it with the socket made (keepalived in a network
namespace gets no events at all). Where no socket can be had, or the kernel refuses the subscription or never
answers it (it drops it silently outside the initial PID and user namespaces), /proc is read every POLL_S
instead, and a warning says that a process exit is then seen that much later. Lost events (ENOBUFS) mean /proc
is read again."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import struct
import threading
from typing import Callable, Iterator

from hanode.vrrp.proctrack import ProcInfo

log = logging.getLogger("hanode.vrrp.procmon")

NETLINK_CONNECTOR = 11
CN_IDX_PROC, CN_VAL_PROC = 1, 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = 3
CLONE_NEWNET = 0x40000000
EVENT_NONE, EVENT_FORK, EVENT_EXEC, EVENT_COMM, EVENT_EXIT = 0x0, 0x1, 0x2, 0x200, 0x80000000
EVENT_AT = 16 + 20          # nlmsghdr, cn_msg; then proc_event: what, cpu, timestamp_ns, data
DATA_AT = EVENT_AT + 16
POLL_S = 1.0
ACK_WAIT_S = 1.0        # the kernel answers a subscription at once, or never


def read_proc(pid: int, want_cmdline: bool) -> ProcInfo | None:
    """A process as track_process sees it; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        cmdline = b""
        if want_cmdline:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
    except OSError:
        return None
    start, end = stat.find(b"("), stat.rfind(b")")
    if start < 0 or end < 0 or stat[end + 2:end + 3] == b"Z":
        return None
    return ProcInfo(pid, stat[start + 1:end].decode(errors="surrogateescape"), cmdline)


def all_procs(want_cmdline: bool) -> Iterator[ProcInfo]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = read_proc(int(entry), want_cmdline)
            if found is not None:
                yield found


def _subscribe(sock: socket.socket) -> None:
    payload = struct.pack("=IIIIHHI", CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0, PROC_CN_MCAST_LISTEN)
    sock.send(struct.pack("=IHHII", 16 + len(payload), NLMSG_DONE, 0, 0, 0) + payload)


def _connector_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_CONNECTOR)
    try:
        sock.bind((0, CN_IDX_PROC))
        _subscribe(sock)
    except OSError:
        sock.close()
        raise
    return sock


def _ancestors() -> Iterator[int]:
    yield 1
    pid = os.getppid()
    while pid > 1:
        yield pid
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
            pid = int(stat[stat.rfind(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            return


def _socket_in_netns_of(pid: int) -> socket.socket:
    """Made by a thread that enters the network namespace of `pid` (the thread ends with it)."""
    result: list = []

    def enter() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result.append(_connector_socket())
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=enter, name="procmon-netns")
    thread.start()
    thread.join()
    if isinstance(result[0], OSError):
        raise result[0]
    return result[0]


def open_connector() -> socket.socket | None:
    """The proc connector socket, subscribed; None when this host gives none (logged)."""
    try:
        return _connector_socket()
    except OSError as exc:
        first = exc
    own = os.stat("/proc/self/ns/net").st_ino
    for pid in _ancestors():
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == own:
                continue
            return _socket_in_netns_of(pid)
        except OSError:
            continue
    log.warning("no proc connector (%s): vrrp_track_process reads /proc every %.1f s instead", first, POLL_S)
    return None


class ConnectorReader:
    """Reads the connector's events into `handle(kind, a, b, comm)`: fork (parent, child), exec (pid), comm
    (pid, name), exit (pid); threads are left out, as keepalived leaves them. `lost()` when events were lost."""

    def __init__(self, sock: socket.socket, handle: Callable[[int, int, int, str], None], lost: Callable[[], None]):
        self.sock, self.handle, self.lost = sock, handle, lost
        sock.setblocking(False)

    def read(self) -> None:
        while self.sock.fileno() >= 0:      # closed by a handler (a refused subscription): stop
            try:
                data, sender = self.sock.recvfrom(256)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost()
                    continue
                raise
            if sender[0] == 0 and len(data) >= DATA_AT + 8:
                self._event(data)

    def _event(self, data: bytes) -> None:
        what = struct.unpack_from("=I", data, EVENT_AT)[0]
        if what == EVENT_NONE:      # the answer to the subscription: 0, or why it was refused (EPERM...)
            self.handle(EVENT_NONE, struct.unpack_from("=I", data, DATA_AT)[0], 0, "")
        elif what == EVENT_FORK and len(data) >= DATA_AT + 16:
            _ppid, parent, child_pid, child = struct.unpack_from("=iiii", data, DATA_AT)
            if child_pid == child:
                self.handle(EVENT_FORK, parent, child, "")
        elif what in (EVENT_EXEC, EVENT_EXIT, EVENT_COMM):
            pid, tgid = struct.unpack_from("=ii", data, DATA_AT)
            if pid != tgid:
                return
            comm = ""
            if what == EVENT_COMM and len(data) >= DATA_AT + 24:
                comm = data[DATA_AT + 8:DATA_AT + 24].split(b"\0", 1)[0].decode(errors="surrogateescape")
            self.handle(what, tgid, 0, comm)


class ProcessMonitor:
    """The vrrp_track_processes in use: a ProcessTable fed from the connector (or /proc polling), reporting
    `report(changes, counts)` at once, and again when a delayed change comes due."""

    def __init__(self, loop, table, report: Callable[[list, dict], None], clock_us: Callable[[], int]):
        self.loop, self.table, self.report, self.clock_us = loop, table, report, clock_us
        self.want_cmdline = any(spec.full_command for spec in table.specs.values())
        self.sock: socket.socket | None = None
        self.reader: ConnectorReader | None = None
        self.timer = None
        self.poller = None
        self.ack_timer = None

    def start(self) -> list:
        """Opens the event source first (no exit between the scan and it is missed), then reads /proc; returns
        the initial quorums."""
        self.sock = open_connector()
        if self.sock is not None:
            self.reader = ConnectorReader(self.sock, self._on_event, self._rescan)
            self.loop.add_reader(self.sock.fileno(), self._readable)
            self.ack_timer = self.loop.call_later(ACK_WAIT_S, self._no_ack)
        else:
            self.poller = self.loop.call_later(POLL_S, self._poll)
        return self.table.scan(all_procs(self.want_cmdline), self.clock_us(), initial=True)

    def close(self) -> None:
        if self.sock is not None:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        for handle in (self.timer, self.poller, self.ack_timer):
            if handle is not None:
                handle.cancel()

    def _readable(self) -> None:
        try:
            self.reader.read()
        except OSError as exc:
            log.error("proc connector: %s", exc)

    def _on_event(self, kind: int, a: int, b: int, comm: str) -> None:
        now_us, table = self.clock_us(), self.table
        if kind == EVENT_NONE:
            if self.ack_timer is not None:
                self.ack_timer.cancel()
                self.ack_timer = None
            if a:
                self._refused(os.strerror(a))
            return
        if kind == EVENT_EXIT:
            changes = table.exit(a, now_us)
        elif kind == EVENT_FORK:
            changes = table.fork(a, b, now_us)
        elif kind == EVENT_COMM:
            changes = table.comm(a, comm, now_us)
        else:
            info = read_proc(a, self.want_cmdline)
            changes = table.exec(info, now_us) if info is not None else table.exit(a, now_us)
        self._deliver(changes)

    def _no_ack(self) -> None:
        """No answer to the subscription: the kernel drops it silently outside the initial user and PID namespaces."""
        self.ack_timer = None
        self._refused(f"no answer in {ACK_WAIT_S:g} s")

    def _refused(self, why: str) -> None:
        """The kernel refused the subscription (no CAP_NET_ADMIN) or never answered it: poll /proc."""
        log.warning("proc connector: subscription refused (%s): vrrp_track_process reads /proc every %.1f s "
                    "instead", why, POLL_S)
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.sock = None
        self.poller = self.loop.call_later(POLL_S, self._poll)

    def _rescan(self) -> None:
        log.warning("proc connector: events lost (ENOBUFS); reading /proc again")
        self._deliver(self.table.scan(all_procs(self.want_cmdline), self.clock_us(), initial=False))

    def _poll(self) -> None:
        self.poller = self.loop.call_later(POLL_S, self._poll)
        self._deliver(self.table.scan(all_procs(self.want_cmdline), self.clock_us(), initial=False))

    def _due(self) -> None:
        self.timer = None
        self._deliver(self.table.due(self.clock_us()))

    def _deliver(self, changes: list) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        at_us = self.table.next_deadline_us()
        if at_us is not None:
            self.timer = self.loop.call_later(max(0, at_us - self.clock_us()) / 1e6, self._due)
        self.report(changes, dict(self.table.counts))
