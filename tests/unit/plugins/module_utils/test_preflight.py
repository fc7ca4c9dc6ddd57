"""The preflight's needs and problems (pure), the host platform tag, and the wheelhouse's pip target for a tag:
each unmet need names what is needed and what the host has."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ansible_collections.hanode.fleet.plugins.module_utils import _preflight

ROOT = Path(__file__).resolve().parents[4]
_spec = importlib.util.spec_from_file_location("build_wheelhouse", ROOT / "roles/ha_node/files/build_wheelhouse.py")
build_wheelhouse = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_wheelhouse)

DEBIAN13 = {"version": [3, 13, 5], "implementation": "cpython", "machine": "x86_64", "libc": "glibc",
            "libc_version": "2.41", "venv": True}


def wanted(**extra):
    base = {"python": "/usr/bin/python3", "min_python": "3.11", "install_dir": "/opt/hanode", "min_free_mb": 150,
            "service_mode": "auto", "lb_backend": "", "virtual_servers": 0, "lb_algos": []}
    base.update(extra)
    return base


def observed(**extra):
    base = {"python": dict(DEBIAN13), "nft": "/usr/sbin/nft", "kernel": "6.12.1", "modules": {}, "systemd": True,
            "pid1": "systemd", "free_mb": 4000, "free_path": "/opt"}
    base.update(extra)
    return base


@pytest.mark.parametrize("probe,tag", [
    (DEBIAN13, "cp313-glibc2.41-x86_64"),
    (dict(DEBIAN13, version=[3, 11, 2], libc_version="2.36"), "cp311-glibc2.36-x86_64"),
    (dict(DEBIAN13, libc="musl", libc_version="1.2.5", machine="aarch64"), "cp313-musl1.2-aarch64"),
    (dict(DEBIAN13, implementation="pypy"), None),
    (dict(DEBIAN13, libc="", libc_version=""), None),
])
def test_platform_tag(probe, tag):
    assert _preflight.platform_tag(probe) == tag


def test_a_host_with_everything_has_no_problems():
    assert _preflight.problems(observed(), wanted()) == []


@pytest.mark.parametrize("obs,want,expected", [
    (observed(python=dict(DEBIAN13, version=[3, 9, 2])), wanted(),
     "Python 3.11 or later for the agent: /usr/bin/python3 is 3.9.2"),
    (observed(python=None, python_error="No such file"), wanted(python="/usr/bin/python3.12"),
     "Python: /usr/bin/python3.12 does not run (No such file)"),
    (observed(python=dict(DEBIAN13, venv=False)), wanted(), "Python's venv module: /usr/bin/python3 has none"),
    (observed(nft=None), wanted(lb_backend="nftables", virtual_servers=1), "the nft binary (lb_backend nftables"),
    (observed(nft_error="Operation not permitted"), wanted(lb_backend="nftables", virtual_servers=1),
     "nftables in the kernel (lb_backend nftables): nft list tables fails: Operation not permitted"),
    (observed(modules={"ip_vs": "unknown", "ip_vs_wrr": "unknown"}), wanted(lb_backend="ipvs", virtual_servers=2, lb_algos=["wrr"]),
     "kernel module ip_vs (lb_backend ipvs): neither loaded, built in nor in /lib/modules/6.12.1"),
    (observed(modules={"ip_vs": "loaded", "ip_vs_sh": "missing"}), wanted(lb_backend="ipvs", virtual_servers=1, lb_algos=["sh"]),
     "kernel module ip_vs_sh (lb_algo sh)"),
    (observed(systemd=False, pid1="process_api"), wanted(),
     "systemd (ha_node_service_mode auto; PID 1 is process_api): set ha_node_service_mode: lab"),
    (observed(free_mb=20), wanted(), "150 MiB free for /opt (has 20 MiB)"),
])
def test_each_unmet_need_is_named(obs, want, expected):
    found = _preflight.problems(obs, want)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_lab_mode_asked_for_needs_no_systemd_and_vrrp_alone_needs_no_nft_or_modules():
    assert _preflight.problems(observed(systemd=False, nft=None), wanted(service_mode="lab")) == []
    assert _preflight.effective_service_mode("auto", True) == "systemd"
    assert _preflight.needs("ipvs", 0, ["rr"]) == {"nft": False, "modules": []}
    assert _preflight.needs("nftables", 1, ["rr"]) == {"nft": True, "modules": []}
    assert _preflight.needs("ipvs", 1, ["wrr", "rr", "wrr"])["modules"] == [
        ("ip_vs", "lb_backend ipvs"), ("ip_vs_rr", "lb_algo rr"), ("ip_vs_wrr", "lb_algo wrr")]


@pytest.mark.parametrize("name,loaded,builtin,loadable,state", [
    ("ip_vs", True, None, set(), "loaded"),
    ("ip_vs", False, None, set(), "unknown"),
    ("ip_vs", False, {"ip_vs"}, set(), "builtin"),
    ("ip_vs", False, set(), {"ip_vs"}, "loadable"),
    ("ip_vs", False, set(), set(), "missing"),
])
def test_module_state(name, loaded, builtin, loadable, state):
    assert _preflight.module_state(name, loaded, builtin, loadable) == state


def test_pip_target_for_a_glibc_host():
    args = build_wheelhouse.pip_target_args("cp313-glibc2.41-x86_64")
    assert args[:6] == ["--python-version", "3.13", "--implementation", "cp", "--abi", "cp313"]
    platforms = args[7::2]
    assert platforms[0] == "manylinux_2_41_x86_64" and platforms[-1] == "manylinux1_x86_64"
    assert "manylinux2014_x86_64" in platforms and "manylinux_2_17_x86_64" in platforms
    assert all(a == "--platform" for a in args[6::2])


def test_pip_target_for_a_musl_host_and_a_bad_tag():
    args = build_wheelhouse.pip_target_args("cp312-musl1.2-aarch64")
    assert args[7::2] == ["musllinux_1_2_aarch64", "musllinux_1_1_aarch64", "musllinux_1_0_aarch64"]
    with pytest.raises(ValueError, match="unknown platform tag"):
        build_wheelhouse.pip_target_args("py3-any")
