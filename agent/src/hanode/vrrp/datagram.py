"""The bytes a MASTER sends: an advert as a whole IPv4 datagram (IP_HDRINCL) or an IPv6 VRRP message, plain,
with PASS, or with AH (hanode.vrrp.ah). Pure."""

from __future__ import annotations

from hanode.config.model import VrrpInstance
from hanode.vrrp.ah import encode_ah_datagram
from hanode.vrrp.packet import AUTH_AH, AUTH_NONE, AUTH_PASS, Advert, encode_advert, encode_ipv4, password_bytes


def advert_datagram(cfg: VrrpInstance, priority: int, src: str, dst: str, ah_seq: int = 0) -> bytes:
    """What a MASTER sends every advert_int: the same bytes each time, so made once (per instance, priority,
    source and destination; dropped on reload). IPv4: the whole datagram, with an IP ident and header checksum
    of 0 that the kernel fills in (IP_HDRINCL), as keepalived's. IPv6: the VRRP message. With AH (ah_seq: this
    advert's sequence number) the datagram is made per advert (hanode.vrrp.ah)."""
    auth = cfg.authentication
    ah = uses_ah(cfg)
    advert = Advert(version=cfg.version, vrid=cfg.virtual_router_id, priority=priority,
                    max_advert_int_cs=cfg.advert_int_cs, addresses=tuple(v.address for v in cfg.vips),
                    auth_type=AUTH_AH if ah else AUTH_PASS if auth else AUTH_NONE,
                    auth_data=password_bytes(auth.auth_pass) if auth and not ah else b"")
    payload = encode_advert(advert, family=cfg.family, src=src, dst=dst, v3_checksum_as_v2=cfg.v3_checksum_as_v2)
    ttl = cfg.unicast_ttl if cfg.unicast and cfg.unicast_ttl else 255
    if ah:
        return encode_ah_datagram(payload, src=src, dst=dst, ttl=ttl, seq=ah_seq,
                                  key=password_bytes(auth.auth_pass), unicast=cfg.unicast)
    return encode_ipv4(payload, src=src, dst=dst, ttl=ttl) if cfg.family == 4 else payload


def uses_ah(cfg: VrrpInstance) -> bool:
    return cfg.authentication is not None and cfg.authentication.auth_type == "AH"
