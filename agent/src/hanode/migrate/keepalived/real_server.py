"""real_server and its checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, PING_CHECK, UDP_CHECK, DNS_CHECK,
SMTP_CHECK), with HTTP_GET's and SSL_GET's url blocks."""

from __future__ import annotations

import re
from typing import Any

from hanode.migrate.keepalived.checker_files import translate_file_check
from hanode.migrate.keepalived.hexstr import hex_text, read_hex_str
from hanode.migrate.keepalived.lexer import split_quoted_escaped
from hanode.migrate.keepalived.lvs_options import put_forwarding
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


def _regex(tr: Translator, node: Node, scope: Scope) -> None:
    """keepalived reads the pattern as one quoted, escaped word (alloc_strvec_quoted_escaped)."""
    try:
        words = split_quoted_escaped(node.raw.strip())
    except ValueError as exc:
        tr.skip(node, INVALID, "%s (keepalived ignores it)" % exc)
        return
    if len(words) != 2:
        tr.skip(node, INVALID, "needs exactly one pattern, quoted if it has blanks (keepalived: 'regex missing or "
                               "too many fields')")
        return
    tr.put(scope.out, "regex", words[1], node, scope.path)


def _regex_options(tr: Translator, node: Node, scope: Scope) -> None:
    """keepalived ORs the option names it knows over every regex_options line and ignores the others."""
    known = [word for word in node.args if word in REGEX_OPTIONS]
    for word in node.args:
        if word not in REGEX_OPTIONS:
            tr.skip(node, INVALID, "%r is not a PCRE2 option keepalived knows (it ignores it)" % word,
                    "regex_options " + word)
    if known and "regex_options" in scope.out:   # added to the earlier lines', not instead of them
        scope.out["regex_options"] = sorted(set(scope.out["regex_options"]) | set(known))
        tr.record(join(scope.path, "regex_options"), node)
    elif known:
        tr.put(scope.out, "regex_options", sorted(set(known)), node, scope.path)


def _regex_offset(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.integer(node)
    if found is not None and found >= 0:
        tr.put(scope.out, node.keyword, found, node, scope.path)
    elif found is not None:
        tr.skip(node, INVALID, "%d is not an offset (keepalived ignores it)" % found)


REGEX_OPTIONS = ("allow_empty_class", "alt_bsux", "auto_callout", "caseless", "dollar_endonly", "dotall", "dupnames",
                 "extended", "firstline", "match_unset_backref", "multiline", "never_ucp", "never_utf",
                 "no_auto_capture", "no_auto_possess", "no_dotstar_anchor", "no_start_optimize", "ucp", "ungreedy",
                 "utf", "never_backslash_c", "alt_circumflex", "alt_verbnames", "use_offset_limit")
_REGEX_KEYS = ("regex_no_match", "regex_options", "regex_min_offset", "regex_max_offset")

URL = Table("url", "url", "virtual_servers[].real_servers[].checks[].urls[]", [
    value("path", "text"),
    value("digest", "text"),
    carried("status_code", "status_code", _status_code, "codes and ranges like 200-299"),
    value("virtualhost", "text"),
    carried("regex", "regex", _regex, "one pattern, quoted and escaped as keepalived reads it; Python's re on the "
                                      "body's first MiB"),
    value("regex_no_match", "flag"),
    carried("regex_options", "regex_options", _regex_options, "the PCRE2 option names keepalived knows; the agent "
                                                              "refuses the few Python's re cannot honour"),
    carried("regex_min_offset", "regex_min_offset", _regex_offset, kind="int"),
    carried("regex_max_offset", "regex_max_offset", _regex_offset, kind="int"),
    no_meaning("regex_stack", "PCRE2's JIT stack sizes: hanode's matcher has none"),
], note="a `url { }` block of HTTP_GET or SSL_GET")


def _url(tr: Translator, block: Node, scope: Scope) -> None:
    path = "%s.urls[%d]" % (scope.path, len(scope.urls))
    out: dict[str, Any] = {}
    tr.walk(URL, tr.entries(block), Scope(out, path))
    _loaded_regex(tr, out, path)
    tr.record(path, block)
    scope.urls.append(ordered_keys(out, ("path", "virtualhost", "status_code", "digest", "regex") + _REGEX_KEYS))


def _loaded_regex(tr: Translator, out: dict[str, Any], path: str) -> None:
    """keepalived's url_check(): regex settings without a regex are dropped, and so are offsets whose minimum is
    above their maximum."""
    if "regex" not in out:
        for key in [k for k in _REGEX_KEYS if k in out]:
            node, label = tr.source(join(path, key))
            tr.skip(node, NO_MEANING, "no regex in this url: keepalived drops it ('regex parameters specified "
                                      "without regex')", label)
            del out[key]
        return
    if out.get("regex_no_match") is False:
        del out["regex_no_match"]
    low, high = out.get("regex_min_offset", 0), out.get("regex_max_offset")
    if high is not None and low > high:
        node, label = tr.source(join(path, "regex_min_offset"))
        tr.skip(node, NO_MEANING, "regex_min_offset %d is above regex_max_offset %d: keepalived ignores both"
                % (low, high), label)
        del out["regex_min_offset"], out["regex_max_offset"]


# ----- the checkers ---------------------------------------------------------------------------------------------

def _nb_get_retry(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.integer(node)
    if found is not None:
        tr.note(node, "keepalived deprecated nb_get_retry; carried over as retry")
        tr.put(scope.out, "retry", found, node, scope.path)


_NB_GET_RETRY_ELSEWHERE = ("keepalived 2.2.7 reads nb_get_retry in HTTP_GET and SSL_GET only; in this checker it is "
                           "an unknown keyword and the check keeps its retry, so hanode ignores it too")


CHECKER = Table("checker", "checker", "virtual_servers[].real_servers[].checks[]", [
    value("connect_ip", "text"),
    value("connect_port", "int"),
    value("bindto", "text"),
    value("bind_port", "int"),
    value("connect_timeout", "num"),
    value("retry", "int"),
    no_meaning("nb_get_retry", _NB_GET_RETRY_ELSEWHERE),
    value("delay_before_retry", "num"),
    value("warmup", "num"),
    value("delay_loop", "num"),
    value("bind_if", "text", text="SO_BINDTODEVICE; an IPv6 link-local connect_ip is reached through it"),
    value("fwmark", "int", text="SO_MARK on the check's packets"),
    value("alpha", "flag"),
    value("log_all_failures", "flag"),
    unsupported("fast_recovery", "hanode has no such option"),
    foreign(unsupported("tls_compliant", "hanode has no such option")),
], note="every checker block (TCP_CHECK, HTTP_GET, ...) and SMTP_CHECK's host blocks")


def _http_protocol(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.text(node)
    if found is None:
        return
    if found not in ("1.0", "1.1", "1.0C", "1.0c"):
        tr.skip(node, INVALID, "%r is not 1.0, 1.1 or 1.0C (keepalived ignores it)" % found)
        return
    tr.put(scope.out, "http_protocol", found.upper(), node, scope.path)


def _enable_sni(tr: Translator, node: Node, scope: Scope) -> None:
    found = tr.flag(node)
    if found is not None:
        tr.put(scope.out, "enable_sni", found, node, scope.path)


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
    """payload / require_reply: keepalived's hex string (read_hex_str: odd-length words, x wildcard nibbles in
    require_reply), as hanode's '0x...'; require_reply alone: any reply."""
    reply = node.keyword == "require_reply"
    if reply and not node.args:
        tr.put(scope.out, "require_reply", True, node, scope.path)
        return
    if not node.args:
        tr.skip(node, INVALID, MISSING)
        return
    text = " ".join(node.args)
    found = read_hex_str(text, wildcards=reply)
    if found is None:
        if reply:
            tr.note(node, "%r is not a hex string keepalived reads: it then accepts any reply; carried over as "
                          "require_reply: true" % text)
            tr.put(scope.out, "require_reply", True, node, scope.path)
        else:
            tr.skip(node, INVALID, "%r is not a hex string (keepalived rejects it and sends an empty datagram, as "
                                   "hanode does without a payload)" % text)
        return
    converted = hex_text(*found)
    if converted[2:] != text.lower():
        tr.note(node, "%r read as keepalived reads it: %s" % (text, converted))
    tr.put(scope.out, node.keyword, converted, node, scope.path)


_KIND = "a checker block of a real_server; also every checker keyword"
_HTTP = [
    carried("url", "urls[]", _url),
    value("virtualhost", "text"),
    carried("http_protocol", "http_protocol", _http_protocol, "1.0, 1.1 or 1.0C", kind="word"),
    carried("nb_get_retry", "retry", _nb_get_retry, "keepalived's deprecated name", kind="int"),
]

CHECKS = {
    "TCP_CHECK": Table("TCP_CHECK", "TCP_CHECK", CHECKER.prefix, [], CHECKER, _KIND),
    "HTTP_GET": Table("HTTP_GET", "HTTP_GET", CHECKER.prefix, _HTTP + [
        no_meaning("enable_sni", "HTTP_GET speaks no TLS, so it has no server name to send"),
    ], CHECKER, _KIND),
    "SSL_GET": Table("SSL_GET", "SSL_GET", CHECKER.prefix, _HTTP + [
        carried("enable_sni", "enable_sni", _enable_sni,
                "the url's, the check's or the service's virtualhost as the server name", kind="flag"),
    ], CHECKER, _KIND),
    "MISC_CHECK": Table("MISC_CHECK", "MISC_CHECK", CHECKER.prefix, [
        *same_reason(no_meaning, "a script opens no connection: keepalived does not accept it in MISC_CHECK",
                     "bind_if", "fwmark"),
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
    inner = Scope(out, path, urls=[], hosts=[])
    tr.walk(CHECKS[kind], block.children or [], inner)
    if inner.urls:
        out["urls"] = inner.urls
        tr.record(join(path, "urls"), block)
    if out.get("enable_sni") is False:
        del out["enable_sni"]
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


def _lvs_method(tr: Translator, node: Node, scope: Scope) -> None:
    put_forwarding(tr, node, scope.out, scope.path, "lvs_method")


_CHECKS_ONLY = "hanode checks real servers with checkers only"
_BFD = "BFD is not implemented by hanode"
_BFD_CHECK = (_BFD + ": a real server whose only check it is is not imported (hanode would keep it always up); with "
              "other checks, they alone decide")


def _bfd_check(tr: Translator, node: Node, scope: Scope) -> None:
    scope.bfd.append(node)


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
    carried("FILE_CHECK", "checks[]", translate_file_check, "a FILE_CHECK check with the named track_file's file"),
    carried("lvs_method", "lvs_method", _lvs_method, "NAT, DR or TUN; TUN's options as tunnel_type, tunnel_port, "
            "tunnel_csum"),
    value("uthreshold", "int"),
    value("lthreshold", "int"),
    unsupported("smtp_alert", "hanode has smtp_alert per service, not per real server"),
    *[foreign(unsupported(keyword, _CHECKS_ONLY)) for keyword in ("track_file", "track_bfd")],
    unsupported("BFD_CHECK", _BFD_CHECK, _bfd_check),
    unsupported("snmp_name", why.SNMP),
], note="a `real_server ADDRESS [PORT] { }` block of a virtual_server")

BFD_CHECK = not_carried_block("BFD_CHECK", "BFD_CHECK", _BFD_CHECK, ["name", "alpha"],
                              note="a `BFD_CHECK { }` block of a real_server")


def translate_real_server(tr: Translator, block: Node, vs_path: str, real_servers: list[dict[str, Any]]) -> None:
    label = "real_server " + " ".join(block.args)
    if not block.args or len(block.args) > 2 or not is_ip(block.args[0]):
        tr.skip(block, INVALID, "needs an address and an optional port", label)
        return
    bfd = [child for child in block.children or [] if child.keyword == "BFD_CHECK"]
    if bfd and not any(child.keyword in CHECKS or child.keyword == "FILE_CHECK" for child in block.children):
        tr.skip(block, UNSUPPORTED, "not imported: its only check is BFD_CHECK (line %d), and %s; without it hanode "
                "would keep the server always up" % (bfd[0].line, _BFD), label)
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
    scope = Scope(out, path, checks=[], virtualhost=None, bfd=[])
    tr.walk(REAL_SERVER, block.children or [], scope)
    for node in scope.bfd:
        tr.skip(node, UNSUPPORTED, REAL_SERVER.rows["BFD_CHECK"].text)
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
