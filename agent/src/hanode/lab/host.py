"""A host of the lab (one network namespace with its addresses and its own directory) and how a host is plugged
into the switch's bridges."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from hanode.lab import netns
from hanode.lab import topology as topo
from hanode.lab.procs import ProcessHandle


class _RunsProcesses(Protocol):
    """What a host needs of its lab (hanode.lab.lab.Lab)."""

    def run(self, host, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess: ...

    def popen(self, host, argv: Sequence[str], **kwargs) -> ProcessHandle: ...


class Host:
    """One namespace of the lab, with its addresses and its own directory."""

    def __init__(self, lab: _RunsProcesses, name: str, netns_name: str, directory: Path, spec: topo.HostSpec | None):
        self.lab = lab
        self.name = name
        self.netns = netns_name
        self.dir = directory
        self.spec = spec

    def __repr__(self) -> str:
        return f"<Host {self.name} netns={self.netns}>"

    @property
    def role(self) -> str:
        return self.spec.role if self.spec else "switch"

    @property
    def ports(self) -> tuple[topo.Port, ...]:
        return self.spec.ports if self.spec else ()

    def port(self, ifname: str = "eth0") -> topo.Port:
        if not self.spec:
            raise KeyError("the switch has no host ports")
        return self.spec.port(ifname)

    @property
    def ipv4(self) -> str:
        return self.port().ipv4

    @property
    def ipv6(self) -> str:
        return self.port().ipv6

    @property
    def mac(self) -> str:
        return self.port().mac

    def path(self, name: str) -> Path:
        return self.dir / name

    @property
    def config_path(self) -> Path:
        return self.dir / "agent.yaml"

    @property
    def control_socket(self) -> Path:
        return self.dir / "agent.sock"

    def addresses(self, ifname: str | None = None, family: int | None = None) -> list[str]:
        """["198.51.100.11/24", "2001:db8:100::11/64", "fe80::.../64"] from `ip -j addr` (4/6 filters)."""
        args = ["addr", "show"] + (["dev", ifname] if ifname else [])
        out = []
        for link in netns.ip_json(self.netns, *args):
            for info in link.get("addr_info", []):
                fam = 4 if info.get("family") == "inet" else 6
                if family in (None, fam):
                    out.append(f"{info['local']}/{info['prefixlen']}")
        return out

    def has_address(self, ip: str, ifname: str | None = None) -> bool:
        want = ipaddress.ip_address(ip)
        return any(ipaddress.ip_interface(a).ip == want for a in self.addresses(ifname))

    def run(self, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        return self.lab.run(self, argv, **kwargs)

    def popen(self, argv: Sequence[str], **kwargs) -> ProcessHandle:
        return self.lab.popen(self, argv, **kwargs)


def plug_host(switch_netns: str, h: topo.HostSpec, real_server_gateways: tuple = (None, None)) -> None:
    """Creates one host's namespace and plugs its ports into the switch's bridges, addresses set."""
    netns.add(h.netns)
    # Before the interfaces exist, so they inherit it: no DAD (link-locals usable at once),
    # static addresses survive a link down.
    netns.sysctl(h.netns, {
        "net.ipv6.conf.all.accept_dad": 0, "net.ipv6.conf.default.accept_dad": 0,
        "net.ipv6.conf.all.keep_addr_on_down": 1, "net.ipv6.conf.default.keep_addr_on_down": 1,
        "net.ipv6.conf.default.accept_ra": 0,
        "net.ipv4.ip_forward": 1 if h.role == topo.NODE else 0,
    })
    netns.ip_batch(switch_netns, [
        cmd for p in h.ports
        for cmd in (f"link add {p.switch_ifname} type veth peer name {p.ifname} address {p.mac} netns {h.netns}",
                    f"link set {p.switch_ifname} master {p.segment.bridge} up")])
    cmds = ["link set lo up"]
    for p in h.ports:
        cmds += [f"link set {p.ifname} up", f"addr add {p.ipv4_cidr} dev {p.ifname}",
                 f"addr add {p.ipv6_cidr} dev {p.ifname} nodad"]
    if h.role == topo.REAL_SERVER:
        for gw in real_server_gateways:
            if gw:
                cmds.append(f"route replace default via {gw} dev eth0")
    netns.ip_batch(h.netns, cmds)
