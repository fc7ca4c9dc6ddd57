"""What the host a config is meant for can do, as a value passed in: the pure core never looks at the machine
it runs on.

`lb_backend: auto` means IPVS where the host's kernel has it, nftables elsewhere, so checking a config needs
the host's capabilities. They are gathered ON the host by hanode.lvs.caps (files only, stdlib only): by the
agent at start and reload and by `hanode check-config` there (config/load.py), and by the role's model step,
which runs that same file with the host's own Python and hands its JSON to ha_plan as a fact. A controller on
macOS or in a container thereby judges each host by that host's kernel, never by its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class HostCaps:
    ipvs: bool
    ipvs_why: str = ""  # fit for a message: "ip_vs.ko is in modules.dep of kernel 6.1.0-18-amd64"
    kernel: str = ""
    macvlan: bool | None = None     # use_vmac (None: not known, facts from an older probe)
    macvlan_why: str = ""
    ipvlan: bool | None = None      # use_ipvlan
    ipvlan_why: str = ""
    iproute2: Mapping[str, Mapping[str, int]] = field(default_factory=dict, compare=False)  # route/rule names

    @classmethod
    def from_facts(cls, facts: Any, where: str = "host_caps") -> HostCaps:
        """The probe's JSON ({"ipvs": {"available": bool, "why": str}, "kernel": str}) as a HostCaps;
        ValueError names the field that is missing or of the wrong type."""
        if not isinstance(facts, dict):
            raise ValueError(f"{where}: must be the mapping hanode.lvs.caps prints, got {type(facts).__name__}")
        ipvs = facts.get("ipvs")
        if not isinstance(ipvs, dict) or not isinstance(ipvs.get("available"), bool):
            raise ValueError(f"{where}.ipvs.available: must be true or false, got {ipvs!r}")
        why, kernel = ipvs.get("why", ""), facts.get("kernel", "")
        if not isinstance(why, str) or not isinstance(kernel, str):
            raise ValueError(f"{where}: ipvs.why and kernel must be strings")
        drivers = {}
        for name in ("macvlan", "ipvlan"):
            entry = facts.get(name, {})
            if not isinstance(entry, dict) or not isinstance(entry.get("available", False), bool):
                raise ValueError(f"{where}.{name}: must be {{available: bool, why: str}}, got {entry!r}")
            drivers[name], drivers[name + "_why"] = entry.get("available"), str(entry.get("why", ""))
        names = facts.get("iproute2", {})
        if not isinstance(names, dict) or not all(isinstance(v, dict) for v in names.values()):
            raise ValueError(f"{where}.iproute2: must map kinds to {{name: number}}, got {type(names).__name__}")
        return cls(ipvs=ipvs["available"], ipvs_why=why, kernel=kernel, iproute2=names, **drivers)

    def auto_backend(self) -> tuple[str, str]:
        """(backend, why) that `lb_backend: auto` resolves to on this host."""
        return ("ipvs" if self.ipvs else "nftables"), self.ipvs_why
