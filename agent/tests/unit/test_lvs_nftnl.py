"""The nftables netlink encoder (lvs/nftnl.py) and the backend's pure parts (lvs/nft.py): golden bytes of
nft 1.0.6 for every message the backend sends, kernel-captured replies, batch framing, and what a reconcile
puts in the batch (one weight change among 10,000 destinations is a handful of elements)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hanode.lvs import nft, nft_layout, nftnl
from hanode.lvs.kernel import Dest, DestKey, Entry, Service, ServiceKey
from hanode.lvs.plan import AddDest, AddService, DelDest, DelService, EditDest, EditService, apply_ops
from hanode.lvs.slots import SlotTable, slot_count

C4 = "svc_tcp_198.51.100.100_80"
C6 = "svc_tcp_2001-db8--100_80"
U4 = "svc_udp_198.51.100.100_53"
SEED = nft_layout.JHASH_SEED

GOLDEN = {      # `nft --debug=mnl` of nft 1.0.6 on this kernel: the message after its nlmsghdr
    # add element ip hanode w_svc_tcp_198.51.100.100_80 { 203.0.113.12 . 8080 : 3 }
    "w4_add": (
        "020000000b00010068616e6f6465000020000200775f7376635f7463705f3139382e35312e3130302e3130305f38300008000400"
        "000000032400038020000180100001800c000100cb00710c1f9000000c0002800800010003000000"
    ),
    # delete element ip hanode w_svc_tcp_198.51.100.100_80 { 203.0.113.11 . 8080 }
    "w4_del": (
        "020000000b00010068616e6f6465000020000200775f7376635f7463705f3139382e35312e3130302e3130305f38300018000380"
        "14000180100001800c000100cb00710b1f900000"
    ),
    # add element ip6 hanode w_svc_tcp_2001-db8--100_80 { 2001:db8:203::11 . 8080 : 65535 }
    "w6_add": (
        "0a0000000b00010068616e6f646500001f000200775f7376635f7463705f323030312d6462382d2d3130305f3830000008000400"
        "00000007300003802c0001801c0001801800010020010db80203000000000000000000111f9000000c00028008000100ffff0000"
    ),
    # add element ip hanode d_svc_tcp_198.51.100.100_80 { 6-9 : 203.0.113.13 . 8080, 10 : 203.0.113.11 . 8080 }
    "d4_add": (
        "020000000b00010068616e6f6465000020000200645f7376635f7463705f3139382e35312e3130302e3130305f38300008000400"
        "0000000474000380200001800c0001800800010000000006100002800c000100cb00710d1f900000180002800800030000000001"
        "0c000180080001000000000a200003800c000180080001000000000a100002800c000100cb00710b1f9000001800048008000300"
        "000000010c000180080001000000000b"
    ),
    # delete element ip hanode d_svc_tcp_198.51.100.100_80 { 3-5 }
    "d4_del": (
        "020000000b00010068616e6f6465000020000200645f7376635f7463705f3139382e35312e3130302e3130305f3830002c000380"
        "100001800c00018008000100000000031800028008000300000000010c0001800800010000000006"
    ),
    # add element ip6 hanode d_svc_tcp_2001-db8--100_80 { 0 : 2001:db8:203::11 . 8080 }
    "d6_add": (
        "0a0000000b00010068616e6f646500001f000200645f7376635f7463705f323030312d6462382d2d3130305f3830000008000400"
        "00000008480003802c0001800c00018008000100000000001c0002801800010020010db80203000000000000000000111f900000"
        "1800028008000300000000010c0001800800010000000001"
    ),
    # add element ip hanode nodest { 198.51.100.100 . tcp . 80 }
    "nodest4_add": (
        "020000000b00010068616e6f646500000b0002006e6f64657374000008000400000000021c000380180001801400018010000100"
        "c63364640600000000500000"
    ),
    # add element ip6 hanode nodest { 2001:db8:100::100 . udp . 53 }
    "nodest6_add": (
        "0a0000000b00010068616e6f646500000b0002006e6f64657374000008000400000000062800038024000180200001801c000100"
        "20010db80100000000000000000001001100000000350000"
    ),
    # replace rule ip hanode svc_tcp_198.51.100.100_80 handle 6 meta l4proto tcp dnat ip to numgen inc mod 7 map
    #     @d_svc_tcp_198.51.100.100_80 comment "wrr"
    "rule_wrr4_replace": (
        "020000000b00010068616e6f646500001e0002007376635f7463705f3139382e35312e3130302e3130305f38300000000c000300"
        "00000000000000064401048024000180090001006d6574610000000014000280080002000000001008000100000000012c000180"
        "08000100636d700020000280080001000000000108000200000000000c0003800500010006000000340001800b0001006e756d67"
        "656e0000240002800800010000000001080002000000000708000300000000000800040000000000400001800e00010062797465"
        "6f726465720000002c00028008000100000000010800020000000001080003000000000108000400000000040800050000000004"
        "4c0001800b0001006c6f6f6b757000003c0002800800020000000001080003000000000120000100645f7376635f7463705f3139"
        "382e35312e3130302e3130305f383000080004000000000430000180080001006e61740024000280080001000000000108000200"
        "00000002080003000000000108000500000000090a0007000004777272000000"
    ),
    # add rule ip6 hanode svc_tcp_2001-db8--100_80 meta l4proto tcp dnat ip6 to numgen inc mod 3 map
    #     @d_svc_tcp_2001-db8--100_80 comment "rr"
    "rule_rr6_add": (
        "0a0000000b00010068616e6f646500001d0002007376635f7463705f323030312d6462382d2d3130305f38300000000044010480"
        "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280"
        "080001000000000108000200000000000c0003800500010006000000340001800b0001006e756d67656e00002400028008000100"
        "00000001080002000000000308000300000000000800040000000000400001800e000100627974656f726465720000002c000280"
        "080001000000000108000200000000010800030000000001080004000000000408000500000000044c0001800b0001006c6f6f6b"
        "757000003c000280080002000000000108000300000000011f000100645f7376635f7463705f323030312d6462382d2d3130305f"
        "38300000080004000000000830000180080001006e617400240002800800010000000001080002000000000a0800030000000001"
        "0800050000000002090007000003727200000000"
    ),
    # add rule ip hanode svc_udp_198.51.100.100_53 meta l4proto udp dnat ip to jhash ip saddr mod 5 seed 0x68616e6f
    #     map @d_svc_udp_198.51.100.100_53 comment "sh"
    "rule_sh4_add": (
        "020000000b00010068616e6f646500001e0002007376635f7564705f3139382e35312e3130302e3130305f353300000090010480"
        "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280"
        "080001000000000108000200000000000c0003800500010011000000340001800c0001007061796c6f6164002400028008000100"
        "000000020800020000000001080003000000000c08000400000000044c0001800900010068617368000000003c00028008000100"
        "000000020800020000000001080003000000000408000400000000050800050068616e6f08000600000000000800070000000000"
        "400001800e000100627974656f726465720000002c00028008000100000000010800020000000001080003000000000108000400"
        "0000000408000500000000044c0001800b0001006c6f6f6b757000003c0002800800020000000001080003000000000120000100"
        "645f7376635f7564705f3139382e35312e3130302e3130305f353300080004000000000530000180080001006e61740024000280"
        "0800010000000001080002000000000208000300000000010800050000000009090007000003736800000000"
    ),
    # add rule ip6 hanode svc_tcp_2001-db8--100_80 meta l4proto tcp dnat ip6 to jhash ip6 daddr mod 2 seed
    #     0x68616e6f map @d_svc_tcp_2001-db8--100_80 comment "dh"
    "rule_dh6_add": (
        "0a0000000b00010068616e6f646500001d0002007376635f7463705f323030312d6462382d2d3130305f38300000000090010480"
        "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280"
        "080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f6164002400028008000100"
        "000000020800020000000001080003000000001808000400000000104c0001800900010068617368000000003c00028008000100"
        "000000020800020000000001080003000000001008000400000000020800050068616e6f08000600000000000800070000000000"
        "400001800e000100627974656f726465720000002c00028008000100000000010800020000000001080003000000000108000400"
        "0000000408000500000000044c0001800b0001006c6f6f6b757000003c000280080002000000000108000300000000011f000100"
        "645f7376635f7463705f323030312d6462382d2d3130305f38300000080004000000000830000180080001006e61740024000280"
        "0800010000000001080002000000000a08000300000000010800050000000002090007000003646800000000"
    ),
    # add rule ip6 hanode svc_tcp_2001-db8--100_80 meta l4proto tcp dnat ip6 to jhash ip6 saddr mod 2 seed
    #     0x68616e6f map @d_svc_tcp_2001-db8--100_80 comment "sh"
    "rule_sh6_add": (
        "0a0000000b00010068616e6f646500001d0002007376635f7463705f323030312d6462382d2d3130305f38300000000090010480"
        "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280"
        "080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f6164002400028008000100"
        "000000020800020000000001080003000000000808000400000000104c0001800900010068617368000000003c00028008000100"
        "000000020800020000000001080003000000001008000400000000020800050068616e6f08000600000000000800070000000000"
        "400001800e000100627974656f726465720000002c00028008000100000000010800020000000001080003000000000108000400"
        "0000000408000500000000044c0001800b0001006c6f6f6b757000003c000280080002000000000108000300000000011f000100"
        "645f7376635f7463705f323030312d6462382d2d3130305f38300000080004000000000830000180080001006e61740024000280"
        "0800010000000001080002000000000a08000300000000010800050000000002090007000003736800000000"
    ),
    # add rule ip hanode svc_udp_198.51.100.100_53 meta l4proto udp dnat ip to jhash ip daddr mod 9 seed 0x68616e6f
    #     map @d_svc_udp_198.51.100.100_53 comment "dh"
    "rule_dh4_add": (
        "020000000b00010068616e6f646500001e0002007376635f7564705f3139382e35312e3130302e3130305f353300000090010480"
        "24000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280"
        "080001000000000108000200000000000c0003800500010011000000340001800c0001007061796c6f6164002400028008000100"
        "000000020800020000000001080003000000001008000400000000044c0001800900010068617368000000003c00028008000100"
        "000000020800020000000001080003000000000408000400000000090800050068616e6f08000600000000000800070000000000"
        "400001800e000100627974656f726465720000002c00028008000100000000010800020000000001080003000000000108000400"
        "0000000408000500000000044c0001800b0001006c6f6f6b757000003c0002800800020000000001080003000000000120000100"
        "645f7376635f7564705f3139382e35312e3130302e3130305f353300080004000000000530000180080001006e61740024000280"
        "0800010000000001080002000000000208000300000000010800050000000009090007000003646800000000"
    ),
    # add rule ip hanode svc_udp_198.51.100.100_53 counter comment "wrr"
    "rule_counter4_add": (
        "020000000b00010068616e6f646500001e0002007376635f7564705f3139382e35312e3130302e3130305f353300000018000480"
        "140001800c000100636f756e74657200040002800a0007000004777272000000"
    ),
}


# ----- canonical form: nft's bytes without padding garbage and without NFTA_*_SET_ID --------------------

def _walk(data: bytes, drop_set_id: bool) -> bytes:
    out = b""
    attrs = []
    offset = 0
    while offset < len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        attrs.append((kind, data[offset + 4:offset + length]))
        offset += (length + 3) & ~3
    is_lookup = any(kind & 0x3FFF == 1 and value == b"lookup\0" for kind, value in attrs)
    for kind, value in attrs:
        if drop_set_id and kind == 4:
            continue
        if kind & nftnl.NLA_F_NESTED:
            value = _walk(value, is_lookup and kind & 0x3FFF == 2)
        out += nftnl.attr(kind, value)
    return out


def canonical(name: str) -> bytes:
    """nft's message as the encoder writes it: zero padding; SET_ID (for sets made in the same batch) left out."""
    raw = bytes.fromhex(GOLDEN[name])
    return raw[:4] + _walk(raw[4:], drop_set_id=not name.startswith("rule"))


def payloads(batch: nftnl.Batch) -> list[nftnl.Reply]:
    """The messages between BATCH_BEGIN and BATCH_END."""
    messages = nftnl.parse_messages(batch.finish())
    assert messages[0].type == nftnl.NFNL_MSG_BATCH_BEGIN and messages[-1].type == nftnl.NFNL_MSG_BATCH_END
    return messages[1:-1]


def only_payload(build) -> bytes:
    batch = nftnl.Batch(1)
    build(batch)
    (message,) = payloads(batch)
    return message.payload


def dest(address: str, port: int = 8080) -> bytes:
    return nftnl.dest_value(address, port)


ENCODED = {
    "w4_add": lambda b: b.elements("newsetelem", 4, "hanode", f"w_{C4}",
                                   [nftnl.element(dest("203.0.113.12"), nftnl.weight_value(3))], ""),
    "w4_del": lambda b: b.elements("delsetelem", 4, "hanode", f"w_{C4}", [nftnl.element(dest("203.0.113.11"))], ""),
    "w6_add": lambda b: b.elements("newsetelem", 6, "hanode", f"w_{C6}",
                                   [nftnl.element(dest("2001:db8:203::11"), nftnl.weight_value(65535))], ""),
    "d4_add": lambda b: b.elements("newsetelem", 4, "hanode", f"d_{C4}",
                                   nftnl.run_elements(6, 9, dest("203.0.113.13"))
                                   + nftnl.run_elements(10, 10, dest("203.0.113.11")), ""),
    "d4_del": lambda b: b.elements("delsetelem", 4, "hanode", f"d_{C4}", nftnl.run_elements(3, 5, None), ""),
    "d6_add": lambda b: b.elements("newsetelem", 6, "hanode", f"d_{C6}",
                                   nftnl.run_elements(0, 0, dest("2001:db8:203::11")), ""),
    "nodest4_add": lambda b: b.elements("newsetelem", 4, "hanode", "nodest",
                                        [nftnl.element(nftnl.service_value("198.51.100.100", "TCP", 80))], ""),
    "nodest6_add": lambda b: b.elements("newsetelem", 6, "hanode", "nodest",
                                        [nftnl.element(nftnl.service_value("2001:db8:100::100", "UDP", 53))], ""),
    "rule_wrr4_replace": lambda b: b.rule(4, "hanode", C4, nftnl.lb_expressions(4, "TCP", "wrr", 7, f"d_{C4}", SEED),
                                          nftnl.comment("wrr"), 6, ""),
    "rule_rr6_add": lambda b: b.rule(6, "hanode", C6, nftnl.lb_expressions(6, "TCP", "rr", 3, f"d_{C6}", SEED),
                                     nftnl.comment("rr"), None, ""),
    "rule_sh4_add": lambda b: b.rule(4, "hanode", U4, nftnl.lb_expressions(4, "UDP", "sh", 5, f"d_{U4}", SEED),
                                     nftnl.comment("sh"), None, ""),
    "rule_dh6_add": lambda b: b.rule(6, "hanode", C6, nftnl.lb_expressions(6, "TCP", "dh", 2, f"d_{C6}", SEED),
                                     nftnl.comment("dh"), None, ""),
    "rule_sh6_add": lambda b: b.rule(6, "hanode", C6, nftnl.lb_expressions(6, "TCP", "sh", 2, f"d_{C6}", SEED),
                                     nftnl.comment("sh"), None, ""),
    "rule_dh4_add": lambda b: b.rule(4, "hanode", U4, nftnl.lb_expressions(4, "UDP", "dh", 9, f"d_{U4}", SEED),
                                     nftnl.comment("dh"), None, ""),
    "rule_counter4_add": lambda b: b.rule(4, "hanode", U4, nftnl.counter_expressions(), nftnl.comment("wrr"), None, ""),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_message_is_the_one_nft_sends(name):
    assert only_payload(ENCODED[name]).hex() == canonical(name).hex()


def test_canonical_form_only_drops_padding_and_set_ids():
    raw = bytes.fromhex(GOLDEN["w4_add"])
    assert len(raw) - len(canonical("w4_add")) == 8            # the 8-byte NFTA_SET_ELEM_LIST_SET_ID
    assert bytes.fromhex(GOLDEN["w4_del"]) == canonical("w4_del")


# ----- framing ----------------------------------------------------------------------------------------

def test_batch_framing_flags_and_sequence_numbers():
    batch = nftnl.Batch(700)
    batch.elements("newsetelem", 4, "hanode", f"w_{C4}", [nftnl.element(dest("203.0.113.12"), nftnl.weight_value(1))],
                   "set weight")
    batch.elements("delsetelem", 4, "hanode", f"w_{C4}", [nftnl.element(dest("203.0.113.11"))], "del weight")
    batch.rule(4, "hanode", C4, nftnl.counter_expressions(), nftnl.comment("rr"), 9, "replace")
    batch.rule(4, "hanode", C4, nftnl.counter_expressions(), nftnl.comment("rr"), None, "append")
    batch.flush_chain(4, "hanode", C4, "flush")
    messages = nftnl.parse_messages(batch.finish())
    assert [m.seq for m in messages] == list(range(700, 707))
    begin, *inner, end = messages
    assert (begin.type, begin.payload) == (0x10, bytes.fromhex("0000000a"))     # AF_UNSPEC, res_id NFNL_SUBSYS_NFTABLES
    assert (end.type, end.payload) == (0x11, bytes.fromhex("0000000a"))
    R, A = nftnl.NLM_F_REQUEST, nftnl.NLM_F_ACK
    assert [(m.type, m.flags) for m in inner] == [
        (0xA0C, R | A | nftnl.NLM_F_CREATE), (0xA0E, R | A), (0xA06, R | A | nftnl.NLM_F_REPLACE | nftnl.NLM_F_ECHO),
        (0xA06, R | A | nftnl.NLM_F_CREATE | nftnl.NLM_F_APPEND | nftnl.NLM_F_ECHO), (0xA08, R | A)]
    assert batch.what == {701: "set weight", 702: "del weight", 703: "replace", 704: "append", 705: "flush"}
    assert batch.count == 5


def test_many_elements_are_split_below_the_attribute_length_limit():
    batch = nftnl.Batch(1)
    elements = [nftnl.element(dest(f"10.0.{i >> 8}.{i & 255}"), nftnl.weight_value(1)) for i in range(10_000)]
    batch.elements("newsetelem", 4, "hanode", f"w_{C4}", elements, "bulk")
    messages = payloads(batch)
    assert len(messages) > 5
    seen = 0
    for message in messages:
        top = nftnl.parse_attrs(message.payload, 4)
        assert len(top[nftnl.ELEM_LIST_ELEMENTS]) + 4 < 65536
        seen += len(decode_elements(top[nftnl.ELEM_LIST_ELEMENTS]))
    assert seen == 10_000


# ----- replies, as this kernel sent them ---------------------------------------------------------------

KERNEL_ERROR = "24000000020000012a00000079500000feffffff480000000e0a05002a00000000000000"   # DELSETELEM seq 42: ENOENT
KERNEL_ACK = "240000000200000134000000795000000000000040000000080a05003400000000000000"     # DELRULE seq 52: done
KERNEL_ECHO = (   # the NEWRULE the kernel echoed for `rr mod 2` appended to svc_udp_198.51.100.100_53: handle 13
    "b4010000060a000c3500000079500000020000b40b00010068616e6f646500001e0002007376635f7564705f3139382e35312e31"
    "30302e3130305f35330000000c000300000000000000000d5c01040024000100090001006d657461000000001400020008000200"
    "0000001008000100000000012c00010008000100636d700020000200080001000000000108000200000000000c00030005000100"
    "11000000340001000b0001006e756d67656e00002400020008000100000000010800020000000002080003000000000008000400"
    "00000000400001000e000100627974656f726465720000002c000200080001000000000108000200000000010800030000000001"
    "080004000000000408000500000000044c0001000b0001006c6f6f6b757000003c00020020000100645f7376635f7564705f3139"
    "382e35312e3130302e3130305f35330008000200000000010800030000000001080005000000000048000100080001006e617400"
    "3c000200080001000000000108000200000000020800030000000001080004000000000108000500000000090800060000000009"
    "0800070000000003090007000003727200000000")


def test_kernel_replies_decode():
    (error,) = nftnl.parse_messages(bytes.fromhex(KERNEL_ERROR))
    assert (error.type, nftnl.acked_seq(error), nftnl.error_code(error)) == (nftnl.NLMSG_ERROR, 42, 2)
    (ack,) = nftnl.parse_messages(bytes.fromhex(KERNEL_ACK))
    assert (nftnl.acked_seq(ack), nftnl.error_code(ack)) == (52, 0)
    (echo,) = nftnl.parse_messages(bytes.fromhex(KERNEL_ECHO))
    assert echo.type == nftnl.nft_type("newrule")
    assert nftnl.rule_of(echo) == (4, "hanode", U4, 13)


def test_bad_replies_raise_the_codec_error():
    with pytest.raises(nftnl.NftnlError, match="truncated netlink header"):
        nftnl.parse_messages(bytes.fromhex(KERNEL_ACK)[:10])
    with pytest.raises(nftnl.NftnlError, match="claims 36 bytes, 30 left"):
        nftnl.parse_messages(bytes.fromhex(KERNEL_ACK)[:30])
    with pytest.raises(nftnl.NftnlError, match="without the request header"):
        nftnl.acked_seq(nftnl.Reply(2, 0, 1, b"\0" * 8))
    with pytest.raises(nftnl.NftnlError, match="without table, chain or handle"):
        nftnl.rule_of(nftnl.Reply(0xA06, 0, 1, b"\x02\0\0\0" + nftnl.string(1, "hanode")))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoding_garbage_raises_only_the_codec_error(data):
    try:
        for reply in nftnl.parse_messages(data):
            if reply.type == nftnl.NLMSG_ERROR:
                nftnl.error_code(reply)
                nftnl.acked_seq(reply)
            else:
                nftnl.rule_of(reply)
    except nftnl.NftnlError:
        pass


# ----- what a reconcile puts in the batch --------------------------------------------------------------

KEY = ServiceKey.for_address(4, "TCP", "198.51.100.100", 80)
NODEST = "c6336464" + "06000000" + "00500000"      # 198.51.100.100 . tcp (padded) . 80 (padded)
PORT = "1f900000"                                  # 8080, padded


def decode_elements(nest: bytes) -> list[tuple[bytes, bytes | None, int]]:
    out = []
    for _kind, body in _attr_list(nest):
        attrs = nftnl.parse_attrs(body)
        key = nftnl.parse_attrs(attrs[nftnl.ELEM_KEY])[nftnl.DATA_VALUE]
        data = nftnl.parse_attrs(attrs[nftnl.ELEM_DATA])[nftnl.DATA_VALUE] if nftnl.ELEM_DATA in attrs else None
        flags = struct.unpack("!I", attrs[nftnl.ELEM_FLAGS])[0] if nftnl.ELEM_FLAGS in attrs else 0
        out.append((key, data, flags))
    return out


def _attr_list(data: bytes) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    while offset < len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        out.append((kind & 0x3FFF, data[offset + 4:offset + length]))
        offset += (length + 3) & ~3
    return out


def decode(batch: nftnl.Batch) -> list[tuple]:
    """(message, target, detail): elements as readable tuples, rules as (expression names, modulus, handle)."""
    out = []
    names = {v: k for k, v in nftnl.NFT_MSG.items()}
    for message in payloads(batch):
        name = names[message.type & 0xFF]
        top = nftnl.parse_attrs(message.payload, 4)
        text = {k: v.rstrip(b"\0").decode() for k, v in top.items() if k in (1, 2, 3) and name != "newrule"
                and not (k == 3 and name.endswith("setelem"))}
        if name.endswith("setelem"):
            target = text[nftnl.ELEM_LIST_SET]
            elems = decode_elements(top.get(nftnl.ELEM_LIST_ELEMENTS, b""))
            out.append((name, target, [_readable(target, e) for e in elems]))
        elif name == "newrule":
            exprs = [nftnl.parse_attrs(body) for _kind, body in _attr_list(top[nftnl.RULE_EXPRESSIONS])]
            kinds = [e[nftnl.EXPR_NAME].rstrip(b"\0").decode() for e in exprs]
            modulus = None
            for kind, e in zip(kinds, exprs):
                if kind in ("numgen", "hash"):
                    data = nftnl.parse_attrs(e[nftnl.EXPR_DATA])
                    modulus = struct.unpack("!I", data[2 if kind == "numgen" else 4])[0]
            handle = struct.unpack("!Q", top[nftnl.RULE_HANDLE])[0] if nftnl.RULE_HANDLE in top else None
            out.append((name, top[nftnl.RULE_CHAIN].rstrip(b"\0").decode(), (tuple(kinds), modulus, handle)))
        else:
            out.append((name, text.get(2) or text.get(3), None))
    return out


def _readable(target: str, element: tuple) -> tuple:
    key, data, flags = element
    if target.startswith("d_"):
        slot = struct.unpack("!I", key)[0]
        return ("end", slot) if flags else (slot, None if data is None else f"{bytes(data[:4]).hex()}")
    if target.startswith("w_"):
        return (key.hex(), None if data is None else struct.unpack("=I", data)[0])
    return (key.hex(),)


def state(*weights: int, scheduler: str = "wrr") -> dict:
    dests = {DestKey(f"203.0.113.{11 + i}", 8080): Dest(DestKey(f"203.0.113.{11 + i}", 8080), w)
             for i, w in enumerate(weights)}
    return {KEY: Entry(Service(KEY, scheduler).normalized(), dests)}


def slots_of(st_: dict, key=KEY, handle: int | None = 5) -> dict:
    service, dests = st_[key]
    table = SlotTable.build({dk: slot_count(service.scheduler, d.weight) for dk, d in dests.items()})
    return {key: nft.Slots(table, (service.scheduler, table.size), handle, table.size == 0)}


def render(ops, before, slots) -> tuple[list[tuple], dict]:
    batch = nftnl.Batch(1)
    rules = nft.render_batch(batch, ops, before, apply_ops(before, ops), slots)
    return decode(batch), rules


def ip_hex(last: int) -> str:
    return bytes((203, 0, 113, last)).hex()


def test_new_wrr_service_slots_follow_weights_and_skip_zero():
    after = state(3, 0, 1)
    ops = [AddService(Service(KEY, "wrr")), *[AddDest(KEY, d) for d in after[KEY].dests.values()]]
    script = nft.render_structure(ops, {}, set()).text()
    assert "add table ip hanode" in script and f'add rule ip hanode {C4} counter comment "wrr"' in script
    assert "add element ip hanode nodest { 198.51.100.100 . tcp . 80 }" in script
    slots: dict = {}
    messages, rules = render(ops, {}, slots)
    assert messages == [
        ("delsetelem", "nodest", [(NODEST,)]),
        ("newsetelem", f"w_{C4}", [(ip_hex(11) + PORT, 3), (ip_hex(12) + PORT, 0), (ip_hex(13) + PORT, 1)]),
        ("newsetelem", f"d_{C4}", [(0, ip_hex(11)), ("end", 3), (3, ip_hex(13)), ("end", 4)]),
        ("delrule", C4, None),
        ("newrule", C4, (("meta", "cmp", "numgen", "byteorder", "lookup", "nat"), 4, None)),
    ]
    assert rules == {(4, C4): KEY}
    assert slots[KEY].rule == ("wrr", 4) and not slots[KEY].nodest


def test_rr_weight_change_only_rewrites_the_weight():
    before = state(1, 1, scheduler="rr")
    dk = DestKey("203.0.113.11", 8080)
    messages, rules = render([EditDest(KEY, Dest(dk, 5), Dest(dk, 1))], before, slots_of(before))
    assert messages == [("delsetelem", f"w_{C4}", [(ip_hex(11) + PORT, None)]),
                        ("newsetelem", f"w_{C4}", [(ip_hex(11) + PORT, 5)])]
    assert rules == {}


def test_wrr_weight_change_replaces_the_rule_in_place_by_its_handle():
    before = state(1, 1, 1)
    dk = DestKey("203.0.113.12", 8080)
    messages, rules = render([EditDest(KEY, Dest(dk, 3), Dest(dk, 1))], before, slots_of(before, handle=77))
    assert messages == [
        ("delsetelem", f"w_{C4}", [(ip_hex(12) + PORT, None)]),
        ("newsetelem", f"w_{C4}", [(ip_hex(12) + PORT, 3)]),
        ("newsetelem", f"d_{C4}", [(3, ip_hex(12)), ("end", 5)]),
        ("newrule", C4, (("meta", "cmp", "numgen", "byteorder", "lookup", "nat"), 5, 77)),
    ]


def test_service_without_schedulable_dest_goes_to_the_reject_set():
    before = state(1)
    dk = DestKey("203.0.113.11", 8080)
    slots = slots_of(before)
    messages, _rules = render([EditDest(KEY, Dest(dk, 0), Dest(dk, 1))], before, slots)
    assert ("newsetelem", "nodest", [(NODEST,)]) in messages
    assert ("delsetelem", f"d_{C4}", [(0, None), ("end", 1)]) in messages
    assert messages[-1] == ("newrule", C4, (("counter",), None, 5))
    assert slots[KEY].nodest and slots[KEY].rule == ("wrr", 0)


def test_one_weight_change_among_10000_is_a_handful_of_elements():
    weights = [1] * 10_000
    before = {KEY: Entry(Service(KEY, "wrr").normalized(),
                         {DestKey(f"10.0.{i >> 8}.{i & 255}", 8080): Dest(DestKey(f"10.0.{i >> 8}.{i & 255}", 8080), w)
                          for i, w in enumerate(weights)})}
    slots = slots_of(before)
    dk = DestKey("10.0.19.136", 8080)
    for new, old in ((4, 1), (1, 4), (0, 1)):
        messages, _rules = render([EditDest(KEY, Dest(dk, new), Dest(dk, old))], before, slots)
        assert len(messages) <= 5
        assert sum(len(detail) for kind, _target, detail in messages if kind.endswith("setelem")) <= 8
        assert messages[-1][2][1] == slots[KEY].table.size == 10_000 - 1 + new
        before = apply_ops(before, [EditDest(KEY, Dest(dk, new), Dest(dk, old))])


def test_first_live_server_of_an_empty_service_is_one_run_not_a_rebuild():
    dests = {DestKey(f"10.0.{i >> 8}.{i & 255}", 8080): Dest(DestKey(f"10.0.{i >> 8}.{i & 255}", 8080), 0)
             for i in range(10_000)}
    before = {KEY: Entry(Service(KEY, "wrr").normalized(), dests)}
    slots = slots_of(before)
    assert slots[KEY].nodest and slots[KEY].rule == ("wrr", 0)
    dk = DestKey("10.0.19.136", 8080)
    messages, _rules = render([EditDest(KEY, Dest(dk, 2), Dest(dk, 0))], before, slots)
    assert ("newsetelem", f"d_{C4}", [(0, "0a001388"), ("end", 2)]) in messages
    assert ("delsetelem", "nodest", [(NODEST,)]) in messages
    assert messages[-1] == ("newrule", C4, (("meta", "cmp", "numgen", "byteorder", "lookup", "nat"), 2, 5))


def test_scheduler_change_rebuilds_the_slot_map():
    before = state(2, 1)
    slots = slots_of(before)
    ops = [EditService(Service(KEY, "rr"), Service(KEY, "wrr"))]
    messages, _rules = render(ops, before, slots)
    assert slots[KEY].table.runs() == [(0, 0, DestKey("203.0.113.11", 8080)), (1, 1, DestKey("203.0.113.12", 8080))]
    assert messages[-1] == ("newrule", C4, (("meta", "cmp", "numgen", "byteorder", "lookup", "nat"), 2, 5))


def test_a_damaged_slot_map_is_flushed_and_rebuilt_and_an_unknown_handle_flushes_the_chain():
    before = state(-1, -1)                                         # a damaged service reads back so
    slots = {KEY: nft.Slots(None, None, None, False)}
    ops = [EditDest(KEY, Dest(dk, 1), dest) for dk, dest in before[KEY].dests.items()]
    messages, _rules = render(ops, before, slots)
    assert messages[:2] == [("delsetelem", f"w_{C4}", [(ip_hex(11) + PORT, None), (ip_hex(12) + PORT, None)]),
                            ("delsetelem", f"d_{C4}", [])]        # DELSETELEM without elements: flush
    assert ("newsetelem", f"d_{C4}", [(0, ip_hex(11)), ("end", 1), (1, ip_hex(12)), ("end", 2)]) in messages
    assert [m[0] for m in messages[-2:]] == ["delrule", "newrule"]


def test_removing_a_service_tears_it_down_in_dependency_order():
    before = state(1, 2)
    ops = [DelDest(KEY, dk) for dk in before[KEY].dests] + [DelService(KEY)]
    slots = slots_of(before)
    messages, _rules = render(ops, before, slots)
    assert [(m[0], m[1]) for m in messages] == [
        ("delsetelem", "services"), ("delrule", C4), ("delset", f"d_{C4}"), ("delset", f"w_{C4}"), ("delchain", C4)]
    assert KEY not in slots


# ----- reading the kernel back (`nft -j`) -------------------------------------------------------------

def doc(slot_elems, weight_elems, rule_expr=None, nodest=False, extra_rule=False):
    rule = {"family": "ip", "table": "hanode", "chain": C4, "handle": 14, "comment": "wrr",
            "expr": rule_expr if rule_expr is not None else [
                {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
                {"dnat": {"family": "ip", "addr": {"map": {"key": {"numgen": {"mode": "inc", "mod": 4, "offset": 0}},
                                                           "data": f"@d_{C4}"}}}}]}
    items = [
        {"map": {"name": "services", "elem": [[{"concat": ["198.51.100.100", "tcp", 80]}, {"jump": {"target": C4}}]]}},
        {"set": {"name": "nodest", "elem": [{"concat": ["198.51.100.100", "tcp", 80]}] if nodest else []}},
        {"map": {"name": f"w_{C4}", "elem": weight_elems}},
        {"map": {"name": f"d_{C4}", "elem": slot_elems}},
        {"rule": rule}]
    if extra_rule:
        items.append({"rule": dict(rule, handle=15)})
    return {"nftables": items}


def w(last, weight):
    return [{"concat": [f"203.0.113.{last}", 8080]}, weight]


def d(first, last, dest_last):
    slot = first if first == last else {"range": [first, last]}
    return [slot, {"concat": [f"203.0.113.{dest_last}", 8080]}]


def read(document):
    weights = nft.parse_table(document, 4)
    slots = nft.parse_slots(document, 4)
    return nft.check_slots(weights, slots), slots


def weights_of(kernel) -> dict:
    return {dk.address: dest.weight for dk, dest in kernel[KEY].dests.items()}


def test_dump_reads_slots_rule_and_handle():
    kernel, slots = read(doc([d(0, 2, 11), d(3, 3, 12)], [w(11, 3), w(12, 1), w(13, 0)]))
    assert weights_of(kernel) == {"203.0.113.11": 3, "203.0.113.12": 1, "203.0.113.13": 0}
    info = slots[KEY]
    assert (info.rule, info.handle, info.nodest, info.table.size) == (("wrr", 4), 14, False, 4)


def test_dump_reports_minus_one_for_a_destination_whose_slots_disagree():
    kernel, slots = read(doc([d(0, 1, 11), d(2, 3, 12)], [w(11, 3), w(12, 2)]))
    assert weights_of(kernel) == {"203.0.113.11": -1, "203.0.113.12": 2}
    assert slots[KEY].table is not None


@pytest.mark.parametrize("document, why", [
    (doc([d(0, 2, 11), d(4, 4, 12)], [w(11, 3), w(12, 1)]), "hole"),
    (doc([d(0, 2, 11), d(3, 3, 12)], [w(11, 3), w(12, 1)], nodest=True), "in @nodest"),
    (doc([d(0, 2, 11)], [w(11, 3)]), "modulus 4, 3 slots"),
    (doc([d(0, 2, 11), d(3, 3, 12)], [w(11, 3), w(12, 1)], extra_rule=True), "two rules"),
])
def test_dump_marks_a_damaged_service_for_a_rebuild(document, why):
    kernel, slots = read(document)
    assert set(weights_of(kernel).values()) == {-1}, why
    assert slots[KEY].table is None


def test_dump_remembers_slots_whose_weight_entry_is_gone():
    kernel, slots = read(doc([d(0, 2, 11), d(3, 3, 12)], [w(11, 3)]))
    assert weights_of(kernel) == {"203.0.113.11": 3}
    assert slots[KEY].orphans == {DestKey("203.0.113.12", 8080)}
    before = kernel
    gone = DestKey("203.0.113.12", 8080)
    messages, _rules = render([EditDest(KEY, Dest(DestKey("203.0.113.11", 8080), 2),
                                        before[KEY].dests[DestKey("203.0.113.11", 8080)])], before, slots)
    assert gone not in slots[KEY].table.counts() and not slots[KEY].orphans   # dropped with the next change


def test_empty_service_reads_back_consistent():
    kernel, slots = read(doc([], [w(11, 0)], rule_expr=[{"counter": {"packets": 0, "bytes": 0}}], nodest=True))
    assert weights_of(kernel) == {"203.0.113.11": 0}
    assert slots[KEY].rule == ("wrr", 0) and slots[KEY].table.size == 0
