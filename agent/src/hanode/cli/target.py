"""Which agent a command talks to: --socket, or the control_socket of --config, or the default."""

from __future__ import annotations

import argparse

from hanode.control.client import DEFAULT_SOCKET


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--socket", "-s", help=f"control socket (default {DEFAULT_SOCKET})")
    group.add_argument("--config", "-f", help="read control_socket from this agent config")


def socket_path(args: argparse.Namespace) -> str:
    if args.socket:
        return args.socket
    if args.config:
        from hanode.config.load import parse_yaml

        with open(args.config, "rb") as handle:
            raw = parse_yaml(handle.read(), args.config) or {}
        return raw.get("control_socket") or DEFAULT_SOCKET
    return DEFAULT_SOCKET
