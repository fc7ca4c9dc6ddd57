"""The `hanode` command: one sub-command per module, each module offers `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> the module that registers it. Only the invoked command's module is imported (`hanode run` would
# otherwise carry the lab's and the clients' imports, asyncio with TLS among them, for the agent's lifetime).
COMMAND_MODULES = {
    "run": "hanode.cli.run_cmd",
    "check-config": "hanode.cli.check_config_cmd",
    "status": "hanode.cli.status_cmd",
    "reload": "hanode.cli.reload_cmd",
    "import-keepalived": "hanode.cli.import_cmd",
    "events": "hanode.cli.events_cmd",
    "release": "hanode.cli.release_cmd",
    "lab": "hanode.lab.cli",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or, when `command` names one, for that command alone."""
    parser = argparse.ArgumentParser(prog="hanode", description="hanode agent: keepalived-compatible VRRP and load balancing")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else COMMAND_MODULES.values()
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
