# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ha_preflight's work: what a host must have for the agent (needs), what it has (observe), what is missing
(problems), and the host's platform tag for the wheelhouse. needs/problems/platform_tag are pure."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

# Run with the Python that will create the agent's virtual environment (ha_node_python).
PYTHON_PROBE = r"""
import glob, json, platform, subprocess, sys
try:
    import venv
    has_venv = True
except ImportError:
    has_venv = False
libc, libc_version = platform.libc_ver()
musl = sorted(glob.glob('/lib/ld-musl-*.so.1'))
if not libc and musl:
    out = subprocess.run([musl[0]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode('ascii', 'replace')
    libc, libc_version = 'musl', ''.join(line.split()[-1] for line in out.splitlines() if line.startswith('Version'))
print(json.dumps({'version': list(sys.version_info[:3]), 'implementation': sys.implementation.name,
                  'machine': platform.machine(), 'libc': libc, 'libc_version': libc_version, 'venv': has_venv}))
"""

IMPLEMENTATION_TAGS = {"cpython": "cp"}
# IPVS is a kernel module, and each of its schedulers one more (ip_vs_rr, ...). nftables is checked by
# running `nft list tables` (nf_tables built in leaves no trace in /sys/module).
IPVS_MODULE = "ip_vs"


def needs(lb_backend, virtual_servers, lb_algos):
    """What the config needs from the host beyond Python: {"nft": bool, "modules": [(module, why)]}."""
    if not virtual_servers:
        return {"nft": False, "modules": []}
    backend = lb_backend or "auto"
    modules = []
    if backend == "ipvs":
        modules = [(IPVS_MODULE, "lb_backend ipvs")]
        modules += [("ip_vs_%s" % algo, "lb_algo %s" % algo) for algo in sorted(set(a for a in lb_algos if a))]
    return {"nft": backend == "nftables", "modules": modules}


def platform_tag(probe):
    """'cp313-glibc2.41-x86_64': the wheel platform a host needs (Python, libc, architecture), or None."""
    impl = IMPLEMENTATION_TAGS.get(probe.get("implementation"))
    libc = {"glibc": "glibc", "musl": "musl"}.get(probe.get("libc"))
    version = re.match(r"^(\d+)\.(\d+)", probe.get("libc_version") or "")
    if not impl or not libc or not version or not probe.get("machine"):
        return None
    major, minor = probe["version"][:2]
    return "%s%d%d-%s%s.%s-%s" % (impl, major, minor, libc, version.group(1), version.group(2), probe["machine"])


def _version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def problems(observed, wanted):
    """Every need the host does not meet, each naming the need (the task adds the host)."""
    out = []
    probe = observed.get("python")
    if probe is None:
        out.append("Python: %s does not run (%s)" % (wanted["python"], observed.get("python_error") or "not found"))
    else:
        have = "%d.%d.%d" % tuple(probe["version"])
        if tuple(probe["version"][:2]) < _version_tuple(wanted["min_python"]):
            out.append("Python %s or later for the agent: %s is %s" % (wanted["min_python"], wanted["python"], have))
        if not probe.get("venv"):
            out.append("Python's venv module: %s has none (Debian: python3-venv)" % wanted["python"])
        if platform_tag(probe) is None:
            out.append("a platform the agent's wheels exist for: %s %s, libc %r %s, %s" % (
                probe.get("implementation"), have, probe.get("libc"), probe.get("libc_version"), probe.get("machine")))
    need = needs(wanted["lb_backend"], wanted["virtual_servers"], wanted["lb_algos"])
    if need["nft"] and not observed.get("nft"):
        out.append("the nft binary (lb_backend nftables; Debian: nftables)")
    elif need["nft"] and observed.get("nft_error"):
        out.append("nftables in the kernel (lb_backend nftables): nft list tables fails: %s" % observed["nft_error"])
    for module, why in need["modules"]:
        state = observed["modules"].get(module)
        if state == "missing" or (state == "unknown" and module == IPVS_MODULE):
            out.append("kernel module %s (%s): neither loaded, built in nor in /lib/modules/%s" % (
                module, why, observed.get("kernel", "?")))
    mode = wanted["service_mode"]
    if mode in ("auto", "systemd") and not observed["systemd"]:
        out.append("systemd (ha_node_service_mode %s; PID 1 is %s): set ha_node_service_mode: lab to run the agent "
                   "under the lab's pid-file supervisor instead, which does not survive a reboot" % (mode, observed.get("pid1")))
    free_mb = observed.get("free_mb")
    if free_mb is not None and free_mb < wanted["min_free_mb"]:
        out.append("%d MiB free for %s (has %d MiB)" % (wanted["min_free_mb"], observed.get("free_path"), free_mb))
    return out


def effective_service_mode(mode, systemd):
    if mode == "auto":
        return "systemd" if systemd else "lab"
    return mode


def module_state(name, loaded, builtin_names, loadable_names):
    """loaded, builtin, loadable (in modules.dep), missing, or unknown (no module lists, e.g. a container:
    a scheduler built into the kernel leaves no other trace)."""
    if loaded:
        return "loaded"
    if builtin_names is None:
        return "unknown"
    if name in builtin_names:
        return "builtin"
    if name in loadable_names:
        return "loadable"
    return "missing"


def _module_names(path):
    """Module names of modules.builtin / modules.dep (kernel/net/netfilter/ipvs/ip_vs.ko -> ip_vs), None
    when the list cannot be read."""
    names = set()
    try:
        with open(path) as handle:
            for line in handle:
                base = os.path.basename(line.split(":", 1)[0].strip())
                names.add(re.sub(r"\.ko(\.\w+)?$", "", base).replace("-", "_"))
    except (IOError, OSError):
        return None
    return names


def _loaded(name):
    if name == IPVS_MODULE and os.path.exists("/proc/net/ip_vs"):
        return True
    return os.path.isdir(os.path.join("/sys/module", name))


def _free(path):
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    stat = os.statvfs(path or "/")
    return path or "/", stat.f_bavail * stat.f_frsize // (1024 * 1024)


def observe(module, wanted):
    """What the host has (impure: runs the host's Python, reads /proc, /sys and /lib/modules)."""
    observed = {}
    python = wanted["python"]
    if os.path.exists(python):
        rc, out, err = module.run_command([python, "-I", "-c", PYTHON_PROBE])
        if rc == 0:
            observed["python"] = json.loads(out)
        else:
            observed["python_error"] = (err or out).strip()[-300:]
    need = needs(wanted["lb_backend"], wanted["virtual_servers"], wanted["lb_algos"])
    observed["nft"] = module.get_bin_path("nft", opt_dirs=["/usr/sbin", "/sbin"])
    if need["nft"] and observed["nft"]:
        rc, out, err = module.run_command([observed["nft"], "list", "tables"])
        if rc != 0:
            observed["nft_error"] = (err or out).strip()[-300:]
    release = os.uname()[2]
    observed["kernel"] = release
    builtin = _module_names("/lib/modules/%s/modules.builtin" % release)
    loadable = _module_names("/lib/modules/%s/modules.dep" % release) or set()
    observed["modules"] = dict((m, module_state(m, _loaded(m), builtin, loadable)) for m, _why in need["modules"])
    observed["systemd"] = os.path.isdir("/run/systemd/system") and bool(module.get_bin_path("systemctl"))
    try:
        with open("/proc/1/comm") as handle:
            observed["pid1"] = handle.read().strip()
    except (IOError, OSError):
        observed["pid1"] = "unknown"
    observed["systemd_version"] = 0
    if observed["systemd"]:
        rc, out, _err = module.run_command([module.get_bin_path("systemctl"), "--version"])
        found = re.match(r"systemd (\d+)", out or "")
        observed["systemd_version"] = int(found.group(1)) if rc == 0 and found else 0
    observed["free_path"], observed["free_mb"] = _free(wanted["install_dir"])
    return observed


def run(module):
    wanted = dict(module.params)
    observed = observe(module, wanted)
    probe = observed.get("python")
    found = problems(observed, wanted)
    platform = None
    if probe is not None:
        platform = {"tag": platform_tag(probe), "python_version": "%d.%d.%d" % tuple(probe["version"]),
                    "python_tag": "%s%d%d" % (IMPLEMENTATION_TAGS.get(probe["implementation"], "py"),
                                              probe["version"][0], probe["version"][1]),
                    "implementation": probe["implementation"], "machine": probe["machine"],
                    "libc": probe["libc"], "libc_version": probe["libc_version"]}
    return {"changed": False, "problems": found, "platform": platform, "systemd": observed["systemd"],
            "systemd_version": observed["systemd_version"], "pid1": observed["pid1"], "kernel": observed["kernel"],
            "kernel_modules": observed["modules"], "nft": observed["nft"], "free_mb": observed["free_mb"],
            "service_mode": effective_service_mode(wanted["service_mode"], observed["systemd"])}
