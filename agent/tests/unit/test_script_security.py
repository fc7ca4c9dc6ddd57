"""Script security on resolved paths, and who runs scripts (issue 15): real files, links and users (root)."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from hanode.config import security
from hanode.config.parse import parse_config
from hanode.config.security import (ScriptRefused, check_config_security, prepare_script, resolve_script,
                                    script_problem)
from hanode.vrrp.scripts import run_command

NOBODY = 65534
CONFIG_FILE = "/etc/hostname"   # a root-owned file: only the scripts' problems are reported
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def make_script(path: Path, body: str = "exit 0", mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


@pytest.fixture
def root() -> Path:
    """A root-owned 0755 directory in /tmp (sticky), reachable by other users (pytest's tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="hanode-scriptsec-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_a_root_owned_link_into_a_directory_a_user_owns_is_refused_naming_that_directory(root):
    """The hole of issue 15: the abspath walk saw only the link's side (root's) and the target file (root's)."""
    theirs = root / "theirs"
    target = make_script(theirs / "check.sh")
    os.chown(theirs, NOBODY, NOBODY)                      # they can swap check.sh for anything
    safe = root / "safe"
    safe.mkdir(mode=0o755)
    (safe / "check.sh").symlink_to(target)
    assert script_problem(str(safe / "check.sh")) == (
        f"insecure script: {theirs} is owned by uid {NOBODY} and writable by it (reached through "
        f"{safe / 'check.sh'} -> {target}) (enable_script_security refuses scripts non-root users can change)")


def test_every_link_of_a_chain_is_followed_and_checked(root):
    real = make_script(root / "real" / "check.sh")
    (root / "hop").mkdir()
    (root / "hop").chmod(0o777)                           # the second link sits in a world-writable directory
    (root / "hop" / "link2").symlink_to("../real/check.sh")
    (root / "bin").mkdir(mode=0o755)
    (root / "bin" / "check").symlink_to(root / "hop" / "link2")
    problem = script_problem(str(root / "bin" / "check"))
    assert problem.startswith(f"insecure script: {root / 'hop'} is writable by everyone (reached through "
                              f"{root / 'bin' / 'check'} -> {root / 'hop' / 'link2'})")
    (root / "hop").chmod(0o755)
    assert script_problem(str(root / "bin" / "check")) is None
    assert resolve_script(str(root / "bin" / "check")) == str(real)


def test_a_link_owned_by_a_user_or_a_loop_is_refused(root):
    make_script(root / "check.sh")
    link = root / "theirs.sh"
    link.symlink_to(root / "check.sh")
    os.lchown(link, NOBODY, NOBODY)                       # in a sticky directory they could replace it
    assert script_problem(str(link)).startswith(f"insecure script: symlink {link} is owned by uid {NOBODY}")
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    assert "more than 40 symlinks" in script_problem(str(root / "a"))


def test_group_root_and_sticky_directories_are_allowed_as_keepalived_does(root):
    sticky = root / "sticky"
    script = make_script(sticky / "check.sh", mode=0o775)  # group root may write
    sticky.chmod(0o777 | stat.S_ISVTX)
    assert script_problem(str(script)) is None


def test_without_a_script_user_scripts_run_as_keepalived_script_when_it_exists(root, monkeypatch):
    script = make_script(root / "scripts" / "check.sh")
    config, _problems = parse_config({"vrrp_scripts": {"chk": str(script)}})
    monkeypatch.setattr(security, "DEFAULT_SCRIPT_USER", "nobody")   # a user that exists, as keepalived_script
    assert check_config_security(CONFIG_FILE, config) == []
    prepared = prepare_script([str(script), "--x"], None)
    assert (prepared.user.name, prepared.popen_identity()["user"]) == ("nobody", NOBODY)
    assert prepared.env["HOME"] == prepared.user.home and prepared.env["USER"] == "nobody"
    (root / "scripts").chmod(0o700)                        # nobody can no longer reach it
    assert [str(p) for p in check_config_security(CONFIG_FILE, config)] == [
        f"vrrp_scripts.chk.script: {root / 'scripts'} cannot be searched by user nobody (mode 0700)"]


def test_without_a_script_user_or_keepalived_script_scripts_are_refused_unless_root_is_asked_for(root, monkeypatch):
    script = make_script(root / "check.sh")
    monkeypatch.setattr(security, "DEFAULT_SCRIPT_USER", "hanode-no-such-user")
    raw = {"vrrp_scripts": {"chk": str(script)},
           "vrrp_instances": {"VI_1": {"interface": "eth0", "virtual_router_id": 51, "notify_master": str(script),
                                       "virtual_ipaddresses": ["198.51.100.100/24"], "track_scripts": ["chk"]}}}
    refused = check_config_security(CONFIG_FILE, parse_config(raw)[0])
    assert [(p.path, p.warning) for p in refused] == [("script_user", False)]
    assert str(refused[0]) == (
        "script_user: vrrp_scripts.chk.script, vrrp_instances.VI_1.notify_master would run as root: no "
        "script_user is set and the user hanode-no-such-user does not exist: hanode does not run scripts as root "
        "unless told to (create the user hanode-no-such-user, as for keepalived, or set script_user; "
        "`script_user: root` runs them as root)")
    with pytest.raises(ScriptRefused, match="no script_user is set"):
        prepare_script([str(script)], None)
    asked = check_config_security(CONFIG_FILE, parse_config(dict(raw, script_user="root"))[0])
    assert [(p.path, p.warning) for p in asked] == [("script_user", True)]
    assert "run as root (script_user or the script's user says so)" in str(asked[0])
    own = dict(raw, vrrp_scripts={"chk": {"script": str(script), "user": "no-such-user-hanode"}}, script_user="root")
    assert [str(p) for p in check_config_security(CONFIG_FILE, parse_config(own)[0]) if not p.warning] == [
        "vrrp_scripts.chk.user: user 'no-such-user-hanode' does not exist"]


def test_a_script_made_unsafe_after_the_config_loaded_is_refused_at_run_time(root):
    """Checked again before every run: a directory that became writable (or a swapped link) stops it."""
    marker = root / "ran"
    script = make_script(root / "dir" / "check.sh", f"touch {marker}")
    ok = asyncio.run(run_command([str(script)], 5.0, "root"))
    assert ok.success and marker.exists()
    marker.unlink()
    (root / "dir").chmod(0o777)
    refused = asyncio.run(run_command([str(script)], 5.0, "root"))
    assert not refused.success and not marker.exists()
    assert refused.error == (f"refused: insecure script {script}: {root / 'dir'} is writable by everyone")
    allowed = asyncio.run(run_command([str(script)], 5.0, "root", secure=False))   # enable_script_security off
    assert allowed.success and marker.exists()


def test_the_checked_file_is_what_runs(root):
    """The resolved file is executed, argv[0] as written: a link swapped after the check is not followed."""
    out = root / "argv0"
    real = make_script(root / "real.sh", f'echo "$0" > {out}')
    (root / "link.sh").symlink_to(real)
    prepared = prepare_script([str(root / "link.sh")], "root")
    assert prepared.executable == str(real) and prepared.popen_identity() == {}
    assert asyncio.run(run_command([str(root / "link.sh")], 5.0, "root")).success
    assert out.read_text().strip() == str(real)


def test_start_up_fifo_reader_and_rx_lower_pri_scripts_are_checked_like_every_script(root):
    safe, unsafe = make_script(root / "ok.sh"), make_script(root / "open.sh", mode=0o777)
    raw = {"script_user": "root", "notify_fifo": str(root / "n.fifo"), "notify_fifo_script": str(unsafe),
           "startup_script": str(unsafe), "shutdown_script": f"{safe} --stop",
           "vrrp_instances": {"VI_1": {"interface": "eth0", "virtual_router_id": 51,
                                       "virtual_ipaddresses": ["198.51.100.100/24"],
                                       "notify_master_rx_lower_pri": str(unsafe)}}}
    problems = [p for p in check_config_security(CONFIG_FILE, parse_config(raw)[0]) if not p.warning]
    assert sorted(p.path for p in problems) == ["notify_fifo_script", "startup_script",
                                                "vrrp_instances.VI_1.notify_master_rx_lower_pri"]
    assert all("writable" in p.message for p in problems)
