"""The importer on vrrp_track_process, track_file / vrrp_track_file, an instance's track_process / track_file and a
sync group's own trackers: what each keyword becomes, and that the agent takes the result."""

from __future__ import annotations

import copy

from hanode.config.parse import parse_config
from hanode.migrate.keepalived import parse_text, translate

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n"


def tr(text):
    result = translate(parse_text(text, "k.conf"))
    config, _problems = parse_config(copy.deepcopy(result.config))   # the agent takes it (raises otherwise)
    return result, config


def test_track_process_keywords_are_carried():
    result, config = tr("vrrp_track_process web {\n  process /usr/sbin/nginx -g daemon\n  param_match initial\n"
                        "  weight -20\n  quorum 2\n  quorum_max 4\n  delay 1.5\n  terminate_delay 3\n}\n"
                        "vrrp_track_process plain {\n  process haproxy\n  fork_delay 0.5\n  full_command\n}\n"
                        + HEAD + "  track_process {\n    web\n    plain weight 7\n  }\n}\n")
    assert result.items == []
    assert result.config["vrrp_track_processes"]["web"] == {
        "process": "/usr/sbin/nginx -g daemon", "param_match": "initial", "weight": -20, "quorum": 2,
        "quorum_max": 4, "delay": 1.5, "terminate_delay": 3}
    tracked = result.config["vrrp_instances"]["VI_1"]["track_processes"]
    assert tracked == [{"name": "web"}, {"name": "plain", "weight": 7}]
    web, plain = config.vrrp_track_processes["web"], config.vrrp_track_processes["plain"]
    assert (web.fork_delay_ms, web.terminate_delay_ms, web.param_match) == (1500, 3000, "initial")
    assert plain.full_command and plain.fork_delay_ms == 500 and plain.terminate_delay_ms == 0


def test_param_match_without_a_word_is_exact_and_quorum_max_zero_drops_the_quorum():
    result, config = tr("vrrp_track_process p {\n  process sleep 30\n  param_match\n  quorum 1\n  quorum_max 0\n}\n")
    expected = {"process": "sleep 30", "param_match": "exact", "quorum_max": 0}
    assert result.config["vrrp_track_processes"]["p"] == expected
    assert [(i.keyword, i.category) for i in result.items] == [("quorum", "no meaning here")]
    assert config.vrrp_track_processes["p"].quorum == 0


def test_track_file_and_its_old_name_are_carried():
    result, config = tr("track_file f {\n  file /run/prio\n  weight -2\n  init_file 5 overwrite\n}\n"
                        "vrrp_track_file old {\n  file /run/old\n  init_file\n}\n"
                        + HEAD + "  track_file {\n    f\n    old weight 0\n  }\n}\n")
    assert result.items == []
    assert result.config["track_files"] == {"f": {"file": "/run/prio", "weight": -2,
                                                  "init_file": {"value": 5, "overwrite": True}},
                                            "old": {"file": "/run/old", "init_file": 0}}
    assert "deprecated" in result.notes[0].message
    assert config.track_files["f"].init_overwrite and config.track_files["old"].weight == 1
    assert [(r.name, r.weight) for r in config.vrrp_instances["VI_1"].track_files] == [("f", None), ("old", 0)]


def test_a_sync_group_s_trackers_are_carried():
    result, config = tr("vrrp_script chk {\n  script /bin/true\n}\n"
                        "vrrp_track_process p {\n  process haproxy\n}\ntrack_file f {\n  file /run/f\n}\n"
                        + HEAD + "}\nvrrp_sync_group G {\n  group {\n    VI_1\n  }\n  track_interface {\n    eth1\n  }\n"
                        "  track_script {\n    chk weight 10\n  }\n  track_process {\n    p\n  }\n"
                        "  track_file {\n    f\n  }\n  global_tracking\n}\n")
    assert result.items == []
    group = config.vrrp_sync_groups["G"]
    assert [t.name for t in group.track_interfaces] == ["eth1"] and group.track_scripts[0].weight == 10
    assert [t.name for t in group.track_processes] == ["p"] and [t.name for t in group.track_files] == ["f"]
    assert group.tracking_weight
    assert "sync_group_tracking_weight" in result.notes[0].message
