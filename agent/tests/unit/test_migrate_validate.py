"""The importer never claims more than the agent accepts: every carried-over keyword passes the agent's own config
parser, and whatever the agent refuses is reported against the keepalived keyword it came from."""

from __future__ import annotations

import pytest

from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError, Problem
from hanode.migrate import keepalived as core
from hanode.migrate import validate as validate_module
from hanode.migrate.keepalived import parse_text, translate
from hanode.migrate.validate import MigrationError, validate

# Every keyword the importer carries over, in one file the agent must accept as it is.
KITCHEN_SINK = """
global_defs {
  router_id lb-1
  script_user root root
  enable_script_security
  checker_log_all_failures
  default_interface eth0
  vrrp_version 2
  vrrp_garp_master_delay 5
  vrrp_garp_master_repeat 5
  vrrp_garp_master_refresh 0
  vrrp_garp_master_refresh_repeat 1
  vrrp_garp_interval 0
  notification_email {
    ops@example.com
  }
  notification_email_from lb@example.com
  smtp_server 198.51.100.1 25
  smtp_connect_timeout 30
  smtp_helo_name lb-1.example.com
  smtp_alert
  notify_fifo /run/keepalived.fifo
  vrrp_mcast_group4 224.0.0.19
  vrrp_mcast_group6 ff02::13
  vrrp_check_unicast_src
  vrrp_garp_extra_if all 60
  vmac_prefix vr
  vmac_addr_prefix va
  vrrp_skip_check_adv_addr
  vrrp_lower_prio_no_advert
  vrrp_min_garp
  vrrp_garp_lower_prio_delay 5
  vrrp_gna_interval 0.001
  vrrp_garp_lower_prio_repeat 2
  vrrp_notify_priority_changes
  vrrp_startup_delay 1.5
  vrrp_down_timer_adverts 4
  startup_script /usr/local/bin/start.sh
  startup_script_timeout 5
  shutdown_script /usr/local/bin/stop.sh
  shutdown_script_timeout 5
  notify_fifo_script /usr/local/bin/fifo-reader.sh
}
garp_group {
  garp_interval 0.01
  gna_interval 0.01
  interfaces {
    eth0
    eth1
  }
}
vrrp_track_process haproxy {
  process haproxy
  weight -10
  quorum 1
  quorum_max 2
  delay 1
}
track_file prio {
  file /run/prio
  weight 2
  init_file 0
}
static_ipaddress {
  198.51.100.250/32 dev eth0
}
static_routes {
  198.19.9.0/24 via 198.51.100.254 dev eth0
}
static_rules {
  to 198.19.9.0/24 table 102 preference 102
}
vrrp_script chk {
  script "/usr/bin/killall -0 haproxy"
  interval 2
  timeout 3
  weight -20
  rise 2
  fall 2
  user nobody
  init_fail
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  version 2
  preempt_delay 10
  lower_prio_no_advert false
  unicast_src_ip 198.51.100.11
  unicast_peer {
    198.51.100.12
  }
  authentication {
    auth_type PASS
    auth_pass s3cret
  }
  virtual_ipaddress {
    198.51.100.100/24 dev eth0 label eth0:vip brd 198.51.100.255 scope global
  }
  virtual_ipaddress_excluded {
    198.51.100.101/24
  }
  track_interface {
    eth1 weight -10
  }
  track_script {
    chk weight -30
  }
  dont_track_primary
  notify_master /usr/local/bin/master.sh
  notify_backup /usr/local/bin/backup.sh
  notify_fault /usr/local/bin/fault.sh
  notify_stop /usr/local/bin/stop.sh
  notify /usr/local/bin/notify.sh
  notify_master_rx_lower_pri /usr/local/bin/rx-lower.sh
  notify_priority_changes false
  down_timer_adverts 3
  track_process {
    haproxy
  }
  track_file {
    prio weight 1
  }
  garp_master_delay 1
  garp_master_repeat 3
  garp_lower_prio_delay 2
  garp_lower_prio_repeat 1
  garp_master_refresh 60
  garp_master_refresh_repeat 2
  smtp_alert
  unicast_ttl 64
  check_unicast_src
  unicast_fault_no_peer
  virtual_routes {
    src 198.51.100.100 to 198.18.0.0/16 via 198.51.100.254 dev eth0
  }
  virtual_rules {
    from 198.51.100.100 table 100 preference 100
  }
}
vrrp_instance VI_2 {
  interface eth1
  virtual_router_id 52
  version 3
  advert_int 0.25
  mcast_src_ip 203.0.113.1
  nopreempt
  use_vmac vrrp52 02:00:00:00:10
  use_vmac_addr
  vmac_xmit_base
  garp_extra_if 30
  mcast_dst_ip 224.0.0.20
  virtual_ipaddress {
    203.0.113.200/24
  }
  virtual_ipaddress_excluded {
    198.51.100.201/24 dev eth0 use_vmac
  }
}
vrrp_instance VI_3 {
  interface eth1
  virtual_router_id 53
  version 3
  strict_mode
  accept
  promote_secondaries
  skip_check_adv_addr
  use_ipvlan ipv53 203.0.113.53/24 private
  virtual_ipaddress {
    203.0.113.201/24
  }
}
vrrp_sync_group G {
  group {
    VI_1 VI_2
  }
  notify_master /usr/local/bin/g.sh
  notify_backup /usr/local/bin/g.sh
  notify_fault /usr/local/bin/g.sh
  notify_stop /usr/local/bin/g.sh
  notify /usr/local/bin/g.sh
  smtp_alert
}
virtual_server 198.51.100.100 80 {
  delay_loop 6
  lb_algo wrr
  lb_kind NAT
  persistence_timeout 300
  persistence_granularity 24
  persistence_engine sip
  ha_suspend
  protocol TCP
  quorum 1
  hysteresis 0
  quorum_up /usr/local/bin/q.sh
  quorum_down /usr/local/bin/q.sh
  alpha
  omega
  inhibit_on_failure
  virtualhost www.example.com
  smtp_alert
  retry 2
  delay_before_retry 1
  warmup 1
  connect_timeout 3
  sorry_server 203.0.113.50 8080
  sorry_server_inhibit
  real_server 203.0.113.11 8080 {
    weight 3
    uthreshold 100
    lthreshold 50
    inhibit_on_failure
    alpha
    notify_up /usr/local/bin/rs.sh
    notify_down /usr/local/bin/rs.sh
    delay_loop 3
    retry 1
    delay_before_retry 2
    warmup 0
    connect_timeout 2
    virtualhost rs.example.com
    HTTP_GET {
      url {
        path /health
        status_code 200-299 304
        digest 9b3a0c85a887a256d6939da88aabd8cd
      }
      url {
        path /ready
        virtualhost ready.example.com
        regex "^ready: (yes|ok)"
        regex_no_match
        regex_options caseless multiline
        regex_min_offset 0
        regex_max_offset 100
      }
      bind_if eth0
      fwmark 5
      alpha
      log_all_failures
      connect_ip 203.0.113.11
      connect_port 8081
      bindto 203.0.113.1
      bind_port 40000
      connect_timeout 2
      nb_get_retry 2
      delay_before_retry 1
      warmup 1
      delay_loop 5
    }
    SSL_GET {
      url {
        path /
      }
      enable_sni
      virtualhost tls.example.com
      http_protocol 1.1
    }
    TCP_CHECK {
      retry 3
    }
    MISC_CHECK {
      misc_path "/usr/local/bin/check.sh arg"
      misc_timeout 5
      misc_dynamic
      user nobody
    }
    PING_CHECK {
    }
    SMTP_CHECK {
      helo_name mx.example.com
      host {
        connect_ip 203.0.113.11
        connect_port 25
      }
    }
  }
}
virtual_server 198.51.100.100 53 {
  lvs_sched rr
  lvs_method DR
  protocol UDP
  ops
  real_server 203.0.113.12 53 {
    UDP_CHECK {
      payload 00
      require_reply
    }
    DNS_CHECK {
      type A
      name example.com
    }
    FILE_CHECK {
      track_file maint
      weight 0 reverse
    }
  }
}
track_file maint {
  file /run/lb/maint
  weight 2
}
SSL {
  certificate /etc/keepalived/client.pem
  key /etc/keepalived/client.key
  password s3cret
  ca /etc/keepalived/ca.pem
}
virtual_server fwmark 7 {
  lb_kind TUN
  real_server 203.0.113.13 {
    TCP_CHECK {
      connect_port 80
    }
  }
}
"""


def keywords(nodes):
    out = set()
    for node in nodes:
        out.add(node.keyword)
        if node.children is not None and node.keyword not in ("virtual_ipaddress", "virtual_ipaddress_excluded",
                                                              "unicast_peer", "notification_email", "group",
                                                              "track_interface", "track_script", "virtual_routes",
                                                              "virtual_rules", "static_ipaddress", "static_routes",
                                                              "static_rules"):
            out |= keywords(node.children)
    return out


def test_the_kitchen_sink_uses_every_keyword_the_importer_carries_over():
    used = keywords(parse_text(KITCHEN_SINK, "k.conf").nodes)
    tables = (set(core._Translator._INSTANCE_VALUES) | set(core._Translator._NOTIFY) | set(core._Translator._DEFAULTS)
              | set(core._Translator._VS_VALUES) | set(core._Translator._RS_VALUES)
              | set(core._Translator._CHECK_VALUES) | set(core._Translator._CHECKS)
              | {k for values in core._Translator._KIND_VALUES.values() for k in values})
    special = {"router_id", "script_user", "enable_script_security", "notification_email", "notification_email_from",
               "smtp_server", "smtp_connect_timeout", "smtp_helo_name", "smtp_alert", "notify_fifo", "script", "interval",
               "timeout", "weight", "rise", "fall", "user", "init_fail", "virtual_ipaddress", "virtual_ipaddress_excluded",
               "unicast_peer", "authentication", "auth_type", "auth_pass", "track_interface", "track_script", "group",
               "sorry_server", "sorry_server_inhibit", "quorum_up", "quorum_down", "real_server", "notify_up",
               "notify_down", "url", "path", "status_code", "digest", "enable_sni", "misc_path", "payload",
               "require_reply", "host", "http_protocol", "use_vmac", "FILE_CHECK", "track_file", "file", "regex",
               "regex_options", "regex_min_offset", "regex_max_offset", "SSL", "certificate", "key", "password", "ca",
               "use_vmac_addr", "use_ipvlan", "garp_extra_if",
               "check_unicast_src", "unicast_fault_no_peer", "virtual_routes", "virtual_rules", "static_ipaddress",
               "static_routes", "static_rules", "vrrp_check_unicast_src", "vrrp_garp_extra_if", "accept",
               "promote_secondaries", "vrrp_skip_check_adv_addr"}
    assert (tables | special) - used == set()


def test_the_agent_accepts_everything_the_importer_carries_over():
    parsed = parse_text(KITCHEN_SINK, "k.conf")
    plain = translate(parsed)
    assert [str(i) for i in plain.items] == []
    checks = plain.config["virtual_servers"][0]["real_servers"][0]["checks"]
    assert [c.get("virtualhost") for c in checks[:2]] == ["rs.example.com", "tls.example.com"]
    config, problems = parse_config(plain.config)        # raises ConfigError if the agent refuses any of it
    assert problems.errors == []
    validated = validate(parsed)
    assert validated.translation.config == plain.config
    assert validated.translation.items == plain.items
    assert len(config.vrrp_instances) == 3 and len(config.sections["lvs"].virtual_servers) == 3
    assert config.sections["ops"].notify_fifo_format == "keepalived"


HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"


def refused(text):
    validated = validate(parse_text(text, "k.conf"))
    parse_config(validated.translation.config)           # the final output is accepted
    return validated, [(i.line, i.keyword, i.reason) for i in validated.translation.items]


def test_nopreempt_with_state_master_is_dropped_as_keepalived_clears_it():
    validated, items = refused(HEAD + "  state MASTER\n  nopreempt\n}\n")
    assert items == [(5, "nopreempt", "with state MASTER keepalived clears it (\"nopreempt will not work with "
                                      "initial state MASTER - clearing\")")]
    assert "nopreempt" not in validated.translation.config["vrrp_instances"]["VI_1"]


def test_a_duplicate_vrid_drops_the_second_instance_and_says_why():
    validated, items = refused(HEAD + "}\nvrrp_instance VI_2 {\n  interface eth0\n  virtual_router_id 51\n}\n")
    assert [(line, kw) for line, kw, _reason in items] == [(5, "vrrp_instance VI_2"), (7, "virtual_router_id")]
    assert "51 is already used by VI_1 on eth0" in items[1][2]
    assert "virtual_router_id: is required" in items[0][2]
    assert list(validated.translation.config["vrrp_instances"]) == ["VI_1"]


def test_a_refused_vip_is_dropped_alone():
    validated, items = refused(HEAD + "  virtual_ipaddress {\n    198.51.100.10 dev eth0 label vip0\n"
                                      "    198.51.100.11\n  }\n}\n")
    assert [(line, kw) for line, kw, _reason in items] == [(5, "virtual_ipaddress 198.51.100.10 dev eth0 label vip0")]
    assert "must start with the interface name" in items[0][2]
    assert validated.translation.config["vrrp_instances"]["VI_1"]["virtual_ipaddresses"] == ["198.51.100.11"]


def test_a_refusal_on_a_missing_field_is_traced_through_the_message():
    items = refused("global_defs {\n  notification_email {\n    ops@example.com\n  }\n}\n")[1]
    assert [(line, kw) for line, kw, _reason in items] == [(2, "notification_email")]
    assert "smtp_server: is required when notification_email is set" in items[0][2]


def test_agent_warnings_become_notes_on_their_keyword():
    validated = validate(parse_text(HEAD + "  authentication {\n    auth_type PASS\n    auth_pass 123456789\n  }\n}\n",
                                    "k.conf"))
    assert validated.translation.items == []
    [note] = [n for n in validated.notes if "auth_pass" in n.message]
    assert (note.line, note.keyword) == (6, "auth_pass") and "only the first 8 are used" in note.message


def test_a_refusal_the_importer_cannot_trace_is_an_error(monkeypatch):
    def refuse(raw, **kwargs):
        raise ConfigError([Problem("somewhere.else", "no")])
    monkeypatch.setattr(validate_module, "parse_config", refuse)
    with pytest.raises(MigrationError, match="somewhere.else: no"):
        validate(parse_text(HEAD + "}\n", "k.conf"))
