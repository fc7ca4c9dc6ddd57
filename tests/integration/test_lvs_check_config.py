"""`hanode check-config` on load-balancer configs: the real command, the backend limits named by field."""

from __future__ import annotations

import subprocess

import yaml

from hanode.lab.procs import hanode_argv, python_env
from hanode.lvs import caps

VS = {"address": "198.51.100.100", "port": 80, "lb_algo": "wlc", "lb_kind": "NAT",
      "real_servers": [{"address": "203.0.113.11", "port": 8080, "checks": [{"type": "TCP_CHECK"}]}]}


def check_config(tmp_path, raw: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(raw))
    path.chmod(0o600)
    return subprocess.run([*hanode_argv(), "check-config", str(path)], capture_output=True, text=True,
                          timeout=60, env=python_env(), check=False)


def test_nftables_backend_refuses_wlc_naming_the_field(tmp_path):
    proc = check_config(tmp_path, {"lb_backend": "nftables", "virtual_servers": [VS]})
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "virtual_servers[0].lb_algo: wlc needs lb_backend: ipvs (nftables implements rr, wrr, sh, dh with lb_kind NAT)"]


def test_auto_validates_for_this_kernel(tmp_path):
    proc = check_config(tmp_path, {"lb_backend": "auto", "virtual_servers": [VS]})
    has_ipvs, why = caps.ipvs_available()
    if has_ipvs:
        assert proc.returncode == 0, proc.stdout
    else:
        assert proc.returncode == 1
        assert proc.stdout.strip() == (
            "virtual_servers[0].lb_algo: wlc needs lb_backend: ipvs (nftables implements rr, wrr, sh, dh with "
            f"lb_kind NAT); lb_backend auto uses nftables here because {why}")


def test_ipvs_backend_accepts_it(tmp_path):
    proc = check_config(tmp_path, {"lb_backend": "ipvs", "virtual_servers": [VS]})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 virtual servers" in proc.stdout
