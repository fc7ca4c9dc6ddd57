"""Shared pieces of the operations tests (issue 5): a real SMTP server (aiosmtpd) inside a lab host that
delivers to a Maildir, a reader of the agent's notify FIFO, a datagram socket playing systemd's notify
socket, a Prometheus scrape from inside a namespace, and ops config builders.

Every lab made here carries the `ops` prefix. Waits are on conditions with deadlines.
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import os
import re
import secrets
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from hanode.lab.lab import Host, Lab
from hanode.lab.procs import ProcessHandle, python_env, wait_for

LAB_PREFIX = "ops"
SMTP_PORT = 2525
RECIPIENTS = ["oncall@example.org", "netops@example.org"]


def new_lab(lab_factory, nodes: int = 2, clients: int = 1, **kwargs) -> Lab:
    """A lab whose namespaces are named ops<6 hex>-<host>."""
    return lab_factory(nodes=nodes, clients=clients, prefix=f"{LAB_PREFIX}{secrets.token_hex(3)}", **kwargs)


def mail_settings(server: Host, router_id: str, port: int = SMTP_PORT, **extra) -> dict:
    """keepalived's global_defs mail keys, pointing at a mail server in a lab host. smtp_connect_timeout 10 s:
    on a loaded 2-core machine aiosmtpd has been seen to take over 2 s to greet (the mail was retried and sent,
    but the tests that expect every mail to go through at the first attempt would fail)."""
    settings = {"notification_email": list(RECIPIENTS), "notification_email_from": f"hanode@{router_id}.example.org",
                "smtp_server": f"{server.ipv4}:{port}", "smtp_connect_timeout": 10, "smtp_helo_name": f"{router_id}.lab",
                "smtp_alert": True}
    settings.update(extra)
    return settings


# ----- a real SMTP server ---------------------------------------------------------------------------

@dataclass
class Mail:
    subject: str
    body: str
    headers: dict[str, str]
    peer: str            # the client IP address aiosmtpd saw (X-Peer)
    mail_from: str       # envelope sender
    rcpt_to: list[str]   # envelope recipients
    received_at: float   # wall clock (time.time) when the server stored it


def _peer_address(x_peer: str) -> str:
    """aiosmtpd writes X-Peer as the peer tuple's repr: "('198.51.100.11', 43768)"."""
    match = re.match(r"\('([^']+)'", x_peer)
    return match.group(1) if match else x_peer


class SmtpServer:
    """aiosmtpd's own command line (`python -m aiosmtpd`) with its Maildir handler, inside a lab host."""

    def __init__(self, lab: Lab, host: Host, port: int = SMTP_PORT):
        self.lab, self.host, self.port = lab, host, port
        self.maildir = host.dir / f"maildir-{port}"
        self.handle: ProcessHandle | None = None

    def listening(self) -> bool:
        out = self.lab.run(self.host, ["ss", "-Hltn", f"sport = :{self.port}"]).stdout
        return bool(out.strip())

    def start(self, timeout: float = 15.0) -> SmtpServer:
        argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{self.host.ipv4}:{self.port}",
                "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)]
        self.handle = self.lab.popen(self.host, argv, log_name=f"smtp-{self.port}", env=python_env())

        def up() -> bool:
            if not self.handle.running:
                raise self.handle.failure(f"SMTP server on {self.host.name} exited with {self.handle.returncode}")
            return self.listening()
        wait_for(up, timeout, interval=0.05, what=f"SMTP server on {self.host.name}:{self.port}")
        return self

    def stop(self) -> None:
        if self.handle and self.handle.running:
            self.handle.stop()

    def mails(self) -> list[Mail]:
        if not (self.maildir / "new").exists():
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        out = []
        for key in box.keys():
            path = self.maildir / "new" / key
            try:
                received_at = os.stat(path).st_mtime
                raw = path.read_bytes()
            except FileNotFoundError:
                continue
            message = email.message_from_bytes(raw, policy=email.policy.default)
            out.append(Mail(subject=str(message["Subject"]), body=message.get_content(),
                            headers={k: str(v) for k, v in message.items()},
                            peer=_peer_address(str(message["X-Peer"])), mail_from=str(message["X-MailFrom"]),
                            rcpt_to=[r.strip() for r in str(message["X-RcptTo"]).split(",")],
                            received_at=received_at))
        return sorted(out, key=lambda m: m.received_at)

    def wait_mails(self, predicate, count: int, timeout: float, what: str) -> list[Mail]:
        return wait_for(lambda: (found := [m for m in self.mails() if predicate(m)]) and len(found) >= count and found,
                        timeout, interval=0.1, what=what)


# ----- the notify FIFO --------------------------------------------------------------------------------

class FifoReader:
    """Reads the agent's notify FIFO in a thread: (monotonic time, line) for every line.

    The FIFO is created here, before the agent starts, and opened read-write so that it never reads
    end-of-file while no writer has it open."""

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.lines: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fifo-{path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready = select.select([self.fd], [], [], 0.1)[0]
            if not ready:
                continue
            try:
                buffer += os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            *complete, buffer = buffer.split(b"\n")
            now = time.monotonic()
            self.lines.extend((now, line.decode()) for line in complete)

    def events(self) -> list[dict]:
        return [json.loads(line) for _when, line in list(self.lines)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self.fd)


def assert_in_order(events: list[dict], expected: list[dict]) -> list[dict]:
    """Every expected item (a dict of fields) matches an event, in this order (other events may sit between).
    Returns the matched events."""
    matched, position = [], 0
    for want in expected:
        for index in range(position, len(events)):
            if all(events[index].get(k) == v for k, v in want.items()):
                matched.append(events[index])
                position = index + 1
                break
        else:
            kinds = [(e.get("seq"), e.get("event"), e.get("process") or e.get("to")) for e in events]
            raise AssertionError(f"{want} not found in order after position {position} in {kinds}")
    return matched


def assert_seq_contiguous(events: list[dict]) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"seq not strictly increasing by one: {seqs}"


# ----- systemd's notify socket ----------------------------------------------------------------------------

@dataclass
class Datagram:
    t: float                                   # time.monotonic() when received
    fields: dict[str, str] = field(default_factory=dict)


class NotifySocket:
    """A datagram socket playing systemd's NOTIFY_SOCKET; records every datagram with its arrival time."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.datagrams: list[Datagram] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-socket", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            pairs = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.datagrams.append(Datagram(now, pairs))

    def with_key(self, key: str, since: float = 0.0) -> list[Datagram]:
        return [d for d in list(self.datagrams) if key in d.fields and d.t >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        self.path.unlink(missing_ok=True)


# ----- metrics ----------------------------------------------------------------------------------------------

def scrape(lab: Lab, host: Host, url: str = "http://127.0.0.1:9650/metrics") -> dict[str, dict]:
    """GET the metrics page from inside the host and parse it with the Prometheus client's parser:
    {family name: {"type": ..., "samples": [(sample name, labels, value)]}}."""
    proc = lab.run(host, ["curl", "-sS", "-g", "--noproxy", "*", "-m", "5", "-D", "-", url])
    head, _blank, body = proc.stdout.partition("\n\n")  # text mode: CRLF already read as LF
    assert head.startswith("HTTP/1.1 200"), head
    assert "text/plain; version=0.0.4" in head, head
    return {family.name: {"type": family.type, "samples": [(s.name, s.labels, s.value) for s in family.samples]}
            for family in text_string_to_metric_families(body)}


def listeners(lab: Lab, host: Host) -> list[str]:
    """`ss -Hltnu` inside the host: every TCP/UDP listening socket (local address:port)."""
    out = lab.run(host, ["ss", "-Hltnu"]).stdout
    return [line.split()[4] for line in out.splitlines() if line.strip()]


# ----- the status document's schema (docs/status-schema.md) ----------------------------------------------------

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "status-schema.md"
ROOT_TABLE = "(root)"
_SCALARS = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "null": lambda v: v is None, "object": lambda v: isinstance(v, dict), "map": lambda v: isinstance(v, dict)}


@dataclass(frozen=True)
class FieldSpec:
    optional: bool
    types: tuple[str, ...]


def load_status_schema(path: Path = SCHEMA_DOC) -> dict[str, dict[str, FieldSpec]]:
    """The tables of docs/status-schema.md: {table path: {field: FieldSpec}}, e.g. "instances.<name>"."""
    tables: dict[str, dict[str, FieldSpec]] = {}
    current = None
    for line in path.read_text().splitlines():
        heading = re.fullmatch(r"### `([^`]+)`\s*", line)
        if heading:
            current = heading.group(1)
            tables[current] = {}
        elif current and line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            name, type_text = cells[0].strip("`"), cells[1].replace("\\|", "|")
            optional = type_text.startswith("optional ")
            types = tuple(t.strip() for t in type_text.removeprefix("optional ").split("|"))
            assert name not in tables[current], f"{current}.{name} documented twice"
            tables[current][name] = FieldSpec(optional, types)
    return tables


def _map_table(schema: dict, table: str) -> str:
    found = [t for t in schema if t.startswith(table + ".<") and re.fullmatch(r"<[^.>]+>", t[len(table) + 1:])]
    assert len(found) == 1, f"no single table describes the values of map {table}: {found}"
    return found[0]


def _matches(value, kind: str) -> bool:
    if kind.startswith('"'):
        return value == kind.strip('"')
    if kind.startswith("list[") and kind.endswith("]"):
        return isinstance(value, list) and all(_matches(item, kind[5:-1]) for item in value)
    if kind not in _SCALARS:
        raise AssertionError(f"unknown type {kind!r} in {SCHEMA_DOC.name}")
    return _SCALARS[kind](value)


def _check_object(value: dict, table: str, where: str, schema: dict, problems: list[str]) -> None:
    fields = schema[table]
    for name, spec in fields.items():
        path = f"{where}.{name}" if where else name
        if name not in value:
            if not spec.optional:
                problems.append(f"{path}: missing")
            continue
        child = name if table == ROOT_TABLE else f"{table}.{name}"
        _check_value(value[name], spec.types, child, path, schema, problems)
    for name in sorted(set(value) - set(fields)):
        problems.append(f"{where}.{name}: not documented in {SCHEMA_DOC.name} (table `{table}`)")


def _check_value(value, types: tuple[str, ...], table: str, where: str, schema: dict, problems: list[str]) -> None:
    for kind in types:
        if not _matches(value, kind):
            continue
        if kind == "object":
            _check_object(value, table, where, schema, problems)
        elif kind == "map":
            for key, item in value.items():
                _check_value(item, ("object",), _map_table(schema, table), f"{where}.{key}", schema, problems)
        elif kind == "list[object]":
            for index, item in enumerate(value):
                _check_object(item, f"{table}[]", f"{where}[{index}]", schema, problems)
        return
    problems.append(f"{where}: {value!r} is not {'|'.join(types)}")


def status_schema_problems(document: dict, schema: dict | None = None) -> list[str]:
    """Every way the document differs from docs/status-schema.md (empty: it conforms)."""
    schema = schema or load_status_schema()
    problems: list[str] = []
    _check_object(document, ROOT_TABLE, "", schema, problems)
    return problems


def assert_status_schema(document: dict) -> None:
    problems = status_schema_problems(document)
    assert not problems, "status document vs docs/status-schema.md:\n  " + "\n  ".join(problems)
