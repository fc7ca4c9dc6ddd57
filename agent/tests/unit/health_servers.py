"""Real servers on 127.0.0.1 for the check adapter tests: HTTP (plain and TLS), UDP echo, a tiny DNS
responder and scripted SMTP, each started inside the test's event loop and recording what it received."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ssl
import struct
import subprocess
from dataclasses import dataclass, field

from hanode.health.spec import Probe, probe_of
from hanode.lvs.model import Check, RealServer, VirtualServer


def probe(check_type: str, port: int | None, address: str = "127.0.0.1", vs_virtualhost: str | None = None,
          script_user: str | None = "root", fwmark: int | None = None, **check: object) -> Probe:
    """A probe as the checker builds it; MISC_CHECK scripts run as root unless told otherwise (the explicit
    opt-in a config needs: without it they would run as keepalived_script, or be refused)."""
    if fwmark is not None:
        vs = VirtualServer(fwmark=fwmark, virtualhost=vs_virtualhost, delay_loop_ms=1000)
    else:
        vs = VirtualServer(address="198.51.100.100", port=80, virtualhost=vs_virtualhost, delay_loop_ms=1000)
    rs = RealServer(address=address, port=port)
    return probe_of(vs, rs, Check(type=check_type, **check), script_user)


@dataclass
class HttpServer:
    """path -> (status, body, mode) where mode is 'plain', 'chunked', 'nolength', 'short', 'hang' or 'close'."""
    routes: dict[str, tuple[int, bytes, str]]
    requests: list[bytes] = field(default_factory=list)
    snis: list[str | None] = field(default_factory=list)
    server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def start(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> "HttpServer":
        if tls is not None:
            tls.sni_callback = lambda sslobj, name, ctx: self.snis.append(name)
        self.server = await asyncio.start_server(self._handle, host, 0, ssl=tls)
        return self

    async def close(self) -> None:
        self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()
            return
        self.requests.append(head)
        path = head.split(b" ")[1].decode()
        status, body, mode = self.routes.get(path, (404, b"not found", "plain"))
        try:
            if mode == "hang":
                await asyncio.Event().wait()  # never answers; ends when the server closes or the loop does
            elif mode == "close":
                pass
            elif mode == "chunked":
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 3]), body[i:i + 3]) for i in range(0, len(body), 3))
                writer.write(b"HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n" % (status, chunks))
            elif mode == "nolength":
                writer.write(b"HTTP/1.0 %d X\r\n\r\n%s" % (status, body))
            elif mode == "short":
                writer.write(b"HTTP/1.0 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body) + 10, body))
            else:
                writer.write(b"HTTP/1.0 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def self_signed(tmp_path) -> ssl.SSLContext:
    """A server context with a throw-away self-signed certificate (cryptography package, else openssl)."""
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        _write_cert(cert_file, key_file)
    except ImportError:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "1", "-subj", "/CN=real-server.test", "-keyout", str(key_file),
                        "-out", str(cert_file)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def _write_cert(cert_file, key_file) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "real-server.test")])
    # fixed dates, no clock: SSL_GET does not verify the certificate (keepalived's neither)
    valid_from, valid_to = (datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc) for year in (2020, 2100))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(valid_from)
            .not_valid_after(valid_to).sign(key, hashes.SHA256()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class UdpServer(asyncio.DatagramProtocol):
    """mode 'echo' answers every datagram, 'silent' never does, 'dns' is a one-zone DNS responder."""

    def __init__(self, mode: str = "echo", rcode_for: dict[str, int] | None = None, bad_id: bool = False):
        self.mode, self.rcode_for, self.bad_id = mode, rcode_for or {}, bad_id
        self.received: list[bytes] = []
        self.transport = None

    @classmethod
    async def start(cls, *args, host: str = "127.0.0.1", **kwargs) -> "UdpServer":
        server = cls(*args, **kwargs)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: server, local_addr=(host, 0))
        return server

    @property
    def port(self) -> int:
        return self.transport.get_extra_info("sockname")[1]

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.append(data)
        if self.mode == "echo":
            self.transport.sendto(data, addr)
        elif self.mode == "dns":
            self.transport.sendto(self._dns_answer(data), addr)

    def _dns_answer(self, query: bytes) -> bytes:
        ident, _flags = struct.unpack("!HH", query[:4])
        name, offset = decode_name(query, 12)
        rcode = self.rcode_for.get(name, 0)
        question = query[12:offset + 4]
        flags = 0x8180 | rcode
        answer = b""
        if rcode == 0:  # one A record pointing back at the question
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([198, 51, 100, 7])
        if self.bad_id:
            ident ^= 0xFFFF
        return struct.pack("!HHHHHH", ident, flags, 1, 1 if answer else 0, 0, 0) + question + answer

    def close(self) -> None:
        self.transport.close()


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while data[offset]:
        length = data[offset]
        labels.append(data[offset + 1:offset + 1 + length].decode())
        offset += 1 + length
    return ".".join(labels) + ".", offset + 1


async def scripted_tcp(lines: list[bytes], host: str = "127.0.0.1") -> tuple[asyncio.base_events.Server, list[bytes]]:
    """A TCP server that writes lines[0] at once, then one line of lines[i] per line it reads."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(lines[0])
            for reply in lines[1:]:
                line = await reader.readline()
                if not line:
                    break
                received.append(line)
                writer.write(reply)
            await writer.drain()
            received.append(await reader.readline())
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, 0)
    return server, received
