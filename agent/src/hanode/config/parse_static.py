"""static_ipaddress, static_routes and static_rules: addresses, routes and rules the VRRP process adds when it
starts and removes when it stops, whatever the instances' states (keepalived's static_* blocks). Same grammar as
virtual_ipaddress, virtual_routes and virtual_rules; an address needs its dev (keepalived's default_interface
does not exist in hanode: the importer writes it out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hanode.config.host import HostCaps
from hanode.config.iproute import Route, read_routes
from hanode.config.iprule import Rule, read_rules
from hanode.config.model import AgentConfig, Vip
from hanode.config.parse_vrrp_net import host_names
from hanode.config.problems import Problems, Reader, join
from hanode.config.vip import check_label_prefix, parse_vip

SECTION = "static"


@dataclass(frozen=True)
class StaticConfig:
    addresses: tuple[Vip, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.addresses or self.routes or self.rules)


def parse(reader: Reader, problems: Problems, config: AgentConfig, host: HostCaps | None = None) -> StaticConfig:
    del config
    addresses = reader.items("static_ipaddress", lambda v, p: _address(v, p, problems))
    if len({(a.address, a.dev) for a in addresses}) != len(addresses):
        problems.error(reader.at("static_ipaddress"), "lists an address twice")
    return StaticConfig(addresses=addresses, routes=_list(reader, "static_routes", read_routes, problems, host),
                        rules=_list(reader, "static_rules", read_rules, problems, host))


def _address(value: Any, path: str, problems: Problems) -> Vip | None:
    vip = parse_vip(value, path, problems)
    if vip is None:
        return None
    if vip.dev is None:
        problems.error(path, "needs dev: a static address names its interface (keepalived's default_interface, eth0 "
                             "unless set, is not assumed)")
        return None
    if vip.use_vmac:
        problems.error(path, "use_vmac applies to an instance's addresses, not to static ones")
        return None
    check_label_prefix(vip, vip.dev, path, problems)
    return vip


def _list(reader: Reader, key: str, read, problems: Problems, host: HostCaps | None) -> tuple:
    value = reader.raw(key, None)
    if value is None:
        return ()
    return read(value if isinstance(value, list) else [value], join("", key), problems.error, problems.warn,
                host_names(host))
