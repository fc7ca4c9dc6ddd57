"""HostLab: the namespace lab whose nodes are real hosts (systemd as PID 1, sshd, journald) of a Debian image.

    with HostLab(node_os=("debian12", "debian13", "debian13"), clients=1, real_servers=2) as lab:
        lab.ssh("n1", ["systemctl", "is-system-running"])          # as root (sudo)
        ansible-playbook -i <lab.dir>/inventory.yml ...

Clients and real servers stay plain namespaces. The controller never touches the root namespace's network:
SSH reaches a host through its own namespace (ProxyCommand `ip netns exec <netns> socat - TCP:127.0.0.1:22`),
like an out-of-band management port that works whatever happens to the host's data links. The lab writes
<dir>/ssh_config (with the lab's key and the hosts' keys pinned) and <dir>/inventory.yml (group ha_nodes,
user `ansible`, become by sudo). Every name carries the lab's random prefix, so parallel labs never meet.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from hanode.lab import registry
from hanode.lab import topology as topo
from hanode.lab.hosts import machine
from hanode.lab.hosts.image import LAB_USER, ensure_image, image_info
from hanode.lab.lab import Lab
from hanode.lab.procs import python_env, wait_for

DEFAULT_NODE_OS = ("debian12", "debian13", "debian13")
SSH_TIMEOUT_S = 60.0
BOOT_TIMEOUT_S = 90.0


class HostLab(Lab):
    """A Lab whose nodes n1..nN are nspawn hosts of the given OS each (see the module docstring)."""

    def __init__(self, node_os: Sequence[str] = DEFAULT_NODE_OS, clients: int = 1, real_servers: int = 2, *,
                 cache_dir: str | Path | None = None, log=print, **kwargs):
        super().__init__(len(node_os), clients, real_servers, **kwargs)
        self.node_os = tuple(node_os)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.log = log
        self.images: dict[str, Path] = {}
        self.specs: dict[str, machine.MachineSpec] = {}

    @classmethod
    def attach(cls, prefix: str) -> HostLab:
        """A handle on a running host lab (e.g. one `hanode lab up --host-os` made) to talk to and power its
        hosts; it does not own the lab (`hanode lab down` removes it)."""
        record = registry.load(prefix)
        if record is None or not record.machines:
            raise machine.MachineError(f"no host lab {prefix} in {registry.registry_dir()}")
        specs = {name: machine.MachineSpec.load(d) for name, d in sorted(record.machines.items())}
        first = next(iter(specs.values()))
        lab = cls([s.os for s in specs.values()], first.counts[1], first.counts[2], prefix=prefix,
                  workdir_root=Path(record.workdir).parent, persistent=True)
        lab.topology = topo.build(prefix, *first.counts)
        lab.specs = specs
        return lab

    # ----- life cycle ---------------------------------------------------------------------------

    def up(self) -> HostLab:
        if self._res is not None:
            return self
        machine.check_machine()
        started = time.monotonic()
        wanted = sorted(set(self.node_os))
        with ThreadPoolExecutor(len(wanted)) as pool:  # a cold build of both suites at once
            for os_name, root in zip(wanted, pool.map(lambda o: ensure_image(o, self.cache_dir, self.log), wanted)):
                self.images[os_name] = root
        self.timings["images_s"] = time.monotonic() - started
        super().up()
        self.timings["boot_s"] = self.timings["up_s"] - self.timings["images_s"] if "up_s" in self.timings else 0.0
        return self

    def _plugs(self, host: topo.HostSpec) -> bool:
        return host.role != topo.NODE

    def _claim(self) -> None:
        super()._claim()
        for (name, os_name) in zip(self._node_names(), self.node_os):
            spec = machine.MachineSpec(self.prefix, name, os_name, str(self.images[os_name]), str(self.dir / name),
                                       topo.netns_name(self.prefix, name), self.counts, self.real_server_gateway)
            self.specs[name] = spec
        self._res.machines = {name: spec.dir for name, spec in self.specs.items()}
        record = registry.load(self.prefix)
        record.machines = dict(self._res.machines)
        registry.save(record)

    def _node_names(self) -> list[str]:
        return [h.name for h in self.topology.by_role(topo.NODE)]

    def _build(self) -> None:
        started = time.monotonic()
        super()._build()
        ssh_dir = self.dir / "ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True)
        key = ssh_dir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"hostlab-{self.prefix}", "-f", str(key)],
                       check=True, capture_output=True)
        hosts_lines = [f"{h.ipv4} {h.name}" for h in self.topology.hosts]
        known = []
        for spec in self.specs.values():
            host_key = machine.prepare_disk(spec, key.with_suffix(".pub").read_text(), hosts_lines)
            known.append(f"{spec.machine_name} {' '.join(host_key.split()[:2])}")
        (ssh_dir / "known_hosts").write_text("".join(f"{line}\n" for line in known))
        self.ssh_config.write_text(self._ssh_config(key))
        self._write_inventory(key)
        env = python_env({"HANODE_PYTHON": sys.executable})
        for spec in self.specs.values():
            machine.start(spec, env)
        with ThreadPoolExecutor(len(self.specs)) as pool:
            list(pool.map(self.wait_ssh, self.specs))
        self.timings["machines_s"] = time.monotonic() - started

    # ----- files the controller uses ----------------------------------------------------------------

    @property
    def ssh_config(self) -> Path:
        return self.dir / "ssh_config"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yml"

    def _ssh_config(self, key: Path) -> str:
        blocks = []
        for name, spec in self.specs.items():
            host = self.topology.host(name)
            blocks.append("\n".join([
                f"Host {name} {host.ipv4} {spec.machine_name}",
                f"  HostName {host.ipv4}",
                f"  HostKeyAlias {spec.machine_name}",
                f"  ProxyCommand ip netns exec {spec.netns} socat - TCP:127.0.0.1:22",
            ]))
        common = "\n".join([
            "Host *",
            f"  User {LAB_USER}",
            f"  IdentityFile {key}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {self.dir / 'ssh' / 'known_hosts'}",
            "  StrictHostKeyChecking yes",
            "  ConnectTimeout 10",
            "  ServerAliveInterval 5",
            "  ServerAliveCountMax 3",
            "  LogLevel ERROR",
        ])
        return "# The host lab's hosts, reached through their own namespaces (hanode.lab.hosts).\n" + \
            "\n\n".join(blocks + [common]) + "\n"

    def _write_inventory(self, key: Path) -> None:
        nodes = {name: {"ansible_host": self.topology.host(name).ipv4, "hostlab_os": spec.os}
                 for name, spec in self.specs.items()}
        inventory = {"all": {
            "children": {"ha_nodes": {"hosts": nodes}},
            "vars": {"ansible_user": LAB_USER, "ansible_ssh_private_key_file": str(key),
                     "ansible_ssh_common_args": f"-F {self.ssh_config}",
                     "ansible_control_path_dir": str(self.dir / "ssh" / "cp"),
                     "hostlab_prefix": self.prefix, "hostlab_dir": str(self.dir)}}}
        self.inventory.write_text("# Written by hanode.lab.hosts for lab " + self.prefix + "\n" +
                                  yaml.safe_dump(inventory, sort_keys=False))

    # ----- talking to a host ------------------------------------------------------------------------

    def ssh_argv(self, name: str, argv: Sequence[str], root: bool = True) -> list[str]:
        command = shlex.join((["sudo", "-n", "--"] if root else []) + [str(a) for a in argv])
        return ["ssh", "-F", str(self.ssh_config), "-o", "BatchMode=yes", name, command]

    def ssh(self, name: str, argv: Sequence[str], check: bool = True, timeout: float = 60.0,
            root: bool = True) -> subprocess.CompletedProcess:
        """Runs argv on the host over SSH (as root through sudo unless root=False)."""
        proc = subprocess.run(self.ssh_argv(name, argv, root), capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc

    def wait_ssh(self, name: str, timeout: float = SSH_TIMEOUT_S) -> str:
        """Waits until the host answers over SSH with its system up; returns its boot id."""
        def answers() -> str | None:
            if machine.power_state(self.specs[name]) == "off":
                raise machine.MachineError(f"{name} is off: see {self.specs[name].path / 'console.log'}")
            proc = self.ssh(name, ["cat", "/proc/sys/kernel/random/boot_id"], check=False, timeout=15)
            return proc.stdout.strip() if proc.returncode == 0 else None
        return wait_for(answers, timeout, interval=0.2, what=f"{name} to answer over SSH")

    def boot_id(self, name: str) -> str:
        return self.ssh(name, ["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip()

    # ----- power --------------------------------------------------------------------------------------

    def power_off(self, name: str, hard: bool = True, timeout: float = 60.0) -> None:
        """hard: the plug is pulled (every process killed at once, no goodbye); else a clean shutdown."""
        spec = self.specs[name]
        if hard:
            machine.kill_cgroup(spec)
        else:
            self.ssh(name, ["systemctl", "poweroff", "--no-block"], check=False)
        wait_for(lambda: machine.boot_pid(spec) is None, timeout, interval=0.1, what=f"{name} to power off")

    def power_on(self, name: str, timeout: float = BOOT_TIMEOUT_S) -> str:
        """Boots a powered-off host; returns its new boot id once SSH answers."""
        spec = self.specs[name]
        machine.start(spec, python_env({"HANODE_PYTHON": sys.executable}))
        return self.wait_ssh(name, timeout)

    def reboot(self, name: str, timeout: float = BOOT_TIMEOUT_S) -> str:
        """`systemctl reboot` inside the host; returns the new boot id once it answers again."""
        old = self.boot_id(name)
        self.ssh(name, ["systemctl", "reboot", "--no-block"], check=False)

        def new_boot() -> str | None:
            proc = self.ssh(name, ["cat", "/proc/sys/kernel/random/boot_id"], check=False, timeout=15)
            return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() != old else None
        return wait_for(new_boot, timeout, interval=0.2, what=f"{name} to come back from a reboot")

    def describe(self) -> str:
        lines = [super().describe()]
        for name, spec in self.specs.items():
            info = image_info(Path(spec.image))
            lines.append(f"  {name}: {spec.os} (Debian {info['version_id']}, Python {info['python']}), "
                         f"systemd host {spec.machine_name}; ssh -F {self.ssh_config} {name}")
        lines.append(f"  inventory: {self.inventory}")
        return "\n".join(lines)
