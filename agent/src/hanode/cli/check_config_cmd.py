"""hanode check-config FILE: exit 0 when valid, else exit 1 and one line per problem naming its field."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("check-config", help="validate an agent config file")
    parser.add_argument("file")
    parser.add_argument("--quiet", "-q", action="store_true", help="print problems only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hanode.config.load import load_config
    from hanode.config.problems import ConfigError

    try:
        loaded = load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    for problem in loaded.problems.warnings:
        print(problem, file=sys.stderr)
    if not args.quiet:
        config = loaded.config
        lvs = config.sections.get("lvs")
        servers = len(getattr(lvs, "virtual_servers", ()) or ())
        print(f"{args.file}: OK ({len(config.vrrp_instances)} vrrp instances, {len(config.vrrp_scripts)} scripts, "
              f"{len(config.vrrp_sync_groups)} sync groups, {servers} virtual servers)")
    return 0
