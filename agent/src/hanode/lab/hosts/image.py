"""Debian base images for the host lab, built with mmdebstrap from the Debian archive and cached.

An image is a root directory under <cache>/images/<suite>-<key> (and <suite>-<key>.json, what it holds,
written last: an image without it is incomplete), where the key hashes the suite, the
package list and RECIPE_VERSION, so a changed recipe builds a new image beside the old one. A build runs
into a temporary directory that is renamed into place when it is complete, under a lock, so parallel runs
share one build. Hosts use an image read-only, as the lower layer of an overlay.

What an image holds: systemd as PID 1, sshd, sudo, Python, iproute2 and nftables (a minimal Debian server
as an operator would give to Ansible); a user `ansible` with password-less sudo and no keys (each host gets
the lab's key at creation); no SSH host keys and an empty machine-id (made per host); a resolv.conf with no
name server (the hosts have no DNS; a dead one would stall sudo); a persistent journal.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

RECIPE_VERSION = 2
SUITES = {"debian12": "bookworm", "debian13": "trixie"}
PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3", "iproute2", "nftables",
            "procps")
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer", "e2scrub_all.timer",
                "e2scrub_reap.service", "console-getty.service", "getty@tty1.service", "systemd-timesyncd.service")
LAB_USER = "ansible"
APT_SOURCES = ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list")
BUILD_TIMEOUT_S = 900
# Documentation, manual pages and translations are left out: a smaller image, built faster.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")


class ImageError(RuntimeError):
    """An image could not be built; the message says which step and why."""


def default_cache_dir() -> Path:
    """$HANODE_HOSTLAB_CACHE, else <repo>/.cache/hostlab in a checkout, else /var/cache/hanode-hostlab."""
    if os.environ.get("HANODE_HOSTLAB_CACHE"):
        return Path(os.environ["HANODE_HOSTLAB_CACHE"])
    repo = Path(__file__).resolve().parents[5]
    if (repo / ".git").exists():
        return repo / ".cache" / "hostlab"
    return Path("/var/cache/hanode-hostlab")


def suite_of(os_name: str) -> str:
    try:
        return SUITES[os_name]
    except KeyError:
        raise ImageError(f"unknown host OS {os_name!r} (known: {', '.join(sorted(SUITES))})") from None


def image_key(suite: str, packages: tuple[str, ...] = PACKAGES) -> str:
    text = json.dumps([RECIPE_VERSION, suite, sorted(packages)])
    return f"{suite}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def mirror() -> str:
    """$HANODE_HOSTLAB_MIRROR, else the Debian archive this machine's apt uses."""
    if os.environ.get("HANODE_HOSTLAB_MIRROR"):
        return os.environ["HANODE_HOSTLAB_MIRROR"]
    for path in APT_SOURCES:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        found = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M) or \
            re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", text, re.M)
        if found:
            return found.group(1)
    raise ImageError("no Debian mirror in this machine's apt sources: set HANODE_HOSTLAB_MIRROR")


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_image(os_name: str, cache_dir: Path | None = None, log=print) -> Path:
    """The root directory of the image for os_name (debian12, debian13), built first when missing."""
    suite = suite_of(os_name)
    images = (cache_dir or default_cache_dir()) / "images"
    final = images / image_key(suite)
    if _info_path(final).exists():
        return final
    with _locked(images / f".{suite}.lock"):
        if _info_path(final).exists():
            return final
        build = images / f".build-{final.name}-{os.getpid()}"
        for stale in (build, final):  # a build interrupted before its info was written
            shutil.rmtree(stale, ignore_errors=True)
        started = time.monotonic()
        log(f"hostlab: building the {os_name} ({suite}) image with mmdebstrap (once; cached in {images})")
        try:
            _mmdebstrap(suite, build)
            _customize(build)
            info = _describe(build, os_name, suite, time.monotonic() - started)
            os.replace(build, final)
            # Beside the root, not in it: the hosts see nothing of the lab's own.
            _info_path(final).write_text(json.dumps(info, indent=1) + "\n")
        finally:
            shutil.rmtree(build, ignore_errors=True)
        log(f"hostlab: {os_name} image ready in {time.monotonic() - started:.0f} s: {final}")
    return final


def _run(argv: list[str], what: str, timeout_s: float = 120) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise ImageError(f"{what}: {' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


def _mmdebstrap(suite: str, root: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise ImageError("mmdebstrap is not installed (make setup installs it)")
    excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    _run(["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + ",".join(PACKAGES),
          '--aptopt=Acquire::Languages "none"', *excludes, suite, str(root), mirror()],
         f"mmdebstrap {suite}", timeout_s=BUILD_TIMEOUT_S)


def _chroot(root: Path, *argv: str) -> str:
    return _run(["chroot", str(root), *argv], f"in the image: {argv[0]}")


def _customize(root: Path) -> None:
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("# the host lab has no DNS: names are in /etc/hosts\n")
    (root / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    (root / "etc/ssh/sshd_config.d/hostlab.conf").write_text(
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n")
    _chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", LAB_USER)
    sudoers = root / "etc/sudoers.d" / LAB_USER
    sudoers.write_text(f"{LAB_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    (root / "var/log/journal").mkdir(exist_ok=True)
    _chroot(root, "systemctl", "mask", *MASKED_UNITS)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (root / cache).glob("*"):
            if entry.is_file():
                entry.unlink()


def _describe(root: Path, os_name: str, suite: str, build_s: float) -> dict:
    release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', (root / "etc/os-release").read_text(), re.M))
    python = _chroot(root, "python3", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])").strip()
    return {"os": os_name, "suite": suite, "version_id": release.get("VERSION_ID"), "python": python,
            "packages": list(PACKAGES), "recipe": RECIPE_VERSION, "built_unix": int(time.time()),
            "build_s": round(build_s, 1), "mirror": mirror()}


def _info_path(root: Path) -> Path:
    return root.with_name(root.name + ".json")


def image_info(root: Path) -> dict:
    return json.loads(_info_path(root).read_text())
