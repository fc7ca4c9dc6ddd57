"""Every sample keepalived.conf imports with the real `hanode import-keepalived`, reports exactly what it does not
carry over, and `hanode check-config` (file security included) accepts the result.

Scripts the samples name under /usr/local/{bin,sbin} or /etc/keepalived/scripts are created as stubs in the test's
own root-owned directory (the sample text is changed only in those paths), since check-config refuses a config
whose scripts are missing or writable by anyone but root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hanode.lab.procs import hanode_argv, python_env

SAMPLES = Path(__file__).parent / "keepalived_configs"
SCRIPT_DIRS = re.compile(r"/usr/local/s?bin/|/etc/keepalived/scripts/")

# sample -> (extra arguments, keywords reported as not carried over as "line:keyword:category")
EXPECTED = {
    "quickstart/node1.conf": ((), []),
    "quickstart/node2.conf": ((), []),
    "unicast-tracking/node1.conf": ((), []),
    "unicast-tracking/node2.conf": ((), []),
    "reverse-weights/node1.conf": ((), []),
    "reverse-weights/node2.conf": ((), []),
    "sync-group/node1.conf": ((), []),
    "sync-group/node2.conf": ((), []),
    "lvs-nat-http/keepalived.conf": ((), []),
    "kolla/keepalived.conf": ((), []),
    "include-tree/keepalived.conf": ((), []),
    "debian/keepalived.conf.sample": ((), ["5:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.vrrp": ((), ["5:notification_email acassen:unsupported",
                                         "32:virtual_ipaddress 192.168.200.18 label eth0:1:no meaning here"]),
    "debian/keepalived.conf.vrrp.sync": ((), []),
    "debian/keepalived.conf.vrrp.scripts": ((), []),
    "debian/keepalived.conf.vrrp.localcheck": ((), []),
    "debian/keepalived.conf.vrrp.lvs_syncd": ((), ["3:vrrp_sync_group VG1:invalid", "4:VI_2:unsupported",
                                                   "5:VI_3:unsupported", "11:lvs_sync_daemon_interface:deprecated"]),
    "debian/keepalived.conf.vrrp.routes": ((), []),
    # the sample's "192.168.100./24" is no prefix: keepalived drops the rule too ("Invalid rule to address")
    "debian/keepalived.conf.vrrp.rules": ((), ["11:static_rules to 192.168.100./24 table 1:unsupported",
                                               "26:virtual_rules to 192.168.200./24 table 2:unsupported"]),
    "debian/keepalived.conf.vrrp.static_ipaddress": ((), []),
    "debian/keepalived.conf.track_interface": ((), []),
    "debian/keepalived.conf.conditional_conf": (("--config-id", "high"), ["3:net_namespace:no meaning here"]),
    "debian/keepalived.conf.HTTP_GET.port": ((), ["5:notification_email acassen:unsupported"]),
    # AH is carried; with AH keepalived starts a state MASTER instance as BACKUP, and so does the import
    "debian/keepalived.conf.SSL_GET": ((), ["5:notification_email acassen:unsupported", "14:state:no meaning here"]),
    "debian/keepalived.conf.status_code": ((), ["6:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.virtualhost": ((), ["5:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.inhibit": ((), ["5:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.misc_check": ((), ["6:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.misc_check_arg": ((), ["5:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.PING_CHECK": ((), ["6:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.UDP_CHECK": ((), ["6:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.SMTP_CHECK": ((), ["17:notification_email acassen:unsupported"]),
    "debian/keepalived.conf.quorum": ((), []),
    "debian/keepalived.conf.fwmark": ((), []),
    "debian/keepalived.conf.IPv6": ((), []),
    "debian/keepalived.conf.virtual_server_group": ((), ["5:notification_email acassen:unsupported"]),
}


def test_every_sample_has_an_expectation():
    on_disk = {str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*.conf*") if "conf.d" not in p.parts}
    assert on_disk == set(EXPECTED)


def stage(tmp_path: Path, sample: str) -> Path:
    """Copies the sample's directory; script paths point at stubs in tmp_path/bin, @STATE@ at tmp_path/state."""
    src_dir = (SAMPLES / sample).parent
    work = tmp_path / "etc"
    shutil.copytree(src_dir, work)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "state").mkdir()
    for path in work.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text()
        for name in set(re.findall(r"(?:/usr/local/s?bin/|/etc/keepalived/scripts/)([\w.-]+)", text)):
            stub = bindir / name
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
        path.write_text(SCRIPT_DIRS.sub(f"{bindir}/", text).replace("@STATE@", str(tmp_path / "state")))
    main = work / Path(sample).name
    if "script_user" not in main.read_text():  # the stubs run as root (no keepalived_script user here): say so
        with main.open("a") as handle:          # at the end: the reported line numbers stay the sample's
            handle.write("\nglobal_defs {\n    script_user root\n}\n")
    return main


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_imports_and_check_config_accepts_it(sample, tmp_path):
    args, expected = EXPECTED[sample]
    conf = stage(tmp_path, sample)
    out = tmp_path / "agent.yaml"
    proc = subprocess.run(hanode_argv() + ["import-keepalived", str(conf), "-o", str(out), *args],
                          capture_output=True, text=True, env=python_env(), timeout=60, check=False)
    reported = []
    for line in proc.stderr.splitlines():
        match = re.match(r"^(.+?):(\d+): (.+?): (unsupported|deprecated|no meaning here|invalid): ", line)
        if match:
            file = os.path.relpath(match.group(1), conf.parent)
            where = match.group(2) if file == conf.name else f"{file}:{match.group(2)}"
            reported.append(f"{where}:{match.group(3)}:{match.group(4)}")
    assert reported == expected, proc.stderr
    assert proc.returncode == (3 if expected else 0), proc.stderr
    assert "would refuse" not in proc.stderr
    check = subprocess.run(hanode_argv() + ["check-config", str(out)], capture_output=True, text=True,
                           env=python_env(), timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith(f"{out}: OK")
    assert yaml.safe_load(out.read_text())   # the YAML is what check-config read, and it is not empty
