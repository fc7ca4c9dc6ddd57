"""IPsec AH (hanode.vrrp.ah): golden bytes captured from keepalived 2.2.7 (auth_type AH, auth_pass secret, VRID 51,
priority 150, 198.51.100.11 -> 224.0.0.18), the checks a receiver makes, and the engine's sequence numbers."""

from __future__ import annotations

import pytest

from pure_helpers import FakeClock, instance_raw, links, make_config
from hanode.vrrp.ah import AH_PROTO, check_ah, encode_ah_datagram, split_ah
from hanode.vrrp.engine import Engine, Received
from hanode.vrrp.packet import PacketError, decode_advert, decode_ipv4, password_bytes

KEEPALIVED_SEQ_1 = bytes.fromhex(
    "45c00040000100 00ff33b078c633640b e0000012 7004 0000 c633640b 00000001 3cfc5d019b71829c94f125fd"
    "21339601 02011c32 c6336464 0000000000000000".replace(" ", ""))
KEEPALIVED_SEQ_2 = bytes.fromhex(
    "45c00040000200 00ff33b077c633640b e0000012 7004 0000 c633640b 00000002 b90106aaa4d5de8998a17250"
    "21339601 02011c32 c6336464 0000000000000000".replace(" ", ""))
KEY = password_bytes("secret")
SRC, DST = "198.51.100.11", "224.0.0.18"


def parts(datagram):
    header, payload = decode_ipv4(datagram)
    ah, message = split_ah(payload)
    return datagram[:header.ihl * 4], ah, message, header


@pytest.mark.parametrize("capture, seq", [(KEEPALIVED_SEQ_1, 1), (KEEPALIVED_SEQ_2, 2)])
def test_keepalived_adverts_check_and_hanode_makes_the_same_bytes(capture, seq):
    ip_header, ah, message, header = parts(capture)
    assert header.protocol == AH_PROTO
    assert check_ah(ip_header, ah, message, src=SRC, key=KEY, unicast=False, last_seq=seq - 1) == seq
    advert = decode_advert(message, family=4, src=SRC, dst=DST)
    assert (advert.vrid, advert.priority, advert.auth_type, advert.addresses) == (51, 150, 2, ("198.51.100.100",))
    assert encode_ah_datagram(message, src=SRC, dst=DST, ttl=255, seq=seq, key=KEY, unicast=False) == capture


@pytest.mark.parametrize("mangle, why", [
    (lambda d: d[:-1] + b"\x01", "invalid HMAC-MD5"),                     # a changed VRRP message
    (lambda d: d[:8] + b"\x40" + d[9:], "invalid HMAC-MD5"),              # TTL counts with multicast
    (lambda d: d[:24] + b"\xc6\x33\x64\x0c" + d[28:], "invalid HMAC-MD5"),  # the SPI is authenticated too
])
def test_changed_packets_fail(mangle, why):
    ip_header, ah, message, _header = parts(mangle(KEEPALIVED_SEQ_1))
    with pytest.raises(PacketError) as err:
        check_ah(ip_header, ah, message, src=SRC, key=KEY, unicast=False, last_seq=0)
    assert err.value.counter == "auth_failure" and why in err.value.message


def test_mutable_fields_do_not_count_and_the_ttl_does_not_with_unicast():
    changed = bytearray(KEEPALIVED_SEQ_1)
    changed[1], changed[6] = 0x10, 0x40          # TOS, DF
    ip_header, ah, message, _header = parts(bytes(changed))
    assert check_ah(ip_header, ah, message, src=SRC, key=KEY, unicast=False, last_seq=0) == 1
    routed = encode_ah_datagram(parts(KEEPALIVED_SEQ_1)[2], src=SRC, dst="198.51.100.12", ttl=64, seq=9, key=KEY,
                                unicast=True)
    routed = routed[:8] + b"\x3f" + routed[9:]    # one hop later
    ip_header, ah, message, _header = parts(routed)
    assert check_ah(ip_header, ah, message, src=SRC, key=KEY, unicast=True, last_seq=0) == 9


@pytest.mark.parametrize("src, key, last_seq, why", [
    ("198.51.100.12", KEY, 0, "SPI"),                     # the SPI is not the source
    (SRC, password_bytes("other"), 0, "HMAC"),            # wrong password
    (SRC, KEY, 1, "already seen"),                        # a replay
])
def test_receiver_checks(src, key, last_seq, why):
    ip_header, ah, message, _header = parts(KEEPALIVED_SEQ_1)
    with pytest.raises(PacketError) as err:
        check_ah(ip_header, ah, message, src=src, key=key, unicast=False, last_seq=last_seq)
    assert err.value.counter == "auth_failure" and why in err.value.message


def test_ah_for_another_protocol_is_not_vrrp():
    with pytest.raises(PacketError):
        split_ah(b"\x06" + bytes(40))


def received(datagram):
    ip_header, ah, message, header = parts(datagram)
    return Received("eth0", 4, header.src, header.dst, header.ttl, message, ip_header + ah)


def test_engine_accepts_keepalived_ah_drops_replays_and_sends_above_what_it_saw():
    clock = FakeClock()
    auth = {"auth_type": "AH", "auth_pass": "secret"}
    engine = Engine(make_config({"VI_1": instance_raw(priority=100, authentication=auth)}), links())
    engine.start(clock.now_us)
    engine.receive(received(KEEPALIVED_SEQ_2), clock.now_us)
    engine.receive(received(KEEPALIVED_SEQ_1), clock.now_us)       # older: a replay
    engine.receive(received(KEEPALIVED_SEQ_2), clock.now_us)       # the same again
    plain = received(KEEPALIVED_SEQ_1)
    engine.receive(Received(plain.interface, 4, plain.src, plain.dst, 255, plain.payload), clock.now_us)  # no AH
    stats = engine.instances["VI_1"].state.stats
    assert (stats["advert_rcvd"], stats["auth_failure"], stats["authtype_mismatch"]) == (1, 2, 1)
    assert engine.next_ah_seq("VI_1") == 3


def test_an_ah_advert_to_an_instance_without_ah_is_a_type_mismatch():
    clock = FakeClock()
    engine = Engine(make_config({"VI_1": instance_raw(priority=100)}), links())
    engine.start(clock.now_us)
    engine.receive(received(KEEPALIVED_SEQ_1), clock.now_us)
    assert engine.instances["VI_1"].state.stats["authtype_mismatch"] == 1
