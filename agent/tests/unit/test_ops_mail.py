"""Alert mail (ops/mail.py, pure): which events send mail (keepalived's smtp_alert rules) and what the mail says."""

from __future__ import annotations

import pytest

from hanode.config.parse import parse_config
from hanode.lvs.model import LvsConfig, VirtualServer
from hanode.ops.mail import Alert, alert_enabled, compose, to_message

TS = 1_795_000_000.25  # 2026-11-18 11:06:40 UTC


def _config(**instance_flags):
    vrrp = {"interface": "eth0", "virtual_router_id": 51, "priority": 100, "virtual_ipaddresses": ["198.51.100.100/24"]}
    raw = {"router_id": "lb1",
           "vrrp_instances": {"VI_1": dict(vrrp), "VI_2": dict(vrrp, virtual_router_id=52, **instance_flags)},
           "vrrp_sync_groups": {"G_ON": {"group": ["VI_1"], "smtp_alert": True},
                                "G_OFF": {"group": ["VI_2"], "smtp_alert": False}}}
    config, _problems = parse_config(raw)
    config.sections["lvs"] = LvsConfig(virtual_servers=(
        VirtualServer(address="198.51.100.100", port=80, smtp_alert=False),
        VirtualServer(address="198.51.100.100", port=443, smtp_alert=True),
        VirtualServer(address="198.51.100.100", port=8080)))
    return config


@pytest.mark.parametrize("event, default, expected", [
    # instances: their own smtp_alert, else the global default
    ({"event": "transition", "instance": "VI_1"}, True, True),
    ({"event": "transition", "instance": "VI_1"}, False, False),
    ({"event": "transition", "instance": "VI_2"}, True, False),      # VI_2: smtp_alert false
    ({"event": "conflict", "instance": "VI_2"}, True, False),
    ({"event": "conflict", "instance": "VI_1"}, True, True),
    ({"event": "transition", "instance": "GONE"}, True, True),        # unknown instance: the default
    # sync groups
    ({"event": "group_transition", "group": "G_ON"}, False, True),
    ({"event": "group_transition", "group": "G_OFF"}, True, False),
    # virtual servers (by the name status and events use)
    ({"event": "real_server", "virtual_server": "198.51.100.100:80/TCP"}, True, False),
    ({"event": "quorum", "virtual_server": "198.51.100.100:443/TCP"}, False, True),
    ({"event": "real_server", "virtual_server": "198.51.100.100:8080/TCP"}, True, True),
    ({"event": "real_server", "virtual_server": "198.51.100.100:8080/TCP"}, False, False),
    # process restarts follow the global default; a hang is told by the restart mail that follows it
    ({"event": "process_restart", "process": "vrrp"}, True, True),
    ({"event": "process_restart", "process": "vrrp"}, False, False),
    ({"event": "process_hung", "process": "vrrp"}, True, False),
    # everything else never mails
    ({"event": "reload", "ok": True}, True, False),
    ({"event": "tracker", "tracker": "script"}, True, False),
    ({"event": "control", "action": "drain"}, True, False),
])
def test_alert_enabled_follows_keepalived_smtp_alert(event, default, expected):
    assert alert_enabled(event, _config(smtp_alert=False), default) is expected


def test_instance_smtp_alert_true_beats_a_false_default():
    assert alert_enabled({"event": "transition", "instance": "VI_2"}, _config(smtp_alert=True), False) is True


def test_transition_mail_says_what_changed_why_and_what_to_do():
    alert = compose({"event": "transition", "instance": "VI_1", "from": "BACKUP", "to": "MASTER", "vrid": 51,
                     "priority": 150, "reason": "master down timer expired", "ts": TS}, "lb1")
    assert alert.subject == "[lb1] VRRP instance VI_1 is now MASTER"
    assert alert.body == (
        "Router lb1: VRRP instance VI_1 (VRID 51) went BACKUP -> MASTER at 2026-11-18 11:06:40 UTC.\n"
        "Reason: master down timer expired\nPriority: 150\n\n"
        "This node now holds the virtual addresses. Check that the previous master is really gone.\n"
        "Details: hanode status on lb1.\n")


@pytest.mark.parametrize("state, advice", [
    ("BACKUP", "another node should be MASTER"), ("FAULT", "fix the reason below"),
    ("STOP", "The agent stopped this instance")])
def test_transition_advice_per_state(state, advice):
    alert = compose({"event": "transition", "instance": "VI_1", "from": "MASTER", "to": state, "ts": TS}, "lb1")
    assert alert.subject == f"[lb1] VRRP instance VI_1 is now {state}" and advice in alert.body


def test_group_and_conflict_mails():
    group = compose({"event": "group_transition", "group": "G1", "from": "BACKUP", "to": "FAULT",
                     "reason": "VI_2 is FAULT", "ts": TS}, "lb1")
    assert group.subject == "[lb1] VRRP sync group G1 is now FAULT"
    assert "went BACKUP -> FAULT at 2026-11-18 11:06:40 UTC.\nReason: VI_2 is FAULT\n" in group.body
    conflict = compose({"event": "conflict", "instance": "VI_1", "peer": "198.51.100.12", "peer_priority": 100,
                        "kind": "split_brain", "detail": "MASTER heard 198.51.100.12 advertising priority 100 (ours 150)",
                        "ts": TS}, "lb1")
    assert conflict.subject == "[lb1] VRRP VI_1: another master seen (198.51.100.12)"
    assert "Kind: split_brain\n" in conflict.body and "priority 100" in conflict.body
    assert "re-asserted (advert + gratuitous ARP)" in conflict.body


def test_real_server_and_quorum_mails():
    down = compose({"event": "real_server", "virtual_server": "198.51.100.100:80/TCP", "real_server": "203.0.113.11:80",
                    "up": False, "reason": "TCP_CHECK: connection refused", "ts": TS}, "lb1")
    assert down.subject == "[lb1] Real server 203.0.113.11:80 of 198.51.100.100:80/TCP is DOWN"
    assert "Reason: TCP_CHECK: connection refused" in down.body
    lost = compose({"event": "quorum", "virtual_server": "198.51.100.100:80/TCP", "up": False, "weight": 1,
                    "quorum": 2, "ts": TS}, "lb1")
    assert lost.subject == "[lb1] Virtual server 198.51.100.100:80/TCP quorum LOST"
    assert "Live weight 1 vs quorum 2." in lost.body and "sorry server" in lost.body
    gained = compose({"event": "quorum", "virtual_server": "198.51.100.100:80/TCP", "up": True, "ts": TS}, "lb1")
    assert gained.subject.endswith("quorum gained") and "sorry server" not in gained.body


def test_restart_mail_after_a_kill():
    alert = compose({"event": "process_restart", "process": "vrrp", "exit_status": -9, "ran_s": 12.6, "delay_s": 1.0,
                     "resume": {"VI_1": "MASTER", "VI_2": "BACKUP"}, "ts": TS}, "lb1")
    assert alert.subject == "[lb1] hanode vrrp process restarted"
    assert alert.body.startswith("Router lb1: the hanode vrrp process was killed by signal 9 (SIGKILL) after running "
                                 "12.6 s, at 2026-11-18 11:06:40 UTC.\n")
    assert "restarts it after 1 s and resumes its VRRP state (VI_1 was MASTER, VI_2 was BACKUP)" in alert.body
    assert "journalctl -u hanode" in alert.body


def test_restart_mail_after_a_hang_and_after_an_exit():
    hung = compose({"event": "process_restart", "process": "vrrp", "exit_status": -9, "ran_s": 30, "delay_s": 2.0,
                    "hung_s": 2.31, "resume": {}, "ts": TS}, "lb1")
    assert hung.subject == "[lb1] hanode vrrp process hung: killed and restarted"
    assert "sent no heartbeat for 2.3 s (hung or frozen) and was killed by signal 9 (SIGKILL)" in hung.body
    assert "restarts it after 2 s.\n" in hung.body  # nothing to resume
    exited = compose({"event": "process_restart", "process": "checker", "exit_status": 1, "ran_s": 0.4,
                      "delay_s": 4.0, "ts": TS}, "lb1")
    assert "process exited with status 1 after running 0.4 s" in exited.body
    assert compose({"event": "process_restart", "process": "vrrp", "exit_status": -99, "ts": TS}, "lb1").body \
        .startswith("Router lb1: the hanode vrrp process was killed by signal 99 after")


def test_events_without_a_mail():
    for kind in ("process_hung", "reload", "tracker", "control", "nonsense"):
        assert compose({"event": kind, "ts": TS}, "lb1") is None


def test_to_message_headers():
    message = to_message(Alert("[lb1] subject", "body\n"), "hanode@lb1.example.org",
                         ("oncall@example.org", "netops@example.org"), TS)
    assert message["From"] == "hanode@lb1.example.org"
    assert message["To"] == "oncall@example.org, netops@example.org"
    assert message["Subject"] == "[lb1] subject"
    assert message["Date"] == "Wed, 18 Nov 2026 11:06:40 +0000"
    assert message["X-Mailer"] == "hanode"
    assert message.get_content() == "body\n"
