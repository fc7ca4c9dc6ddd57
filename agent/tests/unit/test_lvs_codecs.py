"""Kernel codecs without a kernel: IPVS generic-netlink attributes and `nft -j` tables round-trip to the
kernel-shaped state (the load-balancer's pure modules are on test_purity.py's list)."""

from __future__ import annotations

import socket
import struct

import pytest

from hanode.lvs import ipvs, nft
from hanode.lvs.kernel import SVC_F_PERSISTENT, Dest, DestKey, Entry, Service, ServiceKey
from hanode.lvs.plan import DelDest, EditDest


def _roundtrip_service(service: Service) -> Service:
    top = ipvs.parse_attrs(ipvs.service_attr(service, True))
    return ipvs.parse_service(ipvs.parse_attrs(top[ipvs.CMD_ATTR_SERVICE]))


def test_ipvs_service_attributes_round_trip():
    v4 = Service(ServiceKey.for_address(4, "TCP", "198.51.100.100", 80), "wrr", SVC_F_PERSISTENT, 300, 24)
    v6 = Service(ServiceKey.for_address(6, "UDP", "2001:db8:100::100", 53), "sh")
    mark = Service(ServiceKey.for_fwmark(4, 7), "rr")
    for service in (v4, v6, mark):
        assert _roundtrip_service(service) == service.normalized()


def test_ipvs_netmask_is_a_mask_for_ipv4_and_a_host_order_prefix_length_for_ipv6():
    v4 = Service(ServiceKey.for_address(4, "TCP", "198.51.100.100", 80), "rr", SVC_F_PERSISTENT, 60, 24)
    v6 = Service(ServiceKey.for_address(6, "TCP", "2001:db8:100::100", 80), "rr")
    assert ipvs._netmask(v4) == socket.inet_aton("255.255.255.0")
    assert ipvs._netmask(v6.normalized()) == struct.pack("=I", 128)


def test_ipvs_dest_attributes_carry_weight_and_method():
    dest = Dest(DestKey("2001:db8:203::11", 8080), 7, "DR")
    attrs = ipvs.parse_attrs(ipvs.parse_attrs(ipvs.dest_attr(dest, True))[ipvs.CMD_ATTR_DEST])
    assert ipvs.parse_dest(attrs, socket.AF_INET6) == dest
    assert struct.unpack("=I", attrs[ipvs.DEST_ATTR["fwd"]])[0] == 3      # IP_VS_CONN_F_DROUTE


def test_ipvs_requests_skip_dest_deletes_implied_by_a_service_delete():
    key = ServiceKey.for_address(4, "TCP", "198.51.100.100", 80)
    from hanode.lvs.plan import DelService
    ops = [DelDest(key, DestKey("203.0.113.11", 80)), DelService(key)]
    assert ipvs.without_implied(ops) == [DelService(key)]


def test_ipvs_weight_change_is_a_set_dest_request():
    key = ServiceKey.for_address(4, "TCP", "198.51.100.100", 80)
    cmd, _attrs = ipvs.encode_op(EditDest(key, Dest(DestKey("203.0.113.11", 80), 5), Dest(DestKey("203.0.113.11", 80), 3)), {})
    assert cmd == ipvs.CMD["set_dest"] == 6


KEY = ServiceKey.for_address(4, "TCP", "198.51.100.100", 80)
CHAIN = "svc_tcp_198.51.100.100_80"


# nft prints the protocol by number on a host without /etc/protocols (netbase), as a minimal Debian has.
@pytest.mark.parametrize("proto", ["tcp", 6])
def test_nft_table_parses_to_kernel_state(proto):
    doc = {"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"map": {"family": "ip", "name": "services", "table": "hanode", "type": ["ipv4_addr", "inet_proto", "inet_service"],
                 "map": "verdict", "elem": [[{"concat": ["198.51.100.100", proto, 80]}, {"jump": {"target": CHAIN}}]]}},
        {"map": {"family": "ip", "name": f"w_{CHAIN}", "table": "hanode", "map": "mark",
                 "elem": [[{"concat": ["203.0.113.11", 8080]}, 3], [{"concat": ["203.0.113.12", 8080]}, 0]]}},
        {"rule": {"family": "ip", "table": "hanode", "chain": CHAIN, "comment": "wrr", "expr": []}},
    ]}
    assert nft.parse_table(doc, 4) == {KEY: Entry(Service(KEY, "wrr").normalized(), {
        DestKey("203.0.113.11", 8080): Dest(DestKey("203.0.113.11", 8080), 3),
        DestKey("203.0.113.12", 8080): Dest(DestKey("203.0.113.12", 8080), 0)})}
