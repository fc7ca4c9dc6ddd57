"""hanode events [--follow] [--since N]: the agent's ordered event stream (transitions, trackers, reloads...)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from hanode.cli.target import add_target_arguments, socket_path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("events", help="show the agent's events, in order")
    parser.add_argument("--follow", "-F", action="store_true", help="keep printing new events")
    parser.add_argument("--since", type=int, default=0, help="only events after this sequence number")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def describe(event: dict) -> str:
    stamp = datetime.fromtimestamp(event.get("ts", 0)).strftime("%H:%M:%S.%f")[:-3]
    rest = {k: v for k, v in event.items() if k not in ("seq", "ts", "event")}
    details = " ".join(f"{k}={v}" for k, v in rest.items())
    return f"{event.get('seq'):>6} {stamp} {event.get('event')}: {details}"


def run(args: argparse.Namespace) -> int:
    from hanode.control.client import AgentUnavailable, stream

    try:
        for event in stream(socket_path(args), {"cmd": "events", "follow": args.follow, "since": args.since}):
            print(json.dumps(event, sort_keys=True) if args.json else describe(event), flush=True)
    except (AgentUnavailable, OSError) as exc:
        print(f"hanode events: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
