"""Alert mail an on-call engineer can act on: which events send one, subject and body (pure)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage

from hanode.config.model import AgentConfig


@dataclass(frozen=True)
class Alert:
    subject: str
    body: str


def alert_enabled(event: dict, config: AgentConfig, default: bool) -> bool:
    """keepalived's smtp_alert: per instance / sync group / virtual server, else the global default."""
    kind = event.get("event")
    if kind == "transition" and event.get("resumed"):
        return False  # the restart mail already says which states were resumed; nothing changed on the wire
    if kind in ("transition", "conflict"):
        inst = config.vrrp_instances.get(event.get("instance", ""))
        flag = inst.smtp_alert if inst else None
    elif kind == "group_transition":
        group = config.vrrp_sync_groups.get(event.get("group", ""))
        flag = group.smtp_alert if group else None
    elif kind in ("real_server", "quorum"):
        flag = _virtual_server_flag(config, event.get("virtual_server"))
    elif kind == "process_restart":  # a hung process is killed first: its restart mail says so (one mail)
        flag = None
    else:
        return False
    return default if flag is None else flag


def _virtual_server_flag(config: AgentConfig, name: str | None) -> bool | None:
    lvs = config.sections.get("lvs")
    for vs in getattr(lvs, "virtual_servers", ()) or ():
        if vs.name == name:
            return vs.smtp_alert
    return None


def _when(event: dict) -> str:
    return datetime.fromtimestamp(event.get("ts", 0), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def compose(event: dict, router_id: str) -> Alert | None:
    kind = event.get("event")
    composer = _COMPOSERS.get(kind)
    return composer(event, router_id) if composer else None


def _transition(event: dict, router_id: str) -> Alert:
    name, new = event["instance"], event["to"]
    advice = {"MASTER": "This node now holds the virtual addresses. Check that the previous master is really gone.",
              "BACKUP": "This node gave up or did not take the virtual addresses; another node should be MASTER.",
              "FAULT": "This node cannot serve: fix the reason below, the instance recovers by itself.",
              "STOP": "The agent stopped this instance (shutdown or reload)."}.get(new, "")
    body = (f"Router {router_id}: VRRP instance {name} (VRID {event.get('vrid')}) went "
            f"{event.get('from')} -> {new} at {_when(event)}.\n"
            f"Reason: {event.get('reason')}\nPriority: {event.get('priority')}\n\n{advice}\n"
            f"Details: hanode status on {router_id}.\n")
    return Alert(f"[{router_id}] VRRP instance {name} is now {new}", body)


def _group(event: dict, router_id: str) -> Alert:
    body = (f"Router {router_id}: VRRP sync group {event['group']} went {event.get('from')} -> {event['to']} "
            f"at {_when(event)}.\nReason: {event.get('reason')}\n")
    return Alert(f"[{router_id}] VRRP sync group {event['group']} is now {event['to']}", body)


def _conflict(event: dict, router_id: str) -> Alert:
    body = (f"Router {router_id}: VRRP instance {event['instance']} is MASTER and heard {event['peer']} claim the same "
            f"virtual router (priority {event.get('peer_priority')}) at {_when(event)}.\n"
            f"Kind: {event.get('kind')}\nDetail: {event.get('detail')}\n\n"
            "Two masters mean a network partition healed or a VRID collision with another cluster on this segment. "
            "This node re-asserted (advert + gratuitous ARP) so clients converge; check that only one node is MASTER now.\n")
    return Alert(f"[{router_id}] VRRP {event['instance']}: another master seen ({event['peer']})", body)


def _real_server(event: dict, router_id: str) -> Alert:
    state = "UP" if event.get("up") else "DOWN"
    body = (f"Router {router_id}: real server {event.get('real_server')} of {event.get('virtual_server')} is {state} "
            f"at {_when(event)}.\nReason: {event.get('reason') or '-'}\n")
    return Alert(f"[{router_id}] Real server {event.get('real_server')} of {event.get('virtual_server')} is {state}", body)


def _quorum(event: dict, router_id: str) -> Alert:
    state = "gained" if event.get("up") else "LOST"
    body = (f"Router {router_id}: virtual server {event.get('virtual_server')} {state} its quorum at {_when(event)}.\n"
            f"Live weight {event.get('weight')} vs quorum {event.get('quorum')}.\n"
            + ("" if event.get("up") else "Traffic now goes to the sorry server if one is configured.\n"))
    return Alert(f"[{router_id}] Virtual server {event.get('virtual_server')} quorum {state}", body)


def _exit_text(status) -> str:
    if isinstance(status, int) and status < 0:
        try:
            return f"was killed by signal {-status} ({signal.Signals(-status).name})"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def _process(event: dict, router_id: str) -> Alert:
    """One mail per restart; a process the watchdog killed for silence says so in its subject."""
    process, hung_s = event.get("process"), event.get("hung_s")
    what = f"sent no heartbeat for {hung_s:.1f} s (hung or frozen) and " if hung_s is not None else ""
    what += _exit_text(event.get("exit_status"))
    resume = event.get("resume") or {}
    kept = ", ".join(f"{name} was {state}" for name, state in sorted(resume.items()))
    body = (f"Router {router_id}: the hanode {process} process {what} after running {event.get('ran_s', 0):g} s, "
            f"at {_when(event)}.\n"
            f"The supervisor restarts it after {event.get('delay_s', 0):g} s"
            + (f" and resumes its VRRP state ({kept}): a MASTER keeps its virtual addresses.\n" if kept else ".\n")
            + "Repeated restarts back off (1, 2, 4 ... 60 s); look for the cause in the agent's log "
              f"(journalctl -u hanode) and check `hanode status` on {router_id}.\n")
    what = "hung: killed and restarted" if hung_s is not None else "restarted"
    subject = f"[{router_id}] hanode {process} process {what}"
    return Alert(subject, body)


_COMPOSERS = {"transition": _transition, "group_transition": _group, "conflict": _conflict,
              "real_server": _real_server, "quorum": _quorum, "process_restart": _process}


def to_message(alert: Alert, sender: str, recipients: tuple[str, ...], when: float) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = alert.subject
    message["Date"] = datetime.fromtimestamp(when, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
    message["X-Mailer"] = "hanode"
    message.set_content(alert.body)
    return message
