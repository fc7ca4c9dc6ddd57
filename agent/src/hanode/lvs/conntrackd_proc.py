"""conntrackd as a child of the checker process (adapter for lvs/conntrackd.py): writes its config, runs
`conntrackd -C CONF` in the foreground, waits until its UNIX socket answers, runs client commands
(`conntrackd -C CONF -c` ...), and stops it. It dies with the checker (parent-death signal); the
restarted checker starts a fresh one, which asks the master for a resync as a backup does."""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import subprocess
import time

from hanode.lvs.conntrackd import ConntrackSync, Files, render

log = logging.getLogger("hanode.connsync")

BINARY = "conntrackd"
READY_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
PR_SET_PDEATHSIG = 1


class ConntrackdError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM when the checker goes (even by SIGKILL), so no conntrackd outlives its owner."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def interface_address(interface: str, family: int, exclude: set[str]) -> str:
    """The sync interface's own address: its first non-secondary address of `family` that is not a VIP."""
    proc = await asyncio.create_subprocess_exec("ip", "-j", f"-{family}", "addr", "show", "dev", interface,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise ConntrackdError(f"conntrack_sync.interface {interface}: {err.decode(errors='replace').strip()}")
    for link in json.loads(out or b"[]"):
        for info in link.get("addr_info", []):
            if info.get("scope") == "global" and not info.get("secondary") and info.get("local") not in exclude:
                return info["local"]
    raise ConntrackdError(f"conntrack_sync.interface {interface} has no IPv{family} address of its own")


class Conntrackd:
    def __init__(self, sync: ConntrackSync, files: Files, binary: str = BINARY):
        self.sync = sync
        self.files = files
        self.binary = binary
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at: float | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, local_address: str) -> None:
        text = render(self.sync, self.files, local_address)
        os.makedirs(os.path.dirname(self.files.config) or ".", exist_ok=True)
        tmp = self.files.config + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, self.files.config)
        if (await self.command("-s"))[0] == 0:
            raise ConntrackdError(f"another conntrackd already answers on {self.files.socket}")
        for stale in (self.files.lock, self.files.socket):   # left by a conntrackd that was killed
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        with open(self.files.log, "ab", buffering=0) as logfile:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, "-C", self.files.config, stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if not self.running:
                raise ConntrackdError(f"conntrackd exited with status {self.proc.returncode} at start "
                                      f"(see {self.files.log})")
            if (await self.command("-s"))[0] == 0:
                log.info("conntrackd %d running: %s", self.proc.pid, self.files.config)
                return
            if time.monotonic() > deadline:
                await self.stop()
                raise ConntrackdError(f"conntrackd did not answer on {self.files.socket} "
                                      f"within {READY_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)

    async def command(self, *args: str) -> tuple[int, str]:
        """One client command: (exit status, its output)."""
        try:
            proc = await asyncio.create_subprocess_exec(self.binary, "-C", self.files.config, *args,
                                                        stdin=subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT)
        except OSError as exc:
            return 127, f"cannot run {self.binary}: {exc}"
        try:
            out, _err = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return 124, f"conntrackd {' '.join(args)} timed out after {COMMAND_TIMEOUT_S:.0f} s"
        return proc.returncode, out.decode(errors="replace").strip()

    async def wait(self) -> int:
        return await self.proc.wait() if self.proc is not None else 0

    async def stop(self) -> None:
        if not self.running:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        log.info("conntrackd stopped")
        self.proc = None
