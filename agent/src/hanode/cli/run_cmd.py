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
    from hanode.daemon.imports import asyncio_without_tls
    asyncio_without_tls()
    from hanode.daemon.logs import setup_logging
    from hanode.daemon.supervisor import run_agent

    setup_logging(args.log_level, process="hanode")
    return run_agent(args.config, args.log_level)
