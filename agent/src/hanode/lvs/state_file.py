"""Small JSON files the checker keeps next to the agent's control socket, so that a restarted checker (or
agent) knows what it knew: the services it owns in the kernel, the real servers an operator disabled.
Reading never fails (a missing or unreadable file is empty, logged); writing is atomic (tmp + rename)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, TypeVar

log = logging.getLogger("hanode.lvs")
T = TypeVar("T")


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


def save_state(path: str | None, key: str, items: list[Any]) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({key: items}, handle)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot save %s to %s: %s", key, path, exc)
