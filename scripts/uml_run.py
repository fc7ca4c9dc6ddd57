"""Run a command (by default pytest) inside Debian's User-Mode Linux kernel, which has IPVS.

    python3 scripts/uml_run.py [--timeout S] [--mem 1G] -- pytest -q tests/integration/ipvs
    python3 scripts/uml_run.py --sh 'ipvsadm -Ln'

The first run downloads the `user-mode-linux` package with `apt-get download` and unpacks it with
`dpkg-deb -x` into .cache/uml/ (git-ignored); later runs reuse it. The guest's root file system is the
host's / over hostfs, read-only, so this checkout and its .venv work unchanged. Inside, an init script
mounts proc/sys/dev, puts tmpfs overlays on /tmp /etc /var /root /usr/lib (guest writes vanish), links
the UML kernel's modules where modprobe looks (ip_vs autoloads on the first IPVS netlink request), brings
lo up, runs the command with its output going to a host directory mounted read-write, writes the exit
status there and halts. This script prints the command's output and exits with its status (124 on a
timeout, 125 when the guest did not run the command).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / ".cache" / "uml"
PACKAGE = "user-mode-linux"

INIT = r"""#!/bin/sh
# hanode UML init: runs as PID 1 in the guest.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
XDIR='@XDIR@'
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null || true
mount -t tmpfs tmpfs /run && mkdir -p /run/netns /run/lock
mount -t tmpfs tmpfs /mnt
# The host's exchange directory at a guest path no overlay below covers (the checkout may live under /tmp).
mkdir -p /mnt/exchange && mount -t hostfs none /mnt/exchange -o "$XDIR"
exec >/mnt/exchange/output 2>&1
KVER=$(uname -r)
modprobe -d '@MODROOT@' overlay || echo "uml init: cannot load overlay"
for d in /tmp /etc /var /root /usr/lib; do
    n=$(echo "$d" | tr / _)
    mkdir -p "/mnt/$n/upper" "/mnt/$n/work"
    mount -t overlay overlay -o "lowerdir=$d,upperdir=/mnt/$n/upper,workdir=/mnt/$n/work" "$d" \
        || echo "uml init: no overlay on $d"
done
chmod 1777 /tmp
mkdir -p /usr/lib/modules && ln -sfn '@MODULES@' "/usr/lib/modules/$KVER"
ip link set lo up
cd '@CWD@'
@ENV@
/bin/sh -c '@CMD@' </dev/null
rc=$?
echo "$rc" > /mnt/exchange/rc
echo "uml init: command exit status $rc" >/dev/console
sync
poweroff -f
"""


def ensure_kernel(cache: Path) -> tuple[Path, Path, str]:
    """(linux.uml, modules dir, kernel version), downloading the package once."""
    root = cache / "root"
    linux = root / "usr" / "bin" / "linux.uml"
    if not linux.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="hanode-uml-dl-", dir=cache) as tmp:
            # apt's sandbox user cannot write to a root-owned temp dir; that warning is harmless.
            proc = subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, capture_output=True, text=True, check=False)
            if proc.returncode != 0:   # a fresh machine may have no package lists yet
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
                proc = subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, capture_output=True, text=True, check=False)
            debs = list(Path(tmp).glob(f"{PACKAGE}_*.deb"))
            if proc.returncode != 0 or not debs:
                sys.exit(f"uml_run: apt-get download {PACKAGE} failed: {proc.stderr.strip()}\n"
                         "(run `apt-get update` first if the package list is empty)")
            partial = cache / "root.partial"
            shutil.rmtree(partial, ignore_errors=True)
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(partial)], check=True)
            shutil.rmtree(root, ignore_errors=True)
            partial.rename(root)
    modules = root / "usr" / "lib" / "uml" / "modules"
    versions = [p.name for p in modules.iterdir() if p.is_dir() and (p / "modules.dep").exists()]
    if not versions:
        sys.exit(f"uml_run: no kernel modules under {modules}")
    version = sorted(versions)[-1]
    modroot = cache / "modroot" / "lib" / "modules"
    modroot.mkdir(parents=True, exist_ok=True)
    link = modroot / version
    if not link.is_symlink():
        link.symlink_to(modules / version)
    return linux, modules / version, version


def build_init(xdir: Path, cache: Path, modules: Path, command: str, env: dict[str, str], cwd: Path) -> str:
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    return (INIT.replace("@XDIR@", str(xdir)).replace("@MODROOT@", str(cache / "modroot"))
            .replace("@MODULES@", str(modules)).replace("@CWD@", str(cwd)).replace("@ENV@", exports)
            .replace("@CMD@", command.replace("'", "'\\''")))


def run(command: str, *, timeout_s: float = 900, mem: str = "1G", cache: Path = DEFAULT_CACHE,
        env: dict[str, str] | None = None, cwd: Path = REPO, echo: bool = True) -> tuple[int, str]:
    linux, modules, _version = ensure_kernel(cache)
    guest_env = {"HOME": "/root", "LANG": "C.UTF-8", "PY_COLORS": "0", "PYTHONDONTWRITEBYTECODE": "1",
                 "HANODE_IN_UML": "1", "TERM": "dumb"}
    guest_env.update(env or {})
    runs = cache / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    xdir = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    try:
        init = xdir / "init.sh"
        init.write_text(build_init(xdir, cache, modules, command, guest_env, cwd))
        init.chmod(0o755)
        argv = [str(linux), f"mem={mem}", "quiet", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
                f"init={init}", "con0=null,fd:1", "con=null"]
        # UML keeps its memory in an (unlinked) file under TMPDIR, best on tmpfs; it wants $HOME for ~/.uml.
        tmp = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else xdir
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, env={"PATH": os.environ.get("PATH", ""), "TMPDIR": str(tmp), "HOME": str(xdir)})
        try:
            console = proc.communicate(timeout=timeout_s)[0]
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            console = proc.communicate()[0]
            timed_out = True
        output = (xdir / "output").read_text(errors="replace") if (xdir / "output").exists() else ""
        rc_file = xdir / "rc"
        if timed_out:
            rc = 124
            output += f"\numl_run: timed out after {timeout_s:.0f} s\n"
        elif rc_file.exists() and rc_file.read_text().strip():
            rc = int(rc_file.read_text().strip())
        elif (said := re.search(rb"uml init: command exit status (\d+)", console)) is not None:
            rc = int(said.group(1))   # the console carries it when the exchange file lost the last write
        else:
            rc = 125
            output += "\numl_run: the guest did not run the command; kernel console:\n" + console.decode(errors="replace")
        output += f"\numl_run: guest exit status {rc} after {time.monotonic() - started:.1f} s\n"
        if echo:
            sys.stdout.write(output)
            sys.stdout.flush()
        return rc, output
    finally:
        shutil.rmtree(xdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--timeout", type=float, default=900, help="seconds before the guest is killed")
    parser.add_argument("--mem", default="1G")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--sh", help="a shell command to run instead of pytest")
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    parser.add_argument("--download-only", action="store_true")
    parser.add_argument("pytest_args", nargs="*", help="arguments for pytest (after --)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("uml_run: needs root (namespaces inside the guest are made as root on a read-only root fs)", file=sys.stderr)
    if args.download_only:
        ensure_kernel(args.cache)
        return 0
    if args.sh:
        command = args.sh
    else:
        python = REPO / ".venv" / "bin" / "python"
        pytest_args = args.pytest_args or ["tests/integration/ipvs"]
        command = shlex.join([str(python), "-m", "pytest", "-p", "no:cacheprovider", *pytest_args])
    env = dict(item.split("=", 1) for item in args.env)
    rc = run(command, timeout_s=args.timeout, mem=args.mem, cache=args.cache, env=env)[0]
    return rc


if __name__ == "__main__":
    sys.exit(main())
