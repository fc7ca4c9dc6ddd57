"""Raw sockets: VRRP adverts (IPv4 with IP_HDRINCL as keepalived does, IPv6 with IPV6_PKTINFO),
gratuitous ARP (AF_PACKET) and unsolicited neighbour advertisements (ICMPv6).

Each (interface, family) has two receive sockets split by BPF filters (hanode.vrrp.bpf): the urgent one wakes
the process (priority 0, adverts for VRIDs this node is MASTER of), the bulk one holds the ordinary adverts a
BACKUP only notes, read in batches. Every packet carries the kernel's receive time, so a batch read late still
starts each timer when its advert arrived."""

from __future__ import annotations

import array
import ctypes
import errno
import functools
import logging
import mmap
import os
import platform
import socket
import struct
import time

from hanode.kernel_time import SO_TIMESTAMPNS_NEW, TIMESPEC, TimestampError, kernel_time_ns
from hanode.vrrp import bpf, mmsg
from hanode.vrrp.ah import AH_PROTO, split_ah
from hanode.vrrp.engine import Received
from hanode.vrrp.packet import IPV4_MCAST_GROUP, IPV6_MCAST_GROUP, VRRP_PROTO, PacketError, decode_ipv4

log = logging.getLogger("hanode.vrrp.io")

IP_MULTICAST_ALL = 49
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
ETH_P_ARP = 0x0806
ALL_NODES6 = "ff02::1"
# Room for the adverts that wait between two batch reads (1,000 instances at 0.1 s: ~300 kB per 20 ms). A
# limit, not an allocation; as root SO_RCVBUFFORCE passes net.core.rmem_max.
RCVBUF_BYTES = 4 << 20
# With the kernel's receive time of each packet (hanode.kernel_time), timers start when an advert arrived,
# not when this process got to read it.
ANCILLARY_SPACE = socket.CMSG_SPACE(64) + socket.CMSG_SPACE(TIMESPEC.size)
MAX_PACKET_AGE_NS = 10_000_000_000   # an older (or a future) stamp is not believed: the time of reading is used
CLOCK_STEP_NS = 1_000_000            # the wall clock moved against the monotonic one by more than this + drift
SOCK_FILTER = struct.Struct("=HBBI")  # struct sock_filter
SOCK_FPROG = struct.Struct("@HP")     # struct sock_fprog: length, pointer to the instructions

# One received packet, as the runner consumes it: (arrival µs, ident, socket, data, meta). ident: what makes two
# packets the same advert (hanode.vrrp.mmsg.ipv4_ident, ipv6_ident); meta: None (IPv4), or (source address,
# hop limit or None, destination or None) as 16-byte addresses (IPv6). data is b"" for a packet the kernel could
# not hand over whole (MSG_TRUNC, MSG_CTRUNC): the engine counts it as packet_len_err.
Packet = tuple
TRUNCATED = mmsg.MSG_TRUNC | mmsg.MSG_CTRUNC


def _bind_to_device(sock: socket.socket, ifname: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode() + b"\0")


def attach_filter(sock: socket.socket, program: list[bpf.Instruction]) -> None:
    """SO_ATTACH_FILTER (the kernel copies the program; it replaces the socket's previous one atomically)."""
    code = array.array("B", b"".join(SOCK_FILTER.pack(*insn) for insn in program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, SOCK_FPROG.pack(len(program), code.buffer_info()[0]))


def now_us() -> int:
    """This process's monotonic clock in µs (the engine's time base)."""
    return time.monotonic_ns() // 1000


class ArrivalClock:
    """Kernel receive stamps (CLOCK_REALTIME) -> this process's monotonic clock (µs), for one read pass: the
    offset between the two clocks is taken once per pass; when it moved since the last pass (the wall clock was
    set), that pass's stamps are not believed and the time of reading stands in (a later timer, never an
    earlier one)."""

    def __init__(self) -> None:
        self.offset_ns: int | None = None
        self.checked_ns = 0
        self.trusted = False
        self.mono_ns = self.real_ns = 0

    def begin(self) -> None:
        self.mono_ns, self.real_ns = time.monotonic_ns(), time.time_ns()
        offset = self.mono_ns - self.real_ns
        drift_ns = (self.mono_ns - self.checked_ns) // 1000   # NTP slews the wall clock by up to 500 ppm
        self.trusted = self.offset_ns is None or abs(offset - self.offset_ns) <= CLOCK_STEP_NS + drift_ns
        self.offset_ns, self.checked_ns = offset, self.mono_ns

    def arrival_us(self, ancdata: list) -> int:
        """The packet's arrival on the monotonic clock, from recvmsg()'s control messages."""
        if not self.trusted:
            return time.monotonic_ns() // 1000
        if len(ancdata) == 1 and ancdata[0][1] == SO_TIMESTAMPNS_NEW and len(ancdata[0][2]) == TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack(ancdata[0][2])   # the common case (IPv4), without the general parse
            return self.at(sec * 1_000_000_000 + nsec)
        try:
            return self.at(kernel_time_ns(ancdata))
        except TimestampError:
            return self.at(None)

    def at(self, stamp_ns: int | None) -> int:
        """The arrival on the monotonic clock of a packet the kernel stamped at stamp_ns (None: no stamp)."""
        if self.trusted and stamp_ns is not None:
            if 0 <= self.real_ns - stamp_ns <= MAX_PACKET_AGE_NS:
                return (stamp_ns + self.offset_ns) // 1000
            if stamp_ns > self.real_ns:   # arrived while this pass was reading
                return min(stamp_ns + self.offset_ns, time.monotonic_ns()) // 1000
        return time.monotonic_ns() // 1000


class VrrpSocket:
    """Receives and sends VRRP on one interface for one address family."""

    def __init__(self, ifname: str, ifindex: int, family: int, groups: tuple[str, ...] = (), ah: bool = False):
        self.ifname, self.ifindex, self.family = ifname, ifindex, family
        self.groups = groups or (multicast_group(family),)   # vrrp_mcast_group4/6, mcast_dst_ip
        self.masters: frozenset[int] = frozenset()
        self.prefix = struct.pack("=IB", ifindex, family)
        self.urgent = self._open_rx(urgent=True)
        self.bulk = self._open_rx(urgent=False)
        # AH adverts (IP protocol 51) reach only a socket of that protocol: one, read as the urgent one is
        self.ah = self._open_rx(urgent=True, protocol=AH_PROTO) if ah and family == 4 else None
        self.tx = self._open_tx()
        self.reader = batch_reader(family)   # None: recvmsg() per packet
        self.truncated = 0                   # packets the kernel could not hand over whole
        self.slot = mmsg.SLOT[family]        # read at most this much of a packet, both ways

    def filenos(self) -> tuple[int, int]:
        """(urgent, bulk) receive descriptors."""
        return self.urgent.fileno(), self.bulk.fileno()

    def close(self) -> None:
        for sock in (self.urgent, self.bulk, self.tx, self.ah):
            if sock is not None:
                sock.close()

    def set_masters(self, vrids: frozenset[int]) -> None:
        """The VRIDs whose adverts are urgent besides priority 0 (those this node is MASTER of). The urgent
        filter is widened before the bulk one changes and narrowed after: a packet may be read twice while
        they change (the runner drops the copy), never not at all."""
        if vrids == self.masters:
            return
        attach_filter(self.urgent, bpf.advert_filter(self.family, self.masters | vrids, urgent=True))
        attach_filter(self.bulk, bpf.advert_filter(self.family, vrids, urgent=False))
        attach_filter(self.urgent, bpf.advert_filter(self.family, vrids, urgent=True))
        self.masters = vrids

    def _open_rx(self, urgent: bool, protocol: int = VRRP_PROTO) -> socket.socket:
        if self.family == 4:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol)
            if protocol == VRRP_PROTO:
                attach_filter(sock, bpf.advert_filter(4, self.masters, urgent))
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            for group in self.groups:
                mreqn = socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", self.ifindex)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, VRRP_PROTO)
            attach_filter(sock, bpf.advert_filter(6, self.masters, urgent))
            for group in self.groups:
                mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", self.ifindex)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS_NEW, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
        except OSError:   # without CAP_NET_ADMIN: as much as net.core.rmem_max allows
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        _bind_to_device(sock, self.ifname)
        sock.setblocking(False)
        return sock

    def _open_tx(self) -> socket.socket:
        if self.family == 4:
            # IPPROTO_RAW: send only (IP_HDRINCL implied), so the kernel does not queue every received advert
            # on it too, as it would for a protocol-112 socket
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton("0.0.0.0") + socket.inet_aton("0.0.0.0") + struct.pack("@i", self.ifindex))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        else:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, VRRP_PROTO)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            # a protocol-112 socket gets a copy of every received advert: a filter that drops all keeps its
            # queue empty
            attach_filter(sock, [(bpf.RET | bpf.K, 0, 0, bpf.DROP)])
        _bind_to_device(sock, self.ifname)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, 6)
        sock.setblocking(False)
        return sock

    def send(self, data: bytes, dst: str, src: str | None = None, hop_limit: int | None = None) -> None:
        """IPv4: data is a whole datagram (IP_HDRINCL; an ident and checksum of 0 are filled in by the kernel).
        IPv6: data is the VRRP message; hop_limit: unicast_ttl."""
        if self.family == 4:
            self.tx.sendto(data, (dst, 0))
            return
        cmsg = []
        if src:
            pktinfo = socket.inet_pton(socket.AF_INET6, src) + struct.pack("@I", self.ifindex)
            cmsg.append((socket.IPPROTO_IPV6, IPV6_PKTINFO, pktinfo))
        if hop_limit is not None:
            cmsg.append((socket.IPPROTO_IPV6, IPV6_HOPLIMIT, struct.pack("@i", hop_limit)))
        self.tx.sendmsg([data], cmsg, 0, (dst, 0, 0, self.ifindex))

    def drain(self, packets: list[Packet], clock: ArrivalClock) -> None:
        """Appends every packet waiting on the receive sockets (each socket's in arrival order)."""
        for rx in (self.urgent, self.bulk, self.ah) if self.ah else (self.urgent, self.bulk):
            if self.reader is not None:
                self._drain_batches(rx.fileno(), self.reader, packets, clock)
            else:
                self._drain_each(rx, packets, clock)

    def _drain_batches(self, fd: int, reader: BatchReader, packets: list[Packet], clock: ArrivalClock) -> None:
        """recvmmsg() until a batch comes back short."""
        prefix, append, slot, count, view = self.prefix, packets.append, reader.slot, reader.count, reader.view
        while True:
            got = reader.read(fd)
            if self.family == 4:
                # ArrivalClock.at() inlined for the common case: a trusted pass, a stamp from before it began
                # and not older than MAX_PACKET_AGE_NS; anything else goes through at()
                real_ns, offset_ns = clock.real_ns, clock.offset_ns
                oldest_ns = real_ns - MAX_PACKET_AGE_NS if clock.trusted else real_ns + 1
                common = reader.stamp_only
                entries = zip(reader.entries(got), reader.stamps(got), range(0, got * slot, slot))
                for (control_len, flags, length), (cmsg_len, level, kind, sec, nsec), start in entries:
                    data = view[start:start + length].tobytes()
                    stamp = sec * 1_000_000_000 + nsec
                    if flags or (control_len, cmsg_len, level, kind) != common \
                            or not 0 <= nsec < 1_000_000_000 or not oldest_ns <= stamp <= real_ns:
                        data, arrival = self._odd(reader, start // slot, flags, control_len, data, clock)
                    else:
                        arrival = (stamp + offset_ns) // 1000
                    # mmsg.ipv4_ident, inlined
                    append((arrival, prefix + data[:4] + data[6:10] + data[12:], self, data, None))
            else:
                for (control_len, flags, length), index in zip(reader.entries(got), range(got)):
                    data = view[index * slot:index * slot + length].tobytes()
                    if flags & TRUNCATED:
                        self.truncated += 1
                        data = b""
                    stamp, hop, dst = mmsg.parse_control(reader.layout, reader.controls, index * reader.control_size,
                                                         control_len)
                    name = index * mmsg.SOCKADDR_IN6
                    meta = (bytes(reader.names[name + 8:name + 24]), hop, dst)
                    append((clock.at(stamp), mmsg.ipv6_ident(prefix, meta, data), self, data, meta))
            if got < count:
                return

    def _odd(self, reader: BatchReader, index: int, flags: int, control_len: int, data: bytes,
             clock: ArrivalClock) -> tuple[bytes, int]:
        """A packet off the common path: truncated (MSG_TRUNC, MSG_CTRUNC: its data is dropped), or with other
        control messages or a stamp ArrivalClock.at() must judge. (data, arrival µs)."""
        if flags & TRUNCATED:
            self.truncated += 1
            data = b""
        stamp = mmsg.parse_control(reader.layout, reader.controls, index * reader.control_size, control_len)[0]
        return data, clock.at(stamp)

    def _drain_each(self, rx: socket.socket, packets: list[Packet], clock: ArrivalClock) -> None:
        """recvmsg() per packet (where recvmmsg() is not to be had), until the socket is empty."""
        prefix, v4, recvmsg = self.prefix, self.family == 4, rx.recvmsg
        while True:
            try:
                data, ancdata, flags, addr = recvmsg(self.slot, ANCILLARY_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            if flags & TRUNCATED:
                self.truncated += 1
                data = b""
            if v4:
                packets.append((clock.arrival_us(ancdata), mmsg.ipv4_ident(prefix, data), self, data, None))
            else:
                meta = (socket.inet_pton(socket.AF_INET6, addr[0].split("%", 1)[0]),) + _ipv6_meta(ancdata)
                packets.append((clock.arrival_us(ancdata), mmsg.ipv6_ident(prefix, meta, data), self, data, meta))

    def received(self, packet: Packet) -> Received:
        """The packet decoded for the engine. Malformed (and truncated) ones come with an empty payload, for
        counting."""
        data, meta = packet[3], packet[4]
        if self.family == 4:
            try:
                header, payload = decode_ipv4(data)
                if header.protocol != AH_PROTO:
                    return Received(self.ifname, 4, header.src, header.dst, header.ttl, payload)
                ah, message = split_ah(payload)
            except PacketError:
                src = socket.inet_ntoa(data[12:16]) if len(data) >= 16 else ""
                return Received(self.ifname, 4, src, "", None, b"")
            return Received(self.ifname, 4, header.src, header.dst, header.ttl, message, data[:header.ihl * 4] + ah)
        src, hop_limit, dst = meta
        return Received(self.ifname, 6, socket.inet_ntop(socket.AF_INET6, src),
                        socket.inet_ntop(socket.AF_INET6, dst) if dst else IPV6_MCAST_GROUP, hop_limit, data)


def _ipv6_meta(ancdata: list) -> tuple[int | None, bytes | None]:
    """(hop limit, destination address as 16 bytes) of an IPv6 packet from recvmsg()'s control messages."""
    hop_limit = dst = None
    for level, kind, value in ancdata:
        if level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT:
            hop_limit = struct.unpack("@i", value[:4])[0]
        elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
            dst = value[:16]
    return hop_limit, dst


class BatchReader:
    """recvmmsg(2) through ctypes for the receive sockets of one family (one reader per process and family:
    reads are one at a time). The data slots are an anonymous mapping, so only the pages packets were written
    to count in the process's memory."""

    def __init__(self, family: int, layout: mmsg.Layout, recvmmsg) -> None:
        self.family, self.layout, self._recvmmsg = family, layout, recvmmsg
        self._holders: list = []   # ctypes views of the buffers: they stay exported (never resized or freed)
        self.count, self.slot = mmsg.BATCH, mmsg.SLOT[family]
        self.control_size = mmsg.control_slot(layout, family)
        name_size = mmsg.SOCKADDR_IN6 if family == 6 else 0
        self._data = mmap.mmap(-1, self.count * self.slot)
        self.view = memoryview(self._data)
        self.controls = bytearray(self.count * self.control_size)
        self.names = bytearray(self.count * name_size or 1)
        self.iovecs = bytearray(mmsg.preset_iovecs(layout, self.count, slots=self._address(self._data),
                                                   slot_size=self.slot))
        preset = mmsg.preset_headers(layout, self.count, names=self._address(self.names), name_size=name_size,
                                     iovecs=self._address(self.iovecs), controls=self._address(self.controls),
                                     control_size=self.control_size)
        self.headers = bytearray(preset)
        self._preset, self._used = bytearray(preset), 0   # _used: whether the last call wrote to headers
        self._headers = ctypes.c_void_p(self._address(self.headers))
        self._entries = mmsg.entry_results(layout)
        self._stamps, header = mmsg.stamp_struct(layout, self.control_size)
        self.stamp_only = (header[0],) + header   # (msg_controllen, cmsg_len, level, type) of the common case
        self._headers_view, self._controls_view = memoryview(self.headers), memoryview(self.controls)

    def _address(self, buffer) -> int:
        holder = (ctypes.c_char * len(buffer)).from_buffer(buffer)
        self._holders.append(holder)
        return ctypes.addressof(holder)

    def entries(self, count: int):
        """(msg_controllen, msg_flags, msg_len) of the first count entries."""
        return self._entries.iter_unpack(self._headers_view[:count * self.layout.mmsghdr])

    def stamps(self, count: int):
        """(cmsg_len, level, type, tv_sec, tv_nsec) at the start of the first count control slots (for IPv4,
        where one receive time is all a packet's control messages should be)."""
        return self._stamps.iter_unpack(self._controls_view[:count * self.control_size])

    def read(self, fd: int) -> int:
        """One recvmmsg() on fd: how many packets it gave (0: none waiting)."""
        if self._used:   # the kernel wrote lengths and flags into these entries: back to their preset values
            self.headers[:] = self._preset   # bytearray to bytearray of one size: one memcpy, no copy made
        count = self._recvmmsg(fd, self._headers, self.count, mmsg.MSG_DONTWAIT, None)
        if count >= 0:
            self._used = count * self.layout.mmsghdr
            return count
        self._used = 0
        err = ctypes.get_errno()
        if err in (errno.EAGAIN, errno.EINTR):
            return 0
        raise OSError(err, f"recvmmsg: {os.strerror(err)}")


@functools.cache
def batch_reader(family: int) -> BatchReader | None:
    """This process's reader for the family; None where the C library has no recvmmsg or the ABI's mmsghdr
    layout is not known (then recvmsg() reads each packet)."""
    layout = mmsg.LAYOUTS.get(platform.machine())
    if layout is None:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)   # this process's symbols, the C library's among them
        recvmmsg = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    # no argtypes (a third faster to call): the arguments are passed as read() gives them, ints for int and
    # unsigned int (all small), a c_void_p and None for the pointers; the result is an int (the default)
    return BatchReader(family, layout, recvmmsg)


class NeighbourAnnouncer:
    """Gratuitous ARP frames (AF_PACKET) and unsolicited NAs (raw ICMPv6, the kernel fills the checksum)."""

    def __init__(self) -> None:
        self._arp = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        self._arp.setblocking(False)
        self._icmp6: socket.socket | None = None

    def close(self) -> None:
        self._arp.close()
        if self._icmp6:
            self._icmp6.close()

    def send_arp(self, ifname: str, frame: bytes) -> None:
        self._arp.sendto(frame, (ifname, ETH_P_ARP))

    def send_na(self, ifindex: int, message: bytes) -> None:
        if self._icmp6 is None:
            self._icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            self._icmp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            self._icmp6.setblocking(False)
        self._icmp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        self._icmp6.sendto(message, (ALL_NODES6, 0, 0, ifindex))


def multicast_group(family: int) -> str:
    return IPV4_MCAST_GROUP if family == 4 else IPV6_MCAST_GROUP
