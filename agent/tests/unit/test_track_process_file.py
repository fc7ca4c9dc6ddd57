"""vrrp_track_process and track_file: keepalived 2.2.7's matching, quorum and delay rules (hanode.vrrp.proctrack),
the file value rules (hanode.vrrp.track), sync group trackers, and the config keys with their errors."""

from __future__ import annotations

import copy

import pytest
from dataclasses import replace

from pure_helpers import instance_raw, make_config
from hanode.config.model import SyncGroup, TrackedInterface, TrackedRef, TrackedScript, TrackFile, TrackProcess
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.vrrp.proctrack import ProcessTable, ProcInfo, matches
from hanode.vrrp.track import Observed, evaluate, file_status, parse_file_value, with_group_trackers

MS = 1000


def proc(name="nginx", **kw) -> TrackProcess:
    return TrackProcess(name=kw.pop("tracker", "p"), process=name, **kw)


def cmd(*words: str) -> bytes:
    return b"".join(w.encode() + b"\0" for w in words)


# matching ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, comm, cmdline, expected", [
    (proc("nginx"), "nginx", cmd("/usr/sbin/nginx", "-g"), True),
    (proc("nginx"), "nginx:", cmd("nginx"), False),                     # exact, not pgrep's regex
    (proc("ssh"), "sshd", cmd("sshd"), False),
    (proc("/usr/sbin/nginx", full_command=True), "nginx", cmd("/usr/sbin/nginx", "-g", "x"), True),
    (proc("nginx", full_command=True), "nginx", cmd("/usr/sbin/nginx"), False),   # argv[0] as written
    (proc("sleep", params=("30",), param_match="exact", full_command=True), "sleep", cmd("sleep", "30"), True),
    (proc("sleep", params=("30",), param_match="exact", full_command=True), "sleep", cmd("sleep", "300"), False),
    (proc("sleep", params=("30",), param_match="exact", full_command=True), "sleep", cmd("sleep", "30", "x"), False),
    (proc("sleep", param_match="exact", full_command=True), "sleep", cmd("sleep"), True),
    (proc("sleep", param_match="exact", full_command=True), "sleep", cmd("sleep", "1"), False),
    (proc("sleep", params=("30",), param_match="partial", full_command=True), "sleep", cmd("sleep", "30", "x"), True),
    (proc("sleep", params=("30",), param_match="partial", full_command=True), "sleep", cmd("sleep", "300"), False),
    (proc("sleep", params=("30",), param_match="initial", full_command=True), "sleep", cmd("sleep", "300"), True),
    (proc("sleep", params=("30",), param_match="initial", full_command=True), "sleep", cmd("sleep", "3"), False),
    (proc("sleep", full_command=True), "sleep", b"", False),                        # a zombie has no cmdline
])
def test_matching_is_keepalived_s(spec, comm, cmdline, expected):
    assert matches(spec, comm, cmdline) is expected


# quorum and delays ---------------------------------------------------------------------------------

def table(**kw) -> ProcessTable:
    return ProcessTable({"p": proc(**kw)})


def test_exit_of_the_last_process_loses_the_quorum_at_once():
    t = table()
    assert t.scan([ProcInfo(10, "nginx", b""), ProcInfo(11, "bash", b"")], 0, initial=True) == [("p", True)]
    assert t.counts == {"p": 1}
    assert t.exit(11, 1) == []
    assert t.exit(10, 2) == [("p", False)]
    assert t.exec(ProcInfo(12, "nginx", b""), 3) == [("p", True)]


def test_a_forked_child_counts_until_it_execs_something_else():
    t = table(quorum=2)
    assert t.scan([ProcInfo(10, "nginx", b"")], 0, initial=True) == [("p", False)]
    assert t.fork(10, 20, 1) == [("p", True)]
    assert t.fork(99, 21, 1) == []                          # not a tracked parent
    assert t.exec(ProcInfo(20, "sh", b""), 2) == [("p", False)]


def test_quorum_max_zero_means_the_process_must_not_run():
    t = table(quorum=0, quorum_max=0)
    assert t.scan([], 0, initial=True) == [("p", True)]
    assert t.exec(ProcInfo(5, "nginx", b""), 1) == [("p", False)]
    assert t.exit(5, 2) == [("p", True)]


def test_too_many_processes_lose_the_quorum():
    t = table(quorum=1, quorum_max=2)
    t.scan([ProcInfo(1, "nginx", b""), ProcInfo(2, "nginx", b"")], 0, initial=True)
    assert t.exec(ProcInfo(3, "nginx", b""), 1) == [("p", False)]
    assert t.exit(1, 2) == [("p", True)]


def test_terminate_delay_reports_a_loss_only_once_it_lasted():
    t = table(terminate_delay_ms=500, fork_delay_ms=0)
    t.scan([ProcInfo(1, "nginx", b"")], 0, initial=True)
    assert t.exit(1, 1000) == []
    assert t.next_deadline_us() == 1000 + 500 * MS
    assert t.due(1000 + 499 * MS) == []
    assert t.due(1000 + 500 * MS) == [("p", False)]
    assert t.next_deadline_us() is None


def test_a_restart_within_the_delay_is_never_reported():
    t = table(terminate_delay_ms=500)
    t.scan([ProcInfo(1, "nginx", b"")], 0, initial=True)
    assert t.exit(1, 0) == []
    assert t.exec(ProcInfo(2, "nginx", b""), 100 * MS) == []
    assert t.next_deadline_us() is None and t.due(10**9) == []


def test_fork_delay_holds_back_a_gain():
    t = table(fork_delay_ms=200)
    t.scan([], 0, initial=True)
    assert t.exec(ProcInfo(2, "nginx", b""), 0) == []
    assert t.due(200 * MS) == [("p", True)]


def test_comm_change_only_concerns_name_matches():
    t = ProcessTable({"byname": proc("worker", tracker="byname"),
                      "full": proc("/bin/worker", tracker="full", full_command=True)})
    t.scan([ProcInfo(7, "worker", cmd("/bin/worker"))], 0, initial=True)
    assert t.comm(7, "Web Content", 1) == [("byname", False)]
    assert t.counts == {"byname": 0, "full": 1}


def test_a_rescan_after_lost_events_reports_only_changes():
    t = table()
    t.scan([ProcInfo(1, "nginx", b"")], 0, initial=True)
    assert t.scan([ProcInfo(1, "nginx", b"")], 1, initial=False) == []
    assert t.scan([], 2, initial=False) == [("p", False)]


# track_file values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, value", [
    (b"5\n", 5), (b"  -12 apples", -12), (b"0x1f", 31), (b"010", 8), (b"", 0), (b"abc", 0), (b"+7", 7),
    (b"99999999999", None),
])
def test_file_values_read_as_strtol_base_0(data, value):
    assert parse_file_value(data) == value


@pytest.mark.parametrize("weight, value, status", [
    (0, 0, 0), (0, 3, None), (1, 10, 10), (2, -5, -10), (10, 30, 253), (-1, 254, None), (254, -1, None),
    (1, -253, -253),
])
def test_file_status_is_keepalived_s(weight, value, status):
    assert file_status(weight, value) == status


@pytest.mark.parametrize("weight, value, status", [
    (0, 0, None), (0, 3, 0), (1, 10, -10), (2, -5, 10), (-10, 30, 253), (1, 254, None), (254, 1, None),
])
def test_file_status_reversed_is_keepalived_s(weight, value, status):
    """keepalived's weight_multiplier -1: value * weight * -1, and with weight 0 a zero value is the FAULT."""
    assert file_status(weight, value, reverse=True) == status


def test_reversed_processes_and_files_from_the_tracker_or_the_reference():
    cfg = make_config({"VI_1": instance_raw()}).vrrp_instances["VI_1"]
    cfg = replace(cfg, track_processes=(TrackedRef("p"), TrackedRef("q", weight=0, weight_reverse=True)),
                  track_files=(TrackedRef("f"),))
    seen = Observed(processes={"p": proc(weight=-30, weight_reverse=True), "q": proc(tracker="q")},
                    files={"f": TrackFile("f", "/run/f", weight=2, weight_reverse=True)},
                    process_up={"p": False, "q": True}, file_values={"f": 4})
    result = evaluate(cfg, {"eth0": True}, {}, {}, seen)
    assert result.effective_priority == 100 + 30 - 8
    assert result.fault_reasons == ("tracked process q: quorum reached (reverse)",)


def observed(up=None, values=None) -> Observed:
    return Observed(processes={"p": proc(weight=-30), "q": proc(tracker="q")}, process_up=up or {},
                    files={"f": TrackFile("f", "/run/f", weight=2)}, file_values=values or {})


def test_processes_and_files_move_the_priority_or_fault():
    cfg = make_config({"VI_1": instance_raw()}).vrrp_instances["VI_1"]
    cfg = replace(cfg, track_processes=(TrackedRef("p"), TrackedRef("q")), track_files=(TrackedRef("f"),))
    links = {"eth0": True}
    ok = evaluate(cfg, links, {}, {}, observed({"p": True, "q": True}, {"f": 4}))
    assert (ok.effective_priority, ok.fault_reasons) == (108, ())
    down = evaluate(cfg, links, {}, {}, observed({"p": False, "q": False}, {"f": -200}))
    assert down.effective_priority == 70
    assert down.fault_reasons == ("tracked process q: quorum lost", "tracked file f: value -200")


# sync group trackers --------------------------------------------------------------------------------

def test_group_trackers_join_each_member_and_member_weights_go_without_tracking_weight():
    cfg = make_config({"VI_1": instance_raw()}).vrrp_instances["VI_1"]
    cfg = replace(cfg, track_interfaces=(TrackedInterface("eth1", -20),),
                  track_scripts=(TrackedScript("weighted"), TrackedScript("plain")),
                  track_files=(TrackedRef("dflt"), TrackedRef("w5", 5)))
    scripts = {"weighted": type("S", (), {"weight": 10})(), "plain": type("S", (), {"weight": 0})()}
    files = {"dflt": TrackFile("dflt", "/a"), "w5": TrackFile("w5", "/b")}
    group = SyncGroup("G", ("VI_1",), track_interfaces=(TrackedInterface("eth2", 0),),
                      track_processes=(TrackedRef("p", -10),))
    merged = with_group_trackers(cfg, group, scripts, files)
    assert merged.track_interfaces == (TrackedInterface("eth1", 0), TrackedInterface("eth2", 0))
    assert merged.track_scripts == (TrackedScript("plain"),)
    assert merged.track_files == (TrackedRef("dflt", 0),)
    assert merged.track_processes == (TrackedRef("p", -10),)
    kept = with_group_trackers(cfg, replace(group, tracking_weight=True), scripts, files)
    assert kept.track_interfaces[0] == TrackedInterface("eth1", -20) and len(kept.track_scripts) == 2


# config --------------------------------------------------------------------------------------------

def parse(raw: dict):
    return parse_config(copy.deepcopy(raw))


def test_config_keys_parse_into_the_model():
    config = parse({"router_id": "a", "vrrp_track_processes": {
        "web": {"process": "/usr/sbin/nginx -g daemon", "param_match": "partial", "weight": -20, "quorum": 2,
                "quorum_max": 4, "delay": 0.5, "terminate_delay": 2, "weight_reverse": True}},
        "track_files": {"f": {"file": "/run/prio", "weight": 3, "init_file": {"value": 7, "overwrite": True}}},
        "vrrp_instances": {"VI_1": instance_raw(track_processes=["web"], track_files=[
            {"name": "f", "weight": 0, "weight_reverse": True}])},
        "vrrp_sync_groups": {"G": {"group": ["VI_1"], "track_files": ["f"], "sync_group_tracking_weight": True}}})[0]
    web = config.vrrp_track_processes["web"]
    expected = ("/usr/sbin/nginx", ("-g", "daemon"), "partial", True)
    assert (web.process, web.params, web.param_match, web.full_command) == expected
    assert (web.quorum, web.quorum_max, web.fork_delay_ms, web.terminate_delay_ms) == (2, 4, 500, 2000)
    assert config.track_files["f"] == TrackFile("f", "/run/prio", 3, 7, True)
    vi = config.vrrp_instances["VI_1"]
    assert web.weight_reverse
    assert vi.track_processes == (TrackedRef("web"),) and vi.track_files == (TrackedRef("f", 0, True),)
    assert config.vrrp_sync_groups["G"].track_files == (TrackedRef("f"),)
    assert config.vrrp_sync_groups["G"].tracking_weight


def test_arguments_mean_an_exact_match_and_quorum_max_zero_a_quorum_of_zero():
    config = parse({"router_id": "a", "vrrp_track_processes": {
        "a": {"process": "sleep 30"}, "b": {"process": "haproxy", "quorum_max": 0}}})[0]
    assert config.vrrp_track_processes["a"].param_match == "exact"
    assert config.vrrp_track_processes["b"].quorum == 0


@pytest.mark.parametrize("raw, where", [
    ({"vrrp_track_processes": {"a": {"process": "averyveryverylongname"}}}, "vrrp_track_processes.a.process"),
    ({"vrrp_track_processes": {"a": {"process": "x", "quorum": 3, "quorum_max": 2}}}, "vrrp_track_processes.a.quorum"),
    ({"vrrp_track_processes": {"a": {"process": "x", "param_match": "regex"}}}, "vrrp_track_processes.a.param_match"),
    ({"vrrp_track_processes": {"a": {"weight": 3}}}, "vrrp_track_processes.a.process"),
    ({"track_files": {"f": {"file": "relative"}}}, "track_files.f.file"),
    ({"track_files": {"f": {"file": "/x", "weight": 300}}}, "track_files.f.weight"),
    ({"track_files": {"f": {"file": "/x", "weight_reverse": "yes"}}}, "track_files.f.weight_reverse"),
    ({"vrrp_instances": {"VI_1": instance_raw(track_interfaces=[{"name": "eth1", "weight_reverse": 1}])}},
     "vrrp_instances.VI_1.track_interfaces[0].weight_reverse"),
    ({"vrrp_instances": {"VI_1": instance_raw(track_processes=["nope"])}}, "vrrp_instances.VI_1.track_processes[0].name"),
    ({"vrrp_instances": {"VI_1": instance_raw(track_files=["nope"])}}, "vrrp_instances.VI_1.track_files[0].name"),
])
def test_bad_trackers_are_refused_naming_the_field(raw, where):
    with pytest.raises(ConfigError) as err:
        parse({"router_id": "a", **raw})
    assert where in [p.path for p in err.value.problems]


def test_an_owner_among_the_members_leaves_the_group_s_trackers_unweighted():
    cfg = make_config({"VI_1": instance_raw()}).vrrp_instances["VI_1"]
    group = SyncGroup("G", ("VI_1", "VI_2"), track_interfaces=(TrackedInterface("eth2", -20),),
                      track_scripts=(TrackedScript("s", 10),), track_files=(TrackedRef("f", 3),), tracking_weight=True)
    merged = with_group_trackers(cfg, group, {"s": type("S", (), {"weight": 0})()}, {"f": TrackFile("f", "/f")},
                                 owner_in_group=True)
    assert merged.track_interfaces == (TrackedInterface("eth2", 0),)
    assert merged.track_scripts == (TrackedScript("s", 0),) and merged.track_files == (TrackedRef("f", 0),)
