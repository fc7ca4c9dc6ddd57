"""Tiny HTTP server for lab hosts: `python -m hanode.lab.httpd --name r1 --port 8080 [--ready-file F]`.

Answers every GET (and HEAD) with 200 and the body "<name>\\n", on IPv4 and IPv6 at once, so tests
can tell which real server answered. Writes --ready-file once it listens.

For the checker's tests: --body-file serves that file's current contents instead (re-read on every request);
--request-log appends one line per request: 'GET /path HTTP/1.1 host=... connection=... sni=...'; --tls-cert
and --tls-key serve HTTPS, and --tls-client-ca also requires a client certificate signed by that CA.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def make_handler(name: str, body_file: str | None = None,
                 request_log: str | None = None) -> type[BaseHTTPRequestHandler]:
    fixed = (name + "\n").encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "hanode-lab-httpd"

        def _body(self) -> bytes:
            return Path(body_file).read_bytes() if body_file else fixed

        def _log_request(self) -> None:
            if request_log:
                sni = getattr(self.connection, "server_name_indication", None)
                with open(request_log, "a", encoding="latin-1") as log:
                    log.write(f"{self.requestline} host={self.headers.get('Host')} "
                              f"connection={self.headers.get('Connection')} sni={sni}\n")

        def _head(self) -> bytes:
            body = self._body()
            self._log_request()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Hanode-Host", name)
            self.end_headers()
            return body

        def do_HEAD(self) -> None:  # noqa: N802 (http.server naming)
            self._head()

        def do_GET(self) -> None:  # noqa: N802
            self.wfile.write(self._head())

        def log_message(self, fmt: str, *args) -> None:
            sys.stderr.write(f"{self.client_address[0]} {fmt % args}\n")
            sys.stderr.flush()

    return Handler


def tls_context(cert: str, key: str | None, client_ca: str | None) -> ssl.SSLContext:
    """The server's context; with client_ca, a client without a certificate that CA signed is refused."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)

    def remember_sni(sock: ssl.SSLSocket, server_name: str | None, _context: ssl.SSLContext) -> None:
        sock.server_name_indication = server_name
    context.sni_callback = remember_sni
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hanode.lab.httpd")
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--ready-file")
    parser.add_argument("--body-file")
    parser.add_argument("--request-log")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--tls-client-ca")
    args = parser.parse_args(argv)
    server = DualStackServer(("::", args.port), make_handler(args.name, args.body_file, args.request_log))
    if args.tls_cert:
        context = tls_context(args.tls_cert, args.tls_key, args.tls_client_ca)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    if args.ready_file:
        Path(args.ready_file).write_text(f"{args.port}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
