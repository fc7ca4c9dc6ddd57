"""Does this kernel have IPVS? Answered from files only (no netlink, no module loading), so that
`hanode check-config` can validate `lb_backend: auto` for the kernel it runs on.

IPVS is there when it is loaded or built in (/proc/net/ip_vs, /sys/module/ip_vs), or when the module can
be autoloaded (ip_vs.ko listed in /lib/modules/<release>/modules.dep or modules.builtin). The agent itself
decides with a generic-netlink lookup (backend.py), which also autoloads the module.
"""

from __future__ import annotations

import os

PROC_IPVS = "/proc/net/ip_vs"
SYS_MODULE = "/sys/module/ip_vs"


def ipvs_available(root: str = "/") -> tuple[bool, str]:
    """(available, why) with a reason fit for a message: 'ip_vs.ko is in modules.dep'."""
    if os.path.exists(os.path.join(root, PROC_IPVS.lstrip("/"))):
        return True, f"{PROC_IPVS} exists"
    if os.path.exists(os.path.join(root, SYS_MODULE.lstrip("/"))):
        return True, "the ip_vs module is loaded"
    release = os.uname().release
    moddir = os.path.join(root, "lib", "modules", release)
    for name in ("modules.builtin", "modules.dep"):
        try:
            with open(os.path.join(moddir, name), encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if "/ip_vs.ko" in line.split(":", 1)[0]:
                        return True, f"ip_vs.ko is in {name} of kernel {release}"
        except OSError:
            continue
    return False, f"kernel {release} has no IPVS (no {PROC_IPVS}, no ip_vs module)"
