"""One host of the host lab: a systemd-nspawn container booting a Debian image, in a lab namespace.

Files of host n1 of lab hn3fa9c1, under the lab's work dir (<workdir>/n1/)::

    machine.json     the spec the boot supervisor reads (names, image, topology counts)
    upper/ work/     the overlay's writable layer over the read-only image: the host's disk
    root/            where the overlay is mounted (only inside the supervisor's private mount namespace)
    boot.pid         the boot supervisor (pid and start time); boot.log, console.log its output
    power            "on" or "off": what the supervisor saw last

The boot supervisor (boot.py) plugs the host's namespace into the lab's bridges, boots the container in
it and replugs a fresh namespace on every in-host reboot, so a reboot loses addresses and nft rules as
a real one does; a powered-off host's namespace is removed, so nothing answers for it on the segment.
Each container runs in its own cgroup (<cgroup2>/hanode-lab/<prefix>-<host>), so that a hard power-off
(`cgroup.kill`) reaches every process of the host and nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hanode.lab import netns
from hanode.lab.pids import process_start_ticks
from hanode.lab.hosts.image import LAB_USER

CGROUP_GROUP = "hanode-lab"


class MachineError(RuntimeError):
    """A host of the host lab could not be created, booted or removed."""


@dataclass(frozen=True)
class MachineSpec:
    prefix: str
    name: str
    os: str
    image: str
    dir: str
    netns: str
    counts: tuple[int, int, int]
    real_server_gateway: str | None = None

    @property
    def machine_name(self) -> str:
        return f"{self.prefix}-{self.name}"

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def cgroup(self) -> Path:
        return cgroup2_root() / CGROUP_GROUP / self.machine_name

    def save(self) -> None:
        (self.path / "machine.json").write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> MachineSpec:
        data = json.loads((Path(directory) / "machine.json").read_text())
        data["counts"] = tuple(data["counts"])
        return cls(**data)


def cgroup2_root() -> Path:
    """The cgroup2 hierarchy: /sys/fs/cgroup itself, or its `unified` part on a hybrid machine."""
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[2] == "cgroup2"]
    for point in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", *points):
        if point in points:
            return Path(point)
    raise MachineError("no cgroup2 hierarchy is mounted: the host lab needs one")


def check_machine() -> None:
    """The host lab runs where PID 1 is not systemd (this project's machines); say so elsewhere."""
    if Path("/run/systemd/system").is_dir():
        raise MachineError("this machine runs systemd as PID 1: the host lab manages its own cgroups and is made "
                           "for machines whose PID 1 is not systemd")
    for tool in ("systemd-nspawn", "unshare", "ssh-keygen", "socat"):
        if not any((Path(d) / tool).exists() for d in os.environ.get("PATH", "/usr/bin:/bin").split(":") + ["/usr/sbin"]):
            raise MachineError(f"the host lab needs {tool} (make setup installs it)")


def _user_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise MachineError(f"the image {root} has no user {user}")


def prepare_disk(spec: MachineSpec, public_key: str, hosts_lines: list[str]) -> str:
    """Writes the host's own files into its overlay's upper layer; returns its SSH host key (public)."""
    upper = spec.path / "upper"
    for directory in (upper / "etc/ssh", spec.path / "work", spec.path / "root"):
        directory.mkdir(parents=True, exist_ok=True)
    (upper / "etc/hostname").write_text(spec.name + "\n")
    (upper / "etc/machine-id").write_text(secrets.token_hex(16) + "\n")
    (upper / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{line}\n" for line in hosts_lines))
    key = upper / "etc/ssh/ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", spec.machine_name, "-f", str(key)],
                   check=True, capture_output=True)
    uid, gid = _user_ids(Path(spec.image), LAB_USER)
    home = upper / "home" / LAB_USER
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(public_key.strip() + "\n")
    os.chmod(ssh_dir, 0o700)
    os.chmod(ssh_dir / "authorized_keys", 0o600)
    for path in (home, ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, uid, gid)
    # The image's /home/ansible is the lower layer: copy its mode, the overlay shows the upper directory's.
    lower_home = Path(spec.image) / "home" / LAB_USER
    os.chmod(home, lower_home.stat().st_mode & 0o7777)
    spec.save()
    return key.with_suffix(".pub").read_text().strip()


def boot_pid(spec: MachineSpec) -> int | None:
    """The running boot supervisor's pid (checked against its start time), or None."""
    try:
        pid, ticks = (int(x) for x in (spec.path / "boot.pid").read_text().split())
    except (OSError, ValueError):
        return None
    return pid if process_start_ticks(pid) == ticks else None


def power_state(spec: MachineSpec) -> str:
    try:
        return (spec.path / "power").read_text().strip()
    except OSError:
        return "off"


def start(spec: MachineSpec, env: dict[str, str]) -> int:
    """Starts the boot supervisor (detached, its own session); returns its pid."""
    if boot_pid(spec) is not None:
        raise MachineError(f"{spec.name} is already running")
    (spec.path / "power").write_text("starting\n")
    with open(spec.path / "boot.log", "ab") as log:
        proc = subprocess.Popen([env.get("HANODE_PYTHON", "python3"), "-m", "hanode.lab.hosts.boot", spec.dir],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env)
    return proc.pid


def kill_cgroup(spec: MachineSpec, timeout_s: float = 10.0) -> None:
    """Pulls the plug: SIGKILL to every process of the container at once (cgroup.kill)."""
    cgroup = spec.cgroup
    if not cgroup.is_dir():
        return
    try:
        (cgroup / "cgroup.kill").write_text("1")
    except OSError:  # kernels before 5.14: kill the listed processes one by one
        for pid in _cgroup_pids(cgroup):
            _kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while _cgroup_pids(cgroup) and time.monotonic() < deadline:
        time.sleep(0.02)


def _cgroup_pids(cgroup: Path) -> list[int]:
    pids = []
    for procs in cgroup.rglob("cgroup.procs"):
        try:
            pids += [int(p) for p in procs.read_text().split()]
        except OSError:
            pass
    return pids


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def remove_cgroups(spec: MachineSpec) -> None:
    """Removes the host's cgroup and what nspawn left in the v1 name=systemd hierarchy (deepest first)."""
    roots = [spec.cgroup, Path("/sys/fs/cgroup/systemd") / CGROUP_GROUP / spec.machine_name]
    for root in roots:
        if not root.is_dir():
            continue
        for directory in sorted((d for d in root.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            _rmdir(directory)
        _rmdir(root)


def _rmdir(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass


def release(spec: MachineSpec) -> None:
    """Everything of one host goes: its supervisor, its processes, its cgroups. The overlay was mounted only
    in the supervisor's mount namespace and goes with it; the namespace and files go with the lab."""
    pid = boot_pid(spec)
    if pid is not None:
        _kill(pid, signal.SIGKILL)
    kill_cgroup(spec)
    remove_cgroups(spec)
    if spec.path.is_dir():
        (spec.path / "power").write_text("off\n")


def release_all(machines: dict) -> None:
    """For registry.destroy: every host named in a lab record (name -> machine dir)."""
    errors = []
    for name, directory in sorted(machines.items()):
        try:
            release(MachineSpec.load(directory))
        except FileNotFoundError:
            continue
        except Exception as exc:  # the others still have to go
            errors.append(f"{name}: {exc}")
    if errors:
        raise MachineError("could not release hosts: " + "; ".join(errors))


def unplug(switch_netns: str, spec_ports: list[str], host_netns: str) -> None:
    """Removes a host's namespace and its switch ports (whatever still holds the old namespace)."""
    for switch_ifname in spec_ports:
        netns.ip(switch_netns, "link", "del", switch_ifname, check=False)
    if netns.exists(host_netns):
        netns.kill_all(host_netns)
        netns.delete(host_netns)
