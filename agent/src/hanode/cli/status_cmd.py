"""hanode status [--json | --watch [--interval S]]: the running agent's state, over its control socket."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from hanode.cli.target import add_target_arguments, socket_path

HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"
MIN_INTERVAL_S = 0.1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("status", help="show the running agent's state")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="the full status document (schema_version'd)")
    mode.add_argument("--watch", "-w", action="store_true",
                      help="a live view redrawn in place until Ctrl-C (colour on a terminal unless NO_COLOR is set)")
    parser.add_argument("--interval", "-n", type=_interval, default=1.0, metavar="SECONDS",
                        help=f"--watch: seconds between redraws (default 1, at least {MIN_INTERVAL_S:g})")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if math.isnan(value) or value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_INTERVAL_S:g} s, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from hanode.control.client import AgentUnavailable, request
    from hanode.control.render import render_status

    if args.watch:
        return watch(socket_path(args), args.interval)
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


def use_colour(stream, environ: dict | None = None) -> bool:
    """Colour only on a terminal, and not when NO_COLOR is set to anything (no-color.org) or TERM is dumb."""
    environ = os.environ if environ is None else environ
    return stream.isatty() and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def watch(path: str, interval_s: float, out=sys.stdout) -> int:
    """Redraws the status every interval_s until Ctrl-C (then exits 0). An agent that does not answer is
    shown as such and asked again at the next tick."""
    from hanode.control.client import AgentUnavailable, request
    from hanode.control.watch_view import frame, render_unavailable, render_watch

    ansi = out.isatty()
    colour = use_colour(out)
    if ansi:
        out.write(HIDE_CURSOR + "\x1b[2J")
    try:
        while True:
            clock = time.strftime("%H:%M:%S")
            try:
                reply = request(path, {"cmd": "status"}, timeout_s=max(interval_s, 2.0))
                lines = (render_watch(reply["status"], interval_s=interval_s, clock=clock, colour=colour)
                         if reply.get("ok") else
                         render_unavailable(str(reply.get("error")), interval_s=interval_s, clock=clock, colour=colour))
            except (AgentUnavailable, OSError, ValueError) as exc:
                lines = render_unavailable(str(exc), interval_s=interval_s, clock=clock, colour=colour)
            out.write(frame(lines, ansi))
            out.flush()
            time.sleep(interval_s)
    except KeyboardInterrupt:
        return 0
    finally:
        if ansi:
            out.write(SHOW_CURSOR + "\n")
            out.flush()
