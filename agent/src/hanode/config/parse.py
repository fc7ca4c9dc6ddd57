"""Top level of the agent config: a plain dict in, an AgentConfig out, or ConfigError with every problem."""

from __future__ import annotations

import importlib
from typing import Any

from hanode.config.host import HostCaps
from hanode.config.model import AgentConfig
from hanode.config.parse_vrrp_notify import resolve as resolve_instance_defaults
from hanode.config.parse_track import parse_track_files, parse_track_processes
from hanode.config.parse_vrrp import parse_instances, parse_scripts, parse_sync_groups
from hanode.config.parse_vrrp_net import parse_vrrp_globals
from hanode.config.problems import ConfigError, Problems, Reader

DEFAULT_CONTROL_SOCKET = "/run/hanode/agent.sock"

# Subsystems that own top-level sections: each module has SECTION (a name) and
# parse(reader, problems, config, host) -> value, reading its own keys from the top-level reader; `host` is
# what the host the config is for can do (None: not known here).
SECTION_MODULES: tuple[str, ...] = ("hanode.config.parse_ops", "hanode.config.parse_lvs", "hanode.config.parse_connsync",
                                    "hanode.config.parse_static", "hanode.config.parse_vrrp_notify",
                                    "hanode.config.parse_ifdelays", "hanode.config.parse_garp")


def parse_config(raw: Any, *, default_router_id: str = "hanode",
                 host: HostCaps | None = None) -> tuple[AgentConfig, Problems]:
    """Returns the config and its problems (warnings only); raises ConfigError when any error is found.
    `host`: the capabilities of the host the config is for, gathered there (config/host.py); without them,
    what depends on the host (`lb_backend: auto`) is not checked and a warning says so."""
    problems = Problems()
    reader = Reader(raw if raw is not None else {}, "", problems)
    scripts = parse_scripts(reader.mapping("vrrp_scripts"), "vrrp_scripts", problems)
    vrrp_globals = parse_vrrp_globals(reader, problems)
    trackers = (parse_track_processes(reader.mapping("vrrp_track_processes"), "vrrp_track_processes", problems),
                parse_track_files(reader.mapping("track_files"), "track_files", problems))
    instances = parse_instances(reader.mapping("vrrp_instances"), "vrrp_instances", problems, scripts, vrrp_globals,
                                host, trackers)
    groups = parse_sync_groups(reader.mapping("vrrp_sync_groups"), "vrrp_sync_groups", problems, instances, scripts,
                               trackers)
    instances = resolve_instance_defaults(reader, instances, groups)
    config = AgentConfig(
        router_id=reader.string("router_id", default_router_id),
        control_socket=reader.string("control_socket", DEFAULT_CONTROL_SOCKET),
        script_user=reader.string("script_user", None),
        enable_script_security=reader.boolean("enable_script_security", True),
        vrrp_scripts=scripts,
        vrrp_instances=instances,
        vrrp_sync_groups=groups,
        vrrp_track_processes=trackers[0], track_files=trackers[1],
    )
    if config.control_socket and not config.control_socket.startswith("/"):
        problems.error("control_socket", f"must be an absolute path, got {config.control_socket!r}")
    for name in SECTION_MODULES:
        module = importlib.import_module(name)
        config.sections[module.SECTION] = module.parse(reader, problems, config, host)
    reader.finish()
    if problems.errors:
        raise ConfigError(problems.items)
    return config, problems
