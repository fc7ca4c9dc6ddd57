"""What to do about each VMAC (macvlan) or ipvlan an instance wants, given the links that exist (pure).

keepalived's rules (vrrp_vmac.c netlink_link_add_vmac, vrrp.c vrrp_complete_instance): a private-mode macvlan
with the wanted name, base and MAC is adopted (a previous run left it); a macvlan with that name but another
base, MAC or mode is replaced; an interface of another kind with that name is never touched (conflict). hanode
adds: another macvlan on the same base with the same MAC is removed when this agent made it (a leftover of an
older config), else it is a conflict (two interfaces answering for one virtual MAC), not silently shared.

The sysctls are keepalived's (vrrp_if_config.c): on an IPv4 VMAC arp_ignore=1, accept_local=1, rp_filter=0,
promote_secondaries=1 and IPv6 off; on its base arp_ignore=1 and arp_filter=1 (restored when its last VMAC goes),
and arp_announce=2 (hanode's, see BASE_SYSCTLS);
net.ipv4.conf.all.rp_filter 0 when it is not (every interface and default first raised to its value, so nothing
else loses its filter; restored on stop). An IPv6 VMAC gets IPv6 on, no address made from the MAC
(addr_gen_mode 1), and the base's link-local address (unless vmac_xmit_base)."""

from __future__ import annotations

from dataclasses import dataclass

from hanode.config.model import Ipvlan, Vmac

CREATE, ADOPT, REPLACE, CONFLICT, WAIT = "create", "adopt", "replace", "conflict", "wait"
VMAC_SYSCTLS = {"arp_ignore": 1, "accept_local": 1, "rp_filter": 0, "promote_secondaries": 1}
# arp_announce=2 is hanode's: keepalived leaves it, and then the base interface asks for a neighbour with the VIP
# as sender (a reply from the VIP leaves by the base's route), which moves clients' entries for the VIP to the
# base's MAC. With 2 the base asks with its own address.
BASE_SYSCTLS = {"arp_ignore": 1, "arp_filter": 1, "arp_announce": 2}
ADDR_GEN_MODE_NONE = 1


@dataclass(frozen=True)
class LinkInfo:
    name: str
    index: int
    kind: str | None = None         # "macvlan", "ipvlan", "veth"... (None: a plain device)
    mode: str | None = None         # macvlan / ipvlan mode
    base_index: int | None = None   # IFLA_LINK
    mac: str = ""


@dataclass(frozen=True)
class Decision:
    action: str
    why: str = ""
    remove: tuple[str, ...] = ()    # leftover interfaces of ours to delete first


def decide_vmac(vmac: Vmac, links: dict[str, LinkInfo], owned: set[str]) -> Decision:
    base = links.get(vmac.base)
    if base is None:
        return Decision(WAIT, f"its base interface {vmac.base} does not exist")
    leftovers, clash = [], None
    for link in links.values():
        if link.name != vmac.ifname and link.kind == "macvlan" and link.base_index == base.index \
                and link.mac == vmac.mac:
            if link.name in owned:
                leftovers.append(link.name)
            else:
                clash = link.name
    if clash:
        return Decision(CONFLICT, f"{clash} on {vmac.base} already has MAC {vmac.mac} (another keepalived?): "
                                  "remove it or give this instance another MAC (use_vmac NAME MAC)")
    found = links.get(vmac.ifname)
    if found is None:
        return Decision(CREATE, remove=tuple(leftovers))
    if found.kind != "macvlan":
        return Decision(CONFLICT, f"{vmac.ifname} exists and is {'a ' + found.kind if found.kind else 'a device'}, "
                                  "not a macvlan: rename it or name the VMAC (use_vmac NAME)")
    if found.base_index == base.index and found.mac == vmac.mac and found.mode == "private":
        return Decision(ADOPT, remove=tuple(leftovers))
    return Decision(REPLACE, f"{vmac.ifname} is a macvlan with another base, MAC or mode", tuple(leftovers))


def decide_ipvlan(ipvlan: Ipvlan, links: dict[str, LinkInfo]) -> Decision:
    base = links.get(ipvlan.base)
    if base is None:
        return Decision(WAIT, f"its base interface {ipvlan.base} does not exist")
    found = links.get(ipvlan.ifname)
    if found is None:
        return Decision(CREATE)
    if found.kind != "ipvlan":
        return Decision(CONFLICT, f"{ipvlan.ifname} exists and is not an ipvlan")
    if found.base_index == base.index and found.mode == "l2":
        return Decision(ADOPT)
    return Decision(REPLACE, f"{ipvlan.ifname} is an ipvlan with another base or mode")


def vmac_sysctls(vmac: Vmac) -> dict[str, int]:
    """/proc/sys paths (below /proc/sys/net) and values for the VMAC itself."""
    if vmac.family == 4:
        out = {f"ipv4/conf/{vmac.ifname}/{k}": v for k, v in VMAC_SYSCTLS.items()}
        out[f"ipv6/conf/{vmac.ifname}/disable_ipv6"] = 1
        return out
    return {f"ipv6/conf/{vmac.ifname}/disable_ipv6": 0, f"ipv6/conf/{vmac.ifname}/addr_gen_mode": ADDR_GEN_MODE_NONE}


def base_sysctls(vmac: Vmac) -> dict[str, int]:
    return {f"ipv4/conf/{vmac.base}/{k}": v for k, v in BASE_SYSCTLS.items()} if vmac.family == 4 else {}


def rp_filter_plan(all_value: int, default_value: int, interfaces: dict[str, int]) -> dict[str, int]:
    """keepalived's clear_rp_filter: when all.rp_filter is on, raise default and every interface to it, then turn
    all off (the effective value of an interface is the larger of its own and all's)."""
    if all_value == 0:
        return {}
    plan = {f"ipv4/conf/{name}/rp_filter": all_value for name, value in interfaces.items() if value < all_value}
    if default_value < all_value:
        plan["ipv4/conf/default/rp_filter"] = all_value
    plan["ipv4/conf/all/rp_filter"] = 0
    return plan
