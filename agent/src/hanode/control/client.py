"""Talking to a running agent over its control socket (used by the CLI and by the Ansible modules' twin)."""

from __future__ import annotations

import json
import socket
from typing import Any, Iterator

DEFAULT_SOCKET = "/run/hanode/agent.sock"


class AgentUnavailable(RuntimeError):
    pass


def _connect(path: str, timeout_s: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(path)
    except FileNotFoundError:
        sock.close()
        raise AgentUnavailable(f"no agent socket at {path} (is `hanode run` running?)") from None
    except OSError as exc:
        sock.close()
        raise AgentUnavailable(f"cannot connect to {path}: {exc.strerror or exc}") from None
    return sock


def request(path: str, payload: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    sock = _connect(path, timeout_s)
    try:
        sock.sendall(json.dumps(payload).encode() + b"\n")
        return json.loads(_read_line(sock.makefile("rb")))
    except socket.timeout:
        raise AgentUnavailable(f"the agent at {path} did not answer within {timeout_s:g} s") from None
    finally:
        sock.close()


def stream(path: str, payload: dict[str, Any], timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
    sock = _connect(path, 10.0)
    sock.settimeout(timeout_s)
    try:
        sock.sendall(json.dumps(payload).encode() + b"\n")
        lines = sock.makefile("rb")
        while True:
            line = lines.readline()
            if not line:
                return
            yield json.loads(line)
    finally:
        sock.close()


def _read_line(handle) -> bytes:
    line = handle.readline()
    if not line:
        raise AgentUnavailable("the agent closed the connection without answering")
    return line
