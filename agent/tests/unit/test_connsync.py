"""Connections that survive a failover, without a kernel: keepalived's sync-daemon rules as a reconcile, the
IPVS daemon codec (bytes from include/uapi/linux/ip_vs.h's layout), conntrackd's config and the commands of
each state (conntrackd's primary-backup.sh), and the config keys with their field paths."""

from __future__ import annotations

import struct

import pytest

from hanode.config.host import HostCaps
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.lvs import conntrackd, syncd
from hanode.lvs.syncd import BACKUP, MASTER, DaemonParams, StartDaemon, StopDaemon, SyncDaemon

P = DaemonParams("eth1", 51)


# ----- keepalived's rules --------------------------------------------------------------------------------------

@pytest.mark.parametrize("state, want", [(None, {BACKUP}), ("BACKUP", {BACKUP}), ("FAULT", {BACKUP}),
                                         ("MASTER", {MASTER})])
def test_a_followed_instance_runs_the_backup_daemon_unless_master(state, want):
    assert set(syncd.desired_daemons(SyncDaemon("eth1", "VI_1"), state, 51)) == want


def test_without_an_instance_both_daemons_run_and_the_sync_id_is_zero():
    both = {MASTER: DaemonParams("eth1", 0), BACKUP: DaemonParams("eth1", 0)}
    assert syncd.desired_daemons(SyncDaemon("eth1"), "MASTER", None) == both


def test_the_sync_id_defaults_to_the_vrid_and_id_overrides_it():
    assert syncd.desired_daemons(SyncDaemon("eth1", "VI_1"), "BACKUP", 51)[BACKUP].sync_id == 51
    assert syncd.desired_daemons(SyncDaemon("eth1", "VI_1", sync_id=7), "BACKUP", 51)[BACKUP].sync_id == 7


def test_no_config_no_daemon():
    assert syncd.desired_daemons(None, "MASTER", 51) == {}


def test_becoming_master_stops_the_backup_daemon_then_starts_the_master_one():
    assert syncd.plan({MASTER: P}, {BACKUP: P}) == [StopDaemon(BACKUP), StartDaemon(MASTER, P)]


def test_leaving_master_stops_the_master_daemon_then_starts_the_backup_one():
    assert syncd.plan({BACKUP: P}, {MASTER: P}) == [StopDaemon(MASTER), StartDaemon(BACKUP, P)]


def test_a_running_daemon_with_the_wanted_parameters_is_kept_and_kernel_defaults_match_anything():
    running = DaemonParams("eth1", 51, maxlen=1472, port=8848, ttl=1, group="224.0.0.81")
    assert syncd.plan({BACKUP: P}, {BACKUP: running}) == []
    assert syncd.plan({BACKUP: DaemonParams("eth1", 51, port=8848)}, {BACKUP: running}) == []


def test_a_daemon_with_other_parameters_is_restarted():
    running = DaemonParams("eth1", 51, port=8848)
    wanted = DaemonParams("eth1", 51, port=9000)
    assert syncd.plan({BACKUP: wanted}, {BACKUP: running}) == [StopDaemon(BACKUP), StartDaemon(BACKUP, wanted)]
    assert syncd.plan({BACKUP: P}, {BACKUP: DaemonParams("eth2", 51)}) == [StopDaemon(BACKUP), StartDaemon(BACKUP, P)]


def test_stopping_removes_every_daemon_and_plan_of_equal_states_is_empty():
    assert syncd.plan({}, {MASTER: P, BACKUP: P}) == [StopDaemon(BACKUP), StopDaemon(MASTER)]
    assert syncd.plan({MASTER: P, BACKUP: P}, {MASTER: P, BACKUP: P}) == []


# ----- the generic-netlink codec -----------------------------------------------------------------------------

def nla(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-(4 + len(payload)) & 3)


def test_start_daemon_bytes_follow_the_kernel_layout():
    params = DaemonParams("eth1", 51, maxlen=1400, port=8849, ttl=2, group="239.1.2.3")
    cmd, attrs = syncd.encode(StartDaemon(MASTER, params))
    inner = (nla(1, struct.pack("=I", 1)) + nla(2, b"eth1\0") + nla(3, struct.pack("=I", 51))
             + nla(4, struct.pack("=H", 1400)) + nla(7, struct.pack("=H", 8849)) + nla(8, b"\x02")
             + nla(5, bytes([239, 1, 2, 3])))
    assert cmd == 9
    assert attrs == nla(3, inner)
    assert attrs.hex() == ("40000300" "0800010001000000" "090002006574683100000000" "0800030033000000"
                           "0600040078050000" "0600070091220000" "0500080002000000" "08000500ef010203")


def test_stop_daemon_carries_only_the_state_and_ipv6_groups_use_their_own_attribute():
    assert syncd.encode(StopDaemon(BACKUP)) == (10, nla(3, nla(1, struct.pack("=I", 2))))
    _cmd, attrs = syncd.encode(StartDaemon(BACKUP, DaemonParams("eth1", 0, group="ff02::81")))
    assert nla(6, bytes.fromhex("ff020000000000000000000000000081")) in attrs


def test_a_dumped_daemon_decodes_with_the_kernels_choices():
    raw = (nla(1, struct.pack("=I", 2)) + nla(2, b"eth1\0") + nla(3, struct.pack("=I", 51))
           + nla(4, struct.pack("=H", 1472)) + nla(7, struct.pack("=H", 8848)) + nla(8, b"\x01")
           + nla(5, bytes([224, 0, 0, 81])))
    assert syncd.decode(raw) == (BACKUP, DaemonParams("eth1", 51, 1472, 8848, 1, "224.0.0.81"))


@pytest.mark.parametrize("raw", [b"", nla(2, b"eth1\0"), nla(1, struct.pack("=I", 9)) + nla(2, b"x\0")
                                 + nla(3, b"\0\0\0\0"), b"\x40\x00\x01\x00"])
def test_bad_daemon_replies_raise_the_codecs_error(raw):
    with pytest.raises(syncd.SyncdError):
        syncd.decode(raw)


# ----- conntrackd ---------------------------------------------------------------------------------------------

def test_state_commands_are_those_of_primary_backup_sh():
    assert conntrackd.commands_for("MASTER") == (("-c",), ("-f",), ("-R",), ("-B",))
    assert conntrackd.commands_for("BACKUP") == conntrackd.commands_for(None) == (("-t",), ("-n",))
    assert conntrackd.commands_for("FAULT") == (("-t",),)


def test_each_agent_gets_its_own_conntrackd_files():
    files = conntrackd.files_for("/run/hanode/lb1.sock")
    assert files == conntrackd.Files("/run/hanode/lb1.conntrackd.conf", "/run/hanode/lb1.conntrackd.ctl",
                                     "/run/hanode/lb1.conntrackd.lock", "/run/hanode/lb1.conntrackd.log")


def test_multicast_config_is_ftfw_over_the_sync_link_with_this_agents_paths():
    files = conntrackd.files_for("/run/x/a.sock")
    text = conntrackd.render(conntrackd.ConntrackSync("eth1", "VI_1"), files, "203.0.113.1")
    for line in ("Mode FTFW {", "Multicast {", "IPv4_address 225.0.0.50", "Group 3780", "IPv4_interface 203.0.113.1",
                 "Interface eth1", "LockFile /run/x/a.conntrackd.lock", "Path /run/x/a.conntrackd.ctl",
                 "LogFile /run/x/a.conntrackd.log", "IPv4_address 203.0.113.1", "SCTP"):
        assert line in [t.strip() for t in text.splitlines()], line
    assert text.count("{") == text.count("}")


def test_udp_config_names_the_peer_in_its_family():
    sync = conntrackd.ConntrackSync("eth1", "VI_1", "udp", port=4000, peer="2001:db8:203::2")
    lines = [t.strip() for t in conntrackd.render(sync, conntrackd.files_for("/r/a.sock"), "2001:db8:203::1").splitlines()]
    assert {"UDP {", "IPv6_address 2001:db8:203::1", "IPv6_Destination_Address 2001:db8:203::2", "Port 4000"} <= set(lines)


def test_guard_table_drops_only_new_tcp_without_syn_and_is_replaced_whole():
    script = conntrackd.guard_script(True)
    assert script.startswith("add table inet hanode_ctsync\ndelete table inet hanode_ctsync\n")
    assert "ct state new tcp flags & (syn | rst) == 0 counter drop" in script
    assert conntrackd.guard_script(False) == "delete table inet hanode_ctsync\n"


# ----- config -----------------------------------------------------------------------------------------------

INSTANCE = {"interface": "eth0", "virtual_router_id": 51, "priority": 100, "virtual_ipaddresses": ["198.51.100.100/24"]}


def config(backend: str = "ipvs", **top) -> dict:
    return {"vrrp_instances": {"VI_1": dict(INSTANCE)}, "lb_backend": backend, **top}


def errors(raw: dict, host: HostCaps | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, host=host)
    return [str(p) for p in info.value.problems]


def test_lvs_sync_daemon_keys_are_keepalived_options():
    raw = config(lvs_sync_daemon={"interface": "eth1", "instance": "VI_1", "id": 5, "maxlen": 1400, "port": 8849,
                                  "ttl": 2, "group": "239.1.2.3"})
    section = parse_config(raw)[0].sections["connsync"]
    assert section.lvs_sync_daemon == SyncDaemon("eth1", "VI_1", 5, 1400, 8849, 2, "239.1.2.3")
    assert section.conntrack_sync is None


@pytest.mark.parametrize("block, path, words", [
    ({"instance": "VI_1"}, "lvs_sync_daemon.interface", "is required"),
    ({"interface": "a-very-long-interface"}, "lvs_sync_daemon.interface", "1..15"),
    ({"interface": "eth1", "instance": "VI_9"}, "lvs_sync_daemon.instance", "no vrrp_instances.VI_9"),
    ({"interface": "eth1", "id": 256}, "lvs_sync_daemon.id", "0..255"),
    ({"interface": "eth1", "maxlen": 65508}, "lvs_sync_daemon.maxlen", "1..65507"),
    ({"interface": "eth1", "ttl": 0}, "lvs_sync_daemon.ttl", "1..255"),
    ({"interface": "eth1", "group": "203.0.113.9"}, "lvs_sync_daemon.group", "not a multicast"),
    ({"interface": "eth1", "inst": "VI_1"}, "lvs_sync_daemon.inst", "unknown key (did you mean 'instance'?)"),
])
def test_lvs_sync_daemon_problems_name_the_field(block, path, words):
    found = errors(config(lvs_sync_daemon=block))
    assert any(line.startswith(path + ":") and words in line for line in found), found


def test_conntrack_sync_defaults_and_udp():
    section = parse_config(config("nftables", conntrack_sync={"interface": "eth1", "instance": "VI_1"}))[0]
    assert section.sections["connsync"].conntrack_sync == conntrackd.ConntrackSync("eth1", "VI_1")
    udp = {"interface": "eth1", "instance": "VI_1", "transport": "udp", "peer": "203.0.113.2", "port": 4000}
    got = parse_config(config("nftables", conntrack_sync=udp))[0].sections["connsync"].conntrack_sync
    assert (got.transport, got.peer, got.port) == ("udp", "203.0.113.2", 4000)


@pytest.mark.parametrize("block, path, words", [
    ({"interface": "eth1"}, "conntrack_sync.instance", "is required"),
    ({"interface": "eth1", "instance": "VI_1", "transport": "udp"}, "conntrack_sync.peer", "is required with transport udp"),
    ({"interface": "eth1", "instance": "VI_1", "peer": "203.0.113.2"}, "conntrack_sync.peer", "is for transport udp"),
    ({"interface": "eth1", "instance": "VI_1", "group": "ff02::1"}, "conntrack_sync.group", "IPv4 multicast"),
    ({"interface": "eth1", "instance": "VI_1", "transport": "tcp"}, "conntrack_sync.transport", "multicast, udp"),
    ({"interface": "be0", "instance": "VI_1"}, "conntrack_sync.interface", "hex digits"),
])
def test_conntrack_sync_problems_name_the_field(block, path, words):
    found = errors(config("nftables", conntrack_sync=block))
    assert any(line.startswith(path + ":") and words in line for line in found), found


def test_the_sync_for_the_other_backend_alone_is_refused():
    found = errors(config("nftables", lvs_sync_daemon={"interface": "eth1", "instance": "VI_1"}))
    assert any(line.startswith("lvs_sync_daemon:") and "add conntrack_sync" in line for line in found), found
    found = errors(config("ipvs", conntrack_sync={"interface": "eth1", "instance": "VI_1"}))
    assert any(line.startswith("conntrack_sync:") and "add lvs_sync_daemon" in line for line in found), found
    found = errors(config("auto", lvs_sync_daemon={"interface": "eth1"}), HostCaps(False, "no IPVS here (test)"))
    assert any("no IPVS here (test)" in line for line in found), found
    problems = parse_config(config("auto", lvs_sync_daemon={"interface": "eth1"}),
                            host=HostCaps(True, "ip_vs.ko is in modules.dep (test)"))[1]
    assert not problems.errors
    unknown = parse_config(config("auto", lvs_sync_daemon={"interface": "eth1"}))[1]  # no host capabilities
    assert not unknown.errors and any(str(p).startswith("warning: lvs_sync_daemon: lb_backend auto:")
                                      for p in unknown.warnings), unknown.items


def test_both_together_suit_either_backend():
    both = {"lvs_sync_daemon": {"interface": "eth1", "instance": "VI_1"},
            "conntrack_sync": {"interface": "eth1", "instance": "VI_1"}}
    for backend in ("ipvs", "nftables"):
        assert parse_config(config(backend, **both))[0].sections["connsync"].conntrack_sync is not None


# ----- SCTP services -------------------------------------------------------------------------------------------

def sctp_service(checks: list[dict], backend: str = "nftables") -> dict:
    return {"lb_backend": backend, "virtual_servers": [{
        "address": "198.51.100.100", "port": 3868, "protocol": "sctp", "lb_algo": "rr", "lb_kind": "NAT",
        "real_servers": [{"address": "203.0.113.11", "port": 3868, "checks": checks}]}]}


@pytest.mark.parametrize("backend", ["ipvs", "nftables"])
def test_sctp_services_are_sctp_on_both_backends(backend):
    vs = parse_config(sctp_service([{"type": "PING_CHECK"}, {"type": "MISC_CHECK", "misc_path": "/bin/true"}],
                                   backend))[0].sections["lvs"].virtual_servers[0]
    assert vs.protocol == "SCTP" and vs.name == "198.51.100.100:3868/SCTP"


@pytest.mark.parametrize("check, over", [("TCP_CHECK", "TCP"), ("HTTP_GET", "TCP"), ("SSL_GET", "TCP"),
                                         ("SMTP_CHECK", "TCP"), ("UDP_CHECK", "UDP"), ("DNS_CHECK", "UDP")])
def test_tcp_and_udp_checks_of_an_sctp_service_need_their_own_port(check, over):
    found = errors(sctp_service([{"type": check}]))
    path = "virtual_servers[0].real_servers[0].checks[0].connect_port"
    assert any(line.startswith(path + ":") and f"probes over {over}, not SCTP" in line for line in found), found
    vs = parse_config(sctp_service([{"type": check, "connect_port": 8080}]))[0].sections["lvs"].virtual_servers[0]
    assert vs.real_servers[0].checks[0].connect_port == 8080


# ----- the keepalived importer's rows --------------------------------------------------------------------------

def imported(global_defs: str, body: str = "") -> tuple[dict, list, list]:
    from hanode.migrate.keepalived import parse_text, translate
    text = ("global_defs {\n  " + global_defs + "\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"
            "  priority 100\n  virtual_ipaddress {\n    198.51.100.100/24\n  }\n}\n" + body)
    result = translate(parse_text(text, "k.conf"))
    return result.config, [(i.keyword, i.category, i.reason) for i in result.items], [n.message for n in result.notes]


@pytest.mark.parametrize("line, sync", [
    ("lvs_sync_daemon eth1 VI_1", {"interface": "eth1", "instance": "VI_1"}),
    ("lvs_sync_daemon eth1 VI_1 id 5 maxlen 1400 port 8849 ttl 2 group 239.1.2.3",
     {"interface": "eth1", "instance": "VI_1", "id": 5, "maxlen": 1400, "port": 8849, "ttl": 2, "group": "239.1.2.3"}),
    ("lvs_sync_daemon eth1 inst VI_1 id 7", {"interface": "eth1", "instance": "VI_1", "id": 7}),
    ("lvs_sync_daemon eth1 VI_1 9", {"interface": "eth1", "instance": "VI_1", "id": 9}),
    ("lvs_sync_daemon eth1", {"interface": "eth1"}),
])
def test_lvs_sync_daemon_is_imported_as_keepalived_reads_it_and_the_agent_takes_it(line, sync):
    config, items, _notes = imported(line)
    assert config["lvs_sync_daemon"] == sync and items == []
    if "instance" in sync:
        assert config["conntrack_sync"] == {"interface": "eth1", "instance": "VI_1"}
    else:
        assert "conntrack_sync" not in config
    assert parse_config({**config, "lb_backend": "ipvs"})[0].sections["connsync"].lvs_sync_daemon.interface == "eth1"


def test_lvs_sync_daemon_problems_are_reported_as_keepalived_ignores_them():
    _config, items, _notes = imported("lvs_sync_daemon eth1 VI_1 colour blue")
    assert ("lvs_sync_daemon colour", "invalid", "unknown option 'colour' (keepalived ignores it)") in items
    config, items, _notes = imported("lvs_sync_daemon")
    assert "lvs_sync_daemon" not in config and items[0][1] == "invalid"


def test_sctp_services_are_imported_as_sctp():
    body = ("virtual_server 198.51.100.100 3868 {\n  protocol SCTP\n  lb_kind NAT\n  lb_algo rr\n"
            "  real_server 203.0.113.11 3868 {\n    PING_CHECK {\n    }\n  }\n}\n")
    config, items, _notes = imported("router_id lb1", body)
    assert config["virtual_servers"][0]["protocol"] == "SCTP" and items == []


def test_tcp_checks_of_an_imported_sctp_service_keep_probing_the_port_keepalived_probes():
    body = ("virtual_server 198.51.100.100 3868 {\n  protocol SCTP\n  lb_kind NAT\n  lb_algo rr\n"
            "  real_server 203.0.113.11 3868 {\n    TCP_CHECK {\n      connect_timeout 2\n    }\n    PING_CHECK {\n"
            "    }\n  }\n}\n")
    config, items, notes = imported("router_id lb1", body)
    checks = config["virtual_servers"][0]["real_servers"][0]["checks"]
    assert checks == [{"type": "TCP_CHECK", "connect_timeout": 2, "connect_port": 3868}, {"type": "PING_CHECK"}]
    assert items == [] and any("probes port 3868 over TCP, not SCTP" in n for n in notes), notes
    assert parse_config(config)[0].sections["lvs"].virtual_servers[0].protocol == "SCTP"
