"""use_ipvlan where the kernel has ipvlan (this host's has not): tests/integration/uml runs inside Debian's
User-Mode Linux kernel (scripts/uml_run.py, see test_ipvs_uml.py); and on this host check-config refuses it,
naming why."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from test_ipvs_uml import REPO, failure, uml, uml_lines
from hanode.lvs import caps

pytestmark = pytest.mark.netns


def test_ipvlan_suite_passes_inside_uml():
    rc, output = uml(["--env", "HANODE_LAB_DIR=/tmp/hanode-lab", "--", "-q", "-rA", "tests/integration/uml"],
                     timeout_s=600)
    passed = re.findall(r"^PASSED (\S+)", output, flags=re.MULTILINE)
    print(f"\n{uml_lines(output)}\nipvlan suite inside UML: {len(passed)} passed")
    assert rc == 0, failure(rc, output, "the ipvlan suite inside UML")
    assert passed == ["tests/integration/uml/test_vrrp_ipvlan.py::test_ipvlan_instances_fail_over"], output[-8000:]


def test_check_config_refuses_use_ipvlan_on_a_host_without_ipvlan(tmp_path):
    available, why = caps.driver_available("ipvlan", "CONFIG_IPVLAN")
    assert not available, f"this host has ipvlan ({why}): the refusal cannot be shown here"
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"vrrp_instances": {"VI_1": {
        "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddresses": ["198.51.100.100/24"],
        "use_ipvlan": "ipv51 198.51.100.51/24"}}}))
    path.chmod(0o600)
    proc = subprocess.run([sys.executable, "-m", "hanode.cli.main", "check-config", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=REPO, check=False)
    assert proc.returncode == 1
    assert proc.stdout.strip() == (f"vrrp_instances.VI_1.use_ipvlan: needs ipvlan interfaces, which this host cannot "
                                   f"create: {why}")
