"""Reading the config file: YAML with line numbers in errors, duplicate keys refused, file security checked."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from typing import Any

import yaml

from hanode.config.host import HostCaps
from hanode.config.loaded import LoadedConfig, remember_loaded
from hanode.config.model import AgentConfig
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError, Problem
from hanode.config.security import check_config_security
from hanode.lvs import caps


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a plain value, not a {type(key).__name__}", key_node.start_mark) from None
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (first on line {seen[key] + 1})", mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str | bytes, source: str = "config") -> Any:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(f"{source} {where}", str(problem))]) from None
    # The same data, in objects allocated after the YAML parser's are gone. The parser's node graph takes ~10x
    # the size of the result, and the result's objects, spread over its memory, would keep most of it from
    # being returned: the agent would carry it for good (measured: 11 MB left after loading a 1,000-instance
    # config, 4.4 MB with this). Done when JSON holds the data exactly (string keys; strings, numbers, booleans,
    # null), which every valid config does; anything else (a date, a number as a key) is kept as YAML made it,
    # for the parser to report.
    if not _json_clean(data):
        return data
    text = json.dumps(data)
    del data
    return json.loads(text)


def _json_clean(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_clean(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_clean(v) for v in value)
    return value is None or isinstance(value, (str, int, float))


def _ssl_problems(config: AgentConfig) -> list[Problem]:
    """The SSL block's certificate, key (with its password) and CA, loaded as SSL_GET will load them."""
    lvs = config.sections.get("lvs")
    if lvs is None or lvs.ssl is None:
        return []
    # imported here: the health checks' modules (and ssl) cost every agent without an SSL block ~3 MB
    from hanode.health.checks.http import ssl_load_problem  # pylint: disable=import-outside-toplevel

    problem = ssl_load_problem(lvs.ssl)
    return [Problem("ssl", problem)] if problem else []


def load_config(path: str, *, check_files: bool = True, host: HostCaps | None = None) -> LoadedConfig:
    """Reads, parses and validates a config file for this host (its capabilities gathered now, unless `host`
    gives them); ConfigError lists every problem."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigError([Problem(path, f"cannot read: {exc.strerror}")]) from None
    raw = parse_yaml(data, os.path.basename(path))
    if host is None:
        host = HostCaps.from_facts(caps.gather())
    config, problems = parse_config(raw, default_router_id=socket.gethostname(), host=host)
    if check_files:
        file_problems = check_config_security(path, config) + _ssl_problems(config)
        problems.items.extend(file_problems)
        if any(not p.warning for p in file_problems):
            raise ConfigError(problems.items)
    loaded = LoadedConfig(path=path, raw=raw, digest=hashlib.sha256(data).hexdigest(), config=config, problems=problems)
    remember_loaded(loaded)
    return loaded
