"""rtnetlink messages for the links the VRRP process makes (pure): a macvlan in private mode or an L2 ipvlan
created on a base interface (keepalived's netlink_link_add_vmac / netlink_link_add_ipvlan), set up, deleted;
and a link dump part read with its kind, mode and base (hanode.vrrp.vmac_plan.LinkInfo)."""

from __future__ import annotations

import struct

from hanode.config.model import Ipvlan, Vmac
from hanode.vrrp.rtnl import (ADD_FLAGS, DEL_FLAGS, IFINFOMSG, IFLA_ADDRESS, IFLA_IFNAME, RTM_DELLINK, RTM_NEWLINK,
                              NetlinkError, _attr, _message, attributes)
from hanode.vrrp.vmac_plan import LinkInfo

AF_UNSPEC = 0
IFF_UP = 0x1
IFLA_LINK, IFLA_LINKINFO = 5, 18
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_MACVLAN_MODE = 1
IFLA_IPVLAN_MODE, IFLA_IPVLAN_FLAGS = 1, 2
MACVLAN_MODES = {1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source"}
MACVLAN_MODE_PRIVATE = 1
IPVLAN_MODES = {0: "l2", 1: "l3", 2: "l3s"}
IPVLAN_FLAGS = {"bridge": 0, "private": 1, "vepa": 2}


def _mac(text: str) -> bytes:
    return bytes(int(octet, 16) for octet in text.split(":"))


def new_vmac(vmac: Vmac, base_index: int) -> bytearray:
    """RTM_NEWLINK (create, exclusive): a private-mode macvlan with the VMAC's name and MAC on the base."""
    data = _attr(IFLA_MACVLAN_MODE, struct.pack("=I", MACVLAN_MODE_PRIVATE))
    info = _attr(IFLA_INFO_KIND, b"macvlan") + _attr(IFLA_INFO_DATA, data)
    body = IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0) + _attr(IFLA_LINKINFO, info)
    body += _attr(IFLA_LINK, struct.pack("=I", base_index)) + _attr(IFLA_IFNAME, vmac.ifname.encode() + b"\0")
    body += _attr(IFLA_ADDRESS, _mac(vmac.mac))
    return _message(RTM_NEWLINK, ADD_FLAGS, 0, body)


def new_ipvlan(ipvlan: Ipvlan, base_index: int) -> bytearray:
    """RTM_NEWLINK (create, exclusive): an L2 ipvlan with its mode flags (bridge, private, vepa) on the base."""
    data = _attr(IFLA_IPVLAN_MODE, struct.pack("=H", 0)) + \
        _attr(IFLA_IPVLAN_FLAGS, struct.pack("=H", IPVLAN_FLAGS[ipvlan.mode]))
    info = _attr(IFLA_INFO_KIND, b"ipvlan") + _attr(IFLA_INFO_DATA, data)
    body = IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0) + _attr(IFLA_LINKINFO, info)
    body += _attr(IFLA_LINK, struct.pack("=I", base_index)) + _attr(IFLA_IFNAME, ipvlan.ifname.encode() + b"\0")
    return _message(RTM_NEWLINK, ADD_FLAGS, 0, body)


def link_up(index: int) -> bytearray:
    return _message(RTM_NEWLINK, DEL_FLAGS, 0, IFINFOMSG.pack(AF_UNSPEC, 0, index, IFF_UP, IFF_UP))


def del_link(index: int) -> bytearray:
    return _message(RTM_DELLINK, DEL_FLAGS, 0, IFINFOMSG.pack(AF_UNSPEC, 0, index, 0, 0))


def parse_link_info(payload: bytes) -> LinkInfo:
    """A link dump part with its kind (macvlan, ipvlan...), mode and base interface index."""
    if len(payload) < IFINFOMSG.size:
        raise NetlinkError(f"RTM_NEWLINK of {len(payload)} bytes")
    index = IFINFOMSG.unpack_from(payload)[2]
    attrs = attributes(payload, IFINFOMSG.size)
    name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
    mac = ":".join(f"{b:02x}" for b in attrs.get(IFLA_ADDRESS, b""))
    base = struct.unpack("=I", attrs[IFLA_LINK][:4])[0] if len(attrs.get(IFLA_LINK, b"")) >= 4 else None
    kind = mode = None
    if IFLA_LINKINFO in attrs:
        info = attributes(attrs[IFLA_LINKINFO], 0)
        kind = info.get(IFLA_INFO_KIND, b"").split(b"\0", 1)[0].decode(errors="replace") or None
        data = attributes(info[IFLA_INFO_DATA], 0) if IFLA_INFO_DATA in info else {}
        raw = data.get(IFLA_MACVLAN_MODE, b"")
        if kind == "macvlan" and len(raw) >= 4:
            mode = MACVLAN_MODES.get(struct.unpack("=I", raw[:4])[0])
        elif kind == "ipvlan" and len(raw) >= 2:
            mode = IPVLAN_MODES.get(struct.unpack("=H", raw[:2])[0])
    return LinkInfo(name=name, index=index, kind=kind, mode=mode, base_index=base, mac=mac)
