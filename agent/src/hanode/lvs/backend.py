"""Choosing and opening the kernel backend.

`lb_backend: auto` takes IPVS when the kernel resolves the IPVS generic-netlink family (which autoloads
ip_vs), else nftables; the choice and its reason are logged. The config is validated for the chosen
backend (lvs/validate.py): what nftables cannot express is refused here too, not only by check-config.

Every backend offers:
    name: str                                  "ipvs" | "nftables"
    exclusive: bool                            True when everything dump() returns belongs to hanode
    async dump() -> KernelState
    async apply(ops) -> list[str]              error messages, empty when every op was applied
    async release()                            after cleanup: remove what hanode created around the services
    async close()
"""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

from hanode.lvs.kernel import KernelState
from hanode.lvs.model import LvsConfig
from hanode.lvs.plan import Op
from hanode.lvs.validate import backend_problems

log = logging.getLogger("hanode.lvs")


class BackendError(Exception):
    """The backend cannot be opened, or the config does not fit it; str() names the fields."""


class Backend(Protocol):
    name: str
    exclusive: bool

    async def dump(self) -> KernelState: ...

    async def apply(self, ops: Sequence[Op]) -> list[str]: ...

    async def release(self) -> None: ...

    async def close(self) -> None: ...


async def probe_ipvs() -> tuple[bool, str]:
    """(available, why): resolves the IPVS generic-netlink family, as the agent would use it."""
    from hanode.lvs.ipvs import resolve_family
    try:
        await resolve_family()
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"; the reason is logged
        detail = exc.args[1] if len(exc.args) > 1 else str(exc)
        return False, f"the kernel has no IPVS generic-netlink family ({detail})"
    return True, "the kernel has IPVS"


async def choose_backend(config: LvsConfig) -> tuple[str, str]:
    if config.backend != "auto":
        return config.backend, "lb_backend is set"
    has_ipvs, why = await probe_ipvs()
    return ("ipvs" if has_ipvs else "nftables"), why


async def open_backend(config: LvsConfig) -> Backend:
    """The backend the config asks for (auto: IPVS when the kernel has it), opened and ready.
    Raises BackendError when it cannot be opened or the config needs what it lacks."""
    name, why = await choose_backend(config)
    if config.backend == "auto":
        log.info("lb_backend auto: using %s (%s)", name, why)
    problems = backend_problems(config, name, why)
    if problems:
        raise BackendError("\n".join(str(p) for p in problems))
    if name == "ipvs":
        from hanode.lvs.ipvs import IpvsBackend
        backend: Backend = IpvsBackend()
    else:
        from hanode.lvs.nft import NftBackend
        backend = NftBackend()
    try:
        await backend.open()  # type: ignore[attr-defined]
    except Exception as exc:
        raise BackendError(f"lb_backend {name}: {exc}") from exc
    if config.lvs_timeouts is not None:
        try:
            await backend.set_timeouts(*config.lvs_timeouts)  # type: ignore[attr-defined]
        except Exception as exc:
            await backend.close()
            raise BackendError(f"lvs_timeouts: {exc}") from exc
    return backend
