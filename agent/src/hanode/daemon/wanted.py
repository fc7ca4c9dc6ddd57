"""Which supervised processes a config runs (no asyncio here: `hanode run` decides on it before importing it)."""

from __future__ import annotations

from hanode.config.load import LoadedConfig

# The supervised processes. The checker (health checks + load-balancer sync + connection sync) runs only when
# the config has virtual servers or connection sync; VRRP always runs, so that a slow check can never delay
# an advert. The checker follows VRRP states through the supervisor (`vrrp_states`, see relay_states).
CHILD_MODULES = {"vrrp": "hanode.vrrp.child", "checker": "hanode.health.child"}
NEEDS_TLS = frozenset({"checker"})   # SSL_GET: its asyncio must have TLS (daemon/imports.py)


def child_wanted(name: str, loaded: LoadedConfig) -> bool:
    if name == "vrrp":
        return True
    lvs = loaded.config.sections.get("lvs")
    sync = loaded.config.sections.get("connsync")
    return bool(getattr(lvs, "virtual_servers", None)) or bool(sync and (sync.lvs_sync_daemon or sync.conntrack_sync))
