"""Run a command (by default pytest) inside Debian's User-Mode Linux kernel, which has IPVS.

    python3 scripts/uml_run.py [--timeout S] [--mem 1G] -- pytest -q tests/integration/ipvs
    python3 scripts/uml_run.py --sh 'ipvsadm -Ln'
    HANODE_UML_KERNEL=forky python3 scripts/uml_run.py --sh 'uname -r'     # bookworm | forky

The kernel (scripts/uml_kernel.py) is Debian 12's UML 6.1 unless the CPU has AMX, where 6.1 panics and
Debian forky's UML 7.x (with forky's glibc beside it) boots instead; HANODE_UML_KERNEL overrides the choice.
The first run fetches it from Debian into .cache/uml/<kernel>/ (git-ignored); later runs reuse it. The
guest's root file system is the host's / over hostfs, read-only, so this checkout and its .venv work
unchanged. Inside, an init script mounts proc/sys/dev, puts tmpfs overlays on /tmp /etc /var /root /usr/lib
(guest writes vanish), links the UML kernel's modules where modprobe looks (ip_vs autoloads on the first
IPVS netlink request), brings lo up, runs the command with its output going to a host directory mounted
read-write, writes the exit status there and halts. This script prints which kernel it boots and why, the
command's output, and exits with the command's status (124 on a timeout, 125 when the guest did not run the
command: the kernel console's last lines follow; 126 when the kernel could not be set up).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uml_kernel  # noqa: E402  pylint: disable=wrong-import-position

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / ".cache" / "uml"
CONSOLE_LINES = 40
SETUP_FAILED = 126

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
cut -d' ' -f1 /proc/uptime > /mnt/exchange/boot_s
/bin/sh -c '@CMD@' </dev/null
rc=$?
echo "$rc" > /mnt/exchange/rc
echo "uml init: command exit status $rc" >/dev/console
sync
poweroff -f
"""


def build_init(xdir: Path, kernel: uml_kernel.Kernel, command: str, env: dict[str, str], cwd: Path) -> str:
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    return (INIT.replace("@XDIR@", str(xdir)).replace("@MODROOT@", str(kernel.modroot))
            .replace("@MODULES@", str(kernel.modules)).replace("@CWD@", str(cwd)).replace("@ENV@", exports)
            .replace("@CMD@", command.replace("'", "'\\''")))


def boot(kernel: uml_kernel.Kernel, init: Path, mem: str, timeout_s: float, xdir: Path) -> tuple[bytes, bool]:
    """(kernel console, timed out)."""
    argv = [str(kernel.linux), f"mem={mem}", "quiet", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
            f"init={init}", "con0=null,fd:1", "con=null"]
    # UML keeps its memory in an (unlinked) file under TMPDIR, best on tmpfs; it wants $HOME for ~/.uml.
    tmp = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else xdir
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env={"PATH": os.environ.get("PATH", ""), "TMPDIR": str(tmp), "HOME": str(xdir)})
    try:
        return proc.communicate(timeout=timeout_s)[0], False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0], True


def last_lines(console: bytes, count: int = CONSOLE_LINES) -> str:
    lines = console.decode(errors="replace").rstrip().splitlines()
    return "\n".join(lines[-count:]) if lines else "(the kernel printed nothing)"


def run(command: str, *, timeout_s: float = 900, mem: str = "1G", cache: Path = DEFAULT_CACHE,
        env: dict[str, str] | None = None, cwd: Path = REPO, echo: bool = True,
        kernel_name: str | None = None) -> tuple[int, str]:
    """(exit status, output); kernel_name None: HANODE_UML_KERNEL, else the CPU decides."""
    try:
        kernel = uml_kernel.prepare(cache, override=kernel_name)
    except uml_kernel.UmlSetupError as exc:
        output = f"uml_run: cannot set up the UML kernel: {exc}\n"
        if echo:
            sys.stdout.write(output)
        return SETUP_FAILED, output
    header = f"uml_run: {kernel.describe()}\n"
    if echo:
        sys.stdout.write(header)
        sys.stdout.flush()
    guest_env = {"HOME": "/root", "LANG": "C.UTF-8", "PY_COLORS": "0", "PYTHONDONTWRITEBYTECODE": "1",
                 "HANODE_IN_UML": "1", "TERM": "dumb"}
    guest_env.update(env or {})
    runs = cache / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    xdir = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    try:
        init = xdir / "init.sh"
        init.write_text(build_init(xdir, kernel, command, guest_env, cwd))
        init.chmod(0o755)
        started = time.monotonic()
        console, timed_out = boot(kernel, init, mem, timeout_s, xdir)
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
            output += (f"\numl_run: the guest did not run the command (kernel {kernel.name}, Linux {kernel.version}); "
                       f"the kernel console's last lines:\n{last_lines(console)}\n")
        boot_file = xdir / "boot_s"
        booted = f", booted in {float(boot_file.read_text()):.1f} s" if boot_file.exists() and boot_file.read_text().strip() else ""
        output += f"\numl_run: guest exit status {rc} after {time.monotonic() - started:.1f} s{booted}\n"
        if echo:
            sys.stdout.write(output)
            sys.stdout.flush()
        return rc, header + output
    finally:
        shutil.rmtree(xdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--timeout", type=float, default=900, help="seconds before the guest is killed")
    parser.add_argument("--mem", default="1G")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--kernel", choices=sorted(uml_kernel.KERNELS),
                        help=f"bookworm or forky (default: ${uml_kernel.ENV_KERNEL}, else chosen by the CPU)")
    parser.add_argument("--sh", help="a shell command to run instead of pytest")
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    parser.add_argument("--download-only", action="store_true")
    parser.add_argument("pytest_args", nargs="*", help="arguments for pytest (after --)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("uml_run: needs root (namespaces inside the guest are made as root on a read-only root fs)", file=sys.stderr)
    if args.download_only:
        try:
            print(f"uml_run: {uml_kernel.prepare(args.cache, override=args.kernel).describe()}")
        except uml_kernel.UmlSetupError as exc:
            print(f"uml_run: cannot set up the UML kernel: {exc}", file=sys.stderr)
            return SETUP_FAILED
        return 0
    if args.sh:
        command = args.sh
    else:
        python = REPO / ".venv" / "bin" / "python"
        pytest_args = args.pytest_args or ["tests/integration/ipvs"]
        command = shlex.join([str(python), "-m", "pytest", "-p", "no:cacheprovider", *pytest_args])
    env = dict(item.split("=", 1) for item in args.env)
    return run(command, timeout_s=args.timeout, mem=args.mem, cache=args.cache, env=env, kernel_name=args.kernel)[0]


if __name__ == "__main__":
    sys.exit(main())
