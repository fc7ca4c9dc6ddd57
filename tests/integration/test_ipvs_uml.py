"""Runs tests/integration/ipvs inside Debian's User-Mode Linux kernel (real IPVS) with scripts/uml_run.py,
so that `pytest tests/integration` covers the IPVS backend although the host kernel has no IPVS.
The first run downloads the user-mode-linux package into .cache/uml (apt-get download, ~40 MB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.netns
def test_ipvs_suite_passes_inside_uml():
    if os.geteuid() != 0:
        pytest.fail("the UML IPVS suite needs root (namespaces inside the guest)", pytrace=False)
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "uml_run.py"), "--timeout", "900", "--",
                           "-q", "-rA", "tests/integration/ipvs"],
                          capture_output=True, text=True, timeout=1000, cwd=REPO, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"IPVS suite inside UML failed (exit {proc.returncode}):\n{output[-20000:]}"
    assert " passed" in output and "PASSED" in output, output[-5000:]
