"""Tests of kernel features this host lacks and Debian's User-Mode Linux kernel has (today: ipvlan, for
use_ipvlan). They run inside the guest (scripts/uml_run.py), started by tests/integration/test_vrrp_ipvlan_uml.py;
on a host they are not collected, HANODE_IN_UML=1 turns them on. They use the ordinary lab (hanode.lab) inside
the guest."""

from __future__ import annotations

import os
import subprocess

if not os.environ.get("HANODE_IN_UML"):
    collect_ignore_glob = ["test_*.py"]
else:
    # the guest loads nothing on its own: IPv6 (the lab's addresses) and ipvlan, each unless the kernel has it
    # already (forky's UML kernel, used on CPUs with AMX, has IPv6 built in: `modprobe ipv6` fails there)
    for module, present in (("ipv6", "/proc/sys/net/ipv6"), ("ipvlan", "/sys/module/ipvlan")):
        if not os.path.exists(present):
            subprocess.run(["modprobe", module], check=True, timeout=60)
