"""Boot supervisor of one host: `python -m hanode.lab.hosts.boot <machine dir>` (started by machine.start).

Per boot: a fresh namespace plugged into the lab's bridges, then systemd-nspawn in a private mount
namespace (the overlay disk and nspawn's /run/systemd/nspawn tmpfs are mounted there only, so they vanish
with it) and in the host's own cgroup. nspawn's exit status 133 means the host rebooted: unplug, plug a
fresh namespace, boot again. Anything else means it is off (poweroff, or killed): unplug and exit.
SIGTERM asks the host to power off cleanly (nspawn turns it into a shutdown of the container).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

from hanode.lab import registry
from hanode.lab import topology as topo
from hanode.lab.hosts.machine import MachineSpec, unplug
from hanode.lab.host import plug_host

REBOOT_EXIT = 133


def nspawn_script(spec: MachineSpec) -> str:
    """The shell run under `unshare --mount`: own cgroup, mounts, then exec nspawn."""
    root = spec.path / "root"
    overlay = f"lowerdir={spec.image},upperdir={spec.path / 'upper'},workdir={spec.path / 'work'}"
    nspawn = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", str(root), "-M", spec.name, "--boot",
              "--console=read-only", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
              f"--network-namespace-path=/run/netns/{spec.netns}", "--capability=CAP_NET_ADMIN"]
    return "\n".join([
        "set -e",
        f"mkdir -p {shlex.quote(str(spec.cgroup))}",
        f"echo $$ > {shlex.quote(str(spec.cgroup / 'cgroup.procs'))}",
        "mkdir -p /run/systemd/nspawn",
        "mount -t tmpfs -o mode=0755 hostlab /run/systemd/nspawn",
        f"mount -t overlay hostlab -o {shlex.quote(overlay)} {shlex.quote(str(root))}",
        "export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 SYSTEMD_NSPAWN_API_VFS_WRITABLE=network",
        "exec " + " ".join(shlex.quote(a) for a in nspawn),
    ])


def boot_once(spec: MachineSpec, host: topo.HostSpec, switch_netns: str, stop: list[bool]) -> int:
    plug_host(switch_netns, host, (spec.real_server_gateway, None))
    (spec.path / "power").write_text("on\n")
    with open(spec.path / "console.log", "ab") as console:
        console.write(f"\n# {time.strftime('%H:%M:%S')} boot\n".encode())
        console.flush()
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", nspawn_script(spec)],
                                stdin=subprocess.DEVNULL, stdout=console, stderr=console)

    def poweroff(_signum, _frame):
        stop.append(True)
        proc.send_signal(signal.SIGTERM)  # nspawn: shut the container down cleanly
    signal.signal(signal.SIGTERM, poweroff)
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str]) -> int:
    spec = MachineSpec.load(argv[0])
    (spec.path / "boot.pid").write_text(f"{os.getpid()} {registry.process_start_ticks(os.getpid())}\n")
    t = topo.build(spec.prefix, *spec.counts)
    host = t.host(spec.name)
    ports = [p.switch_ifname for p in host.ports]
    stop: list[bool] = []
    try:
        while True:
            code = boot_once(spec, host, t.switch_netns, stop)
            unplug(t.switch_netns, ports, host.netns)
            print(f"{time.strftime('%H:%M:%S')} {spec.name}: nspawn exited {code}", flush=True)
            if code != REBOOT_EXIT or stop:
                return 0
    finally:
        (spec.path / "power").write_text("off\n")
        (spec.path / "boot.pid").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
