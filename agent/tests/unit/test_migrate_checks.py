"""The importer and keepalived 2.2.7's checker keywords (issue 13, items 5 and 6): FILE_CHECK with track_file,
the SSL block, url regex and virtualhost, http_protocol, enable_sni, UDP_CHECK hex strings, a checker's alpha,
bind_if, fwmark, log_all_failures; the ports of fwmark DR services, BFD_CHECK, nb_get_retry outside HTTP."""

from __future__ import annotations

import pytest

from hanode.config.parse import parse_config
from hanode.migrate.keepalived import parse_text, translate
from hanode.migrate.keepalived.hexstr import hex_text, read_hex_str


def tr(text: str):
    return translate(parse_text(text, "k.conf"))


def report(result):
    return [(i.line, i.keyword, i.category) for i in result.items]


def service(real_server_body: str, head: str = "virtual_server 198.51.100.100 80 {\n  lb_algo rr\n", after: str = ""):
    """A service with one real server whose block is real_server_body (its lines start on line 4)."""
    return head + "  real_server 203.0.113.11 80 {\n" + real_server_body + "\n  }\n}\n" + after


def checks_of(result) -> list[dict]:
    return result.config["virtual_servers"][0]["real_servers"][0].get("checks", [])


def agent_accepts(result) -> None:
    _config, problems = parse_config(result.config)
    assert problems.errors == []


TRACKED = "track_file maint {\n  file /run/lb/maint\n  weight 3\n  init_file 0\n}\n"


def test_file_check_names_the_track_file_carried_as_track_files():
    result = tr(TRACKED + service("    FILE_CHECK {\n      track_file maint\n    }"))
    assert checks_of(result) == [{"type": "FILE_CHECK", "track_file": "maint"}]
    assert result.config["track_files"]["maint"]["file"] == "/run/lb/maint"
    assert result.items == []
    agent_accepts(result)


def test_file_check_weight_and_reverse_are_its_own():
    result = tr(TRACKED + service("    FILE_CHECK {\n      track_file maint\n      weight -20 reverse\n    }"))
    assert checks_of(result) == [{"type": "FILE_CHECK", "track_file": "maint", "weight": -20, "weight_reverse": True}]
    agent_accepts(result)
    noreverse = tr(TRACKED + service("    FILE_CHECK {\n      track_file maint\n      weight 0 noreverse\n    }"))
    assert checks_of(noreverse) == [{"type": "FILE_CHECK", "track_file": "maint", "weight": 0}]


def test_a_real_server_checked_by_file_check_only_is_not_always_up_any_more():
    tracked = "vrrp_track_file maint {\n  file /run/lb/maint\n}\n"
    result = tr(tracked + service("    FILE_CHECK {\n      track_file maint\n    }"))
    assert checks_of(result) == [{"type": "FILE_CHECK", "track_file": "maint"}]
    config, _problems = parse_config(result.config)
    (check,) = config.sections["lvs"].virtual_servers[0].real_servers[0].checks
    assert (check.type, check.track_file.file) == ("FILE_CHECK", "/run/lb/maint")


def test_file_check_problems_are_reported_as_keepalived_ignores_them():
    unknown = tr(service("    FILE_CHECK {\n      track_file nope\n    }\n    TCP_CHECK {\n    }"))
    assert report(unknown) == [(5, "track_file", "invalid")] and "track_file nope not found" in unknown.items[0].reason
    assert [c["type"] for c in checks_of(unknown)] == ["TCP_CHECK"]
    empty = tr(service("    FILE_CHECK {\n    }\n    TCP_CHECK {\n    }"))
    assert report(empty) == [(4, "FILE_CHECK", "invalid")]
    bad_weight = tr(TRACKED + service("    FILE_CHECK {\n      track_file maint\n      weight 5 sideways\n    }"))
    assert report(bad_weight) == [(11, "weight", "invalid")] and "weight" not in checks_of(bad_weight)[0]
    reverse = tr("track_file maint {\n  file /run/lb/maint\n  weight 3 reverse\n}\n"
                 + service("    FILE_CHECK {\n      track_file maint\n    }\n    TCP_CHECK {\n    }"))
    assert reverse.items == []
    assert reverse.config["track_files"]["maint"] == {"file": "/run/lb/maint", "weight": 3, "weight_reverse": True}
    assert checks_of(reverse)[0] == {"type": "FILE_CHECK", "track_file": "maint"}


def test_bfd_check_alone_refuses_the_real_server_and_with_other_checks_is_reported():
    alone = tr(service("    BFD_CHECK {\n      name b1\n    }", after="") .replace(
        "  real_server 203.0.113.11 80 {", "  real_server 203.0.113.12 80 {\n    TCP_CHECK {\n    }\n  }\n"
        "  real_server 203.0.113.11 80 {"))
    servers = alone.config["virtual_servers"][0]["real_servers"]
    assert [rs["address"] for rs in servers] == ["203.0.113.12"]
    assert report(alone) == [(7, "real_server 203.0.113.11 80", "unsupported")]
    assert "always up" in alone.items[0].reason
    both = tr(service("    BFD_CHECK {\n      name b1\n    }\n    TCP_CHECK {\n    }"))
    assert report(both) == [(4, "BFD_CHECK", "unsupported")] and [c["type"] for c in checks_of(both)] == ["TCP_CHECK"]


@pytest.mark.parametrize("kind", ["TCP_CHECK", "MISC_CHECK", "UDP_CHECK", "PING_CHECK", "DNS_CHECK", "SMTP_CHECK"])
def test_nb_get_retry_outside_http_is_ignored_with_a_report_line(kind):
    extra = "      misc_path /bin/true\n" if kind == "MISC_CHECK" else ""
    result = tr(service(f"    {kind} {{\n{extra}      nb_get_retry 7\n    }}"))
    assert "retry" not in checks_of(result)[0] or checks_of(result)[0]["retry"] != 7
    [item] = result.items
    assert (item.keyword, item.category) == ("nb_get_retry", "no meaning here")
    assert "HTTP_GET and SSL_GET only" in item.reason


@pytest.mark.parametrize("kind", ["HTTP_GET", "SSL_GET"])
def test_nb_get_retry_in_http_is_carried_as_retry(kind):
    result = tr(service(f"    {kind} {{\n      nb_get_retry 4\n    }}"))
    assert checks_of(result)[0]["retry"] == 4 and result.items == []


@pytest.mark.parametrize("lb_kind, kind", [("DR", "TCP_CHECK"), ("DR", "UDP_CHECK"), ("TUN", "HTTP_GET"),
                                           ("DR", "SSL_GET"), ("DR", "DNS_CHECK")])
def test_a_fwmark_dr_service_keeps_the_port_its_checks_probe(lb_kind, kind):
    result = tr(service(f"    {kind} {{\n    }}", head=f"virtual_server fwmark 7 {{\n  lb_algo rr\n  lb_kind {lb_kind}\n"))
    rs = result.config["virtual_servers"][0]["real_servers"][0]
    assert "port" not in rs and rs["checks"][0]["connect_port"] == 80
    notes = [n.message for n in result.notes if "connect_port: 80" in n.message]
    assert notes and "before keepalived cleared it" in notes[0]


def test_a_fwmark_dr_service_keeps_a_connect_port_given_and_portless_checks_stay_portless():
    result = tr(service("    TCP_CHECK {\n      connect_port 8443\n    }\n    PING_CHECK {\n    }",
                        head="virtual_server fwmark 7 {\n  lb_algo rr\n  lb_kind DR\n"))
    tcp, ping = checks_of(result)
    assert tcp["connect_port"] == 8443 and "connect_port" not in ping


def test_checker_options_bind_if_fwmark_alpha_log_all_failures():
    result = tr(service("    TCP_CHECK {\n      bind_if eth1\n      fwmark 9\n      alpha\n      log_all_failures\n    }"))
    assert checks_of(result) == [{"type": "TCP_CHECK", "bind_if": "eth1", "fwmark": 9, "alpha": True,
                                  "log_all_failures": True}]
    assert result.items == []


def test_misc_check_has_no_bind_if_nor_fwmark():
    result = tr(service("    MISC_CHECK {\n      misc_path /bin/true\n      bind_if eth1\n      fwmark 9\n    }"))
    assert report(result) == [(6, "bind_if", "no meaning here"), (7, "fwmark", "no meaning here")]
    assert "bind_if" not in checks_of(result)[0]


def test_global_checker_log_all_failures():
    result = tr("global_defs {\n  checker_log_all_failures\n}\n" + service("    TCP_CHECK {\n    }"))
    assert result.config["checker_log_all_failures"] is True and result.items == []


def test_url_regex_keywords_and_virtualhost():
    result = tr(service('    HTTP_GET {\n      url {\n        path /ready\n        virtualhost a.example\n'
                        '        regex "^state: (up|ready)\\\\b"\n        regex_no_match\n'
                        '        regex_options caseless multiline\n        regex_options dotall\n'
                        '        regex_min_offset 4\n        regex_max_offset 200\n        regex_stack 1000 2000\n'
                        '      }\n    }'))
    [url] = checks_of(result)[0]["urls"]
    assert url == {"path": "/ready", "virtualhost": "a.example", "regex": "^state: (up|ready)\\b", "regex_no_match": True,
                   "regex_options": ["caseless", "dotall", "multiline"], "regex_min_offset": 4, "regex_max_offset": 200}
    assert report(result) == [(14, "regex_stack", "no meaning here")]
    agent_accepts(result)


def test_regex_settings_keepalived_drops():
    without = tr(service("    HTTP_GET {\n      url {\n        path /\n        regex_no_match\n        regex_max_offset 5\n"
                         "      }\n    }"))
    assert checks_of(without)[0]["urls"] == [{"path": "/"}]
    assert report(without) == [(7, "regex_no_match", "no meaning here"), (8, "regex_max_offset", "no meaning here")]
    crossed = tr(service("    HTTP_GET {\n      url {\n        regex ok\n        regex_min_offset 9\n"
                         "        regex_max_offset 5\n      }\n    }"))
    assert checks_of(crossed)[0]["urls"] == [{"regex": "ok"}]
    assert report(crossed) == [(7, "regex_min_offset", "no meaning here")]
    unknown = tr(service("    HTTP_GET {\n      url {\n        regex ok\n        regex_options caseless sideways\n"
                         "      }\n    }"))
    assert checks_of(unknown)[0]["urls"] == [{"regex": "ok", "regex_options": ["caseless"]}]
    assert report(unknown) == [(7, "regex_options sideways", "invalid")]


@pytest.mark.parametrize("word, carried", [("1.1", "1.1"), ("1.0", "1.0"), ("1.0c", "1.0C"), ("1.0C", "1.0C")])
def test_http_protocol(word, carried):
    result = tr(service(f"    HTTP_GET {{\n      http_protocol {word}\n    }}"))
    assert checks_of(result)[0]["http_protocol"] == carried and result.items == []
    agent_accepts(result)


def test_http_protocol_invalid_is_reported():
    result = tr(service("    HTTP_GET {\n      http_protocol 2\n    }"))
    assert report(result) == [(5, "http_protocol", "invalid")] and "http_protocol" not in checks_of(result)[0]


def test_enable_sni_is_carried_without_a_virtualhost_and_means_nothing_in_http_get():
    ssl = tr(service("    SSL_GET {\n      enable_sni\n    }"))
    assert checks_of(ssl)[0]["enable_sni"] is True and ssl.items == []
    off = tr(service("    SSL_GET {\n      enable_sni false\n    }"))
    assert "enable_sni" not in checks_of(off)[0]
    http = tr(service("    HTTP_GET {\n      enable_sni\n    }"))
    assert report(http) == [(5, "enable_sni", "no meaning here")]


def test_ssl_block():
    result = tr("SSL {\n  password s3cret\n  ca /etc/k/ca.pem\n  certificate /etc/k/c.pem\n  key /etc/k/c.key\n}\n"
                + service("    SSL_GET {\n    }"))
    assert result.config["ssl"] == {"certificate": "/etc/k/c.pem", "key": "/etc/k/c.key", "password": "s3cret",
                                    "ca": "/etc/k/ca.pem"}
    assert result.items == []
    agent_accepts(result)
    lonely = tr("SSL {\n  key /etc/k/c.key\n}\n" + service("    SSL_GET {\n    }"))
    assert "ssl" not in lonely.config and report(lonely) == [(2, "key", "no meaning here")]


@pytest.mark.parametrize("text, wildcards, expected", [
    ("4F4B", False, "0x4f4b"), ("1 23", False, "0x0123"), ("123", False, "0x1203"), ("a bc d", False, "0x0abc0d"),
    ("1x X2", True, "0x1xx2"), ("x", True, "0x0x"), ("ab\tcd", False, "0xabcd"),
])
def test_hex_strings_read_as_keepalived_reads_them(text, wildcards, expected):
    found = read_hex_str(text, wildcards)
    assert found is not None and hex_text(*found) == expected


@pytest.mark.parametrize("text, wildcards", [("1x", False), ("zz", True), ("", False), ("  ", True), ("a\t", False)])
def test_hex_strings_keepalived_refuses(text, wildcards):
    assert read_hex_str(text, wildcards) is None


def test_udp_check_payload_and_require_reply_as_keepalived_reads_them():
    result = tr(service("    UDP_CHECK {\n      payload 1 23\n      require_reply 4x 4B\n    }"))
    check = checks_of(result)[0]
    assert (check["payload"], check["require_reply"]) == ("0x0123", "0x4x4b")
    read_as = [n.keyword for n in result.notes if "read as keepalived reads it" in n.message]
    assert read_as == ["payload", "require_reply"]
    agent_accepts(result)


def test_udp_check_invalid_hex_strings():
    result = tr(service("    UDP_CHECK {\n      payload 0x01\n      require_reply 4G\n    }"))
    check = checks_of(result)[0]
    assert "payload" not in check and check["require_reply"] is True
    assert report(result) == [(5, "payload", "invalid")]
    assert any("accepts any reply" in n.message for n in result.notes)
