"""SCTP packets without an SCTP stack: this host's kernel has no SCTP sockets (CONFIG_IP_SCTP unset), but its
conntrack and nftables handle SCTP, and raw IP sockets carry protocol 132 both ways. Run inside a lab
namespace:

    python sctp_raw.py respond --out FILE             answers every INIT with an INIT-ACK, logs what arrived
    python sctp_raw.py initiate --dst VIP --dport 3868 --sports 40001,40002 --out FILE
                                                     one INIT per source port; logs the INIT-ACKs that came back

Each INIT is a real association start (verification tag 0, an init tag of its own); each INIT-ACK carries
that tag as its verification tag, as conntrack's SCTP state tracking checks. Lines written are JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import time

from scapy.layers.inet import IP
from scapy.layers.sctp import SCTP, SCTPChunkInit, SCTPChunkInitAck

IPPROTO_SCTP = 132


def raw_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_SCTP)
    sock.settimeout(0.2)
    return sock


def respond(out: str, duration_s: float) -> None:
    sock = raw_socket()
    deadline = time.monotonic() + duration_s
    with open(out, "a", encoding="utf-8") as log:
        while time.monotonic() < deadline:
            try:
                data, _addr = sock.recvfrom(65535)
            except socket.timeout:
                continue
            ip = IP(data)
            sctp = ip[SCTP]
            if not sctp.haslayer(SCTPChunkInit):
                continue
            init = sctp[SCTPChunkInit]
            log.write(json.dumps({"src": ip.src, "dst": ip.dst, "sport": sctp.sport, "dport": sctp.dport,
                                  "init_tag": init.init_tag}) + "\n")
            log.flush()
            answer = SCTP(sport=sctp.dport, dport=sctp.sport, tag=init.init_tag) / SCTPChunkInitAck(
                init_tag=random.randint(1, 2**32 - 1), a_rwnd=65535, n_out_streams=1, n_in_streams=1, init_tsn=1)
            sock.sendto(bytes(answer), (ip.src, 0))


def initiate(dst: str, dport: int, sports: list[int], out: str, timeout_s: float) -> None:
    sock = raw_socket()
    tags = {}
    for sport in sports:
        tags[sport] = random.randint(1, 2**32 - 1)
        init = SCTP(sport=sport, dport=dport, tag=0) / SCTPChunkInit(
            init_tag=tags[sport], a_rwnd=65535, n_out_streams=1, n_in_streams=1, init_tsn=1)
        sock.sendto(bytes(init), (dst, 0))
    answered = {}
    deadline = time.monotonic() + timeout_s
    while len(answered) < len(sports) and time.monotonic() < deadline:
        try:
            data, _addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        ip = IP(data)
        sctp = ip[SCTP]
        if sctp.haslayer(SCTPChunkInitAck) and tags.get(sctp.dport) == sctp.tag:
            answered[sctp.dport] = {"src": ip.src, "sport": sctp.sport, "dport": sctp.dport, "tag": sctp.tag}
    with open(out, "w", encoding="utf-8") as log:
        json.dump({"sent": len(sports), "answers": list(answered.values())}, log)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    resp = sub.add_parser("respond")
    resp.add_argument("--out", required=True)
    resp.add_argument("--duration-s", type=float, default=120)
    init = sub.add_parser("initiate")
    init.add_argument("--dst", required=True)
    init.add_argument("--dport", type=int, required=True)
    init.add_argument("--sports", required=True)
    init.add_argument("--out", required=True)
    init.add_argument("--timeout-s", type=float, default=10)
    args = parser.parse_args()
    if args.mode == "respond":
        respond(args.out, args.duration_s)
    else:
        initiate(args.dst, args.dport, [int(p) for p in args.sports.split(",")], args.out, args.timeout_s)


if __name__ == "__main__":
    main()
