"""Run in the receiving namespace: `rx_probe.py SENDER_NETNS FAMILY SOURCE COUNT`. Opens a VrrpSocket on v0
here and one on v1 in SENDER_NETNS (setns(2)), sends COUNT adverts and one longer than a receive slot, then
reads them once with recvmmsg (the batch reader) and once with recvmsg per packet; prints what each read gave
(JSON) for test_vrrp_recvmmsg.py."""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
import time

from hanode.vrrp import io, mmsg
from hanode.vrrp.packet import Advert, encode_advert, encode_ipv4

CLONE_NEWNET = 0x40000000
READ_TIMEOUT_S = 10


def enter(netns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
    finally:
        os.close(fd)


def adverts(family: int, src: str, dst: str, count: int) -> list[bytes]:
    out = []
    for i in range(count):
        vip = f"198.51.100.{100 + i}" if family == 4 else f"2001:db8::{100 + i:x}"
        msg = encode_advert(Advert(version=3, vrid=1 + i, priority=100, max_advert_int_cs=100, addresses=(vip,)),
                            family=family, src=src, dst=dst)
        out.append(encode_ipv4(msg, src=src, dst=dst) if family == 4 else msg)
    # longer than a receive slot (the link's MTU is 9000): the kernel truncates it
    long_msg = out[0][20:] if family == 4 else out[0]
    padded = long_msg + bytes(mmsg.SLOT[family] + 500)
    out.append(encode_ipv4(padded, src=src, dst=dst) if family == 4 else padded)
    return out


def read(rx: io.VrrpSocket, want: int, start_us: int) -> dict:
    clock = io.ArrivalClock()
    packets: list = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    while len(packets) < want and time.monotonic() < deadline:
        clock.begin()
        rx.drain(packets, clock)
        if len(packets) < want:
            time.sleep(0.01)
    read_us = io.now_us()
    return {"packets": [{"after_send_us": p[0] - start_us, "before_read_us": read_us - p[0],
                         "ident": repr(p[1]), "data": p[3].hex(), "received": repr(rx.received(p))}
                        for p in packets],
            "truncated": rx.truncated, "batched": rx.reader is not None}


def main() -> None:
    sender_netns, family, src, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    dst = io.multicast_group(family)
    rx = io.VrrpSocket("v0", socket.if_nametoindex("v0"), family)
    enter(sender_netns)
    tx = io.VrrpSocket("v1", socket.if_nametoindex("v1"), family)
    reader, result = rx.reader, {}
    for mode in ("recvmmsg", "recvmsg"):
        rx.reader = reader if mode == "recvmmsg" else None
        rx.truncated = 0
        sent = adverts(family, src, dst, count)
        start_us = io.now_us()
        for data in sent:
            tx.send(data, dst)
        result[mode] = read(rx, len(sent), start_us)
    result["sent"] = [data.hex() for data in sent]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
