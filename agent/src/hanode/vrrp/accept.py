"""Per-instance receive checks after decoding, in RFC order; each failure names its keepalived counter."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hanode.config.model import VrrpInstance
from hanode.vrrp.packet import AUTH_AH, AUTH_NONE, AUTH_PASS, Advert, password_bytes

VRRP_TTL = 255


@dataclass(frozen=True)
class Rejection:
    counter: str
    message: str
    from_stranger: bool = False   # a sender this instance does not listen to (not a conflicting master)


def check_advert(instance: VrrpInstance, advert: Advert, *, ttl: int | None, src: str, dst: str = "",
                 check_unicast_src: bool = False, check_addresses: bool = True) -> Rejection | None:
    """None when the advert is acceptable for this instance, else why not. check_addresses=False: the address
    list is not compared (skip_check_adv_addr, for adverts from the master a BACKUP already follows)."""
    for check in (_ttl, _version, _auth, _interval, _addresses):
        if check is _addresses and not check_addresses:
            continue
        rejection = check(instance, advert, ttl)
        if rejection:
            return rejection
    return check_source(instance, src, dst, check_unicast_src)


def check_source(instance: VrrpInstance, src: str, dst: str, check_unicast_src: bool = False) -> Rejection | None:
    """check_unicast_src (keepalived logs "unicast source address X not a unicast peer" and counts nothing; hanode
    counts addr_list_err, keepalived's counter for an advert from or to an unexpected address), and a multicast
    advert sent to another group than the instance's (keepalived's socket, bound to its group, never gets it)."""
    if instance.unicast:
        if (check_unicast_src or instance.check_unicast_src) and src not in instance.unicast_peers:
            return Rejection("addr_list_err", f"unicast source address {src} not a unicast peer", from_stranger=True)
        return None
    if dst and dst != instance.multicast_group and ipaddress.ip_address(dst).is_multicast:
        return Rejection("addr_list_err", f"sent to {dst}, this instance listens on {instance.multicast_group}",
                         from_stranger=True)
    return None


def check_ttl(instance: VrrpInstance, ttl: int | None) -> Rejection | None:
    """The first receive check, made before the packet is decoded (keepalived's order)."""
    # keepalived skips the TTL check in unicast mode (routed peers)
    if ttl is not None and ttl != VRRP_TTL and not instance.unicast:
        return Rejection("ip_ttl_err", f"TTL/hop limit {ttl}, expected {VRRP_TTL}")
    return None


def _ttl(instance: VrrpInstance, advert: Advert, ttl: int | None) -> Rejection | None:
    return check_ttl(instance, ttl)


def _version(instance: VrrpInstance, advert: Advert, ttl: int | None) -> Rejection | None:
    if advert.version != instance.version:
        return Rejection("vers_err", f"VRRP version {advert.version}, this instance speaks version {instance.version}")
    return None


def _auth(instance: VrrpInstance, advert: Advert, ttl: int | None) -> Rejection | None:
    if instance.version != 2 or instance.family != 4:
        return None
    if advert.auth_type not in (AUTH_NONE, AUTH_PASS, AUTH_AH):
        return Rejection("invalid_authtype", f"unsupported auth type {advert.auth_type}")
    auth = instance.authentication
    want = AUTH_NONE if auth is None else AUTH_AH if auth.auth_type == "AH" else AUTH_PASS
    if advert.auth_type != want:
        return Rejection("authtype_mismatch", f"auth type {advert.auth_type}, expected {want}")
    if want == AUTH_PASS and advert.auth_data != password_bytes(instance.authentication.auth_pass):
        return Rejection("auth_failure", "wrong PASS authentication password")
    return None


def _interval(instance: VrrpInstance, advert: Advert, ttl: int | None) -> Rejection | None:
    if advert.max_advert_int_cs == 0:
        return Rejection("advert_interval_err", "advert interval 0")
    if instance.version == 2 and advert.max_advert_int_cs != instance.advert_int_cs:
        return Rejection("advert_interval_err", f"advert interval {advert.max_advert_int_cs // 100} s, "
                                                f"ours {instance.advert_int_cs // 100} s")
    return None


def _addresses(instance: VrrpInstance, advert: Advert, ttl: int | None) -> Rejection | None:
    ours = {ipaddress.ip_address(v.address) for v in instance.vips}
    theirs = {ipaddress.ip_address(a) for a in advert.addresses}
    if len(advert.addresses) != len(instance.vips) or ours != theirs:
        missing = ", ".join(sorted(str(a) for a in ours - theirs)) or "none"
        extra = ", ".join(sorted(str(a) for a in theirs - ours)) or "none"
        return Rejection("addr_list_err", f"address list differs: missing {missing}, unexpected {extra}")
    return None
