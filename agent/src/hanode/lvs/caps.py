"""What can this host do? The one probe of a host's capabilities (IPVS; macvlan and ipvlan for use_vmac and
use_ipvlan; the names iproute2 gives routing tables, protocols, scopes, DS fields and realms), answered from
files only: no netlink, no module loading, nothing changed.

IPVS is there when it is loaded or built in (/proc/net/ip_vs, /sys/module/ip_vs), or when the module can be
autoloaded (ip_vs.ko listed in /lib/modules/<release>/modules.dep or modules.builtin). A network driver
(macvlan, ipvlan) likewise, or when /proc/config.gz says it is built in (=y) or not there at all.

Run where the answer is wanted, and only there: the agent calls gather() at start and reload, and so does
`hanode check-config` (config/load.py); the role's model step runs this very file with the managed host's own
Python (ansible.builtin.script) and hands the JSON it prints to ha_plan. So it stays a standalone script:
stdlib only, no hanode imports, Python 3.8 or later (a managed host's floor). The pure core takes the result
as a value (hanode.config.host.HostCaps). The agent's backend choice at run time resolves IPVS's
generic-netlink family instead (lvs/backend.py), which also autoloads the module.
"""

from __future__ import annotations

import gzip
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


def _kernel_config(option, root):
    """The option's value in /proc/config.gz ("y", "m", or "n" for "is not set"), None when unknown."""
    try:
        with gzip.open(os.path.join(root, "proc/config.gz"), "rt", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(option + "="):
                    return line.split("=", 1)[1].strip()
                if line.strip() == "# %s is not set" % option:
                    return "n"
    except (OSError, EOFError, ValueError):
        return None
    return None


def driver_available(module, option, root="/"):
    """(available, why) for a kernel driver: loaded, built in, or listed for autoloading."""
    if os.path.exists(os.path.join(root, "sys/module", module)):
        return True, "the %s module is loaded" % module
    release = os.uname().release
    built = _kernel_config(option, root)
    if built == "y":
        return True, "kernel %s has %s=y" % (release, option)
    moddir = os.path.join(root, "lib", "modules", release)
    for name in ("modules.builtin", "modules.dep"):
        try:
            with open(os.path.join(moddir, name), encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if "/%s.ko" % module in line.split(":", 1)[0]:
                        return True, "%s.ko is in %s of kernel %s" % (module, name, release)
        except OSError:
            continue
    if built == "n":
        return False, "kernel %s is built without %s (%s is not set in /proc/config.gz)" % (release, module, option)
    return False, "kernel %s has no %s (no /sys/module/%s, no %s.ko in modules.dep or modules.builtin)" % (
        release, module, module, module)


IPROUTE2_DIRS = ("usr/share/iproute2", "usr/lib/iproute2", "etc/iproute2")
IPROUTE2_FILES = {"table": "rt_tables", "protocol": "rt_protos", "scope": "rt_scopes", "dsfield": "rt_dsfield",
                  "realm": "rt_realms"}


def iproute2_names(root="/"):
    """{kind: {name: number}} from iproute2's NUMBER NAME files and their .d/*.conf (later ones win)."""
    names = {}
    for kind, filename in IPROUTE2_FILES.items():
        found = {}
        for directory in IPROUTE2_DIRS:
            base = os.path.join(root, directory, filename)
            extra = base + ".d"
            paths = [base] + sorted(os.path.join(extra, n) for n in (os.listdir(extra) if os.path.isdir(extra) else [])
                                    if n.endswith(".conf"))
            for path in paths:
                try:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        for line in handle:
                            words = line.split("#", 1)[0].split()
                            if len(words) >= 2:
                                try:
                                    found[words[1]] = int(words[0], 0)
                                except ValueError:
                                    continue
                except OSError:
                    continue
        names[kind] = found
    return names


def gather(root: str = "/") -> dict:
    """This host's capabilities as JSON-ready data (hanode.config.host.HostCaps.from_facts reads it)."""
    available, why = ipvs_available(root)
    facts = {"ipvs": {"available": available, "why": why}, "kernel": os.uname().release,
             "iproute2": iproute2_names(root)}
    for module, option in (("macvlan", "CONFIG_MACVLAN"), ("ipvlan", "CONFIG_IPVLAN")):
        has, reason = driver_available(module, option, root)
        facts[module] = {"available": has, "why": reason}
    return facts


if __name__ == "__main__":
    json.dump(gather(), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
