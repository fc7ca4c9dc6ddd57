"""The importer on the notification and start-up keywords: startup/shutdown scripts, vrrp_startup_delay,
vrrp_down_timer_adverts / down_timer_adverts, (vrrp_)notify_priority_changes, notify_master_rx_lower_pri,
notify_fifo_script and vrrp_notify_fifo(_script), vrrp_min_garp; and the agent takes each result."""

from __future__ import annotations

import copy

from hanode.config.parse import parse_config
from hanode.migrate.keepalived import parse_text, translate

INSTANCE = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n%s}\n"


def tr(text):
    result = translate(parse_text(text, "k.conf"))
    config, _problems = parse_config(copy.deepcopy(result.config))
    return result, config


def report(result):
    return [(i.line, i.keyword, i.category) for i in result.items]


def test_start_up_keywords_are_carried():
    result, config = tr("global_defs {\n  startup_script \"/bin/sh -c true\"\n  startup_script_timeout 3\n"
                        "  shutdown_script /bin/true\n  shutdown_script_timeout 4\n  vrrp_startup_delay 5.5\n"
                        "  vrrp_down_timer_adverts 5\n  vrrp_notify_priority_changes\n}\n" + INSTANCE % "")
    assert report(result) == []
    out = result.config
    assert (out["startup_script"], out["startup_script_timeout"]) == ("/bin/sh -c true", 3)
    assert (out["shutdown_script"], out["shutdown_script_timeout"], out["vrrp_startup_delay"]) == ("/bin/true", 4, 5.5)
    vi = config.vrrp_instances["VI_1"]
    assert (vi.down_timer_adverts, vi.notify_priority_changes) == (5, True)
    assert config.sections["startup"].vrrp_startup_delay_ms == 5500


def test_instance_and_group_notification_keywords_are_carried():
    result, config = tr(INSTANCE % "  notify_master_rx_lower_pri \"/bin/aws-fix --vip 1\"\n  down_timer_adverts 2\n"
                        + "vrrp_sync_group G {\n  group {\n    VI_1\n  }\n  notify_priority_changes true\n}\n")
    assert report(result) == []
    vi = config.vrrp_instances["VI_1"]
    assert (vi.notify_master_rx_lower_pri, vi.down_timer_adverts, vi.notify_priority_changes) == (
        "/bin/aws-fix --vip 1", 2, True)


def test_a_script_user_is_reported_not_carried():
    result, _config = tr("global_defs {\n  startup_script /bin/true nobody\n}\n")
    assert report(result) == [(2, "startup_script nobody", "unsupported")]
    assert result.config["startup_script"] == "/bin/true"


def test_fifo_reader_scripts_follow_the_fifo_that_is_carried():
    result, config = tr("global_defs {\n  vrrp_notify_fifo /run/v.fifo\n  vrrp_notify_fifo_script /bin/reader\n}\n")
    assert report(result) == []
    ops = config.sections["ops"]
    assert (ops.notify_fifo, ops.notify_fifo_script) == ("/run/v.fifo", "/bin/reader")
    assert ops.notify_fifo_format == "keepalived"
    result, config = tr("global_defs {\n  vrrp_notify_fifo_script /bin/vreader\n  notify_fifo /run/n.fifo\n"
                        "  vrrp_notify_fifo /run/v.fifo\n  notify_fifo_script /bin/reader\n}\n")
    assert report(result) == [(2, "vrrp_notify_fifo_script", "unsupported"), (4, "vrrp_notify_fifo", "unsupported")]
    ops = config.sections["ops"]
    assert (ops.notify_fifo, ops.notify_fifo_script) == ("/run/n.fifo", "/bin/reader")


def test_min_garp_sets_one_garp_and_no_second_burst_unless_set():
    result, config = tr("global_defs {\n  vrrp_min_garp\n}\n" + INSTANCE % "")
    assert report(result) == []
    garp = config.vrrp_instances["VI_1"].garp
    assert (garp.master_repeat, garp.master_delay_ms) == (1, 0)
    result, config = tr("global_defs {\n  vrrp_garp_master_repeat 3\n  vrrp_min_garp\n}\n"
                        + INSTANCE % "  garp_master_delay 2\n")
    garp = config.vrrp_instances["VI_1"].garp
    assert (garp.master_repeat, garp.master_delay_ms) == (3, 2000)
    result, config = tr("global_defs {\n  vrrp_min_garp false\n}\n" + INSTANCE % "")
    assert config.vrrp_instances["VI_1"].garp.master_repeat == 5


def test_lower_priority_garp_settings_and_their_keepalived_defaults():
    result, config = tr("global_defs {\n  vrrp_garp_lower_prio_delay 7\n  vrrp_garp_lower_prio_repeat 2\n}\n"
                        + INSTANCE % "" + INSTANCE.replace("VI_1", "VI_2").replace("51", "52")
                        % "  garp_lower_prio_repeat 0\n")
    assert report(result) == []
    assert (config.vrrp_instances["VI_1"].garp.lower_prio_repeat,
            config.vrrp_instances["VI_1"].garp.lower_prio_delay_ms) == (2, 7000)
    assert config.vrrp_instances["VI_2"].garp.lower_prio_repeat == 0
    # without them, keepalived takes the global master ones (here from vrrp_min_garp)
    result, config = tr("global_defs {\n  vrrp_min_garp\n}\n" + INSTANCE % "")
    garp = config.vrrp_instances["VI_1"].garp
    assert (garp.lower_prio_repeat, garp.lower_prio_delay_ms) == (1, 0)


def test_interface_up_down_delays_and_dynamic_interfaces():
    result, config = tr("interface_up_down_delays {\n  eth1 0.5\n  eth2 1 2\n  eth3\n  eth4 300\n}\n"
                        "global_defs {\n  dynamic_interfaces allow_if_changes\n}\n")
    assert result.config["interface_up_down_delays"] == {"eth1": 0.5, "eth2": [1, 2]}
    assert report(result) == [(4, "interface_up_down_delays eth3", "invalid"),
                              (5, "interface_up_down_delays eth4 300", "invalid"),
                              (8, "dynamic_interfaces", "no meaning here")]
    assert config.sections["interface_up_down_delays"] == {"eth1": (500_000, 500_000), "eth2": (1_000_000, 2_000_000)}


def test_garp_pacing_keywords_are_carried():
    result, config = tr("global_defs {\n  vrrp_garp_interval 0.001\n  vrrp_gna_interval 0.002\n}\n"
                        "garp_group {\n  garp_interval 0.01\n  interfaces {\n    eth1\n    eth2\n  }\n}\n"
                        "garp_group {\n  gna_interval 0.5\n  interface eth3\n}\n"
                        "garp_group {\n  interface eth4\n}\n")
    assert report(result) == [(16, "garp_group", "invalid")]
    assert result.config["garp_groups"] == [{"garp_interval": 0.01, "interfaces": ["eth1", "eth2"]},
                                            {"gna_interval": 0.5, "interface": "eth3"}]
    pacing = config.sections["garp_pacing"]
    assert (pacing.garp_interval_us, pacing.gna_interval_us) == (1000, 2000)
    assert [(g.interfaces, g.shared) for g in pacing.groups] == [(("eth1", "eth2"), True), (("eth3",), False)]
