"""hanode status [--json]: the running agent's state, over its control socket."""

from __future__ import annotations

import argparse
import json
import sys

from hanode.cli.target import add_target_arguments, socket_path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("status", help="show the running agent's state")
    parser.add_argument("--json", action="store_true", help="the full status document (schema_version'd)")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hanode.control.client import AgentUnavailable, request
    from hanode.control.render import render_status

    try:
        reply = request(socket_path(args), {"cmd": "status"})
    except (AgentUnavailable, OSError) as exc:
        print(f"hanode status: {exc}", file=sys.stderr)
        return 2
    if not reply.get("ok"):
        print(f"hanode status: {reply.get('error')}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(reply["status"], sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print(render_status(reply["status"]))
    return 0
