"""Which supervised processes a config runs (no asyncio here: `hanode run` decides on it before importing it)."""

from __future__ import annotations

from hanode.config.loaded import LoadedConfig

# The supervised processes. VRRP runs when the config has VRRP instances or static addresses, routes or rules
# (what keepalived 2.2.7 counts as VRRP config: it starts no VRRP child without them, core/main.c running_vrrp);
# the checker (health checks + load-balancer sync + connection sync) when it has virtual servers or connection
# sync. Each in its own process, so that a slow check can never delay an advert. The checker follows VRRP states
# through the supervisor (`vrrp_states`, see relay_states).
CHILD_MODULES = {"vrrp": "hanode.vrrp.child", "checker": "hanode.health.child"}
NEEDS_TLS = frozenset({"checker"})   # SSL_GET: its asyncio must have TLS (daemon/imports.py)


def child_wanted(name: str, loaded: LoadedConfig) -> bool:
    config = loaded.config
    if name == "vrrp":
        return bool(config.vrrp_instances) or bool(config.sections.get("static"))
    lvs = config.sections.get("lvs")
    sync = config.sections.get("connsync")
    return bool(getattr(lvs, "virtual_servers", None)) or bool(sync and (sync.lvs_sync_daemon or sync.conntrack_sync))


def config_keeper(loaded: LoadedConfig) -> str | None:
    """The process whose `applied` stands for the whole config in status (agent.config.applied_digest): VRRP
    when it runs, else the checker; None when the config runs neither (then it is applied when loaded)."""
    return next((name for name in CHILD_MODULES if child_wanted(name, loaded)), None)
