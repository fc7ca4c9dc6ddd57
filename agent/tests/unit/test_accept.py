"""hanode.vrrp.accept: per-instance receive checks, each rejection under its keepalived counter."""

from __future__ import annotations

import pytest

from pure_helpers import PEER4, PEER6, VIP4, VIP6, instance_raw, make_config
from hanode.vrrp.accept import check_advert
from hanode.vrrp.packet import AUTH_AH, AUTH_NONE, AUTH_PASS, Advert, password_bytes

VIP4B = "198.51.100.101"


def inst(**overrides):
    return make_config({"VI_1": instance_raw(**overrides)}).vrrp_instances["VI_1"]


def v2(priority=100, interval_cs=100, addresses=(VIP4,), auth_type=AUTH_NONE, auth_data=b""):
    return Advert(2, 51, priority, interval_cs, addresses, auth_type, auth_data)


def v3(priority=100, interval_cs=100, addresses=(VIP4,)):
    return Advert(3, 51, priority, interval_cs, addresses)


def counter(instance, advert, ttl=255, src=PEER4, **kw):
    rejection = check_advert(instance, advert, ttl=ttl, src=src, **kw)
    return None if rejection is None else rejection.counter


def test_a_good_advert_is_accepted():
    assert counter(inst(), v2()) is None
    assert counter(inst(version=3), v3()) is None
    assert counter(inst(version=3, virtual_ipaddresses=[f"{VIP6}/64"]), v3(addresses=(VIP6,)), src=PEER6) is None


@pytest.mark.parametrize("ttl, unicast, expected", [
    (255, False, None),
    (64, False, "ip_ttl_err"),
    (254, False, "ip_ttl_err"),
    (1, True, None),         # keepalived skips the TTL check for unicast peers (routed)
    (64, True, None),
    (None, False, None),     # no TTL known (IPv6 socket without hop limit): nothing to check
])
def test_ttl(ttl, unicast, expected):
    extra = {"unicast_src_ip": "198.51.100.2", "unicast_peers": [PEER4]} if unicast else {}
    assert counter(inst(**extra), v2(), ttl=ttl) == expected


def test_ttl_is_checked_before_anything_else():
    # wrong TTL, wrong version and wrong addresses at once: the TTL counter is the one that counts
    assert counter(inst(), v3(addresses=("203.0.113.9",)), ttl=64) == "ip_ttl_err"


@pytest.mark.parametrize("instance_version, advert", [(2, v3()), (3, v2())])
def test_version_mismatch(instance_version, advert):
    assert counter(inst(version=instance_version), advert) == "vers_err"


@pytest.mark.parametrize("auth_type", [3, 255])
def test_invalid_auth_type(auth_type):
    assert counter(inst(), v2(auth_type=auth_type, auth_data=bytes(8))) == "invalid_authtype"


def test_ah_is_a_valid_auth_type_that_must_match():
    assert counter(inst(), v2(auth_type=AUTH_AH, auth_data=bytes(8))) == "authtype_mismatch"
    with_ah = inst(authentication={"auth_type": "AH", "auth_pass": "secret"})
    assert counter(with_ah, v2()) == "authtype_mismatch"
    assert check_advert(with_ah, v2(auth_type=AUTH_AH, auth_data=bytes(8)), ttl=255, src=PEER4) is None


def test_auth_type_mismatch_both_ways():
    with_pass = inst(authentication={"auth_type": "PASS", "auth_pass": "secret"})
    assert counter(with_pass, v2()) == "authtype_mismatch"
    assert counter(inst(), v2(auth_type=AUTH_PASS, auth_data=password_bytes("secret"))) == "authtype_mismatch"


def test_auth_failure_and_success():
    with_pass = inst(authentication={"auth_type": "PASS", "auth_pass": "secret"})
    assert counter(with_pass, v2(auth_type=AUTH_PASS, auth_data=password_bytes("Secret"))) == "auth_failure"
    assert counter(with_pass, v2(auth_type=AUTH_PASS, auth_data=password_bytes("secret"))) is None


def test_long_password_compares_its_first_8_bytes_as_keepalived_does():
    long_pass = inst(authentication={"auth_pass": "abcdefgh-ignored"})
    assert counter(long_pass, v2(auth_type=AUTH_PASS, auth_data=b"abcdefgh")) is None
    assert counter(long_pass, v2(auth_type=AUTH_PASS, auth_data=b"abcdefgX")) == "auth_failure"


def test_v3_has_no_auth_check():
    assert counter(inst(version=3), v3()) is None


@pytest.mark.parametrize("instance_kw, advert, expected", [
    ({}, v2(interval_cs=200), "advert_interval_err"),                        # v2: mismatch is discarded
    ({"advert_int": 3}, v2(interval_cs=100), "advert_interval_err"),
    ({"advert_int": 3}, v2(interval_cs=300), None),
    ({}, v2(interval_cs=0), "advert_interval_err"),
    ({"version": 3}, v3(interval_cs=0), "advert_interval_err"),               # v3: zero is invalid
    ({"version": 3}, v3(interval_cs=50), None),                               # v3: mismatch is adopted
    ({"version": 3, "advert_int": 0.5}, v3(interval_cs=4095), None),
])
def test_advert_interval(instance_kw, advert, expected):
    assert counter(inst(**instance_kw), advert) == expected


@pytest.mark.parametrize("ours, theirs, expected", [
    ([VIP4, VIP4B], (VIP4, VIP4B), None),
    ([VIP4, VIP4B], (VIP4B, VIP4), None),                  # order does not matter
    ([VIP4, VIP4B], (VIP4,), "addr_list_err"),             # count
    ([VIP4], (VIP4, VIP4B), "addr_list_err"),              # count
    ([VIP4, VIP4B], (VIP4, "198.51.100.102"), "addr_list_err"),   # content
    ([VIP4, VIP4B], (VIP4, VIP4), "addr_list_err"),        # same count, one repeated
    ([VIP4, VIP4B], (VIP4, VIP4B, VIP4), "addr_list_err"),  # same set, one more address
])
def test_address_list(ours, theirs, expected):
    instance = inst(virtual_ipaddresses=[f"{a}/24" for a in ours])
    assert counter(instance, v2(addresses=theirs)) == expected


def test_address_list_error_names_what_differs():
    rejection = check_advert(inst(), v2(addresses=("198.51.100.102",)), ttl=255, src=PEER4)
    assert rejection.counter == "addr_list_err"
    assert VIP4 in rejection.message and "198.51.100.102" in rejection.message


def test_excluded_vips_are_not_expected_in_adverts():
    instance = inst(virtual_ipaddress_excluded=["203.0.113.10/24"])
    assert counter(instance, v2()) is None


def test_ipv6_address_list_compares_addresses_not_text():
    instance = inst(version=3, virtual_ipaddresses=["2001:DB8:100:0::100/64"])
    assert counter(instance, v3(addresses=(VIP6,)), src=PEER6) is None


def test_unicast_source_check_is_optional():
    unicast = inst(unicast_src_ip="198.51.100.2", unicast_peers=[PEER4])
    assert counter(unicast, v2(), src="198.51.100.77") is None
    assert counter(unicast, v2(), src="198.51.100.77", check_unicast_src=True) == "addr_list_err"
    assert counter(unicast, v2(), src=PEER4, check_unicast_src=True) is None


def test_each_rejection_carries_a_readable_message():
    rejection = check_advert(inst(), v2(interval_cs=300), ttl=255, src=PEER4)
    assert rejection.message == "advert interval 3 s, ours 1 s"
