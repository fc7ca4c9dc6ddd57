"""Reading hanode's table over netlink (lvs/nft_read.py): replies captured from a real dump (Linux 6.x, the table
the backend wrote for three services: wrr 198.51.100.100:80 of 203.0.113.11 weight 2 and .12 weight 1, sh
198.51.100.100:53/UDP, rr 198.51.100.101:80 with nothing to schedule) decode to the state the backend wrote;
damaged replies raise NftnlError and nothing else."""

from __future__ import annotations

import random

import pytest

from hanode.lvs import nft_read, nftnl
from hanode.lvs.kernel import Dest, DestKey, ServiceKey
from hanode.lvs.nft_layout import NftError

# (message type, flags, payload after the nlmsghdr) of each reply; hex as captured
SERVICES = [
    (2572, 2, """
     020000030b00010068616e6f646500000d000200736572766963657300000000dc000300480001001400010010000100
     c63364641100000000350000300002002c00020008000100fffffffd1e0002007376635f7564705f3139382e35312e31
     30302e3130305f3533000000480001001400010010000100c63364650600000000500000300002002c00020008000100
     fffffffd1e0002007376635f7463705f3139382e35312e3130302e3130315f3830000000480001001400010010000100
     c63364640600000000500000300002002c00020008000100fffffffd1e0002007376635f7463705f3139382e35312e31
     30302e3130305f3830000000"""),
    (2572, 2, """
     020000030b00010068616e6f646500000d00020073657276696365730000000004000300"""),
]
NODEST = [
    (2572, 2, """
     020000030b00010068616e6f646500000b0002006e6f6465737400001c000300180001001400010010000100c6336465
     0600000000500000"""),
    (2572, 2, """
     020000030b00010068616e6f646500000b0002006e6f64657374000004000300"""),
]
RULES = [
    (2566, 2050, """
     020000030b00010068616e6f646500000f000200707265726f7574696e6700000c0003000000000000000007cc000400
     340001000c0001007061796c6f6164002400020008000100000000010800020000000001080003000000001008000400
     0000000424000100090001006d657461000000001400020008000200000000100800010000000009340001000c000100
     7061796c6f61640024000200080001000000000a0800020000000002080003000000000208000400000000023c000100
     0b0001006c6f6f6b757000002c0002000d00010073657276696365730000000008000200000000010800030000000000
     0800050000000000"""),
    (2566, 2050, """
     020000030b00010068616e6f646500000b0002006f757470757400000c0003000000000000000008cc00040034000100
     0c0001007061796c6f616400240002000800010000000001080002000000000108000300000000100800040000000004
     24000100090001006d657461000000001400020008000200000000100800010000000009340001000c0001007061796c
     6f61640024000200080001000000000a0800020000000002080003000000000208000400000000023c0001000b000100
     6c6f6f6b757000002c0002000d0001007365727669636573000000000800020000000001080003000000000008000500
     00000000"""),
    (2566, 2050, """
     020000030b00010068616e6f646500000a000200696e7075740000000c0003000000000000000009e400040034000100
     0c0001007061796c6f616400240002000800010000000001080002000000000108000300000000100800040000000004
     24000100090001006d657461000000001400020008000200000000100800010000000009340001000c0001007061796c
     6f61640024000200080001000000000a080002000000000208000300000000020800040000000002300001000b000100
     6c6f6f6b75700000200002000b0001006e6f64657374000008000200000000010800050000000000240001000b000100
     72656a65637400001400020008000100000000000500020003000000"""),
    (2566, 2050, """
     020000030b00010068616e6f646500000c000200666f7277617264000c000300000000000000000ae400040034000100
     0c0001007061796c6f616400240002000800010000000001080002000000000108000300000000100800040000000004
     24000100090001006d657461000000001400020008000200000000100800010000000009340001000c0001007061796c
     6f61640024000200080001000000000a080002000000000208000300000000020800040000000002300001000b000100
     6c6f6f6b75700000200002000b0001006e6f64657374000008000200000000010800050000000000240001000b000100
     72656a65637400001400020008000100000000000500020003000000"""),
    (2566, 2050, """
     020000030b00010068616e6f646500001e0002007376635f7463705f3139382e35312e3130302e3130305f3830000000
     0c00030000000000000000175c01040024000100090001006d6574610000000014000200080002000000001008000100
     000000012c00010008000100636d700020000200080001000000000108000200000000000c0003000500010006000000
     340001000b0001006e756d67656e00002400020008000100000000010800020000000003080003000000000008000400
     00000000400001000e000100627974656f726465720000002c0002000800010000000001080002000000000108000300
     00000001080004000000000408000500000000044c0001000b0001006c6f6f6b757000003c00020020000100645f7376
     635f7463705f3139382e35312e3130302e3130305f383000080002000000000108000300000000010800050000000000
     48000100080001006e6174003c0002000800010000000001080002000000000208000300000000010800040000000001
     0800050000000009080006000000000908000700000000030a0007000004777272000000"""),
    (2566, 2050, """
     020000030b00010068616e6f646500001e0002007376635f7463705f3139382e35312e3130302e3130315f3830000000
     0c0003000000000000000012300004002c0001000c000100636f756e746572001c0002000c0001000000000000000000
     0c0002000000000000000000090007000003727200000000"""),
    (2566, 2050, """
     020000030b00010068616e6f646500001e0002007376635f7564705f3139382e35312e3130302e3130305f3533000000
     0c0003000000000000000018a001040024000100090001006d6574610000000014000200080002000000001008000100
     000000012c00010008000100636d700020000200080001000000000108000200000000000c0003000500010011000000
     340001000c0001007061796c6f6164002400020008000100000000020800020000000001080003000000000c08000400
     000000044400010009000100686173680000000034000200080001000000000208000200000000010800030000000004
     08000400000000010800050068616e6f0800070000000000400001000e000100627974656f726465720000002c000200
     080001000000000108000200000000010800030000000001080004000000000408000500000000044c0001000b000100
     6c6f6f6b757000003c00020020000100645f7376635f7564705f3139382e35312e3130302e3130305f35330008000200
     000000010800030000000001080005000000000048000100080001006e6174003c000200080001000000000108000200
     000000020800030000000001080004000000000108000500000000090800060000000009080007000000000309000700
     0003736800000000"""),
]
WEIGHTS = [
    (2572, 2, """
     020000030b00010068616e6f6465000020000200775f7376635f7463705f3139382e35312e3130302e3130305f383000
     4400030020000100100001000c000100cb00710b1f9000000c000200080001000200000020000100100001000c000100
     cb00710c1f9000000c0002000800010001000000"""),
    (2572, 2, """
     020000030b00010068616e6f6465000020000200775f7376635f7463705f3139382e35312e3130302e3130305f383000
     04000300"""),
]
SLOTS = [
    (2572, 2, """
     020000030b00010068616e6f6465000020000200645f7376635f7463705f3139382e35312e3130302e3130305f383000
     74000300180001000c00010008000100000000030800030000000001200001000c000100080001000000000210000200
     0c000100cb00710c1f900000180001000c00010008000100000000020800030000000001200001000c00010008000100
     00000000100002000c000100cb00710b1f900000"""),
    (2572, 2, """
     020000030b00010068616e6f6465000020000200645f7376635f7463705f3139382e35312e3130302e3130305f383000
     04000300"""),
]

WEB = ServiceKey(4, "TCP", "198.51.100.100", 80)
DNS = ServiceKey(4, "UDP", "198.51.100.100", 53)
EMPTY = ServiceKey(4, "TCP", "198.51.100.101", 80)
R1, R2 = DestKey("203.0.113.11", 8080), DestKey("203.0.113.12", 8080)


def replies(captured) -> list[nftnl.Reply]:
    return [nftnl.Reply(kind, flags, 0, bytes.fromhex("".join(text.split()))) for kind, flags, text in captured]


# pylint: disable-next=dangerous-default-value
def read(services=SERVICES, nodest=NODEST, rules=RULES, weights=WEIGHTS, slots=SLOTS, previous=None):
    """The web service's table as nft.py reads it (the other two services' maps are not fed)."""
    reader = nft_read.TableReader(4, *(previous or ()))
    for reply in replies(services):
        reader.add_services(reply)
    for reply in replies(nodest):
        reader.add_nodest(reply)
    for reply in replies(rules):
        reader.add_rule(reply)
    reader.begin_service(WEB)
    for reply in replies(weights):
        reader.add_weights(reply)
    for reply in replies(slots):
        reader.add_slots(reply)
    reader.end_service(WEB, "svc_tcp_198.51.100.100_80")
    return reader


def test_requests_are_the_bytes_the_kernel_answered():
    assert nft_read.elements_request(7, 4, "services")[16:].hex() == (
        "020000000b00010068616e6f646500000d000200736572766963657300000000")
    assert nft_read.rules_request(7, 4)[16:].hex() == "020000000b00010068616e6f64650000"
    assert nft_read.table_request(7, 6)[16:].hex() == "0a0000000b00010068616e6f64650000"


def test_services_nodest_and_rules_decode():
    reader = read()
    assert sorted(reader.services) == sorted([(DNS, "svc_udp_198.51.100.100_53"), (EMPTY, "svc_tcp_198.51.100.101_80"),
                                              (WEB, "svc_tcp_198.51.100.100_80")])
    assert reader.nodest == {EMPTY}
    by_chain = {chain: [(comment, modulus) for _handle, comment, modulus in rules]
                for chain, rules in reader.rules.items()}
    assert by_chain["svc_tcp_198.51.100.100_80"] == [("wrr", 3)]        # numgen inc mod 3
    assert by_chain["svc_udp_198.51.100.100_53"] == [("sh", 1)]         # jhash ... mod 1
    assert by_chain["svc_tcp_198.51.100.101_80"] == [("rr", 0)]         # counter alone
    assert by_chain["prerouting"] == [(None, None)]                     # not a rule of a service


def test_weights_and_slots_make_the_state_the_backend_wrote():
    state, slots = read().result()
    assert state[WEB].service.scheduler == "wrr"
    assert state[WEB].dests == {R1: Dest(R1, 2, "NAT"), R2: Dest(R2, 1, "NAT")}
    info = slots[WEB]
    assert info.table.runs() == [(0, 1, R1), (2, 2, R2)]
    assert info.rule == ("wrr", 3) and info.handle and not info.nodest
    owners = {owner for _first, _last, owner in info.table.runs()}
    assert all(any(owner is key for key in state[WEB].dests) for owner in owners)   # one DestKey per destination


def test_a_second_read_keeps_the_objects_of_the_first():
    """What reads back unchanged is the state already known, object for object (nothing new stays behind);
    a changed weight is a new Dest on the known DestKey."""
    first = read().result()
    state, slots = read(previous=first).result()
    assert state[WEB] is first[0][WEB]
    assert slots[WEB].table is first[1][WEB].table
    changed = {WEB: first[0][WEB]._replace(dests={R1: Dest(R1, 5, "NAT"), R2: first[0][WEB].dests[R2]})}
    state, _slots = read(previous=(changed, {})).result()
    assert state[WEB].dests[R1].weight == 2
    assert next(k for k in state[WEB].dests if k == R1) is R1
    assert state[WEB].dests[R2] is first[0][WEB].dests[R2]


def test_a_slot_map_that_disagrees_with_the_rule_gives_weight_minus_one():
    """The slot map read empty (its elements gone by hand) while the rule says mod 3: every destination is
    reported at -1 (the next reconcile rewrites it) and the slot table is not trusted."""
    state, slots = read(slots=SLOTS[1:]).result()        # the dump's last, empty, message only
    assert {d.weight for d in state[WEB].dests.values()} == {-1}
    assert slots[WEB].table is None


def test_the_fast_element_reader_reads_what_the_generic_one_reads():
    """value_elements (one regular expression per message) against elements (attribute by attribute), on the
    captured maps, and on a message it does not know (the services map: it falls back)."""
    for captured, layout in ((WEIGHTS, "weights"), (SLOTS, "slots"), (SERVICES, "slots")):
        for reply in replies(captured):
            assert list(nft_read.value_elements(reply, 4, layout)) == list(nft_read.elements(reply))
    weights = replies(WEIGHTS)[0]
    assert nft_read._layouts(4)["weights"][1].fullmatch(weights.payload, *nft_read._find(
        weights.payload, 4, len(weights.payload), nft_read.SET_ELEM_LIST_ELEMENTS))      # the fast path ran


def test_runs_from_interval_elements():
    assert nft_read._runs([(0, R1), (2, R2)], [2, 3]) == [(0, 1, R1), (2, 2, R2)]
    assert nft_read._runs([(2, R2), (0, R1)], [3, 2]) == [(0, 1, R1), (2, 2, R2)]
    assert nft_read._runs([(5, R1)], []) == [(5, 5, R1)]
    assert nft_read._runs([(0, R1), (0, R2)], [1]) == [(0, 0, R1), (0, 0, R2)]          # not a clean map
    assert nft_read._runs([(0, R1), (4, R2)], [2, 5]) == [(0, 1, R1), (4, 4, R2)]      # a hole: 2, 3 unmapped
    assert nft_read._runs([(0, R1), (2, R2)], [3]) == [(0, 2, R1), (2, 2, R2)]


def test_addresses_and_keys():
    assert nft_read.address_of(bytes([198, 51, 100, 7])) == "198.51.100.7"
    assert nft_read.address_of(bytes.fromhex("20010db8000000000000000000000001")) == "2001:db8::1"
    assert nft_read.dest_key(6, bytes.fromhex("20010db800000000000000000000000a") + b"\x1f\x90\0\0") == \
        DestKey("2001:db8::a", 8080)
    assert nft_read.service_key(4, nftnl.service_value("198.51.100.1", "SCTP", 25)) == \
        ServiceKey(4, "SCTP", "198.51.100.1", 25)
    with pytest.raises(nftnl.NftnlError):
        nft_read.dest_key(4, b"\1\2\3")


def test_damaged_replies_raise_only_decode_errors():
    rng = random.Random(5)
    for captured, feed in ((SERVICES, "add_services"), (RULES, "add_rule"), (WEIGHTS, "add_weights"),
                           (SLOTS, "add_slots"), (NODEST, "add_nodest")):
        for reply in replies(captured):
            for _attempt in range(200):
                payload = bytearray(reply.payload)
                for _flip in range(rng.randint(1, 4)):
                    payload[rng.randrange(len(payload))] = rng.randrange(256)
                cut = bytes(payload[:rng.randint(0, len(payload))]) if rng.random() < 0.3 else bytes(payload)
                reader = nft_read.TableReader(4)
                try:
                    getattr(reader, feed)(reply._replace(payload=cut))
                except (nftnl.NftnlError, NftError):
                    pass
