"""What the VRRP process put into the kernel and must take out again, kept in a JSON file next to the control
socket (<socket>.vrrp-owned.json) so that a restarted process (a crash, a kill) still knows: VMAC interfaces it
created or adopted, the sysctls it changed and their values before, the routes, rules and static addresses it
added. Nothing else is ever removed: a route that was there before the agent stays. Reading never fails (a
missing or unreadable file is empty, logged); writing is atomic."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from hanode.lvs.state_file import state_path

log = logging.getLogger("hanode.vrrp.owned")


@dataclass
class Owned:
    vmacs: dict[str, dict[str, Any]] = field(default_factory=dict)     # ifname -> {base, mac, kind}
    sysctls: dict[str, list] = field(default_factory=dict)             # path below /proc/sys/net -> [before, ours]
    routes: dict[str, str] = field(default_factory=dict)               # key -> "owner\troute text"
    rules: dict[str, list] = field(default_factory=dict)               # key -> [owner, rule text, priority]
    addresses: dict[str, str] = field(default_factory=dict)            # key -> address text (dev included)


class OwnedFile:
    def __init__(self, control_socket: str | None):
        self.path = state_path(control_socket, "vrrp-owned")
        self.owned = self._load()

    def _load(self) -> Owned:
        if not self.path:
            return Owned()
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            return Owned(**{k: dict(data.get(k, {})) for k in ("vmacs", "sysctls", "routes", "rules", "addresses")})
        except FileNotFoundError:
            return Owned()
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return Owned()

    def save(self) -> None:
        if not self.path:
            return
        data = {k: getattr(self.owned, k) for k in ("vmacs", "sysctls", "routes", "rules", "addresses")}
        tmp = f"{self.path}.tmp"
        try:
            if not any(data.values()):
                if os.path.exists(self.path):
                    os.unlink(self.path)
                return
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot save %s: %s", self.path, exc)
