"""A stand-in for the agent's control socket in unit tests: a real UNIX socket speaking JSON lines, with a
status document the test controls and a log of every request. (Integration tests use real agents.)"""

from __future__ import annotations

import hashlib
import json
import socketserver
import threading
from pathlib import Path


class StubAgent:
    def __init__(self, path: Path, instances: dict | None = None, config_path: Path | None = None):
        self.path = str(path)
        self.config_path = config_path
        self.requests: list[dict] = []
        self.refuse_reload: list[str] | None = None
        digest = self._file_digest()
        self.status = {"schema_version": 1, "instances": instances or {},
                       "agent": {"config": {"digest": digest, "applied_digest": digest, "generation": 1}}}
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                for line in self.rfile:
                    request = json.loads(line)
                    stub.requests.append(request)
                    self.wfile.write(json.dumps(stub.answer(request)).encode() + b"\n")

        self.server = socketserver.ThreadingUnixStreamServer(self.path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _file_digest(self):
        if self.config_path and self.config_path.exists():
            return hashlib.sha256(self.config_path.read_bytes()).hexdigest()
        return None

    def answer(self, request: dict) -> dict:
        cmd = request["cmd"]
        if cmd == "status":
            return {"ok": True, "status": self.status}
        if cmd == "reload":
            if self.refuse_reload:
                return {"ok": False, "errors": self.refuse_reload, "digest": self.status["agent"]["config"]["digest"]}
            digest = self._file_digest()
            config = self.status["agent"]["config"]
            changed = digest != config["digest"]
            config.update(digest=digest, applied_digest=digest, generation=config["generation"] + changed)
            return {"ok": True, "changed": changed, "digest": digest}
        if cmd in ("drain", "enable"):
            names = request.get("instances") or list(self.status["instances"])
            for name in names:
                inst = self.status["instances"][name]
                inst["drained"] = cmd == "drain"
                if cmd == "drain" and inst["state"] == "MASTER":
                    inst.update(state="BACKUP", master_address=inst.get("peer_address"))
            return {"ok": True}
        if cmd in ("rs_disable", "rs_enable"):
            for vs in self.status.get("virtual_servers") or []:
                for rs in vs["real_servers"]:
                    if rs["name"] == request.get("real_server"):
                        rs["health"] = "disabled" if cmd == "rs_disable" else "up"
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    def commands(self):
        return [r["cmd"] for r in self.requests if r["cmd"] != "status"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def instance(state="BACKUP", drained=False, source="198.51.100.11", master=None, peer="198.51.100.12"):
    return {"state": state, "priority": 100, "effective_priority": 100, "master_address": master,
            "source_address": source, "vips": ["198.51.100.100/24"], "drained": drained, "fault_reasons": [],
            "peer_address": peer}
