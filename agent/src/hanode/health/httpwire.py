"""HTTP_GET / SSL_GET wire details (pure): the request keepalived sends, the response head, status ranges."""

from __future__ import annotations

from dataclasses import dataclass

USER_AGENT = "KeepAliveClient"  # keepalived's


class HttpError(ValueError):
    """The response is not HTTP we can read; str() is the reason."""


@dataclass(frozen=True)
class ResponseHead:
    version: str
    status: int
    headers: dict[str, str]          # lower-case names; repeated headers joined with ", "

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        if value is None:
            return None
        try:
            length = int(value.split(",")[0].strip())
        except ValueError:
            raise HttpError(f"bad Content-Length {value!r}") from None
        if length < 0:
            raise HttpError(f"bad Content-Length {value!r}")
        return length


def host_header(host: str, port: int, tls: bool) -> str:
    text = f"[{host}]" if ":" in host else host
    return text if port == (443 if tls else 80) else f"{text}:{port}"


def build_request(path: str, host: str, protocol: str = "1.0") -> bytes:
    """keepalived's request, line for line: GET, its User-Agent, Host; http_protocol 1.1 (HTTP/1.1) and 1.0C
    (HTTP/1.0) add Connection: close before the Host."""
    lines = [f"GET {path} HTTP/{'1.1' if protocol == '1.1' else '1.0'}", f"User-Agent: {USER_AGENT}"]
    if protocol in ("1.1", "1.0C"):
        lines.append("Connection: close")
    lines.append(f"Host: {host}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_status_line(status_line: str) -> tuple[str, int]:
    """'HTTP/1.1 200 OK' -> ('1.1', 200)."""
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise HttpError(f"bad HTTP status line {status_line[:80]!r}")
    return parts[0][5:], int(parts[1])


def parse_head(data: bytes) -> ResponseHead:
    """The status line and headers, without the final blank line."""
    lines = data.decode("latin-1").split("\r\n")
    version, status = parse_status_line(lines[0])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(f"bad HTTP header line {line[:80]!r}")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return ResponseHead(version, status, headers)


def status_accepted(status: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= status <= high for low, high in ranges)


def format_ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def chunk_size(line: bytes) -> int:
    text = line.split(b";", 1)[0].strip()
    try:
        return int(text, 16)
    except ValueError:
        raise HttpError(f"bad chunk size line {line[:40]!r}") from None
