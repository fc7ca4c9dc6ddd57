"""no_accept (accept: false, strict mode's default): while an instance that is not the address owner is MASTER,
traffic to and from its VIPs is dropped, as keepalived 2.2.7 does with its nftables table (vrrp_nftables.c):

    table inet hanode_noaccept
      set vips4 / vips6                       the VIPs of every no_accept instance that is MASTER
      set vips6ll (ipv6_addr . ifname)        its IPv6 link-local VIPs, each with its interface
      chain in  (input,  priority -1)         ip daddr @vips4 drop; ip6 daddr @vips6 drop;
                                              ip6 daddr . iifname @vips6ll drop
      chain out (output, priority -1)         ip saddr @vips4 drop; ip6 saddr @vips6 drop;
                                              ip6 saddr . oifname @vips6ll drop
      (neighbour solicitations and advertisements pass, so the VIP's IPv6 address still resolves)

The VIPs go into the sets before they are added to the interface and leave them after they are removed, as
keepalived orders it (vrrp_state_become_master / vrrp_restore_interface). The table is this agent's alone: it is
created when first needed and deleted at start (a leftover) and at stop. An IPv6 link-local VIP is blocked on its
own interface only (the same fe80:: address may be another host's on another link), as keepalived's
vips_link_local set does; elements of the link-local set are written ADDRESS%IFNAME here. ARP is not filtered,
as in keepalived.

plan() is pure; NoAccept runs `nft -f -` (milliseconds, once per change of a MASTER's VIP set)."""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from typing import Iterable

from hanode.config.model import Vip, VrrpInstance

log = logging.getLogger("hanode.vrrp.noaccept")
TABLE = "hanode_noaccept"
_ND = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"
_TABLE_TEXT = f"""table inet {TABLE} {{
  set vips4 {{ type ipv4_addr; }}
  set vips6 {{ type ipv6_addr; }}
  set vips6ll {{ type ipv6_addr . ifname; }}
  chain in {{ type filter hook input priority -1; policy accept;
    ip daddr @vips4 drop
    ip6 daddr @vips6 {_ND}
    ip6 daddr @vips6 drop
    ip6 daddr . iifname @vips6ll {_ND}
    ip6 daddr . iifname @vips6ll drop
  }}
  chain out {{ type filter hook output priority -1; policy accept;
    ip saddr @vips4 drop
    ip6 saddr @vips6 {_ND}
    ip6 saddr @vips6 drop
    ip6 saddr . oifname @vips6ll {_ND}
    ip6 saddr . oifname @vips6ll drop
  }}
}}
"""


def blocked_addresses(inst: VrrpInstance, vips: Iterable[Vip]) -> set[str]:
    """The addresses no_accept blocks for these VIPs of the instance (none when it accepts): ADDRESS, or for an
    IPv6 link-local VIP ADDRESS%IFNAME (its interface: the VIP's dev, else the instance's)."""
    if inst.accept or inst.is_owner:
        return set()
    return {blocked_key(inst, vip) for vip in vips}


def blocked_key(inst: VrrpInstance, vip: Vip) -> str:
    address = ipaddress.ip_address(vip.address)
    if address.version == 6 and address.is_link_local:
        return f"{vip.address}%{vip.dev or inst.interface}"
    return vip.address


def plan(current: set[str], wanted: set[str], table_exists: bool) -> str:
    """The nft script that turns the sets holding `current` into ones holding `wanted` ("" when nothing changes)."""
    if current == wanted and table_exists:
        return ""
    lines = []
    if not table_exists:
        lines += [f"add table inet {TABLE}", f"delete table inet {TABLE}", _TABLE_TEXT]
        current = set()
    for verb, addresses in (("add", wanted - current), ("delete", current - wanted)):
        by_set: dict[str, list[str]] = {}
        for key in sorted(addresses):
            address, _sep, ifname = key.partition("%")
            if ifname:
                by_set.setdefault("vips6ll", []).append(f'{address} . "{ifname}"')
            else:
                by_set.setdefault(f"vips{ipaddress.ip_address(address).version}", []).append(address)
        for name in ("vips4", "vips6", "vips6ll"):
            if name in by_set:
                lines.append(f"{verb} element inet {TABLE} {name} {{ {', '.join(by_set[name])} }}")
    return "\n".join(lines) + "\n"


class NoAccept:
    def __init__(self, nft: str = "nft"):
        self.nft = nft
        self.blocked: dict[str, set[str]] = {}     # instance -> addresses blocked for it
        self.applied: set[str] = set()
        self.table_exists = False
        self.error: str | None = None

    def start(self) -> None:
        """Removes a leftover of an earlier run (best effort: a host without nft has none)."""
        try:
            subprocess.run([self.nft, "-f", "-"], input=f"add table inet {TABLE}\ndelete table inet {TABLE}\n",
                           capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def vips_added(self, inst: VrrpInstance, vips: tuple[Vip, ...]) -> None:
        addresses = blocked_addresses(inst, vips)
        if addresses:
            self.blocked.setdefault(inst.name, set()).update(addresses)
            self._sync()

    def vips_removed(self, inst: VrrpInstance, vips: tuple[Vip, ...]) -> None:
        held = self.blocked.get(inst.name)
        if held:
            held.difference_update(blocked_key(inst, vip) for vip in vips)
            if not held:
                del self.blocked[inst.name]
            self._sync()

    def reconcile(self, masters: dict[str, VrrpInstance]) -> None:
        """After a reload: the MASTER instances (with their new config) and nothing else keep addresses blocked."""
        self.blocked = {name: addresses for name, inst in masters.items()
                        if (addresses := blocked_addresses(inst, inst.vips + inst.excluded_vips))}
        self._sync()

    def stop(self) -> None:
        if self.table_exists:
            self._run(f"delete table inet {TABLE}\n")
        self.blocked, self.applied, self.table_exists = {}, set(), False

    def status(self) -> dict:
        return {"table": f"inet {TABLE}" if self.table_exists else None, "blocked": sorted(self.applied),
                "error": self.error}

    def _sync(self) -> None:
        wanted = set().union(*self.blocked.values()) if self.blocked else set()
        if not wanted and not self.table_exists:
            return
        script = plan(self.applied, wanted, self.table_exists)
        if script and self._run(script):
            self.applied, self.table_exists = wanted, True

    def _run(self, script: str) -> bool:
        try:
            done = subprocess.run([self.nft, "-f", "-"], input=script, capture_output=True, text=True, timeout=10,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.error = f"nft: {exc}"
            log.error("no_accept: cannot run nft: %s", exc)
            return False
        if done.returncode:
            self.error = done.stderr.strip() or f"nft exited {done.returncode}"
            log.error("no_accept: nft failed: %s", self.error)
            return False
        self.error = None
        return True
