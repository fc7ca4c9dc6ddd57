# -*- coding: utf-8 -*-
# Copyright: hanode contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to a running hanode agent over its UNIX control socket (JSON lines), stdlib only.

Requests: {"cmd": "status"} -> {"ok": true, "status": {...}}; {"cmd": "reload"} -> {"ok", "changed",
"digest", "errors"}; {"cmd": "drain"|"enable", "instances": [...]|null}; {"cmd": "rs_disable"|"rs_enable",
"virtual_server": ..., "real_server": ...}. The agent refuses any other field (docs/design.md, "Control protocol").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import time

DEFAULT_SOCKET = "/run/hanode/agent.sock"


class AgentError(Exception):
    """The agent is not there, did not answer in time, or refused the request."""


class AgentClient:
    def __init__(self, path=DEFAULT_SOCKET, timeout_s=10.0, clock=time.monotonic, sleep=time.sleep):
        self.path = path
        self.timeout_s = timeout_s
        self.clock = clock
        self.sleep = sleep

    def request(self, payload, timeout_s=None):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s or self.timeout_s)
        try:
            try:
                sock.connect(self.path)
            except (IOError, OSError) as exc:
                raise AgentError("no agent answers at %s: %s" % (self.path, getattr(exc, "strerror", None) or exc))
            sock.sendall(json.dumps(payload).encode("utf-8") + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            raise AgentError("the agent at %s did not answer %s within %g s" % (self.path, payload.get("cmd"), timeout_s or self.timeout_s))
        finally:
            sock.close()
        if not data.strip():
            raise AgentError("the agent at %s closed the connection without answering" % self.path)
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise AgentError("the agent at %s answered something that is not JSON: %s" % (self.path, exc))

    def running(self):
        try:
            self.status()
            return True
        except AgentError:
            return False

    def status(self):
        reply = self.request({"cmd": "status"})
        if not reply.get("ok"):
            raise AgentError("status refused: %s" % reply.get("error"))
        return reply["status"]

    def reload(self, timeout_s=60.0):
        return self.request({"cmd": "reload"}, timeout_s=timeout_s)

    def command(self, cmd, **arguments):
        payload = {"cmd": cmd}
        payload.update(arguments)
        reply = self.request(payload)
        if not reply.get("ok"):
            raise AgentError("%s refused: %s" % (cmd, reply.get("error") or "; ".join(reply.get("errors") or [])))
        return reply

    def wait_for(self, predicate, timeout_s, what, interval_s=0.1):
        """Polls status until predicate(status) is true; AgentError naming `what` at the deadline."""
        deadline = self.clock() + timeout_s
        last_error = None
        status = None
        while True:
            try:
                status = self.status()
                if predicate(status):
                    return status
            except AgentError as exc:
                last_error = exc
            if self.clock() >= deadline:
                detail = " (last error: %s)" % last_error if last_error else ""
                raise AgentError("timed out after %g s waiting for %s%s" % (timeout_s, what, detail))
            self.sleep(interval_s)


def config_digests(status):
    config = ((status or {}).get("agent") or {}).get("config") or {}
    return config.get("digest"), config.get("applied_digest")


def summary(status):
    """The part of a status a play wants to see: per instance state, priorities, master and VIPs."""
    keys = ("state", "priority", "effective_priority", "master_address", "vips", "drained", "fault_reasons")
    out = {}
    for name, inst in ((status or {}).get("instances") or {}).items():
        out[name] = dict((k, inst.get(k)) for k in keys)
    return out
