"""What the VRRP instances put into the kernel besides their VIPs, driven by the runner at a few points:

- start: VMAC / ipvlan interfaces (before the first interface dump, so that sockets and VIPs find them), then
  static_ipaddress / static_routes / static_rules; leftovers of an earlier run that this agent owned and the
  config no longer wants are removed (virtual routes too, except for instances resuming as MASTER);
- a state change: virtual_routes and virtual_rules added when an instance becomes MASTER (after its VIPs, which
  a route may use as its source), removed when it leaves MASTER; the garp_extra_if refresh runs while MASTER;
- reload: new VMACs before the engine sees the config (prepare), then (applied) VMACs no longer wanted removed,
  static routes/rules/addresses reconciled, and the virtual routes of every MASTER instance reconciled (only
  the changed ones added or removed: nothing flaps);
- stop: after the instances released MASTER, static entries and VMACs removed, sysctls put back.

It never removes what this agent did not add (hanode.vrrp.owned)."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from hanode.config.model import AgentConfig, Vip, VrrpInstance
from hanode.config.parse_static import StaticConfig
from hanode.lvs import caps
from hanode.vrrp.actions import State
from hanode.vrrp.noaccept import NoAccept
from hanode.vrrp.owned import OwnedFile
from hanode.vrrp.routes import RouteTable
from hanode.vrrp.routes_plan import STATIC, numbered_rules, route_key, rule_key
from hanode.vrrp.vmac import VmacManager, read_sysctl, write_sysctl

log = logging.getLogger("hanode.vrrp.plumbing")
Announce = Callable[[VrrpInstance, tuple[Vip, ...]], None]


class Plumbing:
    def __init__(self, config: AgentConfig, talk: Callable[[bytearray], int], dump: Callable[[int], list[bytes]],
                 announce: Announce):
        self.config = config
        self.owned = OwnedFile(config.control_socket)
        self.vmacs = VmacManager(self.owned, talk, dump)
        self.routes = RouteTable(talk, self.owned, caps.iproute2_names())
        self.announce = announce
        self.masters: set[str] = set()
        self.garp_tasks: dict[str, asyncio.Task] = {}
        self.noaccept = NoAccept()
        self.promoted: dict[str, int] = {}      # interface -> its promote_secondaries before this agent set it

    # ---- life cycle ----------------------------------------------------------------------------------------------

    async def start(self, resume: dict[str, str]) -> None:
        self.noaccept.start()
        self._promote_secondaries(self.config)
        self.vmacs.ensure(self.config)
        self.vmacs.remove_unwanted(self.config)
        for owner in self.routes.owners() - {STATIC}:
            if resume.get(owner) != State.MASTER.value:
                self.routes.remove(owner)
        self._static(self.config)

    async def prepare(self, config: AgentConfig) -> bool:
        """Before the engine applies a reload: the new VMACs exist. True when links changed (dump them again)."""
        return self.vmacs.ensure(config)

    async def applied(self, config: AgentConfig, states: dict[str, State]) -> None:
        old, self.config = self.config, config
        self.noaccept.reconcile({name: inst for name, inst in config.vrrp_instances.items()
                                 if states.get(name) == State.MASTER})
        self._promote_secondaries(config)
        self.vmacs.remove_unwanted(config)
        self._static(config)
        rules = numbered_rules(config)
        for owner in self.routes.owners() - {STATIC}:
            if owner not in config.vrrp_instances or states.get(owner) != State.MASTER:
                self.routes.remove(owner)
        for name, inst in config.vrrp_instances.items():
            if states.get(name) == State.MASTER:
                self.routes.remove(name, keep=self._keys(name, inst, rules))
                self.routes.add(name, inst.virtual_routes, rules.get(name, ()))
                self._garp_extra(inst, old.vrrp_instances.get(name) != inst)

    async def stop(self) -> None:
        for task in self.garp_tasks.values():
            task.cancel()
        self.garp_tasks.clear()
        self.routes.remove(STATIC)
        self.vmacs.remove_unwanted(None)
        self.noaccept.stop()
        for ifname, before in self.promoted.items():
            if read_sysctl(f"ipv4/conf/{ifname}/promote_secondaries") == 1:
                _write_promote(ifname, before)
        self.promoted.clear()

    def _promote_secondaries(self, config: AgentConfig) -> None:
        """keepalived's promote_secondaries: net.ipv4.conf.IF.promote_secondaries=1 on the instance's interface
        (put back at stop if nobody changed it since)."""
        for inst in config.vrrp_instances.values():
            if inst.promote_secondaries and inst.interface not in self.promoted:
                before = read_sysctl(f"ipv4/conf/{inst.interface}/promote_secondaries")
                if before == 0 and _write_promote(inst.interface, 1):
                    self.promoted[inst.interface] = before

    def _static(self, config: AgentConfig) -> None:
        static = config.sections.get(STATIC) or StaticConfig()
        rules = numbered_rules(config).get(STATIC, ())
        keep = {route_key(STATIC, r.text) for r in static.routes} | {rule_key(STATIC, r, p) for r, p in rules}
        keep |= {vip.text() for vip in static.addresses}
        self.routes.remove(STATIC, keep=keep)
        if static:
            self.routes.add(STATIC, static.routes, rules, static.addresses)

    @staticmethod
    def _keys(name: str, inst: VrrpInstance, rules: dict) -> set[str]:
        return ({route_key(name, r.text) for r in inst.virtual_routes}
                | {rule_key(name, r, p) for r, p in rules.get(name, ())})

    # ---- MASTER ------------------------------------------------------------------------------------------------

    def state_changed(self, inst: VrrpInstance, old: State, new: State) -> None:
        if new == State.MASTER:
            self.masters.add(inst.name)
            self.routes.add(inst.name, inst.virtual_routes, numbered_rules(self.config).get(inst.name, ()))
            self._garp_extra(inst, True)
        elif old == State.MASTER:
            self.masters.discard(inst.name)
            self.routes.remove(inst.name)
            task = self.garp_tasks.pop(inst.name, None)
            if task is not None:
                task.cancel()

    def _garp_extra(self, inst: VrrpInstance, restart: bool) -> None:
        """keepalived's garp_extra_if: every N s while MASTER, one GARP / NA per extra interface (a VMAC other
        than the one the adverts leave from; with `all`, any interface other than that one)."""
        targets = extra_interface_vips(inst)
        if not restart and inst.name in self.garp_tasks:
            return
        task = self.garp_tasks.pop(inst.name, None)
        if task is not None:
            task.cancel()
        if inst.garp_extra_if_ms and targets:
            self.garp_tasks[inst.name] = asyncio.get_running_loop().create_task(
                self._garp_loop(inst, targets), name=f"garp_extra_if {inst.name}")

    async def _garp_loop(self, inst: VrrpInstance, vips: tuple[Vip, ...]) -> None:
        while True:
            await asyncio.sleep(inst.garp_extra_if_ms / 1000)
            try:
                self.announce(inst, vips)
            except OSError as exc:
                log.warning("%s: garp_extra_if: %s", inst.name, exc)

    # ---- status --------------------------------------------------------------------------------------------------

    def annotate(self, name: str, entry: dict) -> None:
        """Adds `vmac`, `multicast_group`, `virtual_routes` and `virtual_rules` to an instance's status (see
        docs/status-schema.md)."""
        inst = self.config.vrrp_instances.get(name)
        if inst is None:
            return
        entry["vmac"] = self.vmacs.status(inst)
        entry["multicast_group"] = None if inst.unicast else inst.multicast_group
        owned = self.routes.status(name)
        entry["virtual_routes"] = _listing(inst.virtual_routes, owned, "route")
        entry["virtual_rules"] = _listing(inst.virtual_rules, owned, "rule")

    def static_status(self) -> dict:
        """The static addresses, routes and rules (status: vrrp.static)."""
        static = self.config.sections.get(STATIC) or StaticConfig()
        owned = self.routes.status(STATIC)
        return {"addresses": _listing(static.addresses, owned, "address"),
                "routes": _listing(static.routes, owned, "route"), "rules": _listing(static.rules, owned, "rule")}


def _write_promote(ifname: str, value: int) -> bool:
    try:
        write_sysctl(f"ipv4/conf/{ifname}/promote_secondaries", value)
        return True
    except OSError as exc:
        log.error("cannot set promote_secondaries on %s: %s", ifname, exc)
        return False


def extra_interface_vips(inst: VrrpInstance) -> tuple[Vip, ...]:
    """One VIP per interface that garp_extra_if refreshes (keepalived's vrrp_send_vmac_update)."""
    vmac_names = {v.ifname for v in inst.vmacs}
    seen: dict[str, Vip] = {}
    for vip in inst.vips + inst.excluded_vips:
        dev = vip.dev or inst.interface
        if dev not in vmac_names and not inst.garp_extra_if_all:
            continue
        if dev == inst.wire_interface:
            continue
        seen.setdefault(dev, vip)
    return tuple(seen.values())


def _listing(items, owned: list[dict], kind: str) -> list[dict]:
    """Each configured item with what the agent did about it: added (it owns it), present (someone else's),
    error, or not_added (the instance is not MASTER)."""
    by_text = {e["what"].split(" (preference")[0]: e for e in owned}
    out = []
    for item in items:
        text = item.text() if isinstance(item, Vip) else item.text
        entry = by_text.get(f"{kind} {text}")
        out.append({"entry": text, "state": entry["state"] if entry else "not_added",
                    "error": entry["error"] if entry else None})
    return out
