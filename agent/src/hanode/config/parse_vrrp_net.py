"""The VRRP keys about interfaces, multicast groups and routes (keepalived's keywords, checked with field paths):

- global: vrrp_mcast_group4, vrrp_mcast_group6, vrrp_check_unicast_src, vrrp_garp_extra_if, vmac_prefix,
  vmac_addr_prefix;
- per instance: use_vmac, use_vmac_addr, vmac_xmit_base, use_ipvlan, garp_extra_if, mcast_dst_ip,
  check_unicast_src, unicast_fault_no_peer, unicast_ttl, virtual_routes, virtual_rules.

VMAC names are given out after every instance is read (assign_vmacs), as keepalived does: `vrrp.VRID`, the next
free of vrrp6.VRID, vrrp1.VRID... when taken; the addresses that go on a VMAC then name it as their dev.
What the host must offer (macvlan, ipvlan, iproute2's names) comes in as a HostCaps (config/host.py); without
one, macvlan and ipvlan are not checked (a warning says so) and only iproute2's built-in names are known."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from hanode.config.host import HostCaps
from hanode.config.iproute import read_routes
from hanode.config.iprule import read_rules
from hanode.config.model import Ipvlan, Vip, Vmac, VrrpInstance
from hanode.config.problems import Problems, Reader, join, type_name
from hanode.config.vip import IFNAME_MAX, check_label_prefix

IPV4_GROUP, IPV6_GROUP = "224.0.0.18", "ff02::12"
GARP_EXTRA_MAX_S = 86400
IPVLAN_MODES = ("bridge", "private", "vepa")
RFC_MAC_PREFIX = "00:00:5e:00:0"


@dataclass(frozen=True)
class VrrpGlobals:
    mcast_group4: str = IPV4_GROUP
    mcast_group6: str = IPV6_GROUP
    check_unicast_src: bool = False
    garp_extra_if: tuple[int, bool] = (0, False)    # (interval ms, all interfaces)
    vmac_prefix: str = "vrrp"
    vmac_addr_prefix: str | None = None
    strict: bool = False                # vrrp_strict (hanode.config.parse_vrrp_strict)
    skip_check_adv_addr: bool = False   # vrrp_skip_check_adv_addr
    lower_prio_no_advert: bool = False  # vrrp_lower_prio_no_advert


@dataclass(frozen=True)
class VmacRequest:
    """use_vmac as written: a name and a MAC, either may be missing."""
    name: str | None = None
    mac: str | None = None
    mac_uses_vrid: bool = False     # five octets given: the VRID is the sixth


def valid_ifname(name: str) -> bool:
    """The kernel's dev_name_valid (keepalived checks the same)."""
    return bool(name) and len(name) <= IFNAME_MAX and name not in (".", "..") and not re.search(r"[/:\s]", name)


# ----- global ---------------------------------------------------------------------------------------------------

def parse_vrrp_globals(reader: Reader, problems: Problems) -> VrrpGlobals:
    group4 = _group(reader, "vrrp_mcast_group4", 4, IPV4_GROUP, problems)
    group6 = _group(reader, "vrrp_mcast_group6", 6, IPV6_GROUP, problems)
    prefix = reader.string("vmac_prefix", "vrrp")
    addr_prefix = reader.string("vmac_addr_prefix", None)
    for key, value in (("vmac_prefix", prefix), ("vmac_addr_prefix", addr_prefix)):
        if value is not None and not valid_ifname(value):
            problems.error(reader.at(key), f"{value!r} cannot start an interface name (no '/', ':' or spaces, "
                                           f"at most {IFNAME_MAX} characters)")
    return VrrpGlobals(mcast_group4=group4, mcast_group6=group6,
                       check_unicast_src=reader.boolean("vrrp_check_unicast_src", False),
                       garp_extra_if=_garp_extra_if(reader, "vrrp_garp_extra_if", (0, False), problems),
                       vmac_prefix=prefix or "vrrp", vmac_addr_prefix=addr_prefix,
                       strict=reader.boolean("vrrp_strict", False),
                       skip_check_adv_addr=reader.boolean("vrrp_skip_check_adv_addr", False),
                       lower_prio_no_advert=reader.boolean("vrrp_lower_prio_no_advert", False))


def _group(reader: Reader, key: str, family: int, default: str, problems: Problems) -> str:
    text = reader.string(key, None)
    if text is None:
        return default
    problem = _group_problem(text, family)
    if problem:
        problems.error(reader.at(key), problem)
        return default
    return str(ipaddress.ip_address(text))


def _group_problem(text: str, family: int) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return f"{text!r} is not an IP address"
    if address.version != family:
        return f"{text} is IPv{address.version}, expected an IPv{family} multicast group"
    if not address.is_multicast:
        return f"{text} is not a multicast address"
    if family == 6 and (address.packed[1] & 0x0F) != 2:
        return f"{text} is not a link-local multicast address (ff02::/16, ffX2::): VRRP stays on the link"
    return None


def _garp_extra_if(reader: Reader, key: str, default: tuple[int, bool], problems: Problems) -> tuple[int, bool]:
    """`N`, `all N` (keepalived's words) or {interval: N, all: true}."""
    value = reader.raw(key, None)
    if value is None:
        return default
    path = reader.at(key)
    every, interval = False, value
    if isinstance(value, str):
        words = value.split()
        every = words[:1] == ["all"]
        interval = words[1] if every and len(words) == 2 else (words[0] if len(words) == 1 else None)
    elif isinstance(value, Mapping):
        sub = Reader(value, path, problems)
        interval, every = sub.number("interval"), sub.boolean("all", False)
        sub.finish()
    try:
        seconds = float(interval) if not isinstance(interval, bool) else -1.0
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 <= seconds <= GARP_EXTRA_MAX_S:
        problems.error(path, f"must be seconds 0..{GARP_EXTRA_MAX_S}, optionally after 'all' (e.g. 'all 100'), "
                             f"got {value!r}")
        return default
    return round(seconds * 1000), every


# ----- per instance ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstanceNet:
    """What an instance's keys give before VMAC names are assigned."""
    fields: dict
    vmac: VmacRequest | None
    use_vmac_addr: bool


def parse_instance_net(reader: Reader, *, family: int, unicast: bool, g: VrrpGlobals, problems: Problems,
                       host: HostCaps | None = None) -> InstanceNet:
    vmac = _use_vmac(reader, problems)
    use_vmac_addr = reader.boolean("use_vmac_addr", False)
    xmit_base = reader.boolean("vmac_xmit_base", False)
    if xmit_base and vmac is None:
        problems.error(reader.at("vmac_xmit_base"), "needs use_vmac (keepalived ignores it without one)")
    if vmac is not None and unicast and not xmit_base:
        problems.warn(reader.at("use_vmac"), "with unicast_peers, adverts go from the base interface "
                                             "(vmac_xmit_base), as keepalived requires")
        xmit_base = True
    if (vmac is not None or use_vmac_addr) and not problems.errors:
        _require(host, "macvlan", reader.at("use_vmac" if vmac else "use_vmac_addr"), problems)
    ipvlan = _use_ipvlan(reader, family, problems, host)
    if ipvlan is not None and vmac is not None:
        problems.error(reader.at("use_ipvlan"), "and use_vmac exclude each other: choose one")
    fields = dict(
        vmac_xmit_base=xmit_base and vmac is not None, ipvlan=ipvlan,
        mcast_dst_ip=_mcast_dst(reader, family, unicast, g, problems),
        check_unicast_src=reader.boolean("check_unicast_src", False) or g.check_unicast_src,
        unicast_fault_no_peer=reader.boolean("unicast_fault_no_peer", False),
        unicast_ttl=_unicast_ttl(reader, unicast, problems),
        virtual_routes=_routes(reader, "virtual_routes", read_routes, problems, host),
        virtual_rules=_routes(reader, "virtual_rules", read_rules, problems, host),
    )
    extra_if = _garp_extra_if(reader, "garp_extra_if", g.garp_extra_if, problems)
    fields["garp_extra_if_ms"], fields["garp_extra_if_all"] = extra_if
    return InstanceNet(fields, vmac, use_vmac_addr)


def _require(host: HostCaps | None, driver: str, path: str, problems: Problems) -> None:
    """The host must be able to create the driver's interfaces (refused at check-config, never a fallback)."""
    available = getattr(host, driver, None) if host is not None else None
    if available is None:
        problems.warn(path, f"needs {driver} interfaces: not checked against a kernel here (the agent checks "
                            "it on the host when it starts)")
    elif not available:
        problems.error(path, f"needs {driver} interfaces, which this host cannot create: "
                             f"{getattr(host, driver + '_why')}")


def _use_vmac(reader: Reader, problems: Problems) -> VmacRequest | None:
    """true, `[NAME] [MAC]` (keepalived's words: the one with ':' is the MAC) or {name, mac}."""
    value = reader.raw("use_vmac", None)
    path = reader.at("use_vmac")
    if value is None or value is False:
        return None
    if value is True:
        return VmacRequest()
    if isinstance(value, str):
        words = value.split()
        names = [w for w in words if ":" not in w]
        macs = [w for w in words if ":" in w]
        if len(names) > 1 or len(macs) > 1 or not words:
            problems.error(path, f"must be [NAME] [MAC], got {value!r}")
            return None
        name, mac = (names or [None])[0], (macs or [None])[0]
    elif isinstance(value, Mapping):
        sub = Reader(value, path, problems)
        name, mac = sub.string("name", None), sub.string("mac", None)
        sub.finish()
    else:
        problems.error(path, f"must be true, a name and/or MAC ('vrrp.51', 'vrrp.51 02:00:00:00:01') or a "
                             f"mapping, got {type_name(value)}")
        return None
    if name is not None and not valid_ifname(name):
        problems.error(path, f"{name!r} is not a valid interface name (no '/', ':' or spaces, at most {IFNAME_MAX} "
                             "characters)")
        return None
    return _vmac_mac(name, mac, path, problems)


def _vmac_mac(name: str | None, mac: str | None, path: str, problems: Problems) -> VmacRequest | None:
    if mac is None:
        return VmacRequest(name=name)
    octets = mac.lower().rstrip(":").split(":")
    if len(octets) not in (5, 6) or not all(re.fullmatch(r"[0-9a-f]{1,2}", o) for o in octets):
        problems.error(path, f"{mac!r} is not a MAC address (six octets, or five with the VRID as the sixth)")
        return None
    octets = [o.zfill(2) for o in octets]
    text = ":".join(octets)
    if int(octets[0], 16) & 1:
        problems.error(path, f"{mac} is a multicast MAC address")
        return None
    if text.startswith(RFC_MAC_PREFIX) and octets[4] in ("01", "02"):
        problems.error(path, f"{mac} is an RFC 5798 VRRP MAC: leave the MAC out to get it")
        return None
    return VmacRequest(name=name, mac=text, mac_uses_vrid=len(octets) == 5)


def _use_ipvlan(reader: Reader, family: int, problems: Problems, host: HostCaps | None) -> Ipvlan | None:
    """true, `[NAME] [ADDRESS/PREFIX] [bridge|private|vepa]` or {name, address, mode}."""
    value = reader.raw("use_ipvlan", None)
    path = reader.at("use_ipvlan")
    if value is None or value is False:
        return None
    fields: dict[str, Any] = {}
    if isinstance(value, str):
        for word in value.split():
            key = "mode" if word in IPVLAN_MODES else ("address" if _is_interface_address(word) else "name")
            if key in fields:
                problems.error(path, f"{key} given twice in {value!r}")
                return None
            fields[key] = word
    elif isinstance(value, Mapping):
        sub = Reader(value, path, problems)
        fields = {k: v for k in ("name", "address", "mode") if (v := sub.string(k, None)) is not None}
        sub.finish()
    elif value is not True:
        problems.error(path, f"must be true, '[NAME] [ADDRESS/PREFIX] [bridge|private|vepa]' or a mapping, "
                             f"got {type_name(value)}")
        return None
    return _ipvlan(fields, family, path, problems, host)


def _is_interface_address(word: str) -> bool:
    try:
        ipaddress.ip_interface(word)
    except ValueError:
        return False
    return True


def _ipvlan(fields: dict, family: int, path: str, problems: Problems, host: HostCaps | None) -> Ipvlan | None:
    name, address, mode = fields.get("name"), fields.get("address"), fields.get("mode", "bridge")
    if mode not in IPVLAN_MODES:
        problems.error(path, f"mode must be one of {', '.join(IPVLAN_MODES)}, got {mode!r}")
        return None
    if name is not None and not valid_ifname(name):
        problems.error(path, f"{name!r} is not a valid interface name")
        return None
    if address is not None:
        if not _is_interface_address(address):
            problems.error(path, f"{address!r} is not an address with a prefix length")
            return None
        iface = ipaddress.ip_interface(address)
        if iface.version != family:
            problems.error(path, f"address {address} is IPv{iface.version} but the instance is IPv{family}")
            return None
        address = str(iface)
    elif family == 4:
        problems.error(path, "an IPv4 instance needs an address for its ipvlan (keepalived: 'For IPv4 instances, "
                             "an IP address is required')")
        return None
    _require(host, "ipvlan", path, problems)
    return Ipvlan(ifname=name or "", base="", address=address, mode=mode)


def _mcast_dst(reader: Reader, family: int, unicast: bool, g: VrrpGlobals, problems: Problems) -> str:
    default = g.mcast_group4 if family == 4 else g.mcast_group6
    text = reader.string("mcast_dst_ip", None)
    if text is None:
        return default
    problem = _group_problem(text, family)
    if problem is None and unicast:
        problem = "is for multicast adverts, but this instance has unicast_peers (keepalived ignores it)"
    if problem:
        problems.error(reader.at("mcast_dst_ip"), problem)
        return default
    return str(ipaddress.ip_address(text))


def _unicast_ttl(reader: Reader, unicast: bool, problems: Problems) -> int | None:
    ttl = reader.integer("unicast_ttl", None, 1, 255)
    if ttl is not None and not unicast:
        problems.warn(reader.at("unicast_ttl"), "has no effect without unicast_peers: multicast adverts keep TTL 255 "
                                                "(keepalived 2.2.7 would send them with TTL 0)")
        return None
    return ttl


def _routes(reader: Reader, key: str, read: Callable, problems: Problems, host: HostCaps | None) -> tuple:
    value = reader.raw(key, None)
    if value is None:
        return ()
    if not isinstance(value, list):
        value = [value]
    return read(value, reader.at(key), problems.error, problems.warn, host_names(host))


def host_names(host: HostCaps | None) -> Mapping[str, Mapping[str, int]]:
    """iproute2's names on the host (a table named in /etc/iproute2/rt_tables...); built-in ones without it."""
    return host.iproute2 if host is not None else {}


# ----- VMAC names, and the addresses that go on VMACs ------------------------------------------------------------

def vmac_name(prefix: str, vrid: int, family: int, taken: set[str]) -> str:
    """keepalived's create_vmac_name: PREFIX.VRID, else PREFIX6.VRID (IPv6 first), PREFIX1.VRID, PREFIX2.VRID..."""
    numbers = ([6, 1, 2, 3, 4, 5] if family == 6 else [1, 2, 3, 4, 5, 6]) + list(range(7, 100))
    for number in [None, *numbers]:
        tail = f".{vrid}" if number is None else f"{number}.{vrid}"
        name = prefix[:IFNAME_MAX - len(tail)] + tail
        if name not in taken:
            return name
    raise ValueError(f"no free VMAC name for VRID {vrid}")


def rfc_mac(vrid: int, family: int) -> str:
    return f"00:00:5e:00:{1 if family == 4 else 2:02x}:{vrid:02x}"


def assign_vmacs(parsed: Mapping[str, tuple[VrrpInstance, InstanceNet]], g: VrrpGlobals, path: str,
                 problems: Problems) -> dict[str, VrrpInstance]:
    """Every instance with its VMACs named and its addresses on them (labels checked against their dev)."""
    taken = {net.vmac.name for _inst, net in parsed.values() if net.vmac and net.vmac.name}
    out: dict[str, VrrpInstance] = {}
    for name, (inst, net) in parsed.items():
        ipath = join(path, name)
        main = None
        if net.vmac is not None:
            ifname = net.vmac.name or vmac_name(g.vmac_prefix, inst.virtual_router_id, inst.family, taken)
            taken.add(ifname)
            main = Vmac(ifname=ifname, mac=_mac_of(net.vmac, inst.virtual_router_id, inst.family),
                        base=inst.interface, family=inst.family)
        placer = _Placer(inst, main, net, g, taken)
        inst = replace(inst, vmac=main, vips=tuple(map(placer.place, inst.vips)),
                       excluded_vips=tuple(map(placer.place, inst.excluded_vips)),
                       address_vmacs=tuple(placer.extra.values()))
        if inst.ipvlan is not None:
            inst = _with_ipvlan(inst, g, taken)
        _check_labels(inst, ipath, problems)
        out[name] = inst
    _check_unique_macs(out, path, problems)
    return out


class _Placer:
    """Which interface each address of an instance goes on: its VMAC when it would go on the instance's interface
    in the instance's family; a VMAC of its own on its dev (one per dev and family) with use_vmac_addr for the
    others, or with the address's own use_vmac word (keepalived's vrrp_complete_instance)."""

    def __init__(self, inst: VrrpInstance, main: Vmac | None, net: InstanceNet, g: VrrpGlobals, taken: set[str]):
        self.inst, self.main, self.net, self.g, self.taken = inst, main, net, g, taken
        self.extra: dict[tuple[str, int], Vmac] = {}

    def place(self, vip: Vip) -> Vip:
        inst, dev = self.inst, vip.dev or self.inst.interface
        if self.main is not None and dev == inst.interface and vip.family == inst.family:
            return replace(vip, dev=self.main.ifname)
        if not (vip.use_vmac or (self.net.use_vmac_addr and (dev != inst.interface or vip.family != inst.family))):
            return vip
        key = (dev, vip.family)
        if key not in self.extra:
            ifname = vmac_name(self.g.vmac_addr_prefix or self.g.vmac_prefix, inst.virtual_router_id, vip.family,
                               self.taken)
            self.taken.add(ifname)
            request = self.net.vmac
            mac = _mac_of(request, inst.virtual_router_id, vip.family) if request else \
                rfc_mac(inst.virtual_router_id, vip.family)
            self.extra[key] = Vmac(ifname=ifname, mac=mac, base=dev, family=vip.family)
        return replace(vip, dev=self.extra[key].ifname)


def _mac_of(request: VmacRequest, vrid: int, family: int) -> str:
    if request.mac is None:
        return rfc_mac(vrid, family)
    return f"{request.mac}:{vrid:02x}" if request.mac_uses_vrid else request.mac


def _with_ipvlan(inst: VrrpInstance, g: VrrpGlobals, taken: set[str]) -> VrrpInstance:
    ipvlan = inst.ipvlan
    ifname = ipvlan.ifname or vmac_name(g.vmac_prefix, inst.virtual_router_id, inst.family, taken)
    taken.add(ifname)
    ipvlan = replace(ipvlan, ifname=ifname, base=inst.interface)
    vips = tuple(replace(v, dev=ifname) if (v.dev or inst.interface) == inst.interface and v.family == inst.family
                 else v for v in inst.vips)
    # keepalived: "We also want to use this address as the source address" (unless one is configured)
    source = inst.unicast_src_ip or (ipvlan.address.split("/")[0] if ipvlan.address else None)
    return replace(inst, ipvlan=ipvlan, vips=vips, unicast_src_ip=source)


def _check_labels(inst: VrrpInstance, path: str, problems: Problems) -> None:
    for key, vips in (("virtual_ipaddresses", inst.vips), ("virtual_ipaddress_excluded", inst.excluded_vips)):
        for i, vip in enumerate(vips):
            check_label_prefix(vip, inst.interface, join(join(path, key), i), problems)


def _check_unique_macs(instances: Mapping[str, VrrpInstance], path: str, problems: Problems) -> None:
    seen: dict[tuple[str, str], str] = {}
    names: dict[str, str] = {}
    for name, inst in instances.items():
        for vmac in inst.vmacs:
            key = (vmac.base, vmac.mac)
            if key in seen and seen[key] != name:
                problems.error(join(join(path, name), "use_vmac"), f"MAC {vmac.mac} on {vmac.base} is already the "
                               f"VMAC of {seen[key]}: give one of them another MAC (use_vmac NAME MAC)")
            seen.setdefault(key, name)
            if vmac.ifname in names and names[vmac.ifname] != name:
                problems.error(join(join(path, name), "use_vmac"),
                               f"{vmac.ifname} is already the VMAC of {names[vmac.ifname]}")
            names.setdefault(vmac.ifname, name)
