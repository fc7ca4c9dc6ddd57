"""keepalived keywords -> hanode agent config (table-driven), and the report of what is not carried over."""

from __future__ import annotations

import pytest

from hanode.migrate.keepalived import import_text, parse_text, translate

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"   # body starts on line 4


def tr(text, **kwargs):
    return translate(parse_text(text, "k.conf", **kwargs))


def instance(body, before=""):
    """The VI_1 entry of `before` + an instance with `body` (minus interface and virtual_router_id) and the items."""
    result = tr(before + HEAD + body + "\n}\n")
    inst = dict(result.config["vrrp_instances"]["VI_1"])
    inst.pop("interface")
    inst.pop("virtual_router_id")
    return inst, [(i.line - before.count("\n"), i.keyword, i.category) for i in result.items]


def report(result):
    return [(i.line, i.keyword, i.category) for i in result.items]


# ----- vrrp_instance ----------------------------------------------------------------------------------------

INSTANCE_CASES = [
    ("state MASTER", {"state": "MASTER"}),
    ("state BACKUP", {"state": "BACKUP"}),
    ("priority 150", {"priority": 150}),
    ("advert_int 1", {"advert_int": 1}),
    ("advert_int 0.25\n  version 3", {"advert_int": 0.25, "version": 3}),
    ("nopreempt", {"nopreempt": True}),
    ("preempt_delay 30", {"preempt_delay": 30}),
    ("unicast_src_ip 198.51.100.11\n  unicast_peer {\n    198.51.100.12\n    198.51.100.13\n  }",
     {"unicast_src_ip": "198.51.100.11", "unicast_peers": ["198.51.100.12", "198.51.100.13"]}),
    ("mcast_src_ip 198.51.100.11", {"unicast_src_ip": "198.51.100.11"}),
    ("authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }",
     {"authentication": {"auth_type": "PASS", "auth_pass": "s3cret"}}),
    ("authentication { auth_type pass\n auth_pass 1111 }", {"authentication": {"auth_type": "PASS", "auth_pass": "1111"}}),
    ("virtual_ipaddress {\n    198.51.100.10/24 dev eth0 label eth0:vip\n    198.51.100.11\n"
     "    198.51.100.12/24 broadcast 198.51.100.255 scope global\n  }",
     {"virtual_ipaddresses": ["198.51.100.10/24 dev eth0 label eth0:vip", "198.51.100.11",
                              "198.51.100.12/24 brd 198.51.100.255 scope global"]}),
    ("virtual_ipaddress {\n    198.51.100.10\n  }\n  virtual_ipaddress {\n    198.51.100.11\n  }",
     {"virtual_ipaddresses": ["198.51.100.10", "198.51.100.11"]}),
    ("virtual_ipaddress_excluded {\n    2001:db8:100::10/64\n  }",
     {"virtual_ipaddress_excluded": ["2001:db8:100::10/64"]}),
    ("track_interface {\n    eth1 weight -20\n    eth2\n  }",
     {"track_interfaces": [{"name": "eth1", "weight": -20}, {"name": "eth2"}]}),
    ("dont_track_primary", {"dont_track_primary": True}),
    ("notify_master /usr/local/bin/master.sh", {"notify_master": "/usr/local/bin/master.sh"}),
    ('notify_backup "/usr/local/bin/vrrp.sh  BACKUP   VI_1"', {"notify_backup": "/usr/local/bin/vrrp.sh BACKUP VI_1"}),
    ("notify_fault '/usr/local/bin/fault.sh \"two words\"'", {"notify_fault": "/usr/local/bin/fault.sh 'two words'"}),
    ("notify_stop /bin/true\n  notify \"/bin/sh -c 'logger $1'\"",
     {"notify_stop": "/bin/true", "notify": "/bin/sh -c 'logger $1'"}),
    ("garp_master_delay 10\n  garp_master_repeat 3\n  garp_master_refresh 60\n  garp_master_refresh_repeat 2",
     {"garp_master_delay": 10, "garp_master_repeat": 3, "garp_master_refresh": 60, "garp_master_refresh_repeat": 2}),
    ("smtp_alert", {"smtp_alert": True}),
    ("smtp_alert off", {"smtp_alert": False}),
]


@pytest.mark.parametrize("body, expected", INSTANCE_CASES, ids=[c[0].split()[0] for c in INSTANCE_CASES])
def test_instance_keywords(body, expected):
    inst, items = instance("  " + body)
    assert inst == expected
    assert items == []


def test_vrrp_script_and_track_script():
    before = ('vrrp_script chk_haproxy {\n  script "/usr/bin/killall -0 haproxy"\n  interval 2\n  timeout 3\n'
              "  weight -20\n  rise 2\n  fall 3\n  user nobody nogroup\n  init_fail\n}\n")
    inst, items = instance("  track_script {\n    chk_haproxy\n    chk_haproxy weight 10\n  }", before)
    assert inst == {"track_scripts": [{"name": "chk_haproxy"}, {"name": "chk_haproxy", "weight": 10}]}
    assert items == []
    script = tr(before).config["vrrp_scripts"]["chk_haproxy"]
    assert script == {"script": "/usr/bin/killall -0 haproxy", "interval": 2, "timeout": 3, "weight": -20,
                      "rise": 2, "fall": 3, "user": "nobody nogroup", "init_fail": True}


def test_an_ipv6_instance_without_version_is_vrrp_v3_as_in_keepalived():
    inst, items = instance("  virtual_ipaddress {\n    2001:db8:100::10/64\n  }")
    assert inst == {"virtual_ipaddresses": ["2001:db8:100::10/64"], "version": 3} and items == []


def test_global_defaults_fill_instances_that_lack_them():
    text = ("global_defs {\n  default_interface eth1\n  vrrp_version 3\n  vrrp_garp_master_refresh 60\n"
            "  vrrp_garp_interval 0.001\n}\n"
            "vrrp_instance A {\n  virtual_router_id 1\n}\n"
            "vrrp_instance B {\n  interface eth0\n  virtual_router_id 2\n  version 2\n  garp_master_refresh 5\n}\n")
    result = tr(text)
    assert result.items == []
    assert result.config["vrrp_instances"] == {
        "A": {"interface": "eth1", "virtual_router_id": 1, "version": 3, "garp_master_refresh": 60},
        "B": {"interface": "eth0", "virtual_router_id": 2, "version": 2, "garp_master_refresh": 5},
    }
    assert result.config["vrrp_garp_interval"] == 0.001     # keepalived's per-interface pacing, not per instance
    [(node, label)] = result.provenance["vrrp_instances.A.interface"]
    assert (node.line, label) == (2, "default_interface")


# ----- global_defs ------------------------------------------------------------------------------------------

GLOBAL_CASES = [
    ("router_id lb-1", {"router_id": "lb-1"}),
    ("script_user keepalived_script", {"script_user": "keepalived_script"}),
    ("script_user root wheel\n  enable_script_security", {"script_user": "root wheel", "enable_script_security": True}),
    ("notification_email {\n    ops@example.com noc@example.com\n    oncall@example.com\n  }",
     {"notification_email": ["ops@example.com", "noc@example.com", "oncall@example.com"]}),
    ("notification_email_from lb@example.com\n  smtp_server 198.51.100.1 2525\n  smtp_connect_timeout 30\n"
     "  smtp_helo_name lb1.example.com\n  smtp_alert",
     {"notification_email_from": "lb@example.com", "smtp_server": "198.51.100.1", "smtp_port": 2525,
      "smtp_connect_timeout": 30, "smtp_helo_name": "lb1.example.com", "smtp_alert": True}),
    ("smtp_server mail.example.com", {"smtp_server": "mail.example.com"}),
    ("notify_fifo /run/keepalived.fifo", {"notify_fifo": "/run/keepalived.fifo", "notify_fifo_format": "keepalived"}),
]


@pytest.mark.parametrize("body, expected", GLOBAL_CASES, ids=[c[0].split()[0] for c in GLOBAL_CASES])
def test_global_keywords(body, expected):
    result = tr("global_defs {\n  " + body + "\n}\n")
    assert result.config == expected
    assert result.items == []


# ----- vrrp_sync_group --------------------------------------------------------------------------------------

def test_sync_group():
    text = ("vrrp_sync_group G1 {\n  group {\n    VI_1 VI_2\n  }\n  notify_master \"/usr/local/bin/g.sh master\"\n"
            "  notify /usr/local/bin/n.sh\n  smtp_alert\n}\n"
            "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n}\n"
            "vrrp_instance VI_2 {\n  interface eth1\n  virtual_router_id 2\n}\n")
    result = tr(text)
    assert result.items == []
    assert result.config["vrrp_sync_groups"] == {"G1": {"group": ["VI_1", "VI_2"],
                                                        "notify_master": "/usr/local/bin/g.sh master",
                                                        "notify": "/usr/local/bin/n.sh", "smtp_alert": True}}


# ----- virtual_server ---------------------------------------------------------------------------------------

LVS_NAT = """virtual_server 198.51.100.100 80 {
    delay_loop 6
    lvs_sched wrr
    lvs_method NAT
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    protocol TCP
    quorum 2
    hysteresis 1
    quorum_up "/usr/local/bin/quorum.sh up"
    quorum_down /usr/local/bin/quorum.sh
    alpha
    omega
    inhibit_on_failure
    virtualhost www.example.com
    retry 2
    delay_before_retry 1
    connect_timeout 4
    sorry_server 203.0.113.50 8080
    sorry_server_inhibit
    real_server 203.0.113.11 8080 {
        weight 3
        notify_up /usr/local/bin/rs.sh
        notify_down "/usr/local/bin/rs.sh down"
        delay_loop 3
        warmup 2
        alpha false
        inhibit_on_failure off
        HTTP_GET {
            url {
              path /health
              status_code 200
            }
            url {
              path /ready
              status_code 200-299 304
              digest 9b3a0c85a887a256d6939da88aabd8cd
            }
            connect_port 8081
            connect_timeout 2
            nb_get_retry 3
            delay_before_retry 1
        }
        TCP_CHECK {
            connect_ip 203.0.113.11
            bindto 203.0.113.1
            bind_port 40000
        }
    }
}
"""


def test_lvs_nat_with_http_get():
    result = tr(LVS_NAT)
    assert result.items == []
    assert result.config == {
        "lb_backend": "ipvs",
        "virtual_servers": [{
            "address": "198.51.100.100", "port": 80, "protocol": "TCP", "lb_algo": "wrr", "lb_kind": "NAT",
            "persistence_timeout": 300, "persistence_granularity": "255.255.255.0", "delay_loop": 6,
            "quorum": 2, "hysteresis": 1, "quorum_up": "/usr/local/bin/quorum.sh up",
            "quorum_down": "/usr/local/bin/quorum.sh", "alpha": True, "omega": True, "inhibit_on_failure": True,
            "virtualhost": "www.example.com", "retry": 2, "delay_before_retry": 1, "connect_timeout": 4,
            "sorry_server": {"address": "203.0.113.50", "port": 8080, "inhibit": True},
            "real_servers": [{
                "address": "203.0.113.11", "port": 8080, "weight": 3, "notify_up": "/usr/local/bin/rs.sh",
                "notify_down": "/usr/local/bin/rs.sh down", "delay_loop": 3, "warmup": 2, "alpha": False,
                "inhibit_on_failure": False,
                "checks": [
                    {"type": "HTTP_GET", "connect_port": 8081, "connect_timeout": 2, "retry": 3,
                     "delay_before_retry": 1,
                     "urls": [{"path": "/health", "status_code": 200},
                              {"path": "/ready", "status_code": ["200-299", 304],
                               "digest": "9b3a0c85a887a256d6939da88aabd8cd"}]},
                    {"type": "TCP_CHECK", "connect_ip": "203.0.113.11", "bindto": "203.0.113.1", "bind_port": 40000},
                ],
            }],
        }],
    }
    assert [n.keyword for n in result.notes] == ["nb_get_retry"]


CHECK_CASES = [
    ("MISC_CHECK {\n misc_path \"/usr/local/bin/check.sh arg1 arg2\"\n misc_timeout 5\n misc_dynamic\n user nobody\n }",
     {"type": "MISC_CHECK", "misc_path": "/usr/local/bin/check.sh arg1 arg2", "misc_timeout": 5,
      "misc_dynamic": True, "user": "nobody", "retry": 0}),
    ("UDP_CHECK {\n payload 48454c4c4f\n require_reply\n connect_port 53\n }",
     {"type": "UDP_CHECK", "payload": "0x48454c4c4f", "require_reply": True, "connect_port": 53}),
    ("UDP_CHECK {\n payload 01\n require_reply 4F4B\n min_reply_length 2\n max_reply_length 64\n }",
     {"type": "UDP_CHECK", "payload": "0x01", "require_reply": "0x4f4b", "min_reply_length": 2,
      "max_reply_length": 64}),
    ("DNS_CHECK {\n type A\n name example.com\n retry 2\n }",
     {"type": "DNS_CHECK", "dns_type": "A", "dns_name": "example.com", "retry": 2, "delay_before_retry": 60}),
    ("SMTP_CHECK {\n helo_name mx.example.com\n connect_timeout 10\n }",
     {"type": "SMTP_CHECK", "helo_name": "mx.example.com", "connect_timeout": 10}),
    ("PING_CHECK {\n retry 4\n delay_loop 2\n }", {"type": "PING_CHECK", "retry": 4, "delay_loop": 2}),
    ("SSL_GET {\n url {\n path /\n digest ff20ad2481f97b1754ef3e12ecd3a9cc\n }\n virtualhost api.example.com\n enable_sni\n }",
     {"type": "SSL_GET", "urls": [{"path": "/", "digest": "ff20ad2481f97b1754ef3e12ecd3a9cc"}],
      "virtualhost": "api.example.com", "enable_sni": True, "delay_before_retry": 3}),
    ("TCP_CHECK {\n warmup 5\n }", {"type": "TCP_CHECK", "warmup": 5}),
]


@pytest.mark.parametrize("body, expected", CHECK_CASES, ids=[c[0].split()[0] for c in CHECK_CASES])
def test_checkers(body, expected):
    result = tr("virtual_server 198.51.100.100 80 {\n protocol TCP\n real_server 203.0.113.11 80 {\n" + body + "\n}\n}\n")
    assert result.items == []
    assert result.config["virtual_servers"][0]["real_servers"][0]["checks"] == [expected]


def test_real_server_virtualhost_goes_to_its_http_checks_and_smtp_hosts_become_checks():
    text = ("virtual_server fwmark 7 {\n real_server 203.0.113.11 {\n  virtualhost a.example.com\n"
            "  HTTP_GET {\n   url {\n    path /\n   }\n  }\n  SSL_GET {\n   virtualhost b.example.com\n  }\n"
            "  SMTP_CHECK {\n   helo_name mx\n   host {\n    connect_ip 203.0.113.11\n   }\n"
            "   host {\n    connect_ip 203.0.113.12\n    connect_port 587\n   }\n  }\n }\n}\n")
    result = tr(text)
    assert result.items == []
    service = result.config["virtual_servers"][0]
    assert service["fwmark"] == 7 and "protocol" not in service
    assert service["real_servers"][0]["checks"] == [
        {"type": "HTTP_GET", "urls": [{"path": "/"}], "virtualhost": "a.example.com", "delay_before_retry": 3},
        {"type": "SSL_GET", "virtualhost": "b.example.com", "delay_before_retry": 3},
        {"type": "SMTP_CHECK", "helo_name": "mx", "connect_ip": "203.0.113.11"},
        {"type": "SMTP_CHECK", "helo_name": "mx", "connect_ip": "203.0.113.12", "connect_port": 587},
    ]


CHECKER_DEFAULTS = [
    # checker, where retry / delay_before_retry are given, what the check gets
    ("HTTP_GET", "", {"delay_before_retry": 3}),
    ("SSL_GET", "", {"delay_before_retry": 3}),
    ("MISC_CHECK", "", {"retry": 0}),
    ("DNS_CHECK", " delay_loop 7\n", {"retry": 3, "delay_before_retry": 7}),
    ("DNS_CHECK", "", {"retry": 3, "delay_before_retry": 60}),
    ("TCP_CHECK", "", {}),
    ("HTTP_GET", " delay_before_retry 1\n", {}),            # given on the virtual server: inherited by the agent
    ("MISC_CHECK", "", {"retry": 0}),
]


@pytest.mark.parametrize("kind, vs_body, expected", CHECKER_DEFAULTS)
def test_keepalived_checker_defaults_that_differ_from_the_agents_are_written_out(kind, vs_body, expected):
    text = ("virtual_server 198.51.100.100 80 {\n protocol TCP\n" + vs_body +
            " real_server 203.0.113.11 80 {\n  " + kind + " {\n  }\n }\n}\n")
    check = tr(text).config["virtual_servers"][0]["real_servers"][0]["checks"][0]
    check.pop("type")
    assert check == expected


def test_defaults_keepalived_makes_explicit():
    result = tr("virtual_server 198.51.100.100 53 {\n persistence_timeout\n real_server 203.0.113.11 53 {\n }\n}\n")
    service = result.config["virtual_servers"][0]
    assert service["protocol"] == "UDP" and service["persistence_timeout"] == 360
    assert result.items == []
    assert sorted(n.keyword for n in result.notes) == ["persistence_timeout", "virtual_server 198.51.100.100 53"]


AS_LOADED = """virtual_server 198.51.100.100 80 {
    lb_kind DR
    quorum 9
    hysteresis 5
    sorry_server 203.0.113.50 8080
    real_server 203.0.113.11 8080 {
        weight 3
    }
    real_server 203.0.113.12 {
        weight 2
    }
}
virtual_server fwmark 7 {
    lb_kind TUN
    sorry_server 203.0.113.50 8080
    real_server 203.0.113.11 80 {
    }
}
virtual_server 198.51.100.101 80 {
    sorry_server 203.0.113.50 8080
}
virtual_server 198.51.100.102 80 {
    quorum 2
    real_server 203.0.113.11 8080 {
        weight 0
    }
}
"""


def test_what_keepalived_corrects_as_it_loads_a_virtual_server_is_carried_over_corrected():
    """keepalived 2.2's check_data.c, seen in its log and its IPVS table (tests/integration/ipvs/test_migrate_ipvs.py):
    DR and TUN destinations get the service's port (none for a fwmark), a quorum above the real servers' total
    weight is lowered to it, a hysteresis not below the quorum becomes quorum - 1, a service without real servers
    is ignored; a total weight of 0 keeps the quorum (keepalived's 0 never comes up, as hanode's 1)."""
    result = tr(AS_LOADED)
    dr, fwmark, zero = result.config["virtual_servers"]
    assert dr["quorum"] == 5 and dr["hysteresis"] == 4
    assert dr["sorry_server"] == {"address": "203.0.113.50", "port": 80}
    assert [(rs["address"], rs.get("port")) for rs in dr["real_servers"]] == [("203.0.113.11", 80),
                                                                              ("203.0.113.12", None)]
    assert fwmark["sorry_server"] == {"address": "203.0.113.50"} and "port" not in fwmark["real_servers"][0]
    assert zero["quorum"] == 2 and zero["real_servers"][0]["port"] == 8080
    assert report(result) == [(19, "virtual_server 198.51.100.101 80", "invalid")]
    assert "has no real servers - ignoring" in result.items[0].reason
    notes = {(n.line, n.keyword): n.message for n in result.notes}
    assert "carried over as quorum: 5" in notes[(3, "quorum")]
    assert "carried over as hysteresis: 4" in notes[(4, "hysteresis")]
    assert "carried over as port: 80" in notes[(5, "sorry_server")]
    assert "carried over as port: 80" in notes[(6, "real_server 203.0.113.11 8080")]
    assert "carried over without a port" in notes[(15, "sorry_server")]
    assert "carried over without a port" in notes[(16, "real_server 203.0.113.11 80")]
    assert not any(field.startswith("virtual_servers[3]") for field in result.provenance)


def test_what_keepalived_makes_persistent_or_ignores_as_it_loads_a_virtual_server():
    result = tr("virtual_server 198.51.100.100 0 {\n protocol TCP\n sorry_server 203.0.113.50 0\n"
                " real_server 203.0.113.11 0 {\n }\n}\n"
                "virtual_server 198.51.100.101 80 {\n protocol TCP\n ops\n persistence_granularity 24\n"
                " real_server 203.0.113.11 80 {\n }\n}\n"
                "virtual_server 198.51.100.102 53 {\n protocol UDP\n ops\n persistence_timeout 30\n"
                " real_server 203.0.113.11 53 {\n }\n}\n")
    port0, tcp, udp = result.config["virtual_servers"]
    assert port0["persistence_timeout"] == 360 and port0["sorry_server"] == {"address": "203.0.113.50"}
    assert port0["real_servers"] == [{"address": "203.0.113.11"}]
    assert tcp["persistence_timeout"] == 360 and "ops" not in tcp
    assert udp["persistence_timeout"] == 30 and udp["ops"] is True
    assert report(result) == [(9, "ops", "no meaning here")]
    assert "one packet scheduling requires UDP" in result.items[0].reason
    assert [(n.line, n.keyword) for n in result.notes] == [(1, "virtual_server 198.51.100.100 0"),
                                                           (10, "persistence_granularity")]


def test_shell_syntax_in_a_script_is_carried_as_keepalived_runs_it_with_a_warning():
    result = tr("vrrp_script s {\n  script \"ss -ltn | grep ':::80 '\"\n}\n")
    assert result.config["vrrp_scripts"]["s"]["script"] == "ss -ltn '|' grep ':::80 '"
    assert result.items == []
    [note] = result.notes
    assert note.line == 2 and "| is shell syntax" in note.message


def test_scripts_keepalived_runs_through_the_shell_or_truncates():
    text = ('vrrp_script web {\n  script "</dev/tcp/127.0.0.1/80"\n}\n'
            "vrrp_script unquoted {\n  script /bin/sh -c true\n}\n")
    result = tr(text)
    assert result.config["vrrp_scripts"] == {"web": {"script": "/bin/sh -c '</dev/tcp/127.0.0.1/80'"},
                                             "unquoted": {"script": "/bin/sh"}}
    assert report(result) == [(5, "script -c true", "no meaning here")]
    assert "carried over as keepalived ran it: /bin/sh" in result.items[0].reason
    assert [n.line for n in result.notes] == [2]


# ----- the report of what is not carried over ----------------------------------------------------------------

NOT_CARRIED = [
    # (text, [(line, keyword, category)], a phrase of the first reason)
    (HEAD + "  track_src_ip\n}\n", [(4, "track_src_ip", "unsupported")], "no such option"),
    (HEAD + "  lvs_sync_daemon_interface eth1\n}\n", [(4, "lvs_sync_daemon_interface", "deprecated")], "lvs_sync_daemon"),
    (HEAD + "  preempt\n}\n", [(4, "preempt", "no meaning here")], "preemption is the default"),
    (HEAD + "  unicast_ttl 5\n  mcast_dst_ip 224.0.0.19\n}\n", [(4, "unicast_ttl", "no meaning here")], "no unicast peers"),
    (HEAD + "  authentication {\n    auth_type AH\n  }\n}\n", [(4, "authentication", "no meaning here")],
     "no password"),
    (HEAD + "  track_script {\n    nope\n  }\n}\n", [(5, "track_script nope", "invalid")], "no vrrp_script named nope"),
    (HEAD + "  track_interface {\n    eth1 weight 10 noreverse\n  }\n}\n",
     [(5, "track_interface eth1 weight 10 noreverse", "no meaning here")], "'noreverse' are ignored by keepalived"),
    (HEAD + "  virtual_ipaddress {\n    198.51.100.10/24 dev eth0 no_track\n    198.51.100.11 peer 198.51.100.12\n  }\n}\n",
     [(5, "virtual_ipaddress 198.51.100.10/24 dev eth0 no_track", "unsupported"),
      (6, "virtual_ipaddress 198.51.100.11 peer 198.51.100.12", "unsupported")], "carried over without it"),
    (HEAD + "  virtual_ipaddress {\n    198.51.100.10\n    198.51.100.10 label eth0:1\n  }\n}\n",
     [(6, "virtual_ipaddress 198.51.100.10 label eth0:1", "no meaning here")], "already on line 5"),
    (HEAD + "  unicast_peer {\n    198.51.100.12 min_ttl 250\n  }\n}\n",
     [(5, "unicast_peer 198.51.100.12 min_ttl 250", "unsupported")], "TTL"),
    (HEAD + "  notify_master /bin/true nobody\n}\n", [(4, "notify_master nobody", "unsupported")], "script_user"),
    (HEAD + "  priority 100\n  priority 120\n}\n", [(4, "priority", "no meaning here")], "given again on line 5"),
    (HEAD + "  priority high\n}\n", [(4, "priority", "invalid")], "not a whole number"),
    (HEAD + "  state EQUAL\n}\n", [(4, "state", "invalid")], "not MASTER or BACKUP"),
    (HEAD + "  priority\n}\n", [(4, "priority", "invalid")], "missing a value"),
    (HEAD + "  priority 100 200\n}\n", [(4, "priority 200", "no meaning here")], "ignored by keepalived"),
    (HEAD + "  prority 100\n}\n", [(4, "prority", "unsupported")], "not a keepalived 2.2 keyword of vrrp_instance"),
    (HEAD + "}\n" + HEAD + "}\n", [(5, "vrrp_instance VI_1", "invalid")], "already defined on line 1"),
    ("vrrp_script s {\n  script /bin/true\n  weight 10 sideways\n}\n" + HEAD + "  track_script {\n    s\n  }\n}\n",
     [(3, "weight", "no meaning here")], "unknown weight option 'sideways'"),
    ("vrrp_script s {\n  interval 2\n}\n", [(1, "vrrp_script s", "invalid")], "has no script"),
    ("global_defs {\n  enable_snmp_vrrp\n  vrrp_priority -10\n  lvs_flush_onstop\n}\n",
     [(2, "enable_snmp_vrrp", "unsupported"), (3, "vrrp_priority", "no meaning here"),
      (4, "lvs_flush_onstop", "deprecated")], "SNMP"),
    ("global_defs {\n  notification_email {\n    acassen\n  }\n}\n",
     [(3, "notification_email acassen", "unsupported")], "user@domain"),
    ("global_defs {\n  notify_fifo /run/k.fifo root\n  vrrp_notify_fifo /run/v.fifo\n}\n",
     [(2, "notify_fifo root", "unsupported"), (3, "vrrp_notify_fifo", "unsupported")], "owned by root"),
    ("static_ipaddress {\n  198.51.100.5/24 dev eth0 track_group G\n}\nnet_namespace blue\n",
     [(2, "static_ipaddress 198.51.100.5/24 dev eth0 track_group G", "unsupported"),
      (4, "net_namespace", "no meaning here")], "carried over without it"),
    ("vrrp_sync_group G {\n  VI_1\n}\n" + HEAD + "}\n",
     [(1, "vrrp_sync_group G", "invalid"), (2, "VI_1", "unsupported")], "no member"),
    ("vrrp_sync_group G {\n  group {\n    VI_1 VI_9\n  }\n  track_bfd {\n    b1\n  }\n}\n" + HEAD + "}\n",
     [(3, "group VI_9", "invalid"), (5, "track_bfd", "unsupported")], "no vrrp_instance named VI_9"),
    ("virtual_server_group G {\n}\nvirtual_server group H {\n}\n",
     [(1, "virtual_server_group G", "invalid"), (3, "virtual_server group H", "invalid")], "has no entries"),
    ("virtual_server fwmark 9 {\n  protocol SCTP\n  ha_suspend\n  lb_kind TUN type gue port 6080\n"
     "  real_server 203.0.113.11 80 {\n  }\n}\n",
     [(3, "ha_suspend", "no meaning here")], "cannot use ha_suspend with fwmarks"),
    ("virtual_server 198.51.100.100 80 {\n  sorry_server_inhibit\n  real_server 203.0.113.11 80 {\n    uthreshold 100\n"
     "    FILE_CHECK {\n      track_file f\n    }\n    HTTP_GET {\n      url {\n        path /\n        regex ok\n      }\n"
     "      http_protocol 1.0\n    }\n  }\n}\n",
     [(2, "sorry_server_inhibit", "no meaning here"), (6, "track_file", "invalid")],
     "no sorry_server"),
    ("virtual_server 198.51.100.100 80 {\n  real_server 203.0.113.11 80 {\n    BFD_CHECK {\n      name b\n    }\n"
     "  }\n  real_server 203.0.113.12 80 {\n    TCP_CHECK {\n      nb_get_retry 3\n    }\n  }\n}\n",
     [(2, "real_server 203.0.113.11 80", "unsupported"), (9, "nb_get_retry", "no meaning here")], "always up"),
    ("vrrp_track_process p {\n  process haproxy\n  weight 5 upside\n}\nbfd_instance b {\n}\nsomething_new 1\n",
     [(3, "weight", "no meaning here"), (5, "bfd_instance b", "unsupported"),
      (7, "something_new", "unsupported")], "unknown weight option 'upside'"),
    (HEAD + "  track_process {\n    nope\n  }\n  track_file {\n    nofile weight 2\n  }\n}\n",
     [(5, "track_process nope", "invalid"), (8, "track_file nofile weight 2", "invalid")],
     "no vrrp_track_process named nope"),
]


@pytest.mark.parametrize("text, expected, phrase", NOT_CARRIED, ids=[str(i) for i in range(len(NOT_CARRIED))])
def test_not_carried_over_is_reported_with_line_and_why(text, expected, phrase):
    result = tr(text)
    assert report(result) == expected
    assert phrase in result.items[0].reason
    for item in result.items:
        assert str(item).startswith(f"k.conf:{item.line}: {item.keyword}: {item.category}: ")


def test_what_is_reported_is_not_in_the_output():
    result = tr(HEAD + "  track_src_ip\n  authentication {\n    auth_type AH\n  }\n}\n")
    assert result.config["vrrp_instances"]["VI_1"] == {"interface": "eth0", "virtual_router_id": 51}


def test_reverse_weights_are_carried_as_keepalived_reads_them():
    """`weight N reverse` on a vrrp_script, vrrp_track_process and track_file, and on each reference: a reference
    with its own weight keeps the tracker's reverse unless it says reverse or noreverse (keepalived's
    vrrp_track.c); track_interface takes reverse only."""
    result = tr("vrrp_script s {\n  script /bin/true\n  weight 10 reverse\n}\n"
                "vrrp_track_process p {\n  process haproxy\n  weight -5 reverse\n}\n"
                "track_file f {\n  file /run/f\n  weight 2 reverse\n}\n"
                + HEAD + "  track_script {\n    s\n  }\n  track_process {\n    p weight 7 noreverse\n  }\n"
                "  track_file {\n    f weight 3\n  }\n  track_interface {\n    eth1 weight -4 reverse\n  }\n}\n")
    assert result.items == []
    config = result.config
    assert config["vrrp_scripts"]["s"]["weight_reverse"] is True
    assert config["vrrp_track_processes"]["p"]["weight_reverse"] is True
    assert config["track_files"]["f"]["weight_reverse"] is True
    instance = config["vrrp_instances"]["VI_1"]
    assert instance["track_scripts"] == [{"name": "s"}]
    assert instance["track_processes"] == [{"name": "p", "weight": 7, "weight_reverse": False}]
    assert instance["track_files"] == [{"name": "f", "weight": 3}]
    assert instance["track_interfaces"] == [{"name": "eth1", "weight": -4, "weight_reverse": True}]


def test_a_complete_translation_has_no_items():
    result = tr("global_defs {\n  router_id r1\n}\n" + HEAD + "  priority 100\n}\n")
    assert result.complete and result.items == []


def test_import_text_is_plain_data_for_ansible():
    out = import_text("global_defs {\n  router_id r1\n}\n" + HEAD + "  track_src_ip\n}\ninclude x.conf\n", "node1.conf")
    assert out["complete"] is False
    assert out["config"] == {"router_id": "r1",
                             "vrrp_instances": {"VI_1": {"interface": "eth0", "virtual_router_id": 51}}}
    assert [(i["line"], i["keyword"], i["category"]) for i in out["not_carried_over"]] == [
        (7, "track_src_ip", "unsupported"), (9, "include", "unsupported")]
    assert out["not_carried_over"][0]["file"] == "node1.conf"
