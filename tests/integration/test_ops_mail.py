"""SMTP alerts (issue 5) against a real SMTP server (aiosmtpd, Maildir) in the client namespace: one mail per
state change with a subject and body an on-call engineer can act on, smtp_alert false per instance suppresses
them, and a mail server that is down is retried and counted while VRRP fails over on time."""

from __future__ import annotations

import os
import signal
import statistics
import time

import pytest

from hanode.lab.procs import wait_for
from helpers_ops import RECIPIENTS, FifoReader, SmtpServer, assert_status_schema, mail_settings, new_lab
from helpers_vrrp import (VIP4, VIP4_B, agent_config, instance, master_down_s, rewrite_config, status, transitions,
                          wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

FAST = {"version": 3, "advert_int": 0.5}


def _config(router_id: str, priority: int, smtp_host, **extra) -> dict:
    instances = {"VI_1": instance(51, priority, vips=(VIP4,), **FAST),
                 "VI_2": instance(52, priority, vips=(VIP4_B,), smtp_alert=False, **FAST)}
    return agent_config(router_id, instances, **mail_settings(smtp_host, router_id), **extra)


def test_one_mail_per_state_change_and_smtp_alert_false_suppresses(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    smtp = SmtpServer(lab, c1).start()
    fifos = {n.name: FifoReader(n.dir / "events.fifo") for n in (n1, n2)}
    try:
        a1 = lab.start_agent(n1, _config("n1", 150, c1, notify_fifo=str(fifos["n1"].path)))
        a2 = lab.start_agent(n2, _config("n2", 100, c1, notify_fifo=str(fifos["n2"].path)))
        for name in ("VI_1", "VI_2"):
            wait_state(a1, "MASTER", name, timeout=15)
            wait_state(a2, "BACKUP", name)
        # A graceful stop of the master: n2 takes over both instances, n1 reports STOP.
        assert a1.stop() == 0
        for name in ("VI_1", "VI_2"):
            wait_state(a2, "MASTER", name, timeout=10)
        wait_sole_holder(lab.nodes, VIP4, n2)

        expected = {}  # (router, from, to) -> the transition event, VI_1 only
        for node in (n1, n2):
            changes = [e for e in fifos[node.name].events() if e["event"] == "transition"]
            assert {e["instance"] for e in changes} == {"VI_1", "VI_2"}, "VI_2 changes state too"
            for event in changes:
                if event["instance"] == "VI_1":
                    expected[(node.name, event["from"], event["to"])] = event
        assert sorted(expected) == [("n1", "BACKUP", "MASTER"), ("n1", "INIT", "BACKUP"), ("n1", "MASTER", "STOP"),
                                    ("n2", "BACKUP", "MASTER"), ("n2", "INIT", "BACKUP")]

        mails = smtp.wait_mails(lambda m: True, len(expected), 15, "one mail per VI_1 transition")
        wait_for(lambda: status(a2)["agent"]["alerts"]["pending"] == 0, 10, what="n2's alert queue to drain")
        mails = smtp.mails()
        assert len(mails) == len(expected), [m.subject for m in mails]
        assert not [m for m in mails if "VI_2" in m.subject + m.body], "smtp_alert: false on VI_2 sends no mail"
        latencies = []
        hosts = {n1.name: n1, n2.name: n2}
        for (router, old, new), event in expected.items():
            subject = f"[{router}] VRRP instance VI_1 is now {new}"
            found = [m for m in mails if m.subject == subject and f"went {old} -> {new}" in m.body]
            assert len(found) == 1, (subject, [m.subject for m in mails])
            mail = found[0]
            body = mail.body
            assert f"Router {router}: VRRP instance VI_1 (VRID 51) went {old} -> {new} at " in body
            assert f"Reason: {event['reason']}\n" in body and f"Priority: {event['priority']}\n" in body
            assert f"Details: hanode status on {router}." in body
            advice = {"MASTER": "now holds the virtual addresses", "BACKUP": "another node should be MASTER",
                      "STOP": "The agent stopped this instance"}[new]
            assert advice in body
            assert mail.headers["From"] == f"hanode@{router}.example.org"
            assert mail.headers["To"] == ", ".join(RECIPIENTS)
            assert mail.headers["X-Mailer"] == "hanode" and mail.headers["Date"].endswith("+0000")
            assert mail.mail_from == f"hanode@{router}.example.org" and mail.rcpt_to == RECIPIENTS
            assert mail.peer == hosts[router].ipv4
            latencies.append(mail.received_at - event["ts"])
        print(f"\nMEASURE alert mail latency (transition -> stored by the SMTP server): median "
              f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms over {len(latencies)}")
        assert max(latencies) < 5
        alerts = status(a2)["agent"]["alerts"]
        assert (alerts["queued"], alerts["sent"], alerts["failed_attempts"], alerts["dropped"]) == (2, 2, 0, 0)
        assert alerts["server"] == f"{c1.ipv4}:2525"
    finally:
        for fifo in fifos.values():
            fifo.close()


def test_mail_server_down_is_retried_and_counted_and_never_delays_failover(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    (c1,) = lab.clients
    smtp = SmtpServer(lab, c1)  # not started: nothing listens on c1:2525, every attempt is refused
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, agent_config("n1", {"VI_1": instance(51, 150, **FAST)}, **mail_settings(c1, "n1")))
    a2 = lab.start_agent(n2, agent_config("n2", {"VI_1": instance(51, 100, **FAST)}, **mail_settings(c1, "n2")))
    wait_state(a1, "MASTER", timeout=15)
    wait_state(a2, "BACKUP")
    down = wait_for(lambda: (a := status(a2)["agent"]["alerts"])["failed_attempts"] >= 2 and a, 10,
                    what="n2's mail attempts to fail")
    assert down["sent"] == 0 and down["pending"] == 1 and down["retries"] >= 1
    assert "Connection refused" in down["last_error"]
    assert_status_schema(status(a2))
    # The agent answers at once while its mail is failing.
    asked = time.monotonic()
    status(a2)
    assert time.monotonic() - asked < 1.0

    # The master is lost (kill -9, no priority-0 advert); n2 takes over after its Master_Down_Interval.
    last = sniffer.wait_for_adverts(1, timeout=5, src=n1.ipv4, since=time.monotonic())[0]
    a1.kill(group=True)
    takeover = sniffer.wait_for_adverts(1, timeout=10, src=n2.ipv4, since=last.t)[0]
    wire_s = takeover.t - last.t
    down_s = master_down_s(100, FAST["advert_int"], 3)
    print(f"\nMEASURE failover with the mail server down: {wire_s * 1000:.0f} ms "
          f"(Master_Down_Interval {down_s * 1000:.0f} ms)")
    assert down_s - 0.02 <= wire_s <= down_s + 0.35
    wait_state(a2, "MASTER", timeout=5)
    assert status(a2)["agent"]["alerts"]["sent"] == 0

    # The mail server comes up: the queued mails go out, in order, on the next retry.
    smtp.start()
    started = time.monotonic()
    alerts = wait_for(lambda: (a := status(a2)["agent"]["alerts"])["pending"] == 0 and a, 40, interval=0.2,
                      what="n2's queued mails to be sent")
    print(f"MEASURE queued alert mails sent {time.monotonic() - started:.1f} s after the mail server came up "
          f"({alerts['failed_attempts']} failed attempts, {alerts['retries']} retries)")
    assert alerts["sent"] == alerts["queued"] == 2 and alerts["dropped"] == 0
    assert alerts["failed_attempts"] >= 3 and alerts["retries"] == alerts["failed_attempts"]
    mails = [m for m in smtp.mails() if m.peer == n2.ipv4]
    assert [m.subject for m in mails] == ["[n2] VRRP instance VI_1 is now BACKUP", "[n2] VRRP instance VI_1 is now MASTER"]
    assert "higher priority" not in mails[1].body and "master down timer expired" in mails[1].body
    assert transitions(a2) == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]

    # The mail server goes away again and alerts queue up; a reload points smtp_server at another server:
    # the queued mails go there, the counters carry on.
    smtp.stop()
    # a restart: one more mail (the resumed MASTER changed nothing on the wire and sends none)
    os.kill(status(a2)["agent"]["processes"]["vrrp"]["pid"], signal.SIGKILL)
    wait_for(lambda: (a := status(a2)["agent"]["alerts"])["queued"] == 3 and a["pending"] == 1
             and a["failed_attempts"] > alerts["failed_attempts"], 10, what="the restart mail waiting, refused")
    other = SmtpServer(lab, c1, port=2526).start()
    rewrite_config(a2, agent_config("n2", {"VI_1": instance(51, 100, **FAST)}, **mail_settings(c1, "n2", port=2526)))
    a2.reload()
    moved = wait_for(lambda: (a := status(a2)["agent"]["alerts"])["pending"] == 0 and a, 15, interval=0.2,
                     what="the queued mails to go to the new server")
    assert moved["server"] == f"{c1.ipv4}:2526" and moved["sent"] == moved["queued"] == 3 and moved["dropped"] == 0
    assert [m.subject for m in other.mails()] == ["[n2] hanode vrrp process restarted"]
    # the VRRP process came back after its back-off (the reload did not start it early): MASTER resumed, no mail
    wait_for(lambda: transitions(a2)[-1] == ("INIT", "MASTER"), 10, what="the VRRP process to resume MASTER")
    assert [m.subject for m in other.mails()] == ["[n2] hanode vrrp process restarted"]
    assert len(smtp.mails()) == 2
