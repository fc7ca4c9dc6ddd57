"""virtual_server_groups (ranges, fwmark entries, one check per real server shared by every member, one quorum)
and the IPVS options of issue 13 (thresholds, per-real-server forwarding, tunnels, scheduler flags, persistence
engine, lvs_timeouts, the sorry server's forwarding): config, desired state, IPVS codec, nftables refusals."""

from __future__ import annotations

import struct

import pytest

from hanode.config.parse import parse_config
from hanode.config.parse_lvs_group import expand_range
from hanode.config.problems import ConfigError
from hanode.lvs import ipvs, nft
from hanode.lvs.desired import RsHealth, desired_state, desired_update
from hanode.lvs.kernel import SVC_F_SCHED1, SVC_F_SCHED2, Dest, DestKey, Service, ServiceKey

RS = [{"address": "203.0.113.6", "port": 8080, "checks": ["TCP_CHECK"]},
      {"address": "203.0.113.10", "port": 8080, "checks": ["TCP_CHECK"]}]


def lvs(raw: dict):
    config, problems = parse_config(raw)
    return config.sections["lvs"], [str(p) for p in problems.items]


def errors(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return [str(p) for p in info.value.problems]


def group_config(entries, backend="ipvs", **vs):
    return {"lb_backend": backend, "virtual_server_groups": {"web": entries},
            "virtual_servers": [{"group": "web", "protocol": "TCP", "lb_algo": "rr", "real_servers": RS, **vs}]}


# ----- ranges, as keepalived reads them ----------------------------------------------------------------------

@pytest.mark.parametrize("text, first, last, count", [
    ("198.51.100.1-10", "198.51.100.1", "198.51.100.10", 10),            # keepalived's 10.0.0.1-10 80
    ("198.51.100.250-198.51.100.255", "198.51.100.250", "198.51.100.255", 6),
    ("198.51.100.64/30", "198.51.100.64", "198.51.100.67", 4),
    ("2001:db8::a-1f", "2001:db8::a", "2001:db8::1f", 22),              # IPv6: the last 16 bits, in hex
    ("2001:db8::/126", "2001:db8::", "2001:db8::3", 4),
    ("198.51.100.7", "198.51.100.7", "198.51.100.7", 1),
])
def test_ranges_expand_to_every_address(text, first, last, count):
    addresses = expand_range(text)
    assert (addresses[0], addresses[-1], len(addresses)) == (first, last, count)


@pytest.mark.parametrize("text, said", [
    ("198.51.100.10-5", "not greater than its start"),
    ("198.51.100.10-256", "too large"),
    ("198.51.100.250-198.51.101.5", "only vary the last octet"),     # keepalived loops for ever on it
    ("198.51.100.0/23", "only vary the last octet"),
    ("2001:db8::1:0-2001:db8::2:0", "only vary the last 16 bits"),
    ("198.51.100.1/24", "host bits"),
    ("198.51.100.x-3", "not an IP address"),
])
def test_bad_ranges_are_refused_saying_why(text, said):
    with pytest.raises(ValueError, match=said):
        expand_range(text)


# ----- groups: config and kernel state -------------------------------------------------------------------------

def test_a_group_is_one_service_per_member_with_the_same_real_servers():
    config, _warnings = lvs(group_config([{"address": "198.51.100.10-12", "port": 80}, {"fwmark": 7}]))
    state, quorum = desired_state(config, {})
    keys = sorted(state)
    assert [str(k) for k in keys] == ["FWM 7 IPv4", "TCP 198.51.100.10:80", "TCP 198.51.100.11:80",
                                      "TCP 198.51.100.12:80"]
    for key in keys:
        assert sorted(state[key].dests) == [DestKey("203.0.113.10", 8080), DestKey("203.0.113.6", 8080)]
    assert list(quorum) == ["group web/TCP"]


def test_one_health_entry_per_real_server_takes_it_out_of_every_member():
    config, _warnings = lvs(group_config([{"address": "198.51.100.10-11", "port": 80}], inhibit_on_failure=True))
    vs = config.virtual_servers[0]
    state, quorum = desired_state(config, {(vs.name, "203.0.113.6:8080"): RsHealth(False)})
    for entry in state.values():
        assert entry.dests[DestKey("203.0.113.6", 8080)].weight == 0     # inhibited in both services
        assert entry.dests[DestKey("203.0.113.10", 8080)].weight == 1
    # the incremental path gives up for groups (the full computation is the reference)
    assert desired_update(config, state, quorum, {(vs.name, "203.0.113.10:8080"): RsHealth(False)},
                          [(vs, vs.real_servers[1])]) is None


def test_quorum_is_the_groups_and_the_sorry_server_serves_every_member():
    raw = group_config([{"address": "198.51.100.10-11", "port": 80}], quorum=2,
                       sorry_server={"address": "203.0.113.50", "port": 8080})
    config, _warnings = lvs(raw)
    vs = config.virtual_servers[0]
    state, quorum = desired_state(config, {(vs.name, "203.0.113.6:8080"): RsHealth(False)})
    assert not quorum[vs.name].up
    for entry in state.values():
        assert list(entry.dests) == [DestKey("203.0.113.50", 8080)]


def test_dr_members_take_the_members_port_and_nat_keeps_the_real_servers():
    rs = [{"address": "203.0.113.6", "port": 8080}, {"address": "203.0.113.10", "lvs_method": "DR"}]
    config, _warnings = lvs({"lb_backend": "ipvs", "virtual_server_groups": {"web": [
        {"address": "198.51.100.10", "port": 80}, {"address": "198.51.100.10", "port": 443}, {"fwmark": 9}]},
        "virtual_servers": [{"group": "web", "lb_algo": "rr", "real_servers": rs}]})
    state, _quorum = desired_state(config, {})
    ports = {str(k): sorted((d.key.port, d.fwd_method) for d in e.dests.values()) for k, e in state.items()}
    assert ports == {"TCP 198.51.100.10:80": [(80, "DR"), (8080, "NAT")],
                     "TCP 198.51.100.10:443": [(443, "DR"), (8080, "NAT")],
                     "FWM 9 IPv4": [(0, "DR"), (8080, "NAT")]}


def test_group_problems_name_the_field():
    assert any("virtual_servers[0].group: no virtual_server_groups entry 'nope'" in e
               for e in errors({"virtual_servers": [{"group": "nope", "real_servers": RS}]}))
    assert any("virtual_server_groups.web[0].address: 198.51.100.10-5" in e
               for e in errors(group_config([{"address": "198.51.100.10-5", "port": 80}])))
    both = errors({"virtual_server_groups": {"web": [{"address": "198.51.100.1", "port": 80}]},
                   "virtual_servers": [{"group": "web", "protocol": "TCP", "real_servers": RS},
                                       {"address": "198.51.100.1", "port": 80, "protocol": "TCP",
                                        "real_servers": RS}]})
    assert any("virtual_servers[1].address" in e and "same kernel service" in e for e in both)
    portless = [{"address": "203.0.113.6", "checks": ["TCP_CHECK"]}]
    assert any("real_servers[0].checks[0]" in e and "connect_port" in e
               for e in errors(group_config([{"fwmark": 7}], real_servers=portless)))


def test_nftables_runs_address_groups_and_refuses_fwmark_entries():
    config, _warnings = lvs(group_config([{"address": "198.51.100.10-11", "port": 80}], backend="nftables"))
    assert len(desired_state(config, {})[0]) == 2
    said = errors(group_config([{"address": "198.51.100.10", "port": 80}, {"fwmark": 7}], backend="nftables"))
    assert any(e.startswith("virtual_servers[0].group: group web's fwmark entries (nftables has no fwmark services at all) needs lb_backend: ipvs")
               for e in said), said


# ----- item 4: IPVS options -------------------------------------------------------------------------------------

def test_per_real_server_forwarding_tunnels_and_thresholds_reach_the_destinations():
    raw = {"lb_backend": "ipvs", "virtual_servers": [{
        "address": "198.51.100.100", "port": 80, "protocol": "TCP", "lb_algo": "sh", "sh-port": True,
        "sh-fallback": True, "persistence_engine": "sip", "persistence_timeout": 60,
        "sorry_server": {"address": "203.0.113.50", "lvs_method": "DR", "inhibit": True},
        "real_servers": [
            {"address": "203.0.113.6", "port": 8080, "uthreshold": 100, "lthreshold": 50},
            {"address": "203.0.113.10", "lvs_method": "TUN", "tunnel_type": "gue", "tunnel_port": 6080,
             "tunnel_csum": "remcsum"},
            {"address": "203.0.113.14", "lvs_method": "DR"}]}]}
    config, _warnings = lvs(raw)
    entry = list(desired_state(config, {})[0].values())[0]
    assert entry.service.flags & (SVC_F_SCHED1 | SVC_F_SCHED2) == SVC_F_SCHED1 | SVC_F_SCHED2
    assert entry.service.pe_name == "sip"
    dests = {d.key.address: d for d in entry.dests.values()}
    assert dests["203.0.113.6"] == Dest(DestKey("203.0.113.6", 8080), 1, "NAT", 100, 50)
    assert dests["203.0.113.10"] == Dest(DestKey("203.0.113.10", 80), 1, "TUN", 0, 0, 1, 6080, 2)
    assert dests["203.0.113.14"].fwd_method == "DR"
    assert dests["203.0.113.50"] == Dest(DestKey("203.0.113.50", 80), 0, "DR")     # sorry_server_inhibit


@pytest.mark.parametrize("rs, said", [
    ({"tunnel_type": "gue"}, "tunnel_port: is required with tunnel_type gue"),
    ({"lvs_method": "TUN", "tunnel_type": "ipip", "tunnel_csum": "csum"}, "ipip tunnels have no checksum"),
    ({"lvs_method": "TUN", "tunnel_type": "gre", "tunnel_csum": "remcsum"}, "no remote checksum"),
    ({"lvs_method": "DR", "tunnel_type": "gre"}, "tunnel_type: applies to lvs_method TUN only, not DR"),
    ({"uthreshold": 5, "lthreshold": 6}, "lthreshold: 6 is above uthreshold 5"),
    ({"lvs_method": "FOO"}, "lvs_method: must be one of NAT, DR, TUN"),
])
def test_real_server_option_problems_name_the_field(rs, said):
    raw = {"lb_backend": "ipvs", "virtual_servers": [{"address": "198.51.100.100", "port": 80, "lb_kind": "TUN",
                                                      "real_servers": [{"address": "203.0.113.6", **rs}]}]}
    assert any(said in e and "real_servers[0]." in e for e in errors(raw)), errors(raw)


def test_scheduler_flags_need_their_scheduler_and_hashed_is_a_warning():
    raw = {"lb_backend": "ipvs", "virtual_servers": [{"address": "198.51.100.100", "port": 80, "lb_algo": "rr",
                                                      "mh-port": True, "real_servers": RS}]}
    assert "virtual_servers[0].mh-port: applies to lb_algo mh only, not rr (keepalived ignores it then)" in errors(raw)
    raw["virtual_servers"][0].update({"mh-port": False, "hashed": True, "flag-3": True})
    config, warnings = lvs(raw)
    assert config.virtual_servers[0].sched_flags == ("flag-3",)
    assert "warning: virtual_servers[0].hashed: has no effect: IPVS hashes every service itself (keepalived 2.2.7 ignores it too)" in warnings


def test_nftables_refuses_each_ipvs_only_option_by_name():
    raw = {"lb_backend": "nftables", "lvs_timeouts": {"tcp": 900},
           "virtual_servers": [{"address": "198.51.100.100", "port": 80, "lb_algo": "sh", "sh-port": True,
                                "persistence_engine": "sip",
                                "sorry_server": {"address": "203.0.113.50", "lvs_method": "DR"},
                                "real_servers": [{"address": "203.0.113.6", "port": 8080, "uthreshold": 9},
                                                 {"address": "203.0.113.10", "lvs_method": "DR"}]}]}
    fields = {e.split(":", 1)[0] for e in errors(raw) if "needs lb_backend: ipvs" in e}
    assert fields == {"virtual_servers[0].sh-port", "virtual_servers[0].persistence_engine",
                      "virtual_servers[0].sorry_server.lvs_method", "virtual_servers[0].real_servers[0].uthreshold",
                      "virtual_servers[0].real_servers[1].lvs_method"}


def test_lvs_timeouts_on_nftables_are_conntrack_timeout_policies_for_the_services():
    config, _warnings = lvs({"lb_backend": "nftables", "lvs_timeouts": {"tcp": 900, "tcpfin": 20, "udp": 40}})
    assert nft.timeout_policies(config.lvs_timeouts) == {
        "tcp": {"established": 900, "fin_wait": 20, "close_wait": 20, "last_ack": 20, "time_wait": 20},
        "udp": {"unreplied": 40, "replied": 40}}
    assert nft.timeout_policies((None, 30, None)) == {
        "tcp": {"fin_wait": 30, "close_wait": 30, "last_ack": 30, "time_wait": 30}}
    script = nft.Script()
    nft.render_timeouts(script, 6, (None, None, 40))
    lines = script.lines
    assert "add ct timeout ip6 hanode lvs_udp { protocol udp; l3proto ip6; policy = { unreplied: 40, replied: 40 }; }" \
        in lines
    assert not any("lvs_tcp" in line for line in lines)
    # the policy is made again (the kernel cannot edit one), after the rules that use it are flushed
    assert [line.split(" {")[0] for line in lines if "ct timeout ip6" in line] == [
        "add ct timeout ip6 hanode lvs_udp", "delete ct timeout ip6 hanode lvs_udp", "add ct timeout ip6 hanode lvs_udp"]
    assert lines.index("flush chain ip6 hanode timeouts_in") < lines.index("delete ct timeout ip6 hanode lvs_udp")
    assert lines[-1] == ('add rule ip6 hanode timeouts_out meta l4proto udp ip6 daddr . meta l4proto . th dport '
                         '@services ct timeout set "lvs_udp"')


def test_lvs_timeouts_are_one_set_config_request():
    config, _warnings = lvs({"lb_backend": "ipvs", "lvs_timeouts": {"tcp": 7200, "udp": 300}})
    assert config.lvs_timeouts == (7200, None, 300)
    cmd, body = ipvs.timeouts_request(*config.lvs_timeouts)
    attrs = ipvs.parse_attrs(body)
    assert cmd == ipvs.CMD_SET_CONFIG
    assert {k: struct.unpack("=I", v)[0] for k, v in attrs.items()} == {4: 7200, 5: 0, 6: 300}
    assert any("lvs_timeouts: give at least one" in e for e in errors({"lvs_timeouts": {}}))


def test_ipvs_codec_round_trips_thresholds_tunnels_and_the_persistence_engine():
    dest = Dest(DestKey("203.0.113.10", 80), 3, "TUN", 100, 50, 1, 6080, 2)
    top = ipvs.parse_attrs(ipvs.dest_attr(dest, True))
    assert ipvs.parse_dest(ipvs.parse_attrs(top[ipvs.CMD_ATTR_DEST])) == dest
    service = Service(ServiceKey.for_address(4, "UDP", "198.51.100.100", 5060), "sh", SVC_F_SCHED2, 0, None, "sip")
    top = ipvs.parse_attrs(ipvs.service_attr(service, True))
    assert ipvs.parse_service(ipvs.parse_attrs(top[ipvs.CMD_ATTR_SERVICE])) == service.normalized()
