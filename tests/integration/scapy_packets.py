"""Sends hand-made VRRPv2 adverts (IPv4 multicast) with scapy, one fault each: run inside a lab namespace.

    python scapy_packets.py --iface eth0 --src 198.51.100.201 --mac 02:68:6e:02:01:00 \
        --vrid 51 --vips 198.51.100.100 --password s3cret --count 2 ttl checksum ...

Every packet is a correct advert for the instance (VRID, addresses, interval, PASS password) at priority
254 except for the one fault its case names, so that an agent which wrongly accepted it would visibly
step down. Cases: valid ttl checksum version type short authtype_none auth_ah password interval
addresses vrid. Prints "<case> <hex of the VRRP part>" per frame sent.
"""

from __future__ import annotations

import argparse
import sys

from scapy.all import IP, Ether, Raw, conf, sendp
from scapy.layers.vrrp import VRRP, VRRPv3

MCAST_IP = "224.0.0.18"
MCAST_MAC = "01:00:5e:00:00:12"
PRIORITY = 254

CASES = ("valid", "ttl", "checksum", "version", "type", "short", "authtype_none", "auth_ah", "password",
         "interval", "addresses", "vrid")


def _auth_words(password: str | None) -> tuple[int, int]:
    data = (password or "").encode()[:8].ljust(8, b"\0")
    return int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big")


def build(case: str, args: argparse.Namespace) -> bytes:
    """The IPv4 datagram for one case (scapy fills in lengths and checksums unless a case breaks one)."""
    ttl = 64 if case == "ttl" else 255
    ip = IP(src=args.src, dst=MCAST_IP, ttl=ttl, proto=112, tos=0xC0)
    vips = args.vips.split(",")
    if case == "short":
        return bytes(ip / Raw(bytes([0x21, args.vrid, PRIORITY, 1])))
    if case == "version":  # a well-formed VRRPv3 advert in a v2 VRID
        return bytes(ip / VRRPv3(vrid=args.vrid, priority=PRIORITY, ipcount=len(vips), adv=args.advert_int * 100,
                                 addrlist=vips))
    password, authtype = args.password, 1 if args.password else 0
    if case == "authtype_none":
        password, authtype = None, 0
    elif case == "auth_ah":
        authtype = 2
    elif case == "password":
        password = "wrong!!!"
    auth1, auth2 = _auth_words(password)
    fields = dict(version=2, type=2 if case == "type" else 1, priority=PRIORITY,
                  vrid=args.vrid + 48 if case == "vrid" else args.vrid,
                  adv=args.advert_int + 2 if case == "interval" else args.advert_int,
                  addrlist=["198.51.100.199"] if case == "addresses" else vips, authtype=authtype,
                  auth1=auth1, auth2=auth2)
    fields["ipcount"] = len(fields["addrlist"])
    packet = ip / VRRP(**fields)
    if case == "checksum":
        good = VRRP(bytes(packet[VRRP])).chksum
        packet[VRRP].chksum = good ^ 0x00FF
    return bytes(packet)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--src", required=True)
    parser.add_argument("--mac", required=True)
    parser.add_argument("--vrid", type=int, required=True)
    parser.add_argument("--vips", required=True, help="comma separated")
    parser.add_argument("--password")
    parser.add_argument("--advert-int", type=int, default=1, help="seconds")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("cases", nargs="+", choices=CASES)
    args = parser.parse_args(argv)
    conf.verb = 0
    frames = []
    for case in args.cases:
        datagram = build(case, args)
        frames += [(case, datagram)] * args.count
    for case, datagram in frames:
        sendp(Ether(src=args.mac, dst=MCAST_MAC, type=0x0800) / Raw(datagram), iface=args.iface, verbose=False)
        print(case, datagram[20:].hex(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
