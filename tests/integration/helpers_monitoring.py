"""A real Prometheus server (Debian's package) in a lab host, scraping the lab's agents with the monitoring
mixin's rules rendered for a fast lab (1 s scrape and evaluation, short `for:` and windows), and its HTTP API
read from inside the host with curl. Started by the test, its data in the host's own directory, stopped by
its PID at the end. Waits are on conditions with deadlines."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import yaml

from hanode.lab.lab import Host, Lab
from hanode.lab.procs import ProcessHandle, wait_for

MIXIN = Path(__file__).resolve().parents[2] / "monitoring"
PORT = 9090
JOB = "hanode"
# The mixin's values for a lab: everything fires within seconds and windows pass within 20 s.
FAST_VALUES = {
    "selector": f'job="{JOB}"', "no_master_for": "6s", "split_brain_for": "2s", "flap_window": "20s",
    "flap_transitions": 5, "flapping_for": "0s", "fault_for": "2s", "agent_down_for": "2s",
    "agents_absent_for": "2s", "reload_failed_for": "0s", "real_server_down_for": "2s", "quorum_lost_for": "2s",
    "checker_window": "20s", "checker_late_ratio": 0.02, "checker_late_for": "0s", "bad_packet_window": "20s",
    "auth_failures": 0, "vrid_collisions": 0, "bad_packets": 2, "bad_packets_for": "0s",
}


def load_mixin_module(name: str):
    spec = importlib.util.spec_from_file_location(f"hanode_mixin_{name}", MIXIN / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Prometheus:
    def __init__(self, lab: Lab, host: Host, targets: list[str]):
        self.lab, self.host = lab, host
        self.dir = host.dir / "prometheus"
        self.url = f"http://{host.ipv4}:{PORT}"
        self.targets_file = self.dir / "targets.json"
        self.targets = targets
        self.handle: ProcessHandle | None = None

    def start(self, timeout: float = 30.0) -> Prometheus:
        self.dir.mkdir()
        values = self.dir / "values.yaml"
        values.write_text(yaml.safe_dump(FAST_VALUES))
        if load_mixin_module("generate").main(["--values", str(values), "--output", str(self.dir)]) != 0:
            raise AssertionError("the mixin did not render with the lab's values")
        self.set_targets(self.targets)
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
                  "rule_files": [str(self.dir / "alerts.yaml"), str(self.dir / "rules.yaml")],
                  "scrape_configs": [{"job_name": JOB, "file_sd_configs": [
                      {"files": [str(self.targets_file)], "refresh_interval": "1s"}]}]}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        argv = [shutil.which("prometheus") or "/usr/bin/prometheus", f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address={self.host.ipv4}:{PORT}",
                "--storage.tsdb.retention.time=1h", "--log.level=info"]
        self.handle = self.lab.popen(self.host, argv, log_name="prometheus")

        def ready() -> bool:
            if not self.handle.running:
                raise self.handle.failure(f"prometheus exited with {self.handle.returncode}")
            proc = self._curl("/-/ready", check=False)
            return proc.returncode == 0 and "Ready" in proc.stdout
        wait_for(ready, timeout, interval=0.2, what="Prometheus to be ready")
        return self

    def stop(self) -> None:
        if self.handle and self.handle.running:
            self.handle.stop(timeout=15)

    def set_targets(self, targets: list[str]) -> None:
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": targets}] if targets else []))
        os.replace(tmp, self.targets_file)

    # ----- the HTTP API ---------------------------------------------------------------------------

    def _curl(self, path: str, params: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        return self.lab.run(self.host, ["curl", "-sS", "-g", "--noproxy", "*", "-m", "5", url], check=check, timeout=15)

    def api(self, path: str, **params) -> dict:
        reply = json.loads(self._curl(f"/api/v1/{path}", params).stdout)
        assert reply.get("status") == "success", reply
        return reply["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def alerts(self, name: str, **labels) -> list[dict]:
        return [a for a in self.api("alerts")["alerts"]
                if a["labels"].get("alertname") == name and all(a["labels"].get(k) == v for k, v in labels.items())]

    def firing(self, name: str, **labels) -> dict | None:
        return next((a for a in self.alerts(name, **labels) if a["state"] == "firing"), None)

    def wait_firing(self, name: str, since: float, timeout: float = 30.0, **labels) -> float:
        """Waits until the alert (with these labels) is firing; seconds since `since`."""
        wait_for(lambda: self.firing(name, **labels), timeout, interval=0.2, what=f"{name} {labels} to fire")
        return time.monotonic() - since

    def wait_resolved(self, name: str, since: float, timeout: float = 40.0, **labels) -> float:
        wait_for(lambda: not self.alerts(name, **labels), timeout, interval=0.2, what=f"{name} {labels} to resolve")
        return time.monotonic() - since

    def wait_targets_up(self, count: int, timeout: float = 30.0) -> None:
        wait_for(lambda: len(self.query(f'up{{job="{JOB}"}} == 1')) == count, timeout, interval=0.2,
                 what=f"{count} targets up in Prometheus")
