"""Who runs scripts, and scripts that could be swapped (issue 15), on real agents:

- With no script_user, vrrp_script, notify and MISC_CHECK run as `keepalived_script` when that user exists (the
  user is real for the agent: /etc/passwd and /etc/group with it are bound over the system's in a mount
  namespace of the agent's own, so other agents on this shared machine never see it; it goes with them).
- Without that user, a config with scripts is refused unless it says `script_user: root` (then warned about).
- A script reached through a symlink into a directory another user owns is refused at start, naming the script
  and the directory; a script whose path becomes unsafe while the agent runs is refused at its next run
  (its content swapped meanwhile never runs) and the instance that tracks it goes to FAULT.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from hanode.lab.procs import hanode_argv, python_env, wait_for
from helpers_vrrp import VIP4, events, inst, new_lab, script_dir, status, wait_state, write_script

pytestmark = pytest.mark.netns

SCRIPT_UID = 64_999          # keepalived_script's uid and gid in the agent's private /etc/passwd
NOBODY = 65534
V3 = {"version": 3, "advert_int": 0.3}


def _vrrp(script: str | None = None, notify: str | None = None, **top) -> dict:
    body = {"interface": "eth0", "virtual_router_id": 51, "priority": 150, "state": "BACKUP",
            "virtual_ipaddresses": [f"{VIP4}/24"], **V3}
    config = {"router_id": "n1", "vrrp_instances": {"VI_1": body}}
    if script:
        config["vrrp_scripts"] = {"chk": {"script": script, "interval": 0.3, "weight": 0}}
        body["track_scripts"] = ["chk"]
    if notify:
        body["notify_master"] = notify
    config.update(top)
    return config


def _private_users_wrapper(directory: Path) -> str:
    """A command line running hanode with keepalived_script in /etc/passwd and /etc/group, in its own mount
    namespace (bind mounts over copies of the system's files; gone with the namespace)."""
    passwd, group = directory / "passwd", directory / "group"
    passwd.write_text(Path("/etc/passwd").read_text()
                      + f"keepalived_script:x:{SCRIPT_UID}:{SCRIPT_UID}::/nonexistent:/usr/sbin/nologin\n")
    group.write_text(Path("/etc/group").read_text() + f"keepalived_script:x:{SCRIPT_UID}:\n")
    inner = f"mount --bind {passwd} /etc/passwd && mount --bind {group} /etc/group && exec \"$@\""
    return shlex.join(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", inner, "hanode-ns",
                       *hanode_argv()])


def test_scripts_run_as_keepalived_script_when_it_exists(lab_factory, monkeypatch):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    with script_dir() as directory:
        out = directory / "out"
        out.mkdir()
        os.chown(out, SCRIPT_UID, SCRIPT_UID)            # where the scripts say who they ran as
        check = write_script(directory, "check.sh", f'id -un > {out}/check; [ "$(id -u)" = {SCRIPT_UID} ]\n')
        notify = write_script(directory, "notify.sh", f"id -un > {out}/notify\n")
        misc = write_script(directory, "misc.sh", f'id -un > {out}/misc; [ "$(id -g)" = {SCRIPT_UID} ]\n')
        real_server = {"address": "203.0.113.50", "port": 80, "checks": [{"type": "MISC_CHECK", "misc_path": str(misc)}]}
        config = _vrrp(str(check), str(notify), lb_backend="nftables", virtual_servers=[
            {"address": VIP4, "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 0.5,
             "real_servers": [real_server]}])
        monkeypatch.setenv("HANODE_LAB_HANODE", _private_users_wrapper(directory))
        a1 = lab.start_agent(n1, config, timeout=20)
        entry = wait_state(a1, "MASTER", timeout=15)
        assert entry["trackers"]["scripts"][0]["ok"] is True     # it exits 0 only as uid 64999
        wait_for(lambda: {p.name for p in out.iterdir() if p.read_text().endswith("\n")} == {"check", "notify", "misc"},
                 10, what="every script to have run")   # (a file is created before `id` writes its line)
        assert {p.name: p.read_text().strip() for p in out.iterdir()} == {
            "check": "keepalived_script", "notify": "keepalived_script", "misc": "keepalived_script"}
        wait_for(lambda: status(a1)["virtual_servers"][0]["real_servers"][0]["health"] == "up", 10,
                 what="the MISC_CHECK (exit 0 only as gid 64999) to report up")
        assert not [line for line in a1.log_text().splitlines() if "level=warning" in line and "root" in line]
    assert "keepalived_script" not in Path("/etc/passwd").read_text(), "the user leaked out of the agent's namespace"


def test_without_keepalived_script_root_needs_the_config_to_ask(lab_factory, tmp_path):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    with script_dir() as directory:
        check = write_script(directory, "check.sh", "exit 0\n")
        config = _vrrp(str(check), str(check), control_socket=str(n1.dir / "refused.sock"))
        path = n1.dir / "refused.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = lab.run(n1, hanode_argv() + ["run", "--config", str(path)], check=False, timeout=30)
        assert proc.returncode == 1, proc
        assert ("script_user: vrrp_scripts.chk.script, vrrp_instances.VI_1.notify_master would run as root: no "
                "script_user is set and the user keepalived_script does not exist") in proc.stderr
        assert not (n1.dir / "refused.sock").exists()

        a1 = lab.start_agent(n1, dict(config, script_user="root", control_socket=str(n1.dir / "agent.sock")))
        wait_state(a1, "MASTER", timeout=15)
        warned = [line for line in a1.log_text().splitlines() if "level=warning" in line and "run as root" in line]
        assert len(warned) == 1 and "vrrp_scripts.chk.script, vrrp_instances.VI_1.notify_master" in warned[0]


def test_a_link_into_a_users_directory_is_refused_and_a_path_made_unsafe_stops_the_script(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    root = Path(tempfile.mkdtemp(prefix="hanode-swap-", dir="/run"))
    try:
        root.chmod(0o755)
        theirs = root / "theirs"
        theirs.mkdir()
        write_script(theirs, "check.sh", "exit 0\n")
        os.chown(theirs, NOBODY, NOBODY)
        (root / "bin").mkdir(mode=0o755)
        (root / "bin" / "check").symlink_to(theirs / "check.sh")
        config = _vrrp(str(root / "bin" / "check"), script_user="root")
        path = n1.dir / "swap.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.run(hanode_argv() + ["check-config", str(path)], capture_output=True, text=True,
                              env=python_env(), timeout=30, check=False)
        assert proc.returncode == 1
        assert (f"vrrp_scripts.chk.script: insecure script: {theirs} is owned by uid {NOBODY} and writable by it "
                f"(reached through {root / 'bin' / 'check'} -> {theirs / 'check.sh'})") in proc.stdout + proc.stderr

        # A safe chain: bin/check -> real/check.sh, every part root's. Started, then real/ is opened to everyone
        # and check.sh swapped for one that would leave a mark: it never runs, the instance goes to FAULT.
        real = root / "real"
        real.mkdir(mode=0o755)
        write_script(real, "check.sh", "exit 0\n")
        (root / "bin" / "check").unlink()
        (root / "bin" / "check").symlink_to(real / "check.sh")
        a1 = lab.start_agent(n1, config)
        wait_state(a1, "MASTER", timeout=15)
        real.chmod(0o777)
        mark = root / "swapped-script-ran"
        write_script(real, "check.new", f"touch {mark}\n")
        os.replace(real / "check.new", real / "check.sh")
        entry = wait_state(a1, "FAULT", timeout=10)
        error = entry["trackers"]["scripts"][0]["last_error"]
        assert error == (f"refused: insecure script {root / 'bin' / 'check'}: {real} is writable by everyone "
                         f"(reached through {root / 'bin' / 'check'} -> {real / 'check.sh'})")
        assert [e["error"] for e in events(a1, "tracker") if e.get("state") == "failed"] == [error]
        assert not n1.has_address(VIP4) and not mark.exists()
        real.chmod(0o755)                                 # safe again: it runs (and leaves its mark), MASTER again
        wait_state(a1, "MASTER", timeout=10)
        assert mark.exists() and inst(a1)["trackers"]["scripts"][0]["ok"] is True
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)
