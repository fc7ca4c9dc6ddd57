"""Small JSON files the checker keeps next to the agent's control socket, so that a restarted checker (or
agent) knows what it knew: the services it owns in the kernel, the real servers an operator disabled.
Reading never fails (a missing or unreadable file is empty, logged); writing is atomic (tmp + rename), and a
write that fails (directory read-only, disk full) is logged once and kept in `unsaved()` (the process's status
shows it, agent.state_files) until a later write of that file succeeds."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any, Callable, TypeVar

log = logging.getLogger("hanode.lvs")
T = TypeVar("T")

_UNSAVED: dict[str, dict[str, Any]] = {}   # path -> {"path", "error", "since"}: files this process could not write


def state_path(control_socket: str | None, name: str) -> str | None:
    """'/run/hanode/lb1.sock', 'lvs-owned' -> '/run/hanode/lb1.lvs-owned.json' (None without a socket)."""
    if not control_socket:
        return None
    return f"{os.path.splitext(control_socket)[0]}.{name}.json"


def load_state(path: str | None, key: str, item: Callable[..., T]) -> set[T]:
    """The entries stored under `key`, each made with item(*entry), or item(entry) when the entry is not a list
    (empty when there is no file; when it is unreadable too, logged)."""
    if not path:
        return set()
    try:
        with open(path, encoding="utf-8") as handle:
            return {item(*entry) if isinstance(entry, list) else item(entry)
                    for entry in json.load(handle).get(key, [])}
    except FileNotFoundError:
        return set()
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return set()


def save_state(path: str | None, key: str, items: list[Any]) -> bool:
    """Writes the file atomically; False (logged, and listed by unsaved()) when it cannot be written."""
    if not path:
        return True
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({key: items}, handle)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        error = f"cannot save {key}: {exc.strerror or exc}"
        if _UNSAVED.get(path, {}).get("error") != error:
            log.error("%s to %s: the running state is kept in memory only", error, path)
        _UNSAVED.setdefault(path, {"path": path, "since": time.time()})["error"] = error
        return False
    if _UNSAVED.pop(path, None) is not None:
        log.info("saved %s to %s again", key, path)
    return True


def unsaved() -> list[dict[str, Any]]:
    """The state files this process could not write at its last attempt, oldest failure first."""
    return sorted((dict(entry) for entry in _UNSAVED.values()), key=lambda entry: entry["since"])
