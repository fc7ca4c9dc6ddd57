"""VMAC (macvlan, private mode) and ipvlan interfaces of the VRRP instances: created, adopted or replaced at start
and reload (hanode.vrrp.vmac_plan decides), their sysctls set as keepalived sets them, removed on stop and when a
reload drops them. Only interfaces recorded in the owned file (hanode.vrrp.owned) are ever deleted; a sysctl is
put back only when it still holds the value this agent wrote. Messages from hanode.vrrp.rtnl_link on the VRRP
process's own netlink socket; links change at start, reload and stop, never on the advert path."""

from __future__ import annotations

import errno
import logging
import os
from typing import Callable

from hanode.config.model import AgentConfig, Ipvlan, Vip, Vmac, VrrpInstance
from hanode.vrrp import rtnl, rtnl_link, vmac_plan
from hanode.vrrp.owned import OwnedFile
from hanode.vrrp.vmac_plan import LinkInfo

log = logging.getLogger("hanode.vrrp.vmac")
SYSCTL_ROOT = "/proc/sys/net"


class LinkError(OSError):
    pass


def read_sysctl(path: str) -> int | None:
    try:
        with open(os.path.join(SYSCTL_ROOT, path), encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def write_sysctl(path: str, value: int) -> None:
    with open(os.path.join(SYSCTL_ROOT, path), "w", encoding="ascii") as handle:
        handle.write(str(value))


def wanted(config: AgentConfig) -> dict[str, tuple[VrrpInstance, Vmac | Ipvlan]]:
    out: dict[str, tuple[VrrpInstance, Vmac | Ipvlan]] = {}
    for inst in config.vrrp_instances.values():
        for vmac in inst.vmacs:
            out[vmac.ifname] = (inst, vmac)
        if inst.ipvlan:
            out[inst.ipvlan.ifname] = (inst, inst.ipvlan)
    return out


class VmacManager:
    """`talk` sends one rtnetlink request and returns its errno; `dump` returns a dump's parts (both from the
    VRRP process's netlink socket, hanode.vrrp.netlink.RouteRequests)."""

    def __init__(self, owned: OwnedFile, talk: Callable[[bytearray], int], dump: Callable[[int], list[bytes]]):
        self.owned, self.talk, self.dump = owned, talk, dump
        self.state: dict[str, dict] = {}     # ifname -> {"state": created|adopted|replaced|error, "error": ...}

    def _do(self, message: bytearray, what: str, ok: tuple[int, ...] = ()) -> None:
        code = self.talk(message)
        if code and code not in ok:
            raise LinkError(code, f"{what}: {os.strerror(code)}")

    def links(self) -> dict[str, LinkInfo]:
        return {info.name: info for info in map(rtnl_link.parse_link_info, self.dump(rtnl.RTM_GETLINK))}

    # ---- the wanted set -----------------------------------------------------------------------------------------

    def ensure(self, config: AgentConfig) -> bool:
        """Creates or adopts every VMAC / ipvlan the config wants; True when a link was created or replaced."""
        changed = False
        want = wanted(config)
        self.state = {name: entry for name, entry in self.state.items() if name in want}
        for name, (inst, link) in want.items():
            try:
                changed |= self._ensure_one(inst, link)
            except OSError as exc:
                self.state[name] = {"state": "error", "error": str(exc)}
                log.error("%s: cannot set up %s: %s", inst.name, name, exc)
        self.owned.save()
        return changed

    def _ensure_one(self, inst: VrrpInstance, link: Vmac | Ipvlan) -> bool:
        links = self.links()
        if isinstance(link, Vmac):
            decision = vmac_plan.decide_vmac(link, links, set(self.owned.owned.vmacs))
        else:
            decision = vmac_plan.decide_ipvlan(link, links)
        for leftover in decision.remove:
            log.warning("%s: removing %s, a VMAC this agent made for an older config with the same MAC",
                        inst.name, leftover)
            self._delete(leftover, links)
        if decision.action in (vmac_plan.CONFLICT, vmac_plan.WAIT):
            self.state[link.ifname] = {"state": "error", "error": decision.why}
            log.error("%s: not creating %s: %s", inst.name, link.ifname, decision.why)
            return False
        if decision.action == vmac_plan.REPLACE:
            log.warning("%s: replacing %s: %s", inst.name, link.ifname, decision.why)
            self._delete(link.ifname, links, force=True)
        if decision.action != vmac_plan.ADOPT:
            base = links[link.base].index
            self._do(rtnl_link.new_vmac(link, base) if isinstance(link, Vmac) else rtnl_link.new_ipvlan(link, base),
                     f"creating {link.ifname}")
        self.owned.owned.vmacs[link.ifname] = {"base": link.base, "family": getattr(link, "family", 0),
                                               "kind": "macvlan" if isinstance(link, Vmac) else "ipvlan"}
        self.state[link.ifname] = {"state": {vmac_plan.ADOPT: "adopted", vmac_plan.REPLACE: "replaced"}.get(
            decision.action, "created")}
        index = self.links()[link.ifname].index
        if isinstance(link, Vmac):
            self._set_vmac_sysctls(link)
        self._do(rtnl_link.link_up(index), f"setting {link.ifname} up")
        self._addresses(inst, link, index, links)
        log.info("%s: %s %s on %s", inst.name, self.state[link.ifname]["state"], link.ifname, link.base)
        return decision.action != vmac_plan.ADOPT

    def _addresses(self, inst: VrrpInstance, link: Vmac | Ipvlan, index: int, links: dict[str, LinkInfo]) -> None:
        """keepalived's set_link_local_address: an IPv6 VMAC gets the base's link-local address (adverts leave
        it from an address that is not a VIP) unless vmac_xmit_base; an ipvlan gets its address."""
        address = None
        if isinstance(link, Ipvlan):
            address = link.address
        elif link.family == 6 and link is inst.vmac and not inst.vmac_xmit_base:
            address = self._link_local(links[link.base].index)
        if address:
            text, prefix = address.split("/")
            vip = Vip(address=text, prefixlen=int(prefix), family=6 if ":" in text else 4)
            self._do(rtnl.address_message(rtnl.RTM_NEWADDR, vip, index), f"adding {address} to {link.ifname}",
                     ok=(errno.EEXIST,))

    def _link_local(self, base_index: int) -> str | None:
        for payload in self.dump(rtnl.RTM_GETADDR):
            found = rtnl.parse_address(payload)
            if found and found.index == base_index and found.address.startswith("fe80:"):
                return f"{found.address}/64"
        return None

    # ---- sysctls ------------------------------------------------------------------------------------------------

    def _set(self, path: str, value: int) -> None:
        before = read_sysctl(path)
        if before is None or before == value:
            if before is None:
                log.warning("cannot read /proc/sys/net/%s", path)
            return
        self.owned.owned.sysctls.setdefault(path, [before, value])
        write_sysctl(path, value)

    def _set_vmac_sysctls(self, vmac: Vmac) -> None:
        if vmac.family == 4:
            names = {name: read_sysctl(f"ipv4/conf/{name}/rp_filter") or 0 for name in self.links()}
            plan = vmac_plan.rp_filter_plan(read_sysctl("ipv4/conf/all/rp_filter") or 0,
                                            read_sysctl("ipv4/conf/default/rp_filter") or 0, names)
            for path, value in plan.items():
                self._set(path, value)
        for path, value in {**vmac_plan.base_sysctls(vmac), **vmac_plan.vmac_sysctls(vmac)}.items():
            self._set(path, value)

    def _restore_sysctls(self) -> None:
        """Puts back what this agent changed and no longer needs: a base's ARP settings when it has no VMAC left,
        all.rp_filter when no IPv4 VMAC is left. A value someone changed since is left alone."""
        vmacs = self.owned.owned.vmacs
        bases = {v["base"] for v in vmacs.values() if v.get("family") == 4}
        any_v4 = bool(bases)
        for path, (before, ours) in list(self.owned.owned.sysctls.items()):
            parts = path.split("/")
            iface = parts[2] if len(parts) > 3 else ""
            if iface in vmacs or (iface in bases) or (parts[-1] == "rp_filter" and any_v4):
                continue
            if read_sysctl(path) == ours:
                try:
                    write_sysctl(path, before)
                except OSError:
                    pass
            del self.owned.owned.sysctls[path]

    # ---- removal -----------------------------------------------------------------------------------------------

    def _delete(self, ifname: str, links: dict[str, LinkInfo], force: bool = False) -> None:
        if ifname not in self.owned.owned.vmacs and not force:
            return
        if ifname in links:
            self._do(rtnl_link.del_link(links[ifname].index), f"removing {ifname}", ok=(errno.ENODEV,))
        self.owned.owned.vmacs.pop(ifname, None)
        for path in [p for p in self.owned.owned.sysctls if p.split("/")[2:3] == [ifname]]:
            del self.owned.owned.sysctls[path]

    def remove_unwanted(self, config: AgentConfig | None) -> None:
        """Deletes the owned links the config (None: stop) does not want, then restores sysctls."""
        want = wanted(config) if config is not None else {}
        links = self.links() if self.owned.owned.vmacs else {}
        for ifname in list(self.owned.owned.vmacs):
            if ifname in want:
                continue
            try:
                self._delete(ifname, links)
                log.info("removed %s", ifname)
            except OSError as exc:
                log.error("cannot remove %s: %s", ifname, exc)
            self.state.pop(ifname, None)
        self._restore_sysctls()
        self.owned.save()

    def status(self, inst: VrrpInstance) -> dict | None:
        if not inst.vmacs and inst.ipvlan is None:
            return None
        entries = []
        for link in (*inst.vmacs, *((inst.ipvlan,) if inst.ipvlan else ())):
            entry = self.state.get(link.ifname, {"state": "pending"})
            entries.append({"interface": link.ifname, "kind": "macvlan" if isinstance(link, Vmac) else "ipvlan",
                            "base": link.base, "mac": getattr(link, "mac", None), "state": entry["state"],
                            "error": entry.get("error")})
        return {"interfaces": entries, "xmit_base": inst.vmac_xmit_base, "wire_interface": inst.wire_interface}
