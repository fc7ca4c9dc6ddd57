"""Runs tests/integration/ipvs inside Debian's User-Mode Linux kernel (real IPVS) with scripts/uml_run.py,
so that `make test` covers the IPVS backend although the host kernel has no IPVS.

The kernel is chosen by the CPU (scripts/uml_kernel.py): Debian 12's UML 6.1, or on CPUs with AMX (where
6.1 panics at boot) Debian forky's UML 7.x with forky's glibc beside it. HANODE_UML_KERNEL=bookworm|forky
overrides the choice. The first run fetches the kernel into .cache/uml/<kernel>/ (~40 MB from Debian).
A guest that cannot start fails the test with the kernel console's last lines; so does a suite of which
fewer tests passed inside the guest than the host collects from tests/integration/ipvs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UML_RUN = REPO / "scripts" / "uml_run.py"
sys.path.insert(0, str(REPO / "scripts"))
import uml_kernel  # noqa: E402  pylint: disable=wrong-import-position
sys.path.remove(str(REPO / "scripts"))

GUEST_NOT_STARTED = 125


def uml(args: list[str], timeout_s: float) -> tuple[int, str]:
    if os.geteuid() != 0:
        pytest.fail("the UML IPVS tests need root (namespaces inside the guest)", pytrace=False)
    proc = subprocess.run([sys.executable, str(UML_RUN), "--timeout", str(timeout_s), *args], capture_output=True,
                          text=True, timeout=timeout_s + 120, cwd=REPO, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def uml_lines(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if line.startswith("uml_run:"))


def failure(rc: int, output: str, what: str) -> str:
    if rc == GUEST_NOT_STARTED:
        return f"the UML guest did not start ({what}):\n{output[-8000:]}"
    return f"{what} failed (uml_run exit {rc}):\n{output[-20000:]}"


def suite_node_ids() -> set[str]:
    """The tests tests/integration/ipvs holds, collected on the host (HANODE_IN_UML=1 turns collection on)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "tests/integration/ipvs"], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=dict(os.environ, HANODE_IN_UML="1"), check=False)
    assert proc.returncode == 0, f"collecting tests/integration/ipvs failed:\n{proc.stdout}{proc.stderr}"
    return {line.strip() for line in proc.stdout.splitlines() if "::" in line}


@pytest.mark.netns
def test_ipvs_suite_passes_inside_uml():
    expected = suite_node_ids()
    assert expected, "tests/integration/ipvs holds no tests"
    rc, output = uml(["--", "-q", "-rA", "tests/integration/ipvs"], timeout_s=900)
    passed = set(re.findall(r"^PASSED (\S+)", output, flags=re.MULTILINE))
    print(f"\n{uml_lines(output)}\nIPVS suite inside UML: {len(passed & expected)} of {len(expected)} tests passed in the guest")
    assert rc == 0, failure(rc, output, "the IPVS suite inside UML")
    assert passed >= expected, (f"only {len(passed & expected)} of the {len(expected)} IPVS tests passed inside the guest; "
                                f"not passed: {sorted(expected - passed)}\n{output[-8000:]}")


@pytest.mark.netns
def test_amx_safe_kernel_boots_with_ipvs_on_this_cpu():
    """forky's UML (the one AMX CPUs need) boots here too and has IPVS: the fallback is proven on every CPU."""
    rc, output = uml(["--kernel", "forky", "--sh",
                      "uname -r && ipvsadm -A -t 198.51.100.100:80 -s rr && "
                      "ipvsadm -a -t 198.51.100.100:80 -r 203.0.113.2:8080 -m && ipvsadm -Ln"], timeout_s=300)
    print(f"\n{uml_lines(output)}")
    assert rc == 0, failure(rc, output, "forky's UML kernel with ipvsadm")
    assert re.search(r"^TCP\s+198\.51\.100\.100:80 rr", output, flags=re.MULTILINE), output
    assert re.search(r"->\s+203\.0\.113\.2:8080\s+Masq\s+1", output), output


def test_kernel_choice_follows_amx_unless_overridden():
    assert uml_kernel.choose("", {"avx512f", "sse2"})[0] == "bookworm"
    assert uml_kernel.choose("", {"avx512f", "amx_tile"})[0] == "forky"
    assert uml_kernel.choose("bookworm", {"amx_tile"}) == ("bookworm", "HANODE_UML_KERNEL=bookworm")
    assert uml_kernel.choose("forky", set())[0] == "forky"
    with pytest.raises(uml_kernel.UmlSetupError, match="HANODE_UML_KERNEL='trixie': expected one of bookworm, forky"):
        uml_kernel.choose("trixie", set())
    cpuinfo = "processor\t: 0\nflags\t\t: fpu sse2 avx512f amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert {"avx512f", "amx_tile"} <= uml_kernel.cpu_flags(cpuinfo)


def test_mirror_is_the_first_non_security_debian_source():
    deb822 = ("Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
              "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
              "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n\n"
              "# comment\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n")
    assert uml_kernel.debian_mirror(deb822, "") == "http://mirror.example/debian"
    one_line = ("# deb http://old.example/debian bookworm main\n"
                "deb [signed-by=/k.gpg] http://security.debian.org/debian-security bookworm-security main\n"
                "deb [arch=amd64] http://ftp.example/debian bookworm main\n")
    assert uml_kernel.debian_mirror("", one_line) == "http://ftp.example/debian"
    assert uml_kernel.debian_mirror("", "") is None


def test_moved_cache_is_repatched(tmp_path):
    """patchelf paths are absolute: a binary is re-pointed at its glibc when the cache (here: a copy of the host's
    glibc and of /bin/true) moves, and left alone while it has not."""
    def fake_cache(where: Path) -> tuple[Path, Path]:
        libdir = where / "libc" / "usr" / "lib" / "x86_64-linux-gnu"
        libdir.mkdir(parents=True)
        for lib in ("ld-linux-x86-64.so.2", "libc.so.6"):
            (libdir / lib).write_bytes(Path("/lib/x86_64-linux-gnu", lib).read_bytes())
            (libdir / lib).chmod(0o755)
        binary = where / "true"
        binary.write_bytes(Path("/bin/true").read_bytes())
        binary.chmod(0o755)
        return binary, where / "libc"

    def interpreter(binary: Path) -> str | None:
        with binary.open("rb") as handle:
            def read_at(offset: int, size: int) -> bytes:
                handle.seek(offset)
                return handle.read(size)
            return uml_kernel.elf_interpreter(handle.read(64), read_at)

    binary, libc = fake_cache(tmp_path / "a")
    assert interpreter(binary) == "/lib64/ld-linux-x86-64.so.2"
    assert uml_kernel.patch_for_libc(binary, libc) is True
    assert interpreter(binary) == str(libc / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    assert uml_kernel.patch_for_libc(binary, libc) is False
    moved = tmp_path / "b"
    (tmp_path / "a").rename(moved)
    assert uml_kernel.patch_for_libc(moved / "true", moved / "libc") is True
    assert interpreter(moved / "true") == str(moved / "libc/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    assert subprocess.run([str(moved / "true")], check=False).returncode == 0
    with pytest.raises(uml_kernel.UmlSetupError, match="not a 64-bit little-endian ELF"):
        uml_kernel.elf_interpreter(b"#!/bin/sh\n" + bytes(54), lambda offset, size: b"")
