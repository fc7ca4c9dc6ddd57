"""MISC_CHECK: run misc_path in its own process group with a clean environment, as the script user (the check's
user, else script_user, else keepalived_script; never root unless the config says so), the file checked
again before every run (hanode.config.security), killed (the whole group) when misc_timeout expires. Exit 0 is up; with misc_dynamic, 2..255 is up with
weight exit - 2; anything else is down. The checker's event loop never waits on the script."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal

from hanode.config.security import ScriptRefused, prepare_script
from hanode.health.checks.base import CheckFailure
from hanode.health.hysteresis import CheckResult, misc_outcome
from hanode.health.spec import Probe, format_ms

STDERR_KEEP = 200


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def check_misc(probe: Probe) -> CheckResult:
    check = probe.check
    try:
        argv = shlex.split(check.misc_path or "")
    except ValueError as exc:
        raise CheckFailure(f"cannot parse misc_path: {exc}") from None
    if not argv:
        raise CheckFailure("misc_path is empty")
    try:
        prepared = prepare_script(argv, probe.user, probe.secure)
    except ScriptRefused as exc:
        raise CheckFailure(f"refused: {exc}") from None
    try:
        proc = await asyncio.create_subprocess_exec(
            prepared.executable, *argv[1:], stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=prepared.env, cwd="/", start_new_session=True,
            **prepared.popen_identity())
    except (OSError, ValueError) as exc:
        raise CheckFailure(f"cannot start {argv[0]}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        async with asyncio.timeout(probe.timeout_ms / 1000):
            _out, err = await proc.communicate()
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        raise CheckFailure(f"{argv[0]} timed out after {format_ms(probe.timeout_ms)} (process group killed)") from None
    except BaseException:
        _kill_group(proc.pid)
        raise
    code = proc.returncode
    ok, weight = misc_outcome(code if code is not None and code >= 0 else None, check.misc_dynamic)
    if ok:
        return CheckResult(True, weight=weight)
    last = err.decode(errors="replace").strip().splitlines()[-1][:STDERR_KEEP] if err and err.strip() else ""
    what = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
    raise CheckFailure(f"{argv[0]} {what}" + (f": {last}" if last else ""))
