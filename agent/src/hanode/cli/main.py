"""The `hanode` command: one sub-command per module, each module offers `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "hanode.cli.run_cmd",
    "hanode.cli.check_config_cmd",
    "hanode.cli.status_cmd",
    "hanode.cli.reload_cmd",
    "hanode.cli.import_cmd",
    "hanode.cli.events_cmd",
    "hanode.cli.release_cmd",
    "hanode.lab.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hanode", description="hanode agent: keepalived-compatible VRRP and load balancing")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
