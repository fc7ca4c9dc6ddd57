"""Which User-Mode Linux kernel boots on this CPU, and fetching it from Debian into .cache/uml/<kernel>/.

Two kernels, both Debian's `user-mode-linux` package:

- bookworm: Debian 12's UML 6.1, the kernel series production runs. On CPUs with AMX (`amx_tile` in
  /proc/cpuinfo) it panics at boot (`ptrace set fp regs failed, errno = 14`): UML up to 6.12 writes the
  guest's FP state with a fixed 2696-byte NT_X86_XSTATE buffer and the host kernel wants its full xstate
  size, 11008 bytes with AMX tile data.
- forky: Debian testing's UML 7.x, which asks the host for its xstate size, so it boots on both kinds of CPU.
  It needs a newer glibc than Debian 12's: forky's libc6 is unpacked beside it and the binary is pointed at
  it with patchelf (interpreter and rpath are absolute paths: they are re-patched when the cache moves).
  forky moves: the version its index carries is taken, and sid is tried when forky has none.

The CPU picks the kernel (AMX -> forky, else bookworm); HANODE_UML_KERNEL=bookworm|forky overrides it.
Packages come through a private apt list (in the cache dir) on the mirror this machine's apt already uses;
nothing is installed on the host and the host's apt state is not touched.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ENV_KERNEL = "HANODE_UML_KERNEL"
PACKAGE = "user-mode-linux"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PT_INTERP = 3


@dataclass(frozen=True)
class KernelSpec:
    name: str
    suites: tuple[str, ...]       # tried in order; the first whose index has the package wins
    needs_libc: bool              # unpack the same suite's libc6 beside it and patchelf the binary


KERNELS = {
    "bookworm": KernelSpec("bookworm", ("bookworm",), needs_libc=False),
    "forky": KernelSpec("forky", ("forky", "sid"), needs_libc=True),
}


class UmlSetupError(RuntimeError):
    """The kernel could not be chosen, fetched or prepared; the message says what and where."""


@dataclass(frozen=True)
class Kernel:
    name: str
    reason: str                   # why this kernel was chosen
    linux: Path                   # the linux.uml binary to run
    modules: Path                 # .../usr/lib/uml/modules/<version>
    modroot: Path                 # a dir whose lib/modules/<version> is `modules` (modprobe -d)
    version: str                  # kernel release, e.g. 6.1.176
    package_version: str          # e.g. 7.2um1
    suite: str                    # the Debian suite it came from
    mirror: str
    setup_s: float                # time spent fetching/patching now (0 when all was cached)
    fetched: bool

    def describe(self) -> str:
        where = "downloaded" if self.fetched else "cached"
        return (f"kernel {self.name}: {PACKAGE} {self.package_version} (Linux {self.version}) from {self.mirror} "
                f"{self.suite}, {where}, setup {self.setup_s:.1f} s; chosen because {self.reason}")


# ----- choice (pure) -------------------------------------------------------------------------------

def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def choose(override: str | None, flags: set[str], source: str = ENV_KERNEL) -> tuple[str, str]:
    """(kernel name, reason) from an override (None or '' when unset; source names where it came from) and the
    CPU's flags."""
    if override:
        if override not in KERNELS:
            raise UmlSetupError(f"{source}={override!r}: expected one of {', '.join(sorted(KERNELS))}")
        return override, f"{source}={override}"
    if "amx_tile" in flags:
        return "forky", "the CPU has amx_tile (bookworm's UML 6.1 panics there: ptrace set fp regs, errno 14)"
    return "bookworm", "the CPU lacks amx_tile (Debian 12's UML 6.1 boots on it)"


def debian_mirror(deb822: str, one_line: str) -> str | None:
    """The first non-security Debian URI of apt's sources (debian.sources stanzas first, then sources.list)."""
    for stanza in re.split(r"\n\s*\n", deb822):
        fields = {}
        for line in stanza.splitlines():
            if line.strip() and not line.lstrip().startswith("#") and ":" in line and not line[0].isspace():
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
        if "deb" not in fields.get("types", []) or fields.get("enabled", ["yes"])[0].lower() == "no":
            continue
        uris = [u for u in fields.get("uris", []) if "security" not in u]
        suites = fields.get("suites", [])
        if uris and not all(s.endswith("-security") for s in suites):
            return uris[0].rstrip("/")
    for line in one_line.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and "security" not in words[1] and not words[2].endswith("-security"):
            return words[1].rstrip("/")
    return None


def elf_interpreter(head: bytes, read_at) -> str | None:
    """PT_INTERP of a 64-bit little-endian ELF file: head is its first 64 bytes, read_at(offset, size) -> bytes."""
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        raise UmlSetupError("not a 64-bit little-endian ELF file")
    phoff = struct.unpack_from("<Q", head, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    table = read_at(phoff, phentsize * phnum)
    for index in range(phnum):
        entry = index * phentsize
        if struct.unpack_from("<I", table, entry)[0] == PT_INTERP:
            offset, size = struct.unpack_from("<Q", table, entry + 8)[0], struct.unpack_from("<Q", table, entry + 32)[0]
            return read_at(offset, size).rstrip(b"\0").decode()
    return None


# ----- fetching (I/O) ------------------------------------------------------------------------------

def machine_mirror() -> str:
    def text(path: str) -> str:
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return ""
    return debian_mirror(text("/etc/apt/sources.list.d/debian.sources"), text("/etc/apt/sources.list")) or DEFAULT_MIRROR


class PrivateApt:
    """apt-get on one suite with its own sources.list and lists under `home`: downloads only, nothing installed."""

    def __init__(self, home: Path, mirror: str, suite: str) -> None:
        self.home, self.mirror, self.suite = home, mirror, suite
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
        (home / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (home / "sources.list").write_text(f"deb [arch={arch} signed-by={KEYRING}] {mirror} {suite} main\n")
        self.options = ["-o", f"Dir::Etc::sourcelist={home / 'sources.list'}", "-o", "Dir::Etc::sourceparts=-",
                        "-o", f"Dir::State::Lists={home / 'lists'}", "-o", "Dir::Cache::pkgcache=",
                        "-o", "Dir::Cache::srcpkgcache=", "-o", "APT::Sandbox::User=root", "-o", "Acquire::Languages=none"]

    def _apt(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["apt-get", "-q", *self.options, *args], cwd=cwd, capture_output=True, text=True,
                                  timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UmlSetupError(f"apt-get {args[0]} on {self.mirror} {self.suite}: {exc}") from exc

    def download(self, packages: list[str], into: Path) -> tuple[list[Path], str]:
        """(the .deb files, '') or ([], what went wrong)."""
        update = self._apt(["update"], into)
        problems = [line for line in (update.stdout + update.stderr).splitlines() if line.startswith(("E:", "W:", "Err"))]
        if update.returncode != 0:
            return [], f"apt-get update failed: {' | '.join(problems) or update.stderr.strip()}"
        got = self._apt(["download", *(f"{p}/{self.suite}" for p in packages)], into)
        debs = [next(iter(into.glob(f"{p}_*.deb")), None) for p in packages]
        if got.returncode != 0 or None in debs:
            said = " | ".join(line for line in got.stderr.splitlines() if line.startswith("E:")) or got.stderr.strip()
            return [], f"apt-get download failed: {said}" + (f" (update said: {' | '.join(problems)})" if problems else "")
        return [d for d in debs if d is not None], ""


def _unpack(deb: Path, dest: Path) -> None:
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UmlSetupError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)


def _fetch(spec: KernelSpec, home: Path, mirror: str) -> dict:
    """Downloads and unpacks the kernel (and libc) from the first suite that has them; returns the record."""
    packages = [PACKAGE] + (["libc6"] if spec.needs_libc else [])
    failures = []
    for suite in spec.suites:
        with tempfile.TemporaryDirectory(prefix="dl-", dir=home) as tmp:
            debs, problem = PrivateApt(home / "apt" / suite, mirror, suite).download(packages, Path(tmp))
            if not debs:
                failures.append(f"{suite}: {problem}")
                continue
            _unpack(debs[0], home / "root")
            if spec.needs_libc:
                _unpack(debs[1], home / "libc")
            version = debs[0].name.split("_")[1].replace("%3a", ":")
            return {"suite": suite, "package_version": version, "mirror": mirror}
    raise UmlSetupError(f"cannot fetch {' and '.join(packages)} for kernel {spec.name} from {mirror}: " + "; ".join(failures))


def patch_for_libc(linux: Path, libc: Path) -> bool:
    """Points linux.uml at the unpacked glibc unless it already is (the cache may have moved); True if patched."""
    libdir = libc / "usr" / "lib" / "x86_64-linux-gnu"
    interp = libdir / "ld-linux-x86-64.so.2"
    if not interp.exists():
        raise UmlSetupError(f"the unpacked libc6 has no {interp}")
    with linux.open("rb") as handle:
        def read_at(offset: int, size: int) -> bytes:
            handle.seek(offset)
            return handle.read(size)
        if elf_interpreter(handle.read(64), read_at) == str(interp):
            return False
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        raise UmlSetupError("patchelf is missing (Debian package patchelf; `make setup` installs it)")
    work = linux.with_name("linux.uml.patching")
    shutil.copy2(linux, work)
    proc = subprocess.run([patchelf, "--set-interpreter", str(interp), "--set-rpath", str(libdir), str(work)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UmlSetupError(f"patchelf on {linux} failed: {proc.stderr.strip()}")
    work.rename(linux)
    return True


def _module_version(modules: Path) -> str:
    versions = sorted(p.name for p in modules.iterdir() if p.is_dir() and (p / "modules.dep").exists()) \
        if modules.is_dir() else []
    if not versions:
        raise UmlSetupError(f"no kernel modules (modules.dep) under {modules}")
    return versions[-1]


def prepare(cache_root: Path, override: str | None = None, cpuinfo: str | None = None) -> Kernel:
    """The chosen kernel, ready to boot: fetched once into cache_root/<name>/, re-patched if the cache moved.
    override: the --kernel value (None: $HANODE_UML_KERNEL, and when that is unset too the CPU decides)."""
    source = "--kernel"
    if override is None:
        override, source = os.environ.get(ENV_KERNEL, ""), ENV_KERNEL
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    name, reason = choose(override, cpu_flags(cpuinfo), source)
    spec = KERNELS[name]
    home = cache_root / name
    home.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # parallel runs in one checkout fetch once
        record_file = home / "ready.json"
        linux = home / "root" / "usr" / "bin" / "linux.uml"
        fetched = not (record_file.exists() and linux.exists() and (not spec.needs_libc or (home / "libc").is_dir()))
        if fetched:
            record_file.unlink(missing_ok=True)
            record = _fetch(spec, home, machine_mirror())
            record_file.write_text(json.dumps(record, indent=1) + "\n")
        record = json.loads(record_file.read_text())
        patched = spec.needs_libc and patch_for_libc(linux, home / "libc")
        modules_dir = home / "root" / "usr" / "lib" / "uml" / "modules"
        version = _module_version(modules_dir)
        link = home / "modroot" / "lib" / "modules" / version
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() or os.readlink(link) != str(modules_dir / version):
            link.unlink(missing_ok=True)
            link.symlink_to(modules_dir / version)
    return Kernel(name=name, reason=reason, linux=linux, modules=modules_dir / version, modroot=home / "modroot",
                  version=version, package_version=record["package_version"], suite=record["suite"],
                  mirror=record["mirror"], setup_s=time.monotonic() - started if (fetched or patched) else 0.0,
                  fetched=fetched)
