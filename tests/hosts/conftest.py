"""Fixtures for the real-hosts stage (scripts/ansible_checks.sh hosts): a host lab (hanode.lab.hosts) whose
nodes are Debian 12 and 13 hosts with systemd as PID 1 and sshd, reached over SSH like production hosts.

Images are built once with mmdebstrap and cached ($HANODE_HOSTLAB_CACHE, else <repo>/.cache/hostlab).
Every lab has a random prefix and is removed at the end (its logs are kept when a test failed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "agent" / "src"))

from hanode.lab import netns  # noqa: E402
from hanode.lab.hosts.fleet import HostLab  # noqa: E402
from hanode.lab.lab import created_prefixes  # noqa: E402

_FAILED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hosts: runs against the host lab's real systemd hosts over SSH")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        item.session.stash[_FAILED] = True
    return report


@pytest.fixture(scope="module")
def host_lab_factory(request: pytest.FixtureRequest):
    """make(node_os=(...), clients=1, real_servers=2) -> an up HostLab, removed after the module."""
    if os.geteuid() != 0:
        pytest.fail("the host lab needs root (namespaces, nspawn, cgroups)", pytrace=False)
    labs: list[HostLab] = []

    def make(node_os=("debian12", "debian13", "debian13"), clients: int = 1, real_servers: int = 2, **kwargs) -> HostLab:
        lab = HostLab(node_os, clients, real_servers, real_server_gateway="203.0.113.254", **kwargs)
        labs.append(lab)
        lab.up()
        print(f"\nMEASURE host lab {lab.prefix}: images {lab.timings['images_s']:.1f} s, "
              f"namespaces + hosts booted to SSH {lab.timings['machines_s']:.1f} s")
        return lab

    yield make
    keep = request.session.stash.get(_FAILED, False)
    for lab in reversed(labs):
        lab.close(keep_logs=keep)
        if keep:
            print(f"\nhost lab {lab.prefix}: logs kept under {lab.dir}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaked = [ns for ns in netns.names() if ns.rsplit("-", 1)[0] in created_prefixes()]
    if leaked:
        print(f"\nhost lab leak check: namespaces left behind: {' '.join(leaked)}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
