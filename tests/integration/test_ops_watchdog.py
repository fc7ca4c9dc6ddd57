"""The supervisor's watchdog (issue 5). The VRRP child of the MASTER is killed (-9) and then frozen (SIGSTOP);
each time it is restarted with keepalived's back-off and resumes as MASTER without the VIP ever leaving the
node, the backup never takes over, an alert mail reaches a real SMTP server and the notify FIFO carries the
events in order.

advert_int 3: the backup's Master_Down_Interval (9.6 s) exceeds watchdog_timeout (2 s) + restart delay
(1 s, then 2 s) + the start of a Python process on a loaded machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from hanode.lab.procs import hanode_argv, python_env, wait_for
from helpers_ops import (FifoReader, SmtpServer, assert_in_order, assert_seq_contiguous, assert_status_schema,
                         mail_settings, new_lab)
from helpers_checker import GATEWAY, Traffic, real_server, virtual_server, wait_split
from helpers_vrrp import (VIP4, AddressSampler, agent_config, instance, master_down_s, status, transitions,
                          wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

ADVERT_INT = 3


class EventsFollower:
    """`hanode events --follow --json` (the real CLI) in a thread: every event line it prints."""

    def __init__(self, handle):
        self.proc = subprocess.Popen(hanode_argv() + ["events", "--follow", "--json", "--socket", str(handle.socket_path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())
        self.events: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(5)


def _restarted(handle, old_pid: int, restarts: int) -> dict:
    def check() -> dict | None:
        proc = status(handle)["agent"]["processes"]["vrrp"]
        return proc if proc["restarts"] == restarts and proc["running"] and proc["pid"] != old_pid else None
    return wait_for(check, 20, interval=0.1, what=f"VRRP process restart #{restarts}")


def _episode(lab, node, handle, sniffer, hurt) -> tuple[float, float, dict]:
    """Hurts the VRRP child just after an advert; returns (silence on the wire, seconds to the restart, proc)."""
    pid = status(handle)["agent"]["processes"]["vrrp"]["pid"]
    restarts = status(handle)["agent"]["processes"]["vrrp"]["restarts"]
    last = sniffer.wait_for_adverts(1, timeout=2 * ADVERT_INT + 2, src=node.ipv4, since=time.monotonic())[0]
    hurt_at = time.monotonic()
    hurt(pid)
    proc = _restarted(handle, pid, restarts + 1)
    back = sniffer.wait_for_adverts(1, timeout=15, src=node.ipv4, since=hurt_at)[0]
    wait_state(handle, "MASTER", timeout=10)
    return back.t - last.t, back.t - hurt_at, proc


def test_vrrp_child_killed_or_frozen_on_the_master_is_restarted_without_losing_the_vip(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    smtp = SmtpServer(lab, c1).start()
    fifo = FifoReader(n1.dir / "events.fifo")
    sniffer = lab.sniff_vrrp()
    follower = None
    try:
        a1 = lab.start_agent(n1, agent_config("n1", {"VI_1": instance(priority=150, advert_int=ADVERT_INT)},
                                              notify_fifo=str(fifo.path), watchdog_timeout=2,
                                              **mail_settings(c1, "n1")))
        a2 = lab.start_agent(n2, agent_config("n2", {"VI_1": instance(priority=100, advert_int=ADVERT_INT)}))
        wait_state(a1, "MASTER", timeout=25)
        wait_state(a2, "BACKUP")
        wait_sole_holder(lab.nodes, VIP4, n1)
        down_s = master_down_s(100, ADVERT_INT, 2)
        follower = EventsFollower(a1)

        with AddressSampler(n1, VIP4) as sampler:
            # kill -9: the supervisor sees the exit at once and restarts after 1 s (first failure).
            kill_gap, kill_restart, proc = _episode(lab, n1, a1, sniffer, lambda pid: os.kill(pid, signal.SIGKILL))
            assert proc["restarts"] == 1
            # SIGSTOP: no heartbeat; the watchdog kills it after watchdog_timeout, restart after 2 s (second failure).
            stop_gap, stop_restart, proc = _episode(lab, n1, a1, sniffer, lambda pid: os.kill(pid, signal.SIGSTOP))
            assert proc["restarts"] == 2
        print(f"\nMEASURE vrrp child kill -9: no advert for {kill_gap:.2f} s; SIGSTOP: no advert for {stop_gap:.2f} s "
              f"(backup's Master_Down_Interval {down_s:.2f} s); {len(sampler.samples)} VIP samples, none missing")
        assert sampler.errors == []
        assert sampler.missing == [], "the VIP left the master during a child restart"
        assert len(sampler.samples) > (kill_restart + stop_restart) / 0.1, "the sampler did not keep up"
        assert kill_gap < down_s and stop_gap < down_s
        assert stop_restart >= 2.0, "a frozen child is killed only after watchdog_timeout"

        # The backup never became MASTER: its only transition is the first one, it never advertised.
        assert transitions(a2) == [("INIT", "BACKUP")]
        assert sniffer.adverts(src=n2.ipv4) == []
        wait_sole_holder(lab.nodes, VIP4, n1)

        # The notify FIFO: every event once, in order, both episodes.
        events = wait_for(lambda: (e := fifo.events()) and sum(x["event"] == "process_restart" for x in e) == 2
                          and e[-1]["event"] == "transition" and e, 10, what="the FIFO to carry both restarts")
        assert_seq_contiguous(events)
        resumed = {"event": "transition", "instance": "VI_1", "from": "INIT", "to": "MASTER",
                   "reason": "resumed as MASTER after an agent restart"}
        assert_in_order(events, [
            {"event": "transition", "from": "INIT", "to": "BACKUP"},
            {"event": "transition", "from": "BACKUP", "to": "MASTER"},
            {"event": "process_restart", "process": "vrrp", "exit_status": -9, "delay_s": 1.0}, resumed,
            {"event": "process_hung", "process": "vrrp"},
            {"event": "process_restart", "process": "vrrp", "exit_status": -9, "delay_s": 2.0}, resumed,
        ])
        # `hanode events --follow` streamed the very same events, live, in the same order.
        wait_for(lambda: len(follower.events) >= len(events), 10, what="the follower to catch up")
        follower.close()
        assert follower.events == events
        hung = [e for e in events if e["event"] == "process_hung"]
        assert len(hung) == 1 and 2.0 <= hung[0]["silent_s"] < 3.5
        assert [e.get("hung_s") for e in events if e["event"] == "process_restart"] == [None, hung[0]["silent_s"]]

        # Alert mail: one per restart, naming the process, what happened and that the state was resumed.
        restarts = smtp.wait_mails(lambda m: "vrrp process" in m.subject, 2, 20, "two restart mails")
        assert len(restarts) == 2, [m.subject for m in restarts]
        killed, frozen = restarts
        assert killed.subject == "[n1] hanode vrrp process restarted"
        assert "was killed by signal 9 (SIGKILL)" in killed.body and "restarts it after 1 s" in killed.body
        assert frozen.subject == "[n1] hanode vrrp process hung: killed and restarted"
        assert "sent no heartbeat for 2." in frozen.body and "restarts it after 2 s" in frozen.body
        for mail in restarts:
            assert "resumes its VRRP state (VI_1 was MASTER)" in mail.body, mail.body
            assert mail.peer == n1.ipv4 and mail.rcpt_to == ["oncall@example.org", "netops@example.org"]
        final = status(a1)
        assert_status_schema(final)
        assert final["agent"]["processes"]["vrrp"]["restarts"] == 2
        # Structured logs: one logfmt line per restart, with its fields.
        restart_lines = [line for line in a1.log_text().splitlines() if "event=process_restart" in line]
        assert len(restart_lines) == 2
        assert "level=error proc=hanode" in restart_lines[0] and "process=vrrp exit_status=-9 delay_s=1.0" in restart_lines[0]
        assert f"hung_s={hung[0]['silent_s']}" in restart_lines[1]
        alerts = wait_for(lambda: (a := status(a1)["agent"]["alerts"])["pending"] == 0 and a, 10, what="alert queue empty")
        assert alerts["failed_attempts"] == 0 and alerts["sent"] == alerts["queued"] == len(smtp.mails())
    finally:
        if follower is not None and follower.proc.poll() is None:
            follower.close()
        fifo.close()


def test_checker_child_killed_or_frozen_is_restarted_while_service_continues(lab_factory):
    """The checker (health checks + load-balancer sync): real-server and quorum changes mail and reach the FIFO
    in order; kill -9 and SIGSTOP of the checker restart it while VRRP, the VIP and the traffic through it
    carry on (the kernel's table stays), with a mail per restart."""
    lab = new_lab(lab_factory, nodes=1, clients=1, real_servers=2, real_server_gateway=GATEWAY)
    (n1,) = lab.nodes
    (c1,) = lab.clients
    r1, r2 = lab.real_servers
    smtp = SmtpServer(lab, c1).start()
    fifo = FifoReader(n1.dir / "events.fifo")
    httpd = {r.name: lab.start_http_server(r, port=8080) for r in (r1, r2)}
    vs_name, rs2 = f"{VIP4}:80/TCP", f"{r2.ipv4}:8080"
    try:
        config = agent_config("n1", {"VI_1": instance(priority=150, version=3, advert_int=0.3)},
                              lb_backend="nftables", lb_reconcile_interval=2, notify_fifo=str(fifo.path),
                              watchdog_timeout=2, **mail_settings(c1, "n1"),
                              virtual_servers=[virtual_server([real_server(r1), real_server(r2)], quorum=2)])
        a1 = lab.start_agent(n1, config, timeout=20)
        wait_state(a1, "MASTER", timeout=10)
        wait_for(lambda: [rs["health"] for rs in status(a1)["virtual_servers"][0]["real_servers"]] == ["up", "up"],
                 20, what="both real servers up")

        # A real server goes down and comes back: its mails and the quorum's.
        httpd[r2.name].kill()
        wait_for(lambda: status(a1)["virtual_servers"][0]["quorum"]["state"] == "down", 15, what="quorum lost")
        httpd[r2.name] = lab.start_http_server(r2, port=8080)
        wait_for(lambda: status(a1)["virtual_servers"][0]["quorum"]["state"] == "up", 15, what="quorum back")
        subjects = [f"[n1] Real server {rs2} of {vs_name} is DOWN", f"[n1] Virtual server {vs_name} quorum LOST",
                    f"[n1] Real server {rs2} of {vs_name} is UP", f"[n1] Virtual server {vs_name} quorum gained"]
        lb_mails = smtp.wait_mails(lambda m: m.subject in subjects, 4, 15, "real-server and quorum mails")
        assert [m.subject for m in lb_mails] == subjects
        assert "Reason: " in lb_mails[0].body and "Live weight 1 vs quorum 2." in lb_mails[1].body

        vrrp_pid = status(a1)["agent"]["processes"]["vrrp"]["pid"]
        wait_split(lab, {"r1", "r2"})
        with AddressSampler(n1, VIP4) as sampler, Traffic(lab) as traffic:
            pid = status(a1)["agent"]["processes"]["checker"]["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: (p := status(a1)["agent"]["processes"]["checker"])["restarts"] == 1 and p["running"], 20,
                     what="checker restart #1")
            # Freeze it only once it answers: its first heartbeat precedes its first answer on the socket, and
            # a child frozen before its first heartbeat is still importing and gets the startup grace (30 s).
            wait_for(lambda: status(a1)["agent"]["stale"] == [], 20, what="the restarted checker to answer")
            pid = status(a1)["agent"]["processes"]["checker"]["pid"]
            os.kill(pid, signal.SIGSTOP)
            frozen = status(a1)  # the checker does not answer: its part is its last answer, flagged stale
            assert frozen["agent"]["stale"] == ["checker"] and frozen["instances"]["VI_1"]["state"] == "MASTER"
            assert frozen["virtual_servers"][0]["name"] == vs_name
            wait_for(lambda: (p := status(a1)["agent"]["processes"]["checker"])["restarts"] == 2 and p["running"], 20,
                     what="checker restart #2 (watchdog)")
            wait_for(lambda: status(a1)["lvs"]["reconciles"] >= 1, 20, what="the new checker to reconcile")
            wait_for(lambda: len(traffic.results) >= 20, 20, what="20 requests")
        assert sampler.missing == [] and sampler.errors == []
        assert traffic.results and not [r for r in traffic.results if r not in ("r1", "r2")], traffic.results
        final = status(a1)
        assert_status_schema(final)
        assert final["agent"]["processes"]["vrrp"]["pid"] == vrrp_pid
        assert final["agent"]["processes"]["vrrp"]["restarts"] == 0
        assert transitions(a1) == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]

        events = wait_for(lambda: (e := fifo.events()) and sum(x["event"] == "process_restart" for x in e) == 2 and e,
                          10, what="both restarts in the FIFO")
        assert_seq_contiguous(events)
        assert_in_order(events, [
            {"event": "transition", "to": "MASTER"},
            {"event": "real_server", "real_server": rs2, "up": False}, {"event": "quorum", "up": False},
            {"event": "real_server", "real_server": rs2, "up": True}, {"event": "quorum", "up": True},
            {"event": "process_restart", "process": "checker", "exit_status": -9, "delay_s": 1.0},
            {"event": "process_hung", "process": "checker"},
            {"event": "process_restart", "process": "checker", "exit_status": -9, "delay_s": 2.0},
        ])
        restarts = smtp.wait_mails(lambda m: "checker process" in m.subject, 2, 20, "two checker restart mails")
        assert [m.subject for m in restarts] == ["[n1] hanode checker process restarted",
                                                 "[n1] hanode checker process hung: killed and restarted"]
        assert "restarts it after 1 s.\n" in restarts[0].body and "restarts it after 2 s.\n" in restarts[1].body
    finally:
        fifo.close()
