"""site.yml over plain SSH with become against real hosts: Debian 12 (Python 3.11, the controller's) and two
Debian 13 (Python 3.13) with systemd as PID 1, in one fleet (inventories/hosts), traffic from a client through
the VIP to two real servers (nftables virtual server).

One scenario, in order (each step builds on the one before, as on a real fleet): the preflight and an
unservable platform stop the play before any host changes; converge; idempotence; verify over SSH with
testinfra (VIP on exactly one host, traffic, unit, sandbox, secrets, notify script, journal); failover on
`systemctl stop` and on power-off of the master, with the host's power-on bringing agent and VIP back; systemd's
watchdog restarting a frozen agent; an agent upgrade and a rollback with zero failed client probes; removal,
after which nothing of hanode's is left on any host."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import testinfra

from hanode.lab.procs import wait_for
from helpers import (NODES, REPO, SECRET, URL, Probe, changed_agent, holders, leftovers, playbook, running_build,
                     site, tail, wait_holder)
from ansible_run import recap

pytestmark = pytest.mark.hosts

PREPARE = REPO / "scripts" / "hostlab_prepare.yml"
OS_PYTHON = {"n1": "3.11", "n2": "3.13", "n3": "3.13"}
# VI_1 is VRRPv2 with advert_int 1: the backup's Master_Down_Interval is 3.53 s (n2, priority 120). The bounds
# below leave room for a loaded 2-CPU machine.
POWER_OFF_TAKEOVER_S = 10.0
GRACEFUL_TAKEOVER_S = 5.0


@pytest.fixture(scope="module")
def lab(host_lab_factory):
    lab = host_lab_factory(node_os=("debian12", "debian13", "debian13"), clients=1, real_servers=2)
    for server in lab.real_servers:
        lab.start_http_server(server, port=8080)
    return lab


def nothing_of_hanode(lab) -> dict[str, list[str]]:
    return {name: leftovers(lab, name) for name in NODES}


def host(lab, name):
    return testinfra.get_host(f"ssh://{name}", ssh_config=str(lab.ssh_config), sudo=True)


def test_preflight_stops_the_play_naming_every_host_and_need(lab):
    run = site(lab, "-e", "ha_node_lb_backend=ipvs")
    out = tail(run, 20000)
    assert run.returncode != 0
    for name in NODES:
        assert re.search(rf"{name} cannot run the agent, no host was changed\. It needs: kernel module ip_vs "
                         r"\(lb_backend ipvs\): neither loaded, built in nor in /lib/modules/", out), out[-3000:]
    assert "Stage the agent" not in out
    assert nothing_of_hanode(lab) == {name: [] for name in NODES}
    print(f"\nMEASURE preflight failure: {run.took_s:.1f} s")


def test_a_platform_the_controller_cannot_serve_stops_the_play_before_any_change(lab, tmp_path):
    """An offline controller whose wheels are for Python 3.11 only: the Debian 13 hosts (3.13) cannot be served."""
    offline = tmp_path / "wheels"
    wheelhouse = tmp_path / "controller-wheelhouse"
    built = subprocess.run([sys.executable, str(REPO / "roles/ha_node/files/build_wheelhouse.py"), "--source",
                            str(REPO / "agent"), "--wheelhouse", str(tmp_path / "seed"),
                            "--platform", "cp311-glibc2.36-x86_64=seed"], capture_output=True, text=True, check=True)
    bundle = json.loads(built.stdout)["bundles"]["cp311-glibc2.36-x86_64"]
    offline.mkdir()
    subprocess.run(["tar", "-xf", bundle, "-C", str(offline)], check=True)
    for agent_wheel in offline.glob("hanode_agent-*.whl"):
        agent_wheel.unlink()  # the controller builds its own
    run = site(lab, "-e", json.dumps({"ha_node_controller_wheelhouse": str(wheelhouse),
                                      "ha_node_controller_pip_args": ["--no-index", f"--find-links={offline}"]}))
    out = tail(run, 20000)
    assert run.returncode != 0
    assert re.search(r"The agent cannot be installed on these hosts' platforms; no host was changed\. "
                     r"n2,n3 \(cp313-glibc2\.\d+-x86_64\): pip download of .* failed: .*PyYAML", out), out[-3000:]
    assert "n1 (" not in out.split("cannot be installed")[1]
    assert nothing_of_hanode(lab) == {name: [] for name in NODES}
    print(f"\nMEASURE unservable platform failure: {run.took_s:.1f} s")


def test_converge_over_ssh_with_become_on_debian_12_and_13(lab):
    prepared = playbook(lab, PREPARE)
    assert prepared.returncode == 0, tail(prepared)
    run = site(lab, "-v", "--diff")
    assert run.returncode == 0, tail(run)
    assert SECRET not in run.stdout + run.stderr, "the VRRP password is in the play's -v/--diff output"
    assert "auth_pass: ********" in run.stdout  # the config's diff, masked
    counts = recap(run.stdout)
    assert all(counts[name]["changed"] > 0 and counts[name]["failed"] == 0 for name in NODES), counts
    print(f"\nMEASURE converge (fresh hosts, wheelhouse for two platforms): {run.took_s:.1f} s")


def test_second_run_changes_nothing(lab):
    run = site(lab)
    assert run.returncode == 0, tail(run)
    counts = recap(run.stdout)
    assert {name: counts[name]["changed"] for name in NODES} == {name: 0 for name in NODES}, counts
    print(f"\nMEASURE idempotent run: {run.took_s:.1f} s")


def test_verify_over_ssh(lab):
    """testinfra over SSH: the agent under systemd on both Debian releases, the VIP on exactly one host, traffic
    through it, the sandbox in force, secrets only in the 0600 config, the notify script and the journal."""
    assert holders(lab) == ["n1"]
    for name in NODES:
        h = host(lab, name)
        service = h.service("hanode")
        assert service.is_running and service.is_enabled
        props = dict(line.split("=", 1) for line in h.check_output(
            "systemctl show hanode -p Type -p WatchdogUSec -p Restart -p NRestarts -p ProtectSystem -p NoNewPrivileges "
            "-p RestrictAddressFamilies -p CapabilityBoundingSet").splitlines())
        assert props["Type"] == ("notify" if name == "n1" else "notify-reload")  # systemd 252 / 257
        assert props["WatchdogUSec"] == "5s" and props["Restart"] == "on-failure"
        assert props["ProtectSystem"] == "strict" and props["NoNewPrivileges"] == "yes"
        assert set(props["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_NETLINK", "AF_INET", "AF_INET6", "AF_PACKET"}
        assert "cap_net_admin" in props["CapabilityBoundingSet"] and "cap_sys_admin" not in props["CapabilityBoundingSet"]
        exposure = re.search(r"Overall exposure level for hanode\.service: ([0-9.]+)",
                             h.check_output("systemd-analyze security hanode --no-pager"))
        assert exposure and float(exposure.group(1)) <= 3.5, exposure
        config = h.file("/etc/hanode/agent.yaml")
        assert config.mode == 0o600 and config.user == "root" and SECRET in config.content_string
        journal = h.check_output("journalctl -u hanode --no-pager -o cat")
        assert SECRET not in journal
        assert "VI_1: INIT -> BACKUP" in journal or "VI_1: BACKUP -> MASTER" in journal
        info = json.loads(h.check_output("/opt/hanode/current/bin/hanode status --json"))
        assert info["instances"]["VI_1"]["state"] == ("MASTER" if name == "n1" else "BACKUP")
        # The operator's notify script ran under the sandbox (journal via /dev/log, a file in ReadWritePaths).
        assert h.file("/var/lib/vip-notify/VI_1").content_string.strip() == ("MASTER" if name == "n1" else "BACKUP")
        assert "INSTANCE VI_1 is" in h.check_output("journalctl -t vip-notify --no-pager -o cat")
        print(f"\nMEASURE {name} systemd-analyze security: {exposure.group(1)}")
    assert "VI_1: BACKUP -> MASTER" in host(lab, "n1").check_output("journalctl -u hanode --no-pager -o cat")
    bodies = {lab.http_get("c1", URL)[1].strip() for _attempt in range(6)}
    assert bodies == {"r1", "r2"}


def test_hosts_whose_python_differs_from_the_controllers_run_the_agent_on_their_own(lab):
    """Debian 13's Python is 3.13, the controller's 3.11: the wheelhouse served both platforms and every host's
    agent runs on the host's own Python, from a venv named for it."""
    controller = "%d.%d" % sys.version_info[:2]
    assert controller != OS_PYTHON["n2"]
    for name in NODES:
        h = host(lab, name)
        python = h.check_output("/opt/hanode/current/bin/python -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
        assert python == OS_PYTHON[name]
        assert h.file("/opt/hanode/current").linked_to.endswith("-cp" + python.replace(".", ""))
        # PyYAML's binary wheel for this Python: its C extension loads.
        assert h.check_output("/opt/hanode/current/bin/python -c 'import yaml; print(yaml.__with_libyaml__)'") == "True"
        assert h.service("hanode").is_running


def test_systemctl_reload_is_a_reload_on_both_systemd_versions(lab):
    """Debian 13 (systemd 257, Type=notify-reload): systemd sends SIGHUP and waits for the agent's RELOADING=1
    then READY=1. Debian 12 (252, Type=notify): ExecReload sends SIGHUP. Neither restarts the agent."""
    for name in ("n1", "n2"):
        show = ["systemctl", "show", "hanode", "-p", "MainPID", "-p", "NRestarts", "--value"]
        before = lab.ssh(name, show).stdout.split()
        since = lab.ssh(name, ["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
        lab.ssh(name, ["systemctl", "reload", "hanode"], timeout=60)
        assert lab.ssh(name, show).stdout.split() == before
        assert lab.ssh(name, ["systemctl", "is-active", "hanode"]).stdout.strip() == "active"
        journal = lab.ssh(name, ["journalctl", "-u", "hanode", "--since", since, "--no-pager", "-o", "cat"]).stdout
        assert "Reloaded" in journal and "reload" in journal.lower(), journal
    assert holders(lab) == ["n1"]


def test_failover_when_the_masters_agent_is_stopped_with_systemctl(lab):
    lab.ssh("n1", ["systemctl", "stop", "hanode"])
    took = wait_holder(lab, "n2", GRACEFUL_TAKEOVER_S)
    assert lab.http_get("c1", URL)[0] == 200
    journal = lab.ssh("n2", ["journalctl", "-u", "hanode", "--no-pager", "-o", "cat"]).stdout
    assert "VI_1: BACKUP -> MASTER" in journal
    lab.ssh("n1", ["systemctl", "start", "hanode"])
    back = wait_holder(lab, "n1", 30)
    print(f"\nMEASURE systemctl stop on the master: n2 holds the VIP after {took:.2f} s; n1 back {back:.2f} s after start")


def test_systemd_restarts_an_agent_whose_main_loop_is_frozen(lab):
    """WatchdogSec=5: the agent's main process is stopped (SIGSTOP); systemd aborts it and starts it again."""
    show = ["systemctl", "show", "hanode", "-p", "MainPID", "-p", "NRestarts", "--value"]
    pid, restarts = lab.ssh("n3", show).stdout.split()
    lab.ssh("n3", ["kill", "-STOP", pid])
    frozen_at = time.monotonic()

    def restarted():
        new_pid, new_restarts = lab.ssh("n3", show).stdout.split()
        active = lab.ssh("n3", ["systemctl", "is-active", "hanode"], check=False).stdout.strip()
        return int(new_restarts) == int(restarts) + 1 and new_pid not in ("0", pid) and active == "active"
    wait_for(restarted, 40, interval=0.5, what="systemd to restart the frozen agent")
    took = time.monotonic() - frozen_at
    journal = lab.ssh("n3", ["journalctl", "-u", "hanode", "--no-pager", "-o", "cat"]).stdout
    assert "Watchdog timeout" in journal
    wait_for(lambda: json.loads(lab.ssh("n3", ["/opt/hanode/current/bin/hanode", "status", "--json"]).stdout)
             ["instances"]["VI_1"]["state"] == "BACKUP", 30, interval=0.5, what="the restarted agent to be BACKUP")
    assert holders(lab) == ["n1"]
    print(f"\nMEASURE frozen agent (SIGSTOP) restarted by systemd's watchdog after {took:.1f} s (WatchdogSec=5)")


def test_power_off_of_the_master_and_its_power_on_bring_the_agent_and_vip_back(lab):
    probe = Probe(lab, "power")
    before = lab.boot_id("n1")
    lab.power_off("n1", hard=True)
    took = wait_holder(lab, "n2", POWER_OFF_TAKEOVER_S)
    assert lab.http_get("c1", URL)[0] == 200
    boot_id = lab.power_on("n1")
    assert boot_id != before
    back = wait_holder(lab, "n1", 60)
    result = probe.stop()
    assert host(lab, "n1").service("hanode").is_running
    print(f"\nMEASURE master powered off: n2 holds the VIP after {took:.2f} s; powered on, n1 holds it again after "
          f"{back:.2f} s (boot, agent enabled at boot); probes {result['probes']}, failed {len(result['failed'])}")


def _rollout(lab, name, *extra):
    probe = Probe(lab, name)
    run = site(lab, *extra)
    time.sleep(1.0)  # keep probing a moment after the rollout
    result = probe.stop()
    assert run.returncode == 0, tail(run)
    assert result["failed"] == [], result["failed"][:5]
    assert result["probes"] > 100 and result["answered_by"] == ["r1", "r2"]
    return run, result


def test_agent_upgrade_rolls_out_with_zero_failed_probes(lab):
    old = {name: running_build(lab, name) for name in NODES}
    run, result = _rollout(lab, "upgrade", "-e", f"ha_node_agent_source={changed_agent(lab, 'upgrade')}")
    new = {name: running_build(lab, name) for name in NODES}
    assert all(new[n] != old[n] and new[n].endswith("-cp311" if n == "n1" else "-cp313") for n in NODES), (old, new)
    assert holders(lab) == ["n1"]
    lab.old_builds = old
    print(f"\nMEASURE upgrade: {run.took_s:.1f} s, {result['probes']} probes, 0 failed, max latency "
          f"{result['max_latency_s'] * 1000:.0f} ms")


def test_rollback_to_the_earlier_build_with_zero_failed_probes(lab):
    run, result = _rollout(lab, "rollback")
    now = {name: running_build(lab, name) for name in NODES}
    assert now == lab.old_builds
    print(f"\nMEASURE rollback: {run.took_s:.1f} s, {result['probes']} probes, 0 failed")


def test_removal_leaves_nothing_of_hanode(lab):
    run = site(lab, "-e", "ha_node_state=absent")
    assert run.returncode == 0, tail(run)
    left = nothing_of_hanode(lab)
    print(f"\nMEASURE removal: {run.took_s:.1f} s; left on the hosts: {left}")
    assert left == {name: [] for name in NODES}
    assert holders(lab) == []
    again = site(lab, "-e", "ha_node_state=absent")
    assert again.returncode == 0 and all(recap(again.stdout)[n]["changed"] == 0 for n in NODES), tail(again)
