"""real_server and its checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, PING_CHECK, UDP_CHECK, DNS_CHECK,
SMTP_CHECK), with HTTP_GET's and SSL_GET's url blocks."""

from __future__ import annotations

import re
from typing import Any

from hanode.migrate.keepalived.model import INVALID, NO_MEANING, UNSUPPORTED, Node
from hanode.migrate.keepalived import reasons as why
from hanode.migrate.keepalived.table import (Scope, Table, carried, foreign, no_meaning, not_carried_block, same_reason,
                                             unsupported, value)
from hanode.migrate.keepalived.translator import MISSING, Translator, is_ip, join, notify, ordered_keys

# ----- url (HTTP_GET, SSL_GET) ------------------------------------------------------------------------------------


def _status_code(tr: Translator, node: Node, scope: Scope) -> None:
    if not node.args:
        tr.skip(node, INVALID, MISSING)
        return
    codes: list[Any] = []
    for word in node.args:
        if re.match(r"^\d+$", word):
            codes.append(int(word))
        elif re.match(r"^\d+-\d+$", word):
            codes.append(word)
        else:
            tr.skip(node, INVALID, "%r is not a status code or a range like 200-299" % word)
            return
    tr.put(scope.out, "status_code", codes[0] if len(codes) == 1 else codes, node, scope.path)


_REGEX = "hanode matches URLs by status code and digest only"

URL = Table("url", "url", "virtual_servers[].real_servers[].checks[].urls[]", [
    value("path", "text"),
    value("digest", "text"),
    carried("status_code", "status_code", _status_code, "codes and ranges like 200-299"),
    unsupported("virtualhost", "hanode sets virtualhost per check, not per url"),
    *same_reason(unsupported, _REGEX, "regex", "regex_no_match", "regex_options", "regex_min_offset",
                 "regex_max_offset", "regex_stack"),
], note="a `url { }` block of HTTP_GET or SSL_GET")


def _url(tr: Translator, block: Node, scope: Scope) -> None:
    path = "%s.urls[%d]" % (scope.path, len(scope.urls))
    out: dict[str, Any] = {}
    tr.walk(URL, tr.entries(block), Scope(out, path))
    tr.record(path, block)
    scope.urls.append(ordered_keys(out, ("path", "status_code", "digest")))


# ----- the checkers ---------------------------------------------------------------------------------------------

def _nb_get_retry(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.integer(node)
    if found is not None:
        tr.note(node, "keepalived deprecated nb_get_retry; carried over as retry")
        tr.put(scope.out, "retry", found, node, scope.path)


CHECKER = Table("checker", "checker", "virtual_servers[].real_servers[].checks[]", [
    value("connect_ip", "text"),
    value("connect_port", "int"),
    value("bindto", "text"),
    value("bind_port", "int"),
    value("connect_timeout", "num"),
    value("retry", "int"),
    carried("nb_get_retry", "retry", _nb_get_retry, "keepalived's deprecated name", kind="int"),
    value("delay_before_retry", "num"),
    value("warmup", "num"),
    value("delay_loop", "num"),
    unsupported("bind_if", "hanode binds checks by address (bindto) only"),
    unsupported("fwmark", "hanode does not mark check traffic"),
    unsupported("alpha", "hanode has alpha per real server or service, not per checker"),
    unsupported("log_all_failures", "hanode reports every check result in status"),
    unsupported("fast_recovery", "hanode has no such option"),
    foreign(unsupported("tls_compliant", "hanode has no such option")),
], note="every checker block (TCP_CHECK, HTTP_GET, ...) and SMTP_CHECK's host blocks")


def _http_protocol(tr: Translator, node: Node, scope: Scope) -> None:
    del scope
    if node.args[:1] == ["1.0"]:
        tr.skip(node, NO_MEANING, "HTTP/1.0 is what hanode sends (keepalived's default)")
    else:
        tr.skip(node, UNSUPPORTED, "hanode sends HTTP/1.0 requests (keepalived's default) only")


def _enable_sni(tr: Translator, node: Node, scope: Scope) -> None:
    if tr.flag(node):
        scope.sni = node


def _host(tr: Translator, node: Node, scope: Scope) -> None:
    del tr
    scope.hosts.append(node)


def _misc_path(tr: Translator, node: Node, scope: Scope) -> None:
    command = tr.script(node, with_user=False)[0]
    if command is not None:
        tr.put(scope.out, "misc_path", command, node, scope.path)


def _misc_user(tr: Translator, node: Node, scope: Scope) -> None:
    tr.user(node, scope.out, scope.path)


def _hex(tr: Translator, node: Node, scope: Scope) -> None:
    """payload / require_reply: keepalived's hex string, as hanode's '0x...'; require_reply alone: any reply."""
    if node.keyword == "require_reply" and not node.args:
        tr.put(scope.out, "require_reply", True, node, scope.path)
        return
    text = "".join(node.args)
    try:
        bytes.fromhex(text)
    except ValueError:
        tr.skip(node, INVALID, "%r is not hex digits (keepalived rejects it)" % text)
        return
    if not text:
        tr.skip(node, INVALID, MISSING)
        return
    tr.put(scope.out, node.keyword, "0x" + text.lower(), node, scope.path)


_KIND = "a checker block of a real_server; also every checker keyword"
_HTTP = [
    carried("url", "urls[]", _url),
    value("virtualhost", "text"),
    unsupported("http_protocol", "hanode sends HTTP/1.0 requests (keepalived's default) only; `http_protocol 1.0` "
                "has no meaning here", _http_protocol),
]

CHECKS = {
    "TCP_CHECK": Table("TCP_CHECK", "TCP_CHECK", CHECKER.prefix, [], CHECKER, _KIND),
    "HTTP_GET": Table("HTTP_GET", "HTTP_GET", CHECKER.prefix, _HTTP + [
        no_meaning("enable_sni", "HTTP_GET speaks no TLS, so it has no server name to send"),
    ], CHECKER, _KIND),
    "SSL_GET": Table("SSL_GET", "SSL_GET", CHECKER.prefix, _HTTP + [
        carried("enable_sni", "sni", _enable_sni, "the check's virtualhost as the server name"),
    ], CHECKER, _KIND),
    "MISC_CHECK": Table("MISC_CHECK", "MISC_CHECK", CHECKER.prefix, [
        carried("misc_path", "misc_path", _misc_path, "one shell-quoted command line, as keepalived ran it"),
        value("misc_timeout", "num"),
        value("misc_dynamic", "flag"),
        carried("user", "user", _misc_user),
    ], CHECKER, _KIND),
    "PING_CHECK": Table("PING_CHECK", "PING_CHECK", CHECKER.prefix, [], CHECKER, _KIND),
    "UDP_CHECK": Table("UDP_CHECK", "UDP_CHECK", CHECKER.prefix, [
        carried("payload", "payload", _hex, "0x followed by the hex digits"),
        carried("require_reply", "require_reply", _hex, "0x followed by the hex digits, or true"),
        value("min_reply_length", "int"),
        value("max_reply_length", "int"),
    ], CHECKER, _KIND),
    "DNS_CHECK": Table("DNS_CHECK", "DNS_CHECK", CHECKER.prefix, [
        value("type", "text", key="dns_type"),
        value("name", "text", key="dns_name"),
    ], CHECKER, _KIND),
    "SMTP_CHECK": Table("SMTP_CHECK", "SMTP_CHECK", CHECKER.prefix, [
        value("helo_name", "text"),
        carried("host", None, _host, "each host its own SMTP_CHECK"),
    ], CHECKER, _KIND),
}
SMTP_HOST = Table("SMTP_CHECK host", "SMTP_CHECK host", CHECKER.prefix, [], CHECKER,
                  "a `host { }` block of SMTP_CHECK, carried as an SMTP_CHECK of its own; every checker keyword")


def _check(tr: Translator, block: Node, scope: Scope) -> None:
    kind, rs_path, checks = block.keyword, scope.path, scope.checks
    out: dict[str, Any] = {"type": kind}
    path = "%s.checks[%d]" % (rs_path, len(checks))
    inner = Scope(out, path, urls=[], hosts=[], sni=None)
    tr.walk(CHECKS[kind], block.children or [], inner)
    if inner.urls:
        out["urls"] = inner.urls
        tr.record(join(path, "urls"), block)
    if inner.sni is not None:
        if "virtualhost" in out:
            tr.put(out, "sni", out["virtualhost"], inner.sni, path)
        else:
            tr.skip(inner.sni, UNSUPPORTED, "hanode sends the server name given as the check's virtualhost; set "
                    "virtualhost in the SSL_GET block")
    if not inner.hosts:
        tr.record(path, block, kind)
        checks.append(out)
        return
    for node in inner.hosts:
        hpath = "%s.checks[%d]" % (rs_path, len(checks))
        host = dict(out)
        for key in out:
            tr.record(join(hpath, key), block, kind)
        tr.walk(SMTP_HOST, node.children or [], Scope(host, hpath))
        tr.record(hpath, node, "SMTP_CHECK host")
        tr.note(node, "carried over as its own SMTP_CHECK (hanode needs every check of a real server to pass, as "
                      "keepalived needs every host)", "SMTP_CHECK host")
        checks.append(host)


# ----- the real server ------------------------------------------------------------------------------------------

def _virtualhost(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.text(node)
    if found is not None:
        scope.virtualhost = (found, node)


_CHECKS_ONLY = "hanode checks real servers with checkers only"

REAL_SERVER = Table("real_server", "real_server", "virtual_servers[].real_servers[]", [
    value("weight", "int"),
    value("delay_loop", "num"),
    value("retry", "int"),
    value("delay_before_retry", "num"),
    value("warmup", "num"),
    value("connect_timeout", "num"),
    value("inhibit_on_failure", "flag"),
    value("alpha", "flag"),
    carried("notify_up", "notify_up", notify, "not its user"),
    carried("notify_down", "notify_down", notify, "not its user"),
    carried("virtualhost", "checks[].virtualhost", _virtualhost, "of its HTTP_GET and SSL_GET checks that set none"),
    *[carried(kind, "checks[]", _check) for kind in CHECKS],
    unsupported("lvs_method", "hanode sets the forwarding method per service (lb_kind), not per real server"),
    *same_reason(unsupported, "connection thresholds are not supported by hanode", "uthreshold", "lthreshold"),
    unsupported("smtp_alert", "hanode has smtp_alert per service, not per real server"),
    *[foreign(unsupported(keyword, _CHECKS_ONLY)) for keyword in ("track_file", "track_bfd")],
    unsupported("FILE_CHECK", "hanode checks real servers with network checkers and MISC_CHECK only"),
    unsupported("BFD_CHECK", "BFD is not supported by hanode"),
    unsupported("snmp_name", why.SNMP),
], note="a `real_server ADDRESS [PORT] { }` block of a virtual_server")

FILE_CHECK = not_carried_block("FILE_CHECK", "FILE_CHECK", "hanode checks real servers with network checkers and "
                               "MISC_CHECK only", ["track_file", "weight", "dynamic"],
                               note="a `FILE_CHECK { }` block of a real_server (dynamic: in keepalived.conf(5), not "
                                    "in keepalived 2.2.7's parser)")
BFD_CHECK = not_carried_block("BFD_CHECK", "BFD_CHECK", "BFD is not supported by hanode", ["name", "alpha"],
                              note="a `BFD_CHECK { }` block of a real_server")


def translate_real_server(tr: Translator, block: Node, vs_path: str, real_servers: list[dict[str, Any]]) -> None:
    label = "real_server " + " ".join(block.args)
    if not block.args or len(block.args) > 2 or not is_ip(block.args[0]):
        tr.skip(block, INVALID, "needs an address and an optional port", label)
        return
    path = "%s.real_servers[%d]" % (vs_path, len(real_servers))
    out: dict[str, Any] = {"address": block.args[0]}
    if len(block.args) == 2:
        port = tr.integer(block, block.args[1])
        if port is None:
            return
        if port:   # keepalived takes port 0 as none given
            out["port"] = port
    tr.record(path, block, label)
    for field in out:
        tr.record(join(path, field), block, label)
    scope = Scope(out, path, checks=[], virtualhost=None)
    tr.walk(REAL_SERVER, block.children or [], scope)
    if scope.virtualhost is not None:
        _push_virtualhost(tr, scope.virtualhost, scope.checks, path)
    if scope.checks:
        out["checks"] = scope.checks
    real_servers.append(out)


def _push_virtualhost(tr: Translator, virtualhost: tuple[str, Node], checks: list[dict[str, Any]], path: str) -> None:
    found, node = virtualhost
    used = False
    for i, check in enumerate(checks):
        if check["type"] in ("HTTP_GET", "SSL_GET") and "virtualhost" not in check:
            check["virtualhost"] = found
            tr.record("%s.checks[%d].virtualhost" % (path, i), node)
            used = True
    if not used:
        tr.skip(node, NO_MEANING, "no HTTP_GET or SSL_GET check of this real server uses it")
