"""The IPVS sync daemons of the agent's network namespace, over generic netlink (adapter for lvs/syncd.py):
dump the running ones (IPVS_CMD_GET_DAEMON), start and stop them (IPVS_CMD_NEW_DAEMON / DEL_DAEMON)."""

from __future__ import annotations

import os

from hanode.lvs import syncd
from hanode.lvs.ipvs import IpvsError, _Requests, resolve_family


class IpvsSyncDaemons:
    def __init__(self) -> None:
        self.requests: _Requests | None = None

    async def open(self) -> None:
        if self.requests is None:
            self.requests = _Requests(await resolve_family())

    def close(self) -> None:
        if self.requests is not None:
            self.requests.close()
            self.requests = None

    async def dump(self) -> dict[str, syncd.DaemonParams]:
        await self.open()
        daemons = {}
        for attrs in await self.requests.dump(syncd.CMD_GET_DAEMON, b"", syncd.CMD_ATTR_DAEMON):
            state, params = syncd.decode_attrs(attrs)
            daemons[state] = params
        return daemons

    async def apply(self, ops: list[syncd.StartDaemon | syncd.StopDaemon]) -> list[str]:
        """Runs the ops in order; returns one message per op the kernel refused."""
        await self.open()
        results = await self.requests.run([syncd.encode(op) for op in ops])
        return [f"{syncd.describe(op)}: {os.strerror(code)} (errno {code})" for op, code in zip(ops, results) if code]

    async def reconcile(self, desired: dict[str, syncd.DaemonParams]) -> tuple[list, list[str]]:
        """Brings the kernel's daemons to `desired`: (ops applied, errors)."""
        try:
            ops = syncd.plan(desired, await self.dump())
            return ops, (await self.apply(ops)) if ops else []
        except (IpvsError, syncd.SyncdError, OSError) as exc:
            self.close()
            return [], [f"IPVS sync daemon: {exc}"]
