"""Raw sockets: VRRP adverts (IPv4 with IP_HDRINCL as keepalived does, IPv6 with IPV6_PKTINFO),
gratuitous ARP (AF_PACKET) and unsolicited neighbour advertisements (ICMPv6)."""

from __future__ import annotations

import logging
import socket
import struct
import time

from hanode.kernel_time import SO_TIMESTAMPNS_NEW, TIMESPEC, TimestampError, kernel_time_ns
from hanode.vrrp.engine import Received
from hanode.vrrp.packet import IPV4_MCAST_GROUP, IPV6_MCAST_GROUP, VRRP_PROTO, PacketError, decode_ipv4

log = logging.getLogger("hanode.vrrp.io")

IP_MULTICAST_ALL = 49
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
ETH_P_ARP = 0x0806
ALL_NODES6 = "ff02::1"
RECV_BUFFER = 65535
# With the kernel's receive time of each packet (hanode.kernel_time), timers start when an advert arrived,
# not when this process got to read it.
ANCILLARY_SPACE = socket.CMSG_SPACE(64) + socket.CMSG_SPACE(TIMESPEC.size)
MAX_PACKET_AGE_US = 100_000   # an older stamp means the wall clock moved: use the time of reading instead


def _bind_to_device(sock: socket.socket, ifname: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode() + b"\0")


class VrrpSocket:
    """Receives and sends VRRP on one interface for one address family."""

    def __init__(self, ifname: str, ifindex: int, family: int):
        self.ifname, self.ifindex, self.family = ifname, ifindex, family
        self.rx = self._open_rx()
        self.tx = self._open_tx()

    def fileno(self) -> int:
        return self.rx.fileno()

    def close(self) -> None:
        self.rx.close()
        self.tx.close()

    def _open_rx(self) -> socket.socket:
        if self.family == 4:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, VRRP_PROTO)
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            mreqn = socket.inet_aton(IPV4_MCAST_GROUP) + socket.inet_aton("0.0.0.0") + struct.pack("@i", self.ifindex)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, VRRP_PROTO)
            mreq = socket.inet_pton(socket.AF_INET6, IPV6_MCAST_GROUP) + struct.pack("@I", self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS_NEW, 1)
        _bind_to_device(sock, self.ifname)
        sock.setblocking(False)
        return sock

    def _open_tx(self) -> socket.socket:
        if self.family == 4:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, VRRP_PROTO)
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
        _bind_to_device(sock, self.ifname)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, 6)
        sock.setblocking(False)
        return sock

    def send(self, data: bytes, dst: str, src: str | None = None) -> None:
        """IPv4: data is a whole datagram (IP_HDRINCL). IPv6: data is the VRRP message."""
        if self.family == 4:
            self.tx.sendto(data, (dst, 0))
            return
        cmsg = []
        if src:
            pktinfo = socket.inet_pton(socket.AF_INET6, src) + struct.pack("@I", self.ifindex)
            cmsg.append((socket.IPPROTO_IPV6, IPV6_PKTINFO, pktinfo))
        self.tx.sendmsg([data], cmsg, 0, (dst, 0, 0, self.ifindex))

    def receive_all(self) -> list[tuple[Received, int]]:
        """Drains the socket: (packet, its arrival in time.monotonic_ns() // 1000). Malformed IPv4 headers are
        returned with an empty payload for counting."""
        packets = []
        while True:
            try:
                packets.append(self._receive_one())
            except (BlockingIOError, InterruptedError):
                return packets

    def _receive_one(self) -> tuple[Received, int]:
        data, ancdata, _flags, addr = self.rx.recvmsg(RECV_BUFFER, ANCILLARY_SPACE)
        arrival = _arrival_us(ancdata)
        if self.family == 4:
            try:
                header, payload = decode_ipv4(data)
            except PacketError:
                return Received(self.ifname, 4, addr[0], "", None, b""), arrival
            return Received(self.ifname, 4, header.src, header.dst, header.ttl, payload), arrival
        hop_limit, dst = None, IPV6_MCAST_GROUP
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT:
                hop_limit = struct.unpack("@i", value[:4])[0]
            elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO:
                dst = socket.inet_ntop(socket.AF_INET6, value[:16])
        src = addr[0].split("%", 1)[0]
        return Received(self.ifname, 6, src, dst, hop_limit, data), arrival


def _arrival_us(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The packet's kernel receive time on the monotonic clock (µs): now minus its age by the wall clock."""
    now_mono, now_real = time.monotonic_ns(), time.time_ns()
    try:
        stamp_ns = kernel_time_ns(ancdata)
    except TimestampError:
        stamp_ns = None
    if stamp_ns is not None:
        age_us = (now_real - stamp_ns) // 1000
        if 0 <= age_us <= MAX_PACKET_AGE_US:
            return now_mono // 1000 - age_us
    return now_mono // 1000


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
