"""A loaded config, and which one this process loaded last: what the agent's processes keep of a load, without
the YAML parser and the validation (config/load.py), which the supervisor runs in a forked child
(config/forked_load.py) and a VRRP process needs only when a reload sends it a config it did not inherit."""

from __future__ import annotations

import json
import zlib
from typing import Any

from hanode.config.model import AgentConfig
from hanode.config.problems import Problems


class LoadedConfig:
    """A config file read and validated: its parsed model (`config`), and the file's data (`raw`), which only a
    child that was not forked from this process needs (it is sent to it). That data is kept as compressed JSON,
    not as the objects it was read into: 8,000 real servers' dicts are ~5 MB, their JSON zlib'd ~0.1 MB."""

    __slots__ = ("path", "digest", "config", "problems", "_raw")

    def __init__(self, path: str, raw: Any, digest: str, config: AgentConfig, problems: Problems):
        self.path, self.digest, self.config, self.problems = path, digest, config, problems
        try:
            self._raw: Any = zlib.compress(json.dumps(raw).encode(), 1)
        except (TypeError, ValueError):   # not JSON (never for a valid config): kept as it is
            self._raw = [raw]

    @property
    def raw(self) -> Any:
        return self._raw[0] if isinstance(self._raw, list) else json.loads(zlib.decompress(self._raw))


_LAST_LOADED: list[LoadedConfig] = []   # the config this process loaded last


def loaded_here(digest: str | None) -> LoadedConfig | None:
    """The config this process loaded last, when its digest is `digest`. A child forked from the supervisor
    (daemon/fork.py) finds there the config the supervisor loaded and sends it: taking it instead of parsing the
    message's copy keeps its objects one copy, shared (1,000 instances: ~3 MB less per child)."""
    last = last_loaded()
    return last if last is not None and digest is not None and last.digest == digest else None


def remember_loaded(loaded: LoadedConfig) -> None:
    """The config this process loaded last (config/forked_load.py loads it in a child and keeps it here)."""
    _LAST_LOADED[:] = [loaded]


def last_loaded() -> LoadedConfig | None:
    return _LAST_LOADED[0] if _LAST_LOADED else None
