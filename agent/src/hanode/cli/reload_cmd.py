"""hanode reload: re-read the config; an invalid config is refused and the running one stays."""

from __future__ import annotations

import argparse
import sys

from hanode.cli.target import add_target_arguments, socket_path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("reload", help="reload the running agent's config (like SIGHUP)")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hanode.control.client import AgentUnavailable, request

    try:
        reply = request(socket_path(args), {"cmd": "reload"}, timeout_s=60.0)
    except (AgentUnavailable, OSError) as exc:
        print(f"hanode reload: {exc}", file=sys.stderr)
        return 2
    if not reply.get("ok"):
        print("hanode reload: refused, the running config stays:", file=sys.stderr)
        for line in reply.get("errors") or [reply.get("error")]:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"reloaded: {'applied' if reply.get('changed') else 'no change'} ({reply.get('digest', '')[:12]})")
    return 0
