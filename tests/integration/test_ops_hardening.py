"""Hardening (issue 5): the control socket is 0600 and root's; no network listener unless configured; a config
file or a script that a non-root user could change is refused at start and on reload (the running config
stays, the refusal names the file)."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
import yaml

from helpers_ops import assert_status_schema, listeners, new_lab
from helpers_vrrp import events, rewrite_config, single, status, wait_state, write_script
from hanode.lab.procs import hanode_argv, python_env

pytestmark = pytest.mark.netns

NOBODY = 65534


def _run_refused(lab, host, config_path) -> subprocess.CompletedProcess:
    """`hanode run` in the host's namespace with this config: it must exit at once, refusing it."""
    proc = lab.run(host, hanode_argv() + ["run", "--config", str(config_path)], check=False, timeout=30)
    assert proc.returncode == 1, proc
    return proc


def _reload(handle) -> subprocess.CompletedProcess:
    return subprocess.run(hanode_argv() + ["reload", "--socket", str(handle.socket_path)], capture_output=True,
                          text=True, timeout=30, env=python_env(), check=False)


def test_control_socket_is_root_only_and_no_network_listener_by_default(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 100, version=3, advert_int=0.3))
    wait_state(a1, "MASTER", timeout=10)
    st = os.stat(a1.socket_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert listeners(lab, n1) == []


def test_insecure_config_or_script_refused_at_start_and_on_reload(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    scripts = n1.dir / "scripts"
    scripts.mkdir(mode=0o755)
    notify = write_script(scripts, "notify.sh", "exit 0\n")

    # At start: a config owned by a non-root user, a world-writable config, a world-writable script.
    base = single("n1", 100, version=3, advert_int=0.3)
    base["control_socket"] = str(n1.dir / "refused.sock")
    owned = n1.dir / "owned.yaml"
    owned.write_text(yaml.safe_dump(base))
    os.chown(owned, NOBODY, NOBODY)
    proc = _run_refused(lab, n1, owned)
    assert f"{owned}: insecure config file: {owned} is owned by uid {NOBODY}" in proc.stderr
    writable = n1.dir / "writable.yaml"
    writable.write_text(yaml.safe_dump(base))
    writable.chmod(0o646)
    proc = _run_refused(lab, n1, writable)
    assert f"insecure config file: {writable} is writable by everyone" in proc.stderr
    with_script = dict(base, vrrp_instances={"VI_1": dict(base["vrrp_instances"]["VI_1"], notify_master=str(notify))})
    script_config = n1.dir / "script.yaml"
    script_config.write_text(yaml.safe_dump(with_script))
    notify.chmod(0o777)
    proc = _run_refused(lab, n1, script_config)
    assert f"vrrp_instances.VI_1.notify_master: insecure script: {notify} is writable by everyone" in proc.stderr
    assert not (n1.dir / "refused.sock").exists(), "a refused config never serves a socket"
    notify.chmod(0o755)

    # On reload: the running agent keeps its config when the new one is insecure.
    a1 = lab.start_agent(n1, single("n1", 100, version=3, advert_int=0.3))
    wait_state(a1, "MASTER", timeout=10)
    running = status(a1)["agent"]["config"]
    rewrite_config(a1, single("n1", 120, version=3, advert_int=0.3))
    a1.config_path.chmod(0o666)
    proc = _reload(a1)
    assert proc.returncode == 1
    assert "refused, the running config stays" in proc.stderr
    assert f"insecure config file: {a1.config_path} is writable by everyone" in proc.stderr
    after = status(a1)
    assert_status_schema(after)
    assert after["agent"]["config"]["digest"] == running["digest"]
    assert after["agent"]["config"]["last_reload"]["ok"] is False
    assert any(f"{a1.config_path} is writable by everyone" in e for e in after["agent"]["config"]["last_reload"]["errors"])
    assert after["instances"]["VI_1"]["priority"] == 100 and after["instances"]["VI_1"]["state"] == "MASTER"

    # The same config made safe, but with a script a non-root user owns: refused too.
    a1.config_path.chmod(0o644)
    os.chown(notify, NOBODY, NOBODY)
    rewrite_config(a1, dict(single("n1", 120, version=3, advert_int=0.3),
                            vrrp_instances={"VI_1": dict(with_script["vrrp_instances"]["VI_1"], priority=120)}))
    proc = _reload(a1)
    assert proc.returncode == 1
    assert f"insecure script: {notify} is owned by uid {NOBODY}" in proc.stderr
    assert status(a1)["instances"]["VI_1"]["priority"] == 100
    refusals = [e for e in events(a1, "reload") if e["ok"] is False]
    assert len(refusals) == 2

    # Fixed: the reload goes through.
    os.chown(notify, 0, 0)
    proc = _reload(a1)
    assert proc.returncode == 0, proc.stderr
    assert status(a1)["instances"]["VI_1"]["priority"] == 120
