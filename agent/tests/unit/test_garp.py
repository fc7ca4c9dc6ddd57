"""hanode.vrrp.garp: golden frames, frames captured from keepalived 2.2.7, scapy cross-checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet6 import IPv6, ICMPv6ND_NA, ICMPv6NDOptDstLLAddr
from scapy.layers.l2 import ARP, Ether
from scapy.packet import raw

from hanode.vrrp.garp import (
    format_mac,
    gratuitous_arp_frame,
    parse_mac,
    unsolicited_na,
    unsolicited_na_with_checksum,
)

KEEPALIVED = json.loads((Path(__file__).parent / "golden" / "keepalived_2.2.7.json").read_text())
MAC_TEXT = "52:54:00:12:34:56"
MAC = bytes.fromhex("525400123456")
VIP4 = "203.0.113.7"
VIP6 = "2001:db8:100::20"

GARP_HEX = "ffffffffffff52540012345608060001080006040001525400123456cb007107ffffffffffffcb007107"
NA_HEX = "880000002000000020010db80100000000000000000000200201525400123456"
NA_ROUTER_HEX = "88000000a000000020010db80100000000000000000000200201525400123456"
NA_CHECKSUM_HEX = "880072312000000020010db80100000000000000000000200201525400123456"


# --- MAC text ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["52:54:00:12:34:56", "52-54-00-12-34-56", "52:54:00:12:34:56".upper()])
def test_parse_mac(text):
    assert parse_mac(text) == MAC


@pytest.mark.parametrize("text", ["", "52:54:00:12:34", "52:54:00:12:34:56:78", "52:54-00:12:34:56",
                                  "5254.0012.3456", "52:54:00:12:34:5g", " 52:54:00:12:34:56", None])
def test_parse_mac_rejects(text):
    with pytest.raises(ValueError, match="^mac:"):
        parse_mac(text)


def test_format_mac():
    assert format_mac(bytes.fromhex("AABBCC0D0E0F")) == "aa:bb:cc:0d:0e:0f"
    assert parse_mac(format_mac(MAC)) == MAC


@pytest.mark.parametrize("raw_mac", [b"", b"\x00" * 5, b"\x00" * 7, "525400123456"])
def test_format_mac_rejects(raw_mac):
    with pytest.raises(ValueError, match="^mac:"):
        format_mac(raw_mac)


# --- gratuitous ARP -----------------------------------------------------------------------------


def test_gratuitous_arp_golden_frame():
    assert gratuitous_arp_frame(MAC, VIP4).hex() == GARP_HEX


def test_gratuitous_arp_parsed_by_scapy():
    frame = Ether(gratuitous_arp_frame(MAC, VIP4))
    assert (frame.dst, frame.src, frame.type) == ("ff:ff:ff:ff:ff:ff", MAC_TEXT, 0x0806)
    arp = frame[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x0800, 6, 4, 1)  # who-has (request)
    assert (arp.hwsrc, arp.psrc, arp.hwdst, arp.pdst) == (MAC_TEXT, VIP4, "ff:ff:ff:ff:ff:ff", VIP4)


def test_gratuitous_arp_matches_scapy_build():
    built = Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC_TEXT) / ARP(
        op=1, hwsrc=MAC_TEXT, psrc=VIP4, hwdst="ff:ff:ff:ff:ff:ff", pdst=VIP4
    )
    assert raw(built) == gratuitous_arp_frame(MAC, VIP4)


@pytest.mark.parametrize("record", KEEPALIVED["garps"], ids=[r["ip"] for r in KEEPALIVED["garps"]])
def test_gratuitous_arp_reproduces_keepalived_frame(record):
    assert gratuitous_arp_frame(parse_mac(record["src_mac"]), record["ip"]).hex() == record["frame_hex"]


def test_keepalived_capture_has_a_garp_per_ipv4_vip():
    ipv4_vips = {vip for r in KEEPALIVED["adverts"] if r["family"] == 4 for vip in r["expected"]["addresses"]}
    assert {r["ip"] for r in KEEPALIVED["garps"]} == ipv4_vips


@pytest.mark.parametrize("mac, ip, field", [(MAC, "2001:db8::1", "ip"), (MAC, "vip", "ip"), (MAC[:5], VIP4, "mac")])
def test_gratuitous_arp_rejects_bad_arguments(mac, ip, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        gratuitous_arp_frame(mac, ip)


# --- unsolicited NA ----------------------------------------------------------------------------------


def test_unsolicited_na_golden_bodies():
    assert unsolicited_na(MAC, VIP6).hex() == NA_HEX
    assert unsolicited_na(MAC, VIP6, router=True).hex() == NA_ROUTER_HEX
    assert unsolicited_na_with_checksum(MAC, VIP6, src=VIP6).hex() == NA_CHECKSUM_HEX


@pytest.mark.parametrize("router", [False, True])
def test_unsolicited_na_parsed_by_scapy(router):
    na = ICMPv6ND_NA(unsolicited_na(MAC, VIP6, router=router))
    assert (na.type, na.code, na.cksum) == (136, 0, 0)
    assert (na.R, na.S, na.O, na.res) == (int(router), 0, 1, 0)
    assert na.tgt == VIP6
    option = na[ICMPv6NDOptDstLLAddr]
    assert (option.type, option.len, option.lladdr) == (2, 1, MAC_TEXT)


@pytest.mark.parametrize("router", [False, True])
def test_unsolicited_na_checksum_matches_scapy(router):
    src = "2001:db8:100::1"
    built = IPv6(src=src, dst="ff02::1", hlim=255) / ICMPv6ND_NA(tgt=VIP6, R=int(router), S=0, O=1) / (
        ICMPv6NDOptDstLLAddr(lladdr=MAC_TEXT)
    )
    assert raw(built)[40:] == unsolicited_na_with_checksum(MAC, VIP6, src=src, router=router)


@pytest.mark.parametrize("record", KEEPALIVED["unsolicited_nas"], ids=[r["ip"] for r in KEEPALIVED["unsolicited_nas"]])
def test_unsolicited_na_reproduces_keepalived_message(record):
    # keepalived sends from the VIP itself to ff02::1, hop limit 255; its sender forwards IPv6, so Router is set.
    assert (record["src"], record["dst"], record["hop_limit"]) == (record["ip"], "ff02::1", 255)
    router = KEEPALIVED["sender"]["ipv6_forwarding"]
    mac = parse_mac(record["src_mac"])
    message = unsolicited_na_with_checksum(mac, record["ip"], src=record["src"], router=router)
    assert message.hex() == record["icmpv6_hex"]
    body = unsolicited_na(mac, record["ip"], router=router)
    assert body[:2] + message[2:4] + body[4:] == message
    assert record["frame_hex"].endswith(record["icmpv6_hex"])


@pytest.mark.parametrize("ip6, field", [("198.51.100.1", "ip6"), ("target", "ip6")])
def test_unsolicited_na_rejects_bad_target(ip6, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        unsolicited_na(MAC, ip6)


def test_unsolicited_na_with_checksum_rejects_ipv4_source():
    with pytest.raises(ValueError, match="^src:"):
        unsolicited_na_with_checksum(MAC, VIP6, src="198.51.100.1")
