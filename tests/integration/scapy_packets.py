"""Sends hand-made VRRP adverts with scapy, one fault each: run inside a lab namespace. IPv4 (default):
VRRPv2 to 224.0.0.18; --family 6: VRRPv3 to ff02::12 from the sender's link-local address.

    python scapy_packets.py --iface eth0 --src 198.51.100.201 --mac 02:68:6e:02:01:00 \
        --vrid 51 --vips 198.51.100.100 --password s3cret --count 2 ttl checksum ...

Every packet is a correct advert for the instance (VRID, addresses, interval, PASS password) at priority
254 except for the one fault its case names, so that an agent which wrongly accepted it would visibly
step down. Cases: valid ttl checksum version type short authtype_none auth_ah password interval
addresses vrid (IPv6: no authentication cases; ttl is the hop limit, interval is 0, version is a VRRPv2
header). Prints "<case> <hex of the VRRP part>" per frame sent.
"""

from __future__ import annotations

import argparse
import sys

from scapy.all import IP, Ether, IPv6, Raw, conf, sendp
from scapy.layers.vrrp import VRRP, VRRPv3

MCAST_IP = "224.0.0.18"
MCAST_MAC = "01:00:5e:00:00:12"
MCAST_IP6 = "ff02::12"
MCAST_MAC6 = "33:33:00:00:00:12"
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


def build6(case: str, args: argparse.Namespace) -> bytes:
    """The IPv6 datagram for one case: a VRRPv3 advert (scapy computes the checksum with the pseudo-header)."""
    ip = IPv6(src=args.src, dst=MCAST_IP6, hlim=64 if case == "ttl" else 255, nh=112, tc=0xC0)
    vips = args.vips.split(",")
    if case == "short":
        return bytes(ip / Raw(bytes([0x31, args.vrid, PRIORITY, 1])))
    addresses = ["2001:db8:100::199"] if case == "addresses" else vips
    packet = ip / VRRPv3(version=2 if case == "version" else 3, type=2 if case == "type" else 1,
                         vrid=args.vrid + 48 if case == "vrid" else args.vrid, priority=PRIORITY,
                         ipcount=len(addresses), adv=0 if case == "interval" else args.advert_int * 100,
                         addrlist=addresses)
    if case == "checksum":
        good = IPv6(bytes(packet))[VRRPv3].chksum
        packet[VRRPv3].chksum = good ^ 0x00FF
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
    parser.add_argument("--family", type=int, choices=(4, 6), default=4)
    parser.add_argument("cases", nargs="+", choices=CASES)
    args = parser.parse_args(argv)
    conf.verb = 0
    if args.family == 6 and set(args.cases) & {"authtype_none", "auth_ah", "password"}:
        parser.error("VRRPv3 over IPv6 has no authentication: no auth cases")
    builder, dst_mac, ethertype, header = (build6, MCAST_MAC6, 0x86DD, 40) if args.family == 6 else \
        (build, MCAST_MAC, 0x0800, 20)
    frames = []
    for case in args.cases:
        datagram = builder(case, args)
        frames += [(case, datagram)] * args.count
    for case, datagram in frames:
        sendp(Ether(src=args.mac, dst=dst_mac, type=ethertype) / Raw(datagram), iface=args.iface, verbose=False)
        print(case, datagram[header:].hex(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
