"""startup_script and shutdown_script (keepalived's global_defs): run by the supervisor before the VRRP and
checker processes start and after they have stopped, as the script user, each waited for at most its timeout
(then its process group is killed) and the agent goes on whatever it returned, as keepalived does."""

from __future__ import annotations

import logging
import shlex

from hanode.config.model import AgentConfig
from hanode.vrrp.scripts import run_command

log = logging.getLogger("hanode.daemon")


async def run_lifecycle_script(config: AgentConfig, which: str) -> None:
    """which: "startup" or "shutdown"."""
    settings = config.sections.get("startup")
    command = getattr(settings, f"{which}_script", None)
    if not command:
        return
    timeout_s = getattr(settings, f"{which}_script_timeout_ms") / 1000
    log.info("running %s_script %s", which, command)
    result = await run_command(shlex.split(command), timeout_s, config.script_user,
                               secure=config.enable_script_security)
    if not result.success:
        log.warning("%s_script failed: %s", which, result.error or f"exit {result.exit_code}")
