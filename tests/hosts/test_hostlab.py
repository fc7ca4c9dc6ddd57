"""The host lab itself: Debian 12 and 13 hosts with systemd as PID 1 answer over SSH with sudo, sit on the lab's
bridges, lose their network state on a reboot as a real host does, vanish from the segment when powered off,
and leave nothing behind (namespaces, cgroups, processes, mounts) when the lab goes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hanode.lab import netns
from hanode.lab.hosts import machine


def _mounts_of(lab_dir: Path) -> list[str]:
    return [line for line in Path("/proc/self/mounts").read_text().splitlines() if str(lab_dir) in line]


def test_hosts_boot_answer_reboot_and_power_off(host_lab_factory):
    lab = host_lab_factory(node_os=("debian12", "debian13"), clients=1, real_servers=0)
    facts = {}
    for name in ("n1", "n2"):
        out = lab.ssh(name, ["/bin/sh", "-c", "hostname; systemctl is-system-running --wait; cat /proc/1/comm; "
                             "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'; . /etc/os-release; "
                             "echo $VERSION_ID; id -un"]).stdout.split()
        facts[name] = out
    assert facts["n1"] == ["n1", "running", "systemd", "3.11", "12", "root"]
    assert facts["n2"] == ["n2", "running", "systemd", "3.13", "13", "root"]
    # Plain SSH as the lab user (no sudo) with the pinned host key: what Ansible uses.
    assert lab.ssh("n1", ["id", "-un"], root=False).stdout.strip() == "ansible"

    # On the lab's lan: the client reaches both hosts.
    assert lab.ping("c1", lab.hosts["n1"].ipv4) and lab.ping("c1", lab.hosts["n2"].ipv4)

    # A reboot: new boot id, the disk kept, the network state of the last boot gone (address, nft table).
    lab.ssh("n2", ["/bin/sh", "-c", "echo kept > /var/tmp/mark; ip addr add 198.51.100.99/24 dev eth0; "
                   "nft add table inet hostlab_probe"])
    before = lab.boot_id("n2")
    after = lab.reboot("n2")
    assert after != before
    state = lab.ssh("n2", ["/bin/sh", "-c", "cat /var/tmp/mark; ip -o addr show dev eth0; nft list tables"]).stdout
    assert "kept" in state and "198.51.100.99" not in state and "hostlab_probe" not in state
    assert "198.51.100.12/24" in state

    # Pulling the plug: the host's namespace (and so its addresses) leaves the segment; power on boots it again.
    lab.power_off("n1", hard=True)
    assert not netns.exists(lab.hosts["n1"].netns)
    assert not lab.ping("c1", lab.hosts["n1"].ipv4)
    lab.power_on("n1")
    assert lab.ping("c1", lab.hosts["n1"].ipv4)

    # Journal kept across boots (persistent journal): this boot and the one before.
    previous_boot = lab.ssh("n2", ["journalctl", "--boot=-1", "--quiet", "--no-pager", "-n", "1"], check=False)
    assert previous_boot.returncode == 0 and previous_boot.stdout.strip()

    specs = list(lab.specs.values())
    lab_dir = lab.dir
    lab.close()
    assert not [ns for ns in netns.names() if ns.startswith(lab.prefix + "-")]
    for spec in specs:
        assert machine.boot_pid(spec) is None
        assert not spec.cgroup.exists(), spec.cgroup
    assert _mounts_of(lab_dir) == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(lab_dir) not in ps
