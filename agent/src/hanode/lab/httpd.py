"""Tiny HTTP server for lab hosts: `python -m hanode.lab.httpd --name r1 --port 8080 [--ready-file F]`.

Answers every GET (and HEAD) with 200 and the body "<name>\\n", on IPv4 and IPv6 at once, so tests
can tell which real server answered. Writes --ready-file once it listens.
"""

from __future__ import annotations

import argparse
import socket
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


def make_handler(name: str) -> type[BaseHTTPRequestHandler]:
    body = (name + "\n").encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "hanode-lab-httpd"

        def _head(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Hanode-Host", name)
            self.end_headers()

        def do_HEAD(self) -> None:  # noqa: N802 (http.server naming)
            self._head()

        def do_GET(self) -> None:  # noqa: N802
            self._head()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args) -> None:
            sys.stderr.write(f"{self.client_address[0]} {fmt % args}\n")
            sys.stderr.flush()

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hanode.lab.httpd")
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--ready-file")
    args = parser.parse_args(argv)
    server = DualStackServer(("::", args.port), make_handler(args.name))
    if args.ready_file:
        Path(args.ready_file).write_text(f"{args.port}\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
