"""Fixtures for tests that run real things in network namespaces.

- `lab_factory(nodes=2, clients=1, real_servers=0, **kwargs)` -> an up hanode.lab Lab, torn down at the
  end of the test; when the test fails the lab's logs are kept and their directory is named in the
  failure report ("hanode lab" section).
- `lab`: lab_factory() with the defaults.
- `lab_session`: `track(prefix)` for labs made by child processes, so the leak check covers them.
- At session start labs left by dead processes are cleaned; at session end the run fails if a
  namespace of a lab made by this session still exists.
Tests using them are marked `@pytest.mark.netns`; without root they fail, they are never skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("hanode") is None:  # running from a checkout whose agent is not installed in this Python
    sys.path.insert(0, str(REPO / "agent" / "src"))

from hanode.lab import netns, registry  # noqa: E402
from hanode.lab.lab import Lab, created_prefixes  # noqa: E402

_LAB_KEY = pytest.StashKey[list]()
_FAILED_KEY = pytest.StashKey[bool]()
_SESSION_PREFIXES = pytest.StashKey[set]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netns: needs root and builds network namespaces (hanode.lab)")
    config.stash[_SESSION_PREFIXES] = set()


def _requirements_problem() -> str | None:
    if os.geteuid() != 0:
        return "namespace tests need root (network namespaces, veth, nftables)"
    missing = [tool for tool in ("ip", "nft", "curl", "ping") if shutil.which(tool) is None]
    if missing:
        return f"namespace tests need these commands: {', '.join(missing)} (run `make setup`)"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() != 0:
        return
    try:
        stale = registry.clean(all_labs=False)
    except RuntimeError as exc:
        print(f"\nhanode lab: could not clean labs left by dead processes: {exc}")
        return
    if stale:
        print(f"\nhanode lab: removed labs left by dead processes: {', '.join(stale)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    labs = item.stash.get(_LAB_KEY, [])
    if report.failed and labs:
        item.stash[_FAILED_KEY] = True
        if report.when != "teardown":
            dirs = "\n".join(f"  {lab.prefix}: {lab.dir}" for lab in labs if lab.prefix)
            report.sections.append(("hanode lab", f"lab logs kept under:\n{dirs}"))
    return report


class LabSession:
    def __init__(self, prefixes: set[str]):
        self.prefixes = prefixes

    def track(self, prefix: str) -> None:
        self.prefixes.add(prefix)


@pytest.fixture(scope="session")
def lab_session(request: pytest.FixtureRequest) -> LabSession:
    return LabSession(request.config.stash[_SESSION_PREFIXES])


@pytest.fixture
def lab_factory(request: pytest.FixtureRequest, lab_session: LabSession):
    problem = _requirements_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    labs: list[Lab] = []
    request.node.stash[_LAB_KEY] = labs

    def make(nodes: int = 2, clients: int = 1, real_servers: int = 0, **kwargs) -> Lab:
        lab = Lab(nodes, clients, real_servers, **kwargs)
        labs.append(lab)
        lab.up()
        lab_session.track(lab.prefix)
        return lab

    yield make
    keep = request.node.stash.get(_FAILED_KEY, False)
    errors = []
    for lab in reversed(labs):
        try:
            lab.close(keep_logs=keep or lab.keep_logs)
        except Exception as exc:
            errors.append(f"{lab.prefix}: {exc}")
    if errors:
        pytest.fail("lab teardown failed: " + "; ".join(errors), pytrace=False)


@pytest.fixture
def lab(lab_factory) -> Lab:
    return lab_factory()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    prefixes = session.config.stash.get(_SESSION_PREFIXES, set()) | created_prefixes()
    if not prefixes or os.geteuid() != 0:
        return
    leaked = [ns for ns in netns.names() if ns.rsplit("-", 1)[0] in prefixes]
    if not leaked:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"hanode lab: namespaces of this session's labs were left behind: {' '.join(leaked)}"
    if reporter:
        reporter.ensure_newline()
        reporter.write_sep("=", "hanode lab leak check failed", red=True)
        reporter.write_line(message, red=True)
    else:
        print(message, file=sys.stderr)
    for prefix in sorted({ns.rsplit("-", 1)[0] for ns in leaked}):
        record = registry.load(prefix)
        if record is not None:
            registry.destroy(record)
    registry.destroy_namespaces([ns for ns in leaked if netns.exists(ns)])
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
