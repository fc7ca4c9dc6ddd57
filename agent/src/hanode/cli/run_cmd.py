"""hanode run --config FILE: the agent in the foreground until SIGTERM/SIGINT; SIGHUP reloads."""

from __future__ import annotations

import argparse

DEFAULT_CONFIG = "/etc/hanode/agent.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run the agent in the foreground")
    parser.add_argument("--config", "-f", default=DEFAULT_CONFIG, help=f"agent config (default {DEFAULT_CONFIG})")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from hanode.config.forked_load import load_config_forked
    from hanode.config.problems import ConfigError
    from hanode.daemon.imports import asyncio_without_tls, fixed_mmap_threshold
    from hanode.daemon.logs import setup_logging
    from hanode.daemon.wanted import child_wanted

    fixed_mmap_threshold()
    setup_logging(args.log_level, process="hanode")
    try:
        loaded = load_config_forked(args.config)   # parsed apart: its garbage stays out of this process
    except ConfigError as exc:
        for problem in exc.problems:
            logging.getLogger("hanode.supervisor").error("%s", problem)
        return 1
    # Without TLS unless the checker runs: the children are forked from this process and share its asyncio
    # (daemon/fork.py); a checker added by a reload later is started with exec, with TLS of its own.
    if not child_wanted("checker", loaded):
        asyncio_without_tls()
    from hanode.daemon.supervisor import run_agent

    return run_agent(loaded, args.log_level)
