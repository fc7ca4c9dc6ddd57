"""The alert mail queue (ops/mailer.py) across a reload that changes the SMTP settings: unsent mail and the
counters move to the new mailer (no network: the worker is never started)."""

from __future__ import annotations

from email.message import EmailMessage

from hanode.config.parse_ops import SmtpSettings
from hanode.ops.mailer import QUEUE_LIMIT, Mailer


def _mail(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    return message


def test_a_new_mailer_adopts_unsent_mail_oldest_first_and_the_counters():
    old = Mailer(SmtpSettings(server="198.51.100.1"))
    for subject in ("one", "two", "three"):
        old.submit(_mail(subject))
    old.current = old.queue.get_nowait()           # "one" was being sent (or waiting for a retry)
    old.stats.update(failed_attempts=3, retries=3)
    old.last_error = "ConnectionRefusedError: [Errno 111] Connection refused"
    assert old.status()["pending"] == 3

    new = Mailer(SmtpSettings(server="198.51.100.2", port=2526))
    new.adopt(old)
    assert [new.queue.get_nowait()["Subject"] for _mail in range(3)] == ["one", "two", "three"]
    assert new.stats == {"queued": 3, "sent": 0, "failed_attempts": 3, "retries": 3, "dropped": 0}
    assert new.last_error == old.last_error
    assert old.unsent() == [] and old.status()["pending"] == 0


def test_status_names_the_server_and_counts_pending():
    mailer = Mailer(SmtpSettings(server="smtp.example.org", port=587))
    mailer.submit(_mail("a"))
    assert mailer.status() == {"server": "smtp.example.org:587", "pending": 1, "last_error": None, "queued": 1,
                               "sent": 0, "failed_attempts": 0, "retries": 0, "dropped": 0}


def test_a_full_queue_drops_and_counts():
    mailer = Mailer(SmtpSettings(server="smtp.example.org"))
    for index in range(QUEUE_LIMIT + 2):
        mailer.submit(_mail(str(index)))
    assert mailer.stats["queued"] == QUEUE_LIMIT and mailer.stats["dropped"] == 2
