"""What can this host do? The one probe of a host's capabilities (today: IPVS), answered from files only: no
netlink, no module loading, nothing changed.

IPVS is there when it is loaded or built in (/proc/net/ip_vs, /sys/module/ip_vs), or when the module can be
autoloaded (ip_vs.ko listed in /lib/modules/<release>/modules.dep or modules.builtin).

Run where the answer is wanted, and only there: the agent calls gather() at start and reload, and so does
`hanode check-config` (config/load.py); the role's model step runs this very file with the managed host's own
Python (ansible.builtin.script) and hands the JSON it prints to ha_plan. So it stays a standalone script:
stdlib only, no hanode imports, Python 3.8 or later (a managed host's floor). The pure core takes the result
as a value (hanode.config.host.HostCaps). The agent's backend choice at run time resolves IPVS's
generic-netlink family instead (lvs/backend.py), which also autoloads the module.
"""

from __future__ import annotations

import json
import os
import sys

PROC_IPVS = "/proc/net/ip_vs"
SYS_MODULE = "/sys/module/ip_vs"


def ipvs_available(root: str = "/") -> tuple[bool, str]:
    """(available, why) with a reason fit for a message: 'ip_vs.ko is in modules.dep of kernel ...'."""
    if os.path.exists(os.path.join(root, PROC_IPVS.lstrip("/"))):
        return True, PROC_IPVS + " exists"
    if os.path.exists(os.path.join(root, SYS_MODULE.lstrip("/"))):
        return True, "the ip_vs module is loaded"
    release = os.uname().release
    moddir = os.path.join(root, "lib", "modules", release)
    for name in ("modules.builtin", "modules.dep"):
        try:
            with open(os.path.join(moddir, name), encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if "/ip_vs.ko" in line.split(":", 1)[0]:
                        return True, "ip_vs.ko is in %s of kernel %s" % (name, release)
        except OSError:
            continue
    return False, "kernel %s has no IPVS (no %s, no ip_vs module)" % (release, PROC_IPVS)


def gather(root: str = "/") -> dict:
    """This host's capabilities as JSON-ready data (hanode.config.host.HostCaps.from_facts reads it)."""
    available, why = ipvs_available(root)
    return {"ipvs": {"available": available, "why": why}, "kernel": os.uname().release}


if __name__ == "__main__":
    json.dump(gather(), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
