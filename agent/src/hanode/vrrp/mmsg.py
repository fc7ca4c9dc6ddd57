"""The pure part of reading adverts with recvmmsg(2) (hanode.vrrp.io does the I/O): the layout of struct mmsghdr,
struct iovec and struct cmsghdr per architecture, the receive slots' size, the preset header array, the
control messages each packet comes with (receive time, IPv6 destination and hop limit) and the packet's ident.

A batch is an array of struct mmsghdr, each pointing at one data slot, one control slot and (IPv6) one address
slot. The kernel writes each packet's length, flags, address length and control length back into its
mmsghdr, so the array is reset from a preset copy before every call."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hanode.kernel_time import SO_TIMESTAMPNS_NEW, SOL_SOCKET, TIMESPEC
from hanode.vrrp.ah import AH_LEN
from hanode.vrrp.packet import AUTH_DATA_LEN, HEADER_LEN

MSG_CTRUNC = 0x08     # a control message did not fit the control slot
MSG_TRUNC = 0x20      # the packet did not fit the data slot (the rest is lost)
MSG_DONTWAIT = 0x40
IPPROTO_IPV6 = 41
IPV6_PKTINFO = 50
IPV6_HOPLIMIT = 52
SOCKADDR_IN6 = 28     # struct sockaddr_in6: family, port, flowinfo, address (at 8), scope id
CMSG_HEAD = {"Q": struct.Struct("=Qii"), "I": struct.Struct("=Iii")}   # cmsg_len, cmsg_level, cmsg_type
INT = struct.Struct("=i")


@dataclass(frozen=True)
class Layout:
    """struct mmsghdr / iovec / cmsghdr on one ABI (offsets and sizes in bytes)."""
    word: str            # struct format of a size_t and of a pointer
    word_size: int       # their size, and the alignment of control messages
    cmsghdr: int         # CMSG_LEN(0): cmsg_len (size_t), cmsg_level and cmsg_type (int), aligned
    mmsghdr: int         # sizeof(struct mmsghdr)
    name: int            # msg_hdr.msg_name
    namelen: int         # msg_hdr.msg_namelen (socklen_t)
    iov: int             # msg_hdr.msg_iov
    iovlen: int          # msg_hdr.msg_iovlen (size_t)
    control: int         # msg_hdr.msg_control
    controllen: int      # msg_hdr.msg_controllen (size_t)
    flags: int           # msg_hdr.msg_flags (int)
    msg_len: int         # msg_len (unsigned int)

    def cmsg_space(self, payload: int) -> int:
        """CMSG_SPACE(payload)."""
        return self.cmsghdr + ((payload + self.word_size - 1) & ~(self.word_size - 1))


# LP64 Linux: the same on x86-64 and aarch64 (and every other 64-bit Linux ABI).
LP64 = Layout(word="Q", word_size=8, cmsghdr=16, mmsghdr=64, name=0, namelen=8, iov=16, iovlen=24, control=32,
              controllen=40, flags=48, msg_len=56)
LAYOUTS = {"x86_64": LP64, "amd64": LP64, "aarch64": LP64, "arm64": LP64}

# The largest valid advert: IPv4 with a 60-byte header, AH and VRRPv2 with 255 addresses and auth data; IPv6 (the
# raw socket gives the VRRP message only) with 255 addresses. A packet that does not fit its slot is longer than
# any valid advert: it is a bad packet (packet_len_err), whatever else is in it.
MAX_ADVERT = {4: 60 + AH_LEN + HEADER_LEN + 255 * 4 + AUTH_DATA_LEN, 6: HEADER_LEN + 255 * 16}
SLOT = {4: 2048, 6: 4096}
BATCH = 64     # packets per recvmmsg() call; the data slots are 128 kB (IPv4) / 256 kB (IPv6), touched as used
CONTROL_PAYLOADS = {4: (16,), 6: (16, 20, 4)}   # __kernel_timespec; and in6_pktinfo, the hop limit (int)


def control_slot(layout: Layout, family: int) -> int:
    """The control space one packet needs: its receive time, and for IPv6 its destination and hop limit."""
    return sum(layout.cmsg_space(size) for size in CONTROL_PAYLOADS[family])


def preset_headers(layout: Layout, count: int, *, names: int, name_size: int, iovecs: int, controls: int,
                   control_size: int) -> bytes:
    """The mmsghdr array before a call: entry i points at iovec i, address slot i (none if name_size is 0) and
    control slot i, with their sizes."""
    word = layout.word
    one = struct.Struct(f"={layout.mmsghdr}x")
    out = bytearray(one.size * count)
    iovec = 2 * layout.word_size
    for i in range(count):
        base = i * layout.mmsghdr
        struct.pack_into("=" + word, out, base + layout.name, names + i * name_size if name_size else 0)
        struct.pack_into("=I", out, base + layout.namelen, name_size)
        struct.pack_into("=" + word, out, base + layout.iov, iovecs + i * iovec)
        struct.pack_into("=" + word, out, base + layout.iovlen, 1)
        struct.pack_into("=" + word, out, base + layout.control, controls + i * control_size)
        struct.pack_into("=" + word, out, base + layout.controllen, control_size)
    return bytes(out)


def preset_iovecs(layout: Layout, count: int, *, slots: int, slot_size: int) -> bytes:
    """struct iovec[count]: data slot i, slot_size bytes."""
    pair = struct.Struct("=" + layout.word * 2)
    return b"".join(pair.pack(slots + i * slot_size, slot_size) for i in range(count))


def entry_results(layout: Layout) -> struct.Struct:
    """One whole mmsghdr, giving (msg_controllen, msg_flags, msg_len): for iter_unpack over the array."""
    gap, tail = layout.msg_len - layout.flags - 4, layout.mmsghdr - layout.msg_len - 4
    return struct.Struct(f"={layout.controllen}x{layout.word}i{gap}xI{tail}x")


def parse_control(layout: Layout, buf, offset: int, length: int) -> tuple[int | None, int | None, bytes | None]:
    """(receive time in ns or None, IPv6 hop limit or None, IPv6 destination (16 bytes) or None) from the
    control messages at buf[offset:offset + length], walked as CMSG_NXTHDR does. A receive time whose tv_nsec is
    out of range counts as none (hanode.kernel_time's rule)."""
    head, hdr, mask = CMSG_HEAD[layout.word], layout.cmsghdr, layout.word_size - 1
    stamp = hop = dst = None
    pos, end = offset, offset + length
    while pos + hdr <= end:
        cmsg_len, level, kind = head.unpack_from(buf, pos)
        if cmsg_len < hdr or pos + cmsg_len > end:
            break
        data, size = pos + hdr, cmsg_len - hdr
        if level == IPPROTO_IPV6:
            if kind == IPV6_PKTINFO and size >= 16:
                dst = bytes(buf[data:data + 16])
            elif kind == IPV6_HOPLIMIT and size >= 4:
                hop = INT.unpack_from(buf, data)[0]
        elif level == SOL_SOCKET and kind == SO_TIMESTAMPNS_NEW and size >= 16:
            sec, nsec = TIMESPEC.unpack_from(buf, data)
            stamp = sec * 1_000_000_000 + nsec if 0 <= nsec < 1_000_000_000 else None
        pos += (cmsg_len + mask) & ~mask
    return stamp, hop, dst


def stamp_struct(layout: Layout, control_size: int) -> tuple[struct.Struct, tuple[int, int, int]]:
    """The common case of an IPv4 packet, one SO_TIMESTAMPNS_NEW message: a Struct over a whole control slot,
    giving (cmsg_len, level, type, tv_sec, tv_nsec), and the (cmsg_len, level, type) it must show, else
    parse_control() reads the slot."""
    head = struct.Struct(f"={layout.word}iiqq")
    return (struct.Struct(f"={layout.word}iiqq{control_size - head.size}x"),
            (layout.cmsghdr + 16, SOL_SOCKET, SO_TIMESTAMPNS_NEW))


def ipv4_ident(prefix: bytes, data: bytes) -> bytes:
    """What makes two IPv4 packets the same advert: interface, family and every byte but the IP ident and the
    header checksum (the sender's kernel fills them per packet)."""
    return prefix + data[:4] + data[6:10] + data[12:]


def ipv6_ident(prefix: bytes, meta: tuple, data: bytes) -> tuple:
    """The same for IPv6: interface, family, source, hop limit, destination (meta) and the VRRP message."""
    return prefix, meta, data
