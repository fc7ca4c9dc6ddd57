"""The checker process in a namespace lab, with the nftables backend on the host kernel: real servers that
fail and recover, inhibit_on_failure, quorum and the sorry server, reloads that keep health, operator
drain, PING_CHECK, and a checker killed with SIGKILL that comes back without touching VRRP.

    client c1 -> VIP 198.51.100.100:80 on director n1 -> r1.. (203.0.113.11..:8080), default route via n1
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from hanode.lab import netns
from hanode.lab.procs import wait_for
from helpers_checker import (VIP, VS_NAME, Traffic, control, events, kernel_weights, lb_config, lines, new_lab,
                             real_server, recorder, reload, rewrite_config, rs_status, script_dir, start_director,
                             status, virtual_server, vs_status, wait_event, wait_rs, wait_split)

pytestmark = pytest.mark.netns

SLACK_S = 0.8          # a loaded 2-core machine: scheduling, status polling, nft runs


def test_failed_server_leaves_within_delay_loop_times_retry_plus_one_and_comes_back(lab_factory):
    lab = new_lab(lab_factory, real_servers=3)
    n1 = lab.nodes[0]
    r1, r2, r3 = lab.real_servers
    httpd = {r.name: lab.start_http_server(r) for r in (r1, r2, r3)}
    with script_dir() as scripts:
        log = scripts / "notify.log"
        servers = [real_server(r, notify_up=recorder(scripts, "notify_up", log) + f" {r.name}",
                               notify_down=recorder(scripts, "notify_down", log) + f" {r.name}") for r in (r1, r2, r3)]
        agent = start_director(lab, n1, lb_config("n1", [virtual_server(servers)]))
        wait_split(lab, {"r1", "r2", "r3"})
        # delay_loop 1 s, retry 1: down after at most 2 failed checks, i.e. within delay_loop x (retry + 1)
        killed_at = time.time()
        httpd["r2"].kill()
        down = wait_event(agent, event="real_server", real_server=f"{r2.ipv4}:8080", up=False)
        detect_s = down["ts"] - killed_at
        print(f"\nMEASURE detection {detect_s * 1000:.0f} ms (bound delay_loop x (retry+1) = 2000 ms)")
        assert detect_s <= 2.0 + SLACK_S
        assert down["reason"] == "connection refused"
        wait_for(lambda: f"{r2.ipv4}:8080" not in kernel_weights(lab, n1), 5, what="r2 out of the kernel table")
        assert wait_split(lab, {"r1", "r3"})
        rs = rs_status(agent, r2)
        assert rs["health"] == "down" and rs["kernel_weight"] is None and rs["failure_reason"] == "connection refused"
        assert rs["last_check"]["type"] == "HTTP_GET" and rs["last_check"]["ok"] is False

        back_at = time.time()
        lab.start_http_server(r2)
        up = wait_event(agent, event="real_server", real_server=f"{r2.ipv4}:8080", up=True)
        print(f"MEASURE recovery {(up['ts'] - back_at) * 1000:.0f} ms (bound delay_loop = 1000 ms)")
        assert up["ts"] - back_at <= 1.0 + SLACK_S
        assert kernel_weights(lab, n1) == {f"{r.ipv4}:8080": 1 for r in (r1, r2, r3)}
        assert wait_split(lab, {"r1", "r2", "r3"})
        wait_for(lambda: len(lines(log)) == 2, 10, what="both notify scripts")
        assert lines(log) == ["notify_down r2", "notify_up r2"]
    vs = vs_status(agent)
    assert vs["diff"] == [] and vs["quorum"]["state"] == "up"
    assert [e["up"] for e in events(agent, "real_server")] == [False, True]


def test_inhibit_on_failure_keeps_the_server_at_weight_zero(lab_factory):
    lab = new_lab(lab_factory, real_servers=2)
    n1 = lab.nodes[0]
    r1, r2 = lab.real_servers
    first = lab.start_http_server(r1)
    lab.start_http_server(r2)
    agent = start_director(lab, n1, lb_config("n1", [virtual_server([real_server(r1, 2), real_server(r2, 1)],
                                                                    lb_algo="wrr", inhibit_on_failure=True)]))
    wait_split(lab, {"r1", "r2"})
    first.kill()
    wait_rs(agent, r1, health="down", kernel_weight=0)
    assert kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 0, f"{r2.ipv4}:8080": 1}
    assert wait_split(lab, {"r2"})
    lab.start_http_server(r1)
    wait_rs(agent, r1, health="up", kernel_weight=2)
    assert kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 2, f"{r2.ipv4}:8080": 1}


def test_quorum_loss_switches_to_the_sorry_server_and_back(lab_factory):
    lab = new_lab(lab_factory, real_servers=3)
    n1 = lab.nodes[0]
    r1, r2, sorry = lab.real_servers
    first = lab.start_http_server(r1)
    lab.start_http_server(r2)
    lab.start_http_server(sorry)
    with script_dir() as scripts:
        log = scripts / "quorum.log"
        vs = virtual_server([real_server(r1), real_server(r2)], quorum=2,
                            sorry_server={"address": sorry.ipv4, "port": 8080},
                            quorum_up=recorder(scripts, "quorum_up", log),
                            quorum_down=recorder(scripts, "quorum_down", log))
        agent = start_director(lab, n1, lb_config("n1", [vs]))
        wait_split(lab, {"r1", "r2"})
        first.kill()
        lost = wait_event(agent, event="quorum", up=False)
        assert lost["weight"] == 1 and lost["quorum"] == 2 and lost["sorry_server_active"] is True
        assert wait_split(lab, {sorry.name})
        assert kernel_weights(lab, n1) == {f"{sorry.ipv4}:8080": 1}
        state = vs_status(agent)
        assert state["quorum"]["state"] == "down" and state["sorry_server_active"] is True
        lab.start_http_server(r1)
        wait_event(agent, event="quorum", up=True)
        assert wait_split(lab, {"r1", "r2"})
        assert kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 1, f"{r2.ipv4}:8080": 1}
        wait_for(lambda: len(lines(log)) == 2, 10, what="both quorum scripts")
        assert lines(log) == ["quorum_down ", "quorum_up "]
    kinds = [(e["event"], e["up"]) for e in events(agent) if e.get("event") in ("real_server", "quorum")]
    assert kinds == [("real_server", False), ("quorum", False), ("real_server", True), ("quorum", True)]


def test_reload_keeps_health_and_changes_only_what_changed(lab_factory):
    lab = new_lab(lab_factory, real_servers=3)
    n1 = lab.nodes[0]
    r1, r2, r3 = lab.real_servers
    lab.start_http_server(r1)
    lab.start_http_server(r2)
    third = lab.start_http_server(r3)
    servers = [real_server(r, 1) for r in (r1, r2, r3)]
    config = lb_config("n1", [virtual_server(servers, lb_algo="wrr")])
    agent = start_director(lab, n1, config)
    wait_split(lab, {"r1", "r2", "r3"})
    third.kill()
    wait_rs(agent, r3, health="down")
    wait_for(lambda: f"{r3.ipv4}:8080" not in kernel_weights(lab, n1), 5, what="r3 out of the table")
    runs_before = {r.name: rs_status(agent, r)["checks"][0]["runs"] for r in (r1, r2, r3)}
    seen_events = len(events(agent))

    # reload 1: one weight changes; the checks themselves do not
    servers[0]["weight"] = 3
    rewrite_config(agent, lb_config("n1", [virtual_server(servers, lb_algo="wrr")]))
    reload(agent)
    assert kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 3, f"{r2.ipv4}:8080": 1}
    # reload 2: r3's check changes while r3 is down: it stays down, nothing flaps
    servers[2]["checks"] = [{"type": "TCP_CHECK", "connect_timeout": 1, "retry": 1, "delay_before_retry": 1}]
    rewrite_config(agent, lb_config("n1", [virtual_server(servers, lb_algo="wrr")]))
    reload(agent)
    assert rs_status(agent, r3)["health"] == "down"
    assert f"{r3.ipv4}:8080" not in kernel_weights(lab, n1)
    runs_after = {r.name: rs_status(agent, r)["checks"][0]["runs"] for r in (r1, r2)}
    assert all(runs_after[name] >= runs_before[name] for name in runs_after), "unchanged checks kept their state"
    new = events(agent)[seen_events:]
    assert [e["event"] for e in new if e["event"] in ("real_server", "quorum")] == [], new
    log = agent.log_text()
    assert "checks kept 3, changed 0" in log and "checks kept 2, changed 1" in log
    assert "lvs reconcile: 1 ops" in log
    # recovery after the reloads: back in with its configured weight (keepalived could leave it out or at 0)
    lab.start_http_server(r3)
    wait_rs(agent, r3, health="up", kernel_weight=1)
    assert kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 3, f"{r2.ipv4}:8080": 1, f"{r3.ipv4}:8080": 1}


def test_operator_drain_is_weight_zero_and_survives_reload_and_checker_restart(lab_factory):
    lab = new_lab(lab_factory, real_servers=2)
    n1 = lab.nodes[0]
    r1, r2 = lab.real_servers
    lab.start_http_server(r1)
    lab.start_http_server(r2)
    servers = [real_server(r1), real_server(r2)]
    agent = start_director(lab, n1, lb_config("n1", [virtual_server(servers)]))
    wait_split(lab, {"r1", "r2"})
    assert control(agent, "rs_disable", virtual_server=VS_NAME, real_server=f"{r1.ipv4}:8080")["ok"]
    wait_rs(agent, r1, health="disabled", kernel_weight=0)
    assert wait_split(lab, {"r2"})
    servers[1]["weight"] = 2
    rewrite_config(agent, lb_config("n1", [virtual_server(servers)]))
    reload(agent)
    assert kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 0, f"{r2.ipv4}:8080": 2}
    assert rs_status(agent, r1)["health"] == "disabled"
    # a restarted checker keeps the drain (saved next to the control socket)
    pid = status(agent)["agent"]["processes"]["checker"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: (p := status(agent)["agent"]["processes"]["checker"])["pid"] != pid and p["running"], 20,
             what="a new checker process")
    wait_for(lambda: status(agent)["lvs"]["reconciles"] >= 1, 20, what="the new checker to reconcile")
    assert rs_status(agent, r1)["health"] == "disabled"
    assert kernel_weights(lab, n1) == {f"{r1.ipv4}:8080": 0, f"{r2.ipv4}:8080": 2}
    assert wait_split(lab, {"r2"})
    # short names work too; errors name what is configured
    assert control(agent, "rs_enable", virtual_server=f"{VIP}:80", real_server=r1.ipv4)["ok"]
    wait_rs(agent, r1, health="up", kernel_weight=1)
    bad = control(agent, "rs_disable", virtual_server=VS_NAME, real_server="203.0.113.99:8080")
    assert bad["ok"] is False and f"configured: {r1.ipv4}:8080, {r2.ipv4}:8080" in bad["error"]
    bad = control(agent, "rs_disable", virtual_server="198.51.100.1:80", real_server=r1.ipv4)
    assert bad["ok"] is False and "does not exist" in bad["error"]


def test_ping_check_follows_icmp_echo(lab_factory):
    lab = new_lab(lab_factory, real_servers=1)
    n1 = lab.nodes[0]
    (r1,) = lab.real_servers
    lab.start_http_server(r1)
    ping = [{"type": "PING_CHECK", "connect_timeout": 1, "retry": 0}]
    agent = start_director(lab, n1, lb_config("n1", [virtual_server([real_server(r1, checks=ping)])]))
    wait_rs(agent, r1, health="up")
    wait_for(lambda: rs_status(agent, r1)["last_check"], 10, what="a first ping")
    netns.sysctl(r1.netns, {"net.ipv4.icmp_echo_ignore_all": 1})
    down = wait_rs(agent, r1, health="down")
    assert down["failure_reason"] == "no echo reply within 1 s"
    netns.sysctl(r1.netns, {"net.ipv4.icmp_echo_ignore_all": 0})
    wait_rs(agent, r1, health="up", kernel_weight=1)


def test_checker_kill_9_is_restarted_and_re_reconciles_with_no_vrrp_change(lab_factory):
    lab = new_lab(lab_factory, real_servers=3)
    n1 = lab.nodes[0]
    r1, r2, r3 = lab.real_servers
    for r in (r1, r3):
        lab.start_http_server(r)
    instance = {"interface": "eth0", "virtual_router_id": 61, "priority": 150, "advert_int": 1, "state": "BACKUP",
                "virtual_ipaddresses": [f"{VIP}/24"]}
    config = lb_config("n1", [virtual_server([real_server(r) for r in (r1, r2, r3)])],
                       vrrp_instances={"VI_1": instance})
    agent = start_director(lab, n1, config, vip=False)
    wait_for(lambda: status(agent)["instances"]["VI_1"]["state"] == "MASTER", 20, what="VI_1 MASTER")
    wait_rs(agent, r2, health="down")
    wait_split(lab, {"r1", "r3"})
    before = status(agent)
    vrrp_before = before["instances"]["VI_1"]
    vrrp_pid = before["agent"]["processes"]["vrrp"]["pid"]
    weights = kernel_weights(lab, n1)

    def kill_checker() -> int:
        pid = status(agent)["agent"]["processes"]["checker"]["pid"]
        os.kill(pid, signal.SIGKILL)
        return wait_for(lambda: (p := status(agent)["agent"]["processes"]["checker"])["pid"] != pid and p["running"]
                        and p["pid"], 20, what="a new checker process")

    # 1. SIGKILL: the kernel table stays as it was, the new process resumes from it (r2 is not re-added)
    with Traffic(lab, timeout_s=5) as traffic:
        kill_checker()
        wait_for(lambda: status(agent)["lvs"]["reconciles"] >= 1, 20, what="the new checker to reconcile")
        wait_for(lambda: len(traffic.results) >= 30, 20, what="30 requests")
    assert kernel_weights(lab, n1) == weights
    assert not [r for r in traffic.results if r not in ("r1", "r3")], traffic.results
    assert rs_status(agent, r2)["health"] == "down"
    assert [e for e in events(agent, "real_server") if e["up"]] == []

    # 2. SIGKILL and the kernel table wiped while the checker is down: the new process puts it back
    pid = status(agent)["agent"]["processes"]["checker"]["pid"]
    os.kill(pid, signal.SIGKILL)
    lab.run(n1, ["nft", "delete", "table", "ip", "hanode"])
    wait_for(lambda: kernel_weights(lab, n1).get(f"{r1.ipv4}:8080") == 1, 20, what="the table restored")
    wait_for(lambda: kernel_weights(lab, n1) == weights, 20, what="r2 out again after its check fails")
    wait_split(lab, {"r1", "r3"})

    after = status(agent)
    vrrp_after = after["instances"]["VI_1"]
    assert after["agent"]["processes"]["vrrp"]["pid"] == vrrp_pid
    assert after["agent"]["processes"]["checker"]["restarts"] >= 2   # a loaded machine's watchdog may add one
    assert vrrp_after["state"] == "MASTER"
    for counter in ("become_master", "release_master"):
        assert vrrp_after["stats"][counter] == vrrp_before["stats"][counter]
    assert [(e["from"], e["to"]) for e in events(agent, "transition")] == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]
    restarted = [e["process"] for e in events(agent, "process_restart")]
    assert len(restarted) >= 2 and set(restarted) == {"checker"}, restarted


@pytest.mark.parametrize("keep", [False, True], ids=["cleanup", "keep_on_stop"])
def test_stop_removes_the_rules_unless_keep_on_stop(lab_factory, keep):
    lab = new_lab(lab_factory, real_servers=1)
    n1 = lab.nodes[0]
    (r1,) = lab.real_servers
    lab.start_http_server(r1)
    agent = start_director(lab, n1, lb_config("n1", [virtual_server([real_server(r1)])], lb_keep_on_stop=keep))
    wait_rs(agent, r1, health="up", kernel_weight=1)
    assert agent.stop() == 0
    assert kernel_weights(lab, n1) == ({f"{r1.ipv4}:8080": 1} if keep else {})
    if keep:   # keepalived -I: the service keeps serving with the agent gone
        assert wait_split(lab, {"r1"})


def test_stop_while_the_checker_is_down_still_removes_its_rules(lab_factory):
    """SIGTERM during the checker's restart back-off: the supervisor removes the rules the checker owned."""
    lab = new_lab(lab_factory, real_servers=1)
    n1 = lab.nodes[0]
    (r1,) = lab.real_servers
    lab.start_http_server(r1)
    agent = start_director(lab, n1, lb_config("n1", [virtual_server([real_server(r1)])]))
    wait_rs(agent, r1, health="up", kernel_weight=1)
    checker = agent.status()["agent"]["processes"]["checker"]["pid"]
    os.kill(checker, signal.SIGKILL)
    wait_for(lambda: not agent.status()["agent"]["processes"]["checker"]["running"], 5, what="the checker to be down")
    assert agent.stop() == 0   # within the 1 s back-off: the checker is not running
    assert kernel_weights(lab, n1) == {}
    assert "rules of the checker, which was not running" in agent.log_text()
