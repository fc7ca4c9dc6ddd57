"""hanode.vrrp.status (the VRRP part of `hanode status --json`, a contract) and control.render (the table)."""

from __future__ import annotations

import json

from pure_helpers import PEER4, VIP4, FakeClock, iface, instance_raw, links, make_config, wire_advert
from hanode.control.render import render_status
from hanode.vrrp.engine import Engine
from hanode.vrrp.status import engine_status, instance_status

KEEPALIVED_COUNTERS = {"advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
                       "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype",
                       "authtype_mismatch", "auth_failure", "pri_zero_rcvd", "pri_zero_sent"}

INSTANCE_FIELDS = {"state", "priority", "effective_priority", "virtual_router_id", "version", "family", "interface",
                   "source_address", "unicast_peers", "advert_int", "master_address", "master_priority", "vips",
                   "excluded_vips", "fault_reasons", "drained", "nopreempt", "sync_group", "timers", "last_transition",
                   "trackers", "peers", "conflicts", "stats"}


def config():
    return make_config(
        {"VI_1": instance_raw(priority=150, track_scripts=["chk"], track_interfaces=[{"name": "eth1", "weight": -20}],
                              virtual_ipaddresses=[f"{VIP4}/24 label eth0:vip"]),
         "VI_2": instance_raw(interface="eth1", virtual_router_id=52, virtual_ipaddresses=["203.0.113.100/24"])},
        scripts={"chk": {"script": "/bin/true", "weight": 10}},
        groups={"G": {"group": ["VI_2"]}})


def engine_at_work():
    clock = FakeClock()
    engine = Engine(config(), links(iface("eth0"), iface("eth1", up=False, ipv4=("203.0.113.2",), index=3)))
    engine.start(clock.now_us, {"VI_1": "MASTER"})
    engine.script_result("chk", True, clock.now_us, exit_code=0)
    clock.advance(ms=1500)
    engine.receive(wire_advert(PEER4, 100), clock.now_us)
    engine.receive(wire_advert(PEER4, 100, ttl=1), clock.now_us)
    engine.receive(wire_advert(PEER4, 100, vrid=99), clock.now_us)
    clock.advance(ms=500)
    return engine, clock


def test_instance_status_carries_the_contract_fields():
    engine, clock = engine_at_work()
    status = instance_status(engine, "VI_1", engine.instances["VI_1"], clock.now_us)
    assert set(status) == INSTANCE_FIELDS
    assert status["state"] == "MASTER"
    assert (status["priority"], status["effective_priority"]) == (150, 140)     # +10 script OK, -20 eth1 down
    assert status["virtual_router_id"] == 51 and status["version"] == 2 and status["family"] == "ipv4"
    assert status["master_address"] == "198.51.100.2" and status["source_address"] == "198.51.100.2"
    assert status["vips"] == [f"{VIP4}/24 label eth0:vip"]
    assert status["fault_reasons"] == []
    assert KEEPALIVED_COUNTERS <= set(status["stats"])
    assert (status["stats"]["become_master"], status["stats"]["ip_ttl_err"], status["stats"]["advert_rcvd"]) == (1, 1, 1)
    assert status["advert_int"] == 1.0
    assert status["timers"] == {"master_adver_int_ms": 1000, "skew_time_ms": 453.125, "master_down_interval_ms": 3453.125}
    assert status["last_transition"] == {"state": "MASTER", "reason": "resumed as MASTER after an agent restart",
                                         "seconds_ago": 2.0}
    assert status["peers"][PEER4]["priority"] == 100 and status["peers"][PEER4]["seconds_ago"] == 0.5
    assert status["trackers"] == {
        "interfaces": [{"name": "eth1", "weight": -20, "weight_reverse": False, "up": False}],
        "scripts": [{"name": "chk", "weight": 10, "weight_reverse": False, "ok": True, "last_exit": 0, "last_error": None}],
        "processes": [], "files": []}


def test_fault_reasons_and_sync_group_in_status():
    engine, clock = engine_at_work()
    status = instance_status(engine, "VI_2", engine.instances["VI_2"], clock.now_us)
    assert status["state"] == "FAULT"
    assert status["fault_reasons"] == ["interface eth1 down"]
    assert status["sync_group"] == "G"


def test_engine_status_is_json_and_lists_groups_and_foreign_vrids():
    engine, clock = engine_at_work()
    status = json.loads(json.dumps(engine_status(engine, clock.now_us)))
    assert set(status) == {"instances", "sync_groups", "vrrp"}
    assert set(status["instances"]) == {"VI_1", "VI_2"}
    assert status["sync_groups"] == {"G": {"state": "FAULT", "members": ["VI_2"]}}
    assert status["vrrp"]["stats"] == {"packet_len_err": 0, "unknown_vrid": 1}
    (foreign,) = status["vrrp"]["foreign_vrids"]
    assert (foreign["vrid"], foreign["interface"], foreign["src"], foreign["count"], foreign["seconds_ago"]) == \
        (99, "eth0", PEER4, 1, 0.5)


def full_status(**agent_extra):
    engine, clock = engine_at_work()
    document = {"schema_version": 1,
                "agent": {"router_id": "lab1", "version": "0.1.0", "pid": 4242, "uptime_s": 12.7, "stale": [],
                          "config": {"applied_digest": "0123456789abcdef0123", "last_reload": None}, **agent_extra},
                **engine_status(engine, clock.now_us)}
    return json.loads(json.dumps(document))


def test_render_status_prints_a_readable_table():
    text = render_status(full_status())
    lines = text.splitlines()
    assert lines[0] == "hanode 0.1.0 on lab1  pid 4242  up 13s  config 0123456789ab"
    assert lines[1] == ""
    header = lines[2].split()
    assert header == ["INSTANCE", "STATE", "PRIO", "EFF", "VRID", "IF", "MASTER", "VIPS", "REASON"]
    vi1 = lines[3].split(None, 8)
    assert vi1 == ["VI_1", "MASTER", "150", "140", "51", "eth0", "198.51.100.2", f"{VIP4}/24",
                   "resumed as MASTER after an agent restart"]
    vi2 = lines[4].split(None, 8)
    assert vi2 == ["VI_2", "FAULT", "100", "100", "52", "eth1", "-", "203.0.113.100/24", "interface eth1 down"]
    # the columns line up: every row starts each column at the header's offset
    for column in ("STATE", "VRID", "MASTER", "REASON"):
        offset = lines[2].index(column)
        assert all(line[offset - 2:offset] == "  " and line[offset] != " " for line in lines[3:5])
    assert lines[5] == "sync group G: FAULT (VI_2)"


def test_render_status_marks_drained_stale_and_refused_reload():
    status = full_status(stale=["vrrp"])
    status["agent"]["config"]["last_reload"] = {"ok": False, "errors": [
        "vrrp_instances.VI_1.priority: must be 1..255, got 300"]}
    status["instances"]["VI_1"]["drained"] = True
    text = render_status(status)
    assert text.splitlines()[0].endswith("(STALE: vrrp restarting)")
    assert "MASTER (drained)" in text
    assert text.splitlines()[-1] == "last reload REFUSED: vrrp_instances.VI_1.priority: must be 1..255, got 300"


def test_render_status_without_instances():
    text = render_status({"agent": {"router_id": "lab1", "version": "0.1.0", "pid": 1, "uptime_s": 0, "config": {}},
                          "instances": {}})
    assert text.splitlines()[1] == "no VRRP instances"
