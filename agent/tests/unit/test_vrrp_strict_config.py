"""Strict mode, accept mode and keepalived's resets: the agent config (hanode.config.parse_vrrp_strict) and the
importer (hanode.migrate.keepalived.vrrp_strict), each as keepalived 2.2.7's vrrp_complete_instance decides."""

from __future__ import annotations

import copy

import pytest

from pure_helpers import config_raw, instance_raw
from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.migrate.keepalived import parse_text, translate

AUTH = {"auth_type": "PASS", "auth_pass": "secret"}


def one(raw_instance, **top):
    config, problems = parse_config(copy.deepcopy(config_raw({"VI_1": raw_instance}, **top)))
    return config.vrrp_instances["VI_1"], [str(p) for p in problems.warnings]


def refused(raw_instance, **top) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(copy.deepcopy(config_raw({"VI_1": raw_instance}, **top)))
    return str(info.value).splitlines()


# ----- the agent config ------------------------------------------------------------------------------------------

def test_accept_defaults_as_in_keepalived():
    assert one(instance_raw())[0].accept is True                                   # not strict: accept
    assert one(instance_raw(strict_mode=True))[0].accept is False                  # strict: no_accept
    assert one(instance_raw(strict_mode=True, priority=255))[0].accept is True     # the owner always accepts
    assert one(instance_raw(accept=False))[0].accept is False
    assert one(instance_raw(accept=False, priority=255))[0].accept is True


def test_vrrp_strict_is_every_instances_default_and_an_instance_can_leave_it():
    inst = one(instance_raw(), vrrp_strict=True)[0]
    assert inst.strict_mode and not inst.accept
    inst = one(instance_raw(strict_mode=False), vrrp_strict=True)[0]
    assert not inst.strict_mode and inst.accept


def test_strict_ignores_authentication_with_a_warning_as_keepalived_does():
    inst, warnings = one(instance_raw(strict_mode=True, authentication=AUTH))
    assert inst.authentication is None
    assert warnings == ["warning: vrrp_instances.VI_1.authentication: is ignored in strict mode, as keepalived "
                        "ignores it (\"Strict mode does not support authentication\")"]


def test_strict_refuses_unicast_peers_and_an_instance_without_vips():
    lines = refused(instance_raw(strict_mode=True, unicast_src_ip="198.51.100.2", unicast_peers=["198.51.100.3"]))
    assert lines == ["vrrp_instances.VI_1.unicast_peers: not allowed with strict mode (vrrp_instances.VI_1."
                     "strict_mode): keepalived refuses the configuration (\"Unicast peers are not supported in strict "
                     "mode\")"]
    lines = refused(instance_raw(virtual_ipaddresses=None), vrrp_strict=True)
    assert lines == ["vrrp_instances.VI_1.virtual_ipaddresses: strict mode (vrrp_strict) needs at least one VIP, "
                     "as keepalived does"]


def test_strict_state_master_needs_the_owner():
    inst, warnings = one(instance_raw(strict_mode=True, state="MASTER"))
    assert inst.initial_state == "BACKUP" and "State MASTER must match being address owner" in warnings[0]
    inst, warnings = one(instance_raw(strict_mode=True, state="MASTER", priority=255))
    assert inst.initial_state == "MASTER" and warnings == []


def test_strict_with_version_2_resets_accept_but_not_with_version_3():
    inst, warnings = one(instance_raw(strict_mode=True, accept=True))
    assert inst.accept is False and "does not comply with RFC3768" in warnings[0]
    inst, warnings = one(instance_raw(strict_mode=True, accept=True, version=3))
    assert inst.accept is True and warnings == []


@pytest.mark.parametrize("overrides, why", [
    ({"state": "MASTER"}, "is cleared with state MASTER, as keepalived clears it (\"preempt delay will not work "
                          "with initial state MASTER\")"),
    ({"strict_mode": True}, "is reset by strict mode, as keepalived resets it"),
])
def test_preempt_delay_is_cleared_where_keepalived_clears_it(overrides, why):
    inst, warnings = one(instance_raw(preempt_delay=5, **overrides))
    assert inst.preempt_delay_ms == 0
    assert [w for w in warnings if "preempt_delay" in w] == [f"warning: vrrp_instances.VI_1.preempt_delay: {why}"]
    assert one(instance_raw(preempt_delay=5, state="BACKUP"))[0].preempt_delay_ms == 5000


def test_strict_resets_down_timer_adverts():
    inst, warnings = one(instance_raw(strict_mode=True, down_timer_adverts=5))
    assert inst.down_timer_adverts == 3 and warnings == [
        "warning: vrrp_instances.VI_1.down_timer_adverts: is reset to 3 by strict_mode, as keepalived resets it"]
    assert one(instance_raw(), vrrp_strict=True, vrrp_down_timer_adverts=5)[0].down_timer_adverts == 3
    assert one(instance_raw(), vrrp_down_timer_adverts=5)[0].down_timer_adverts == 5


def test_lower_prio_no_advert_defaults_and_strict_forces_it():
    assert one(instance_raw())[0].lower_prio_no_advert is False
    assert one(instance_raw(), vrrp_lower_prio_no_advert=True)[0].lower_prio_no_advert is True
    assert one(instance_raw(lower_prio_no_advert=False), vrrp_lower_prio_no_advert=True)[0].lower_prio_no_advert is False
    inst, warnings = one(instance_raw(strict_mode=True, lower_prio_no_advert=False))
    assert inst.lower_prio_no_advert is True and "is forced by strict mode" in warnings[0]
    inst, items, _result = imported("  strict_mode\n  lower_prio_no_advert off\n")
    assert inst == {"strict_mode": True} and [i[1] for i in items] == ["lower_prio_no_advert"]


def test_strict_clears_a_vmac_mac_and_vmac_xmit_base():
    inst, warnings = one(instance_raw(strict_mode=True, use_vmac="vr51 02:00:00:00:00:33", vmac_xmit_base=True))
    assert inst.vmac.mac == "00:00:5e:00:01:33" and not inst.vmac_xmit_base
    assert len([w for w in warnings if "by strict mode" in w]) == 2
    assert one(instance_raw(use_vmac="vr51 02:00:00:00:00:33"))[0].vmac.mac == "02:00:00:00:00:33"
    inst, items, _result = imported("  strict_mode\n  use_vmac\n  vmac_xmit_base\n")
    assert inst == {"strict_mode": True, "use_vmac": True} and [i[1] for i in items] == ["vmac_xmit_base"]


def test_promote_secondaries_and_skip_check_adv_addr():
    inst = one(instance_raw(promote_secondaries=True))[0]
    assert inst.promote_secondaries and not inst.skip_check_adv_addr
    inst = one(instance_raw(), vrrp_skip_check_adv_addr=True)[0]
    assert inst.skip_check_adv_addr
    inst = one(instance_raw(skip_check_adv_addr=False), vrrp_skip_check_adv_addr=True)[0]
    assert not inst.skip_check_adv_addr


# ----- the importer ----------------------------------------------------------------------------------------------

HEAD = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    198.51.100.9\n  }\n"
# the instance's own keywords start on line 7


def imported(body, before=""):
    result = translate(parse_text(before + HEAD + body + "}\n", "k.conf"))
    shift = before.count("\n")
    inst = {k: v for k, v in result.config["vrrp_instances"]["VI_1"].items()
            if k not in ("interface", "virtual_router_id", "virtual_ipaddresses")}
    parse_config(copy.deepcopy(result.config))      # the agent accepts what the importer wrote
    return inst, [(i.line - shift, i.keyword, i.category, i.reason) for i in result.items], result


def test_strict_mode_drops_authentication_so_a_strict_keepalived_and_hanode_hear_each_other():
    inst, items, _result = imported("  strict_mode\n  authentication {\n    auth_type PASS\n    auth_pass secret\n  }\n")
    assert inst == {"strict_mode": True}
    assert [i[:3] for i in items] == [(8, "authentication", "no meaning here")]
    assert "Strict mode does not support authentication" in items[0][3]


def test_vrrp_strict_in_global_defs_is_carried_and_drops_the_instances_authentication():
    before = "global_defs {\n  vrrp_strict\n}\n"
    inst, items, result = imported("  authentication {\n    auth_type PASS\n    auth_pass secret\n  }\n", before)
    assert result.config["vrrp_strict"] is True and inst == {}
    assert [i[:3] for i in items] == [(7, "authentication", "no meaning here")]


def test_strict_with_unicast_peers_is_reported_invalid_and_carried_without_strict():
    before = "global_defs {\n  vrrp_strict\n}\n"
    inst, items, _result = imported("  unicast_peer {\n    198.51.100.3\n  }\n", before)
    assert inst == {"unicast_peers": ["198.51.100.3"], "strict_mode": False}
    assert [i[:3] for i in items] == [(1, "vrrp_instance VI_1", "invalid")]
    assert "Unicast peers are not supported in strict mode" in items[0][3]


def test_strict_resets_state_master_preempt_delay_and_v2_accept():
    inst, items, _result = imported("  strict_mode on\n  state MASTER\n  preempt_delay 10\n  accept\n")
    assert inst == {"strict_mode": True}
    assert [i[1] for i in items] == ["state", "preempt_delay", "accept"]
    assert "State MASTER must match being address owner" in items[0][3]


def test_strict_resets_down_timer_adverts_and_lower_priority_garps():
    inst, items, _result = imported("  strict_mode\n  down_timer_adverts 5\n  garp_lower_prio_repeat 2\n")
    assert inst == {"strict_mode": True}
    assert [i[1] for i in items] == ["down_timer_adverts", "garp_lower_prio_repeat"]


def test_the_owner_keeps_state_master_and_accept_in_strict_mode():
    inst, items, _result = imported("  strict_mode\n  state MASTER\n  priority 255\n  accept\n")
    assert inst == {"strict_mode": True, "state": "MASTER", "priority": 255, "accept": True} and items == []


def test_preempt_delay_with_state_master_is_dropped_as_keepalived_clears_it():
    inst, items, _result = imported("  state MASTER\n  preempt_delay 30\n")
    assert inst == {"state": "MASTER"}
    assert [i[:3] for i in items] == [(8, "preempt_delay", "no meaning here")]
    assert "preempt delay will not work with initial state MASTER" in items[0][3]
    inst, items, _result = imported("  state BACKUP\n  preempt_delay 30\n")
    assert inst == {"state": "BACKUP", "preempt_delay": 30} and items == []


@pytest.mark.parametrize("body, expected", [
    ("  no_accept\n", {"accept": False}),
    ("  accept\n", {"accept": True}),
    ("  accept\n  no_accept\n", {"accept": False}),
    ("  promote_secondaries\n", {"promote_secondaries": True}),
    ("  skip_check_adv_addr\n", {"skip_check_adv_addr": True}),
    ("  skip_check_adv_addr off\n", {"skip_check_adv_addr": False}),
])
def test_accept_promote_secondaries_and_skip_check_adv_addr_are_carried(body, expected):
    inst, items, _result = imported(body)
    assert inst == expected
    assert [i[2] for i in items] in ([], ["no meaning here"])     # a keyword given twice: the first is reported


def test_vrrp_skip_check_adv_addr_is_carried():
    _inst, items, result = imported("", "global_defs {\n  vrrp_skip_check_adv_addr\n}\n")
    assert result.config["vrrp_skip_check_adv_addr"] is True and items == []


@pytest.mark.parametrize("body, state, category", [
    ("  state master\n", "BACKUP", "invalid"),           # keepalived compares case-sensitively
    ("  state Backup\n", "BACKUP", "invalid"),
    ("  state MASTER\n  state BACKUP\n", "MASTER", "no meaning here"),   # "state previously set as MASTER"
])
def test_state_as_keepalived_reads_it(body, state, category):
    inst, items, _result = imported(body)
    assert inst["state"] == state
    assert [i[2] for i in items] == [category]


@pytest.mark.parametrize("keyword", ["garp_interval 0.01", "v3_checksum_as_v2"])
def test_keywords_keepalived_ignores_in_an_instance_are_not_carried(keyword):
    inst, items, _result = imported("  %s\n" % keyword)
    assert inst == {}
    assert [i[:3] for i in items] == [(7, keyword.split()[0], "no meaning here")]


def test_a_script_that_runs_its_own_shell_gets_no_shell_syntax_warning():
    text = ("vrrp_script a {\n  script \"/bin/bash -c 'ss -ltn | grep -q :80 && test $(id -u) = 0'\"\n}\n"
            "vrrp_script b {\n  script \"busybox sh -c 'a | b'\"\n}\n"
            "vrrp_script c {\n  script \"/usr/bin/env x | y\"\n}\n")
    result = translate(parse_text(text, "k.conf"))
    assert [(n.line, n.message.split(" is shell syntax")[0]) for n in result.notes] == [(8, "|")]


@pytest.mark.parametrize("text", [
    "global_defs {\n  config_save_dir /tmp\n  vrrp_down_timer_adverts 5\n  fifo_write_vrrp_states_on_reload\n}\n",
    "virtual_server 198.51.100.5 80 {\n  snmp_name vs\n  real_server 198.51.100.9 80 {\n    snmp_name rs\n  }\n}\n",
])
def test_real_keepalived_keywords_are_known(text):
    """keepalived 2.2.7 keywords the importer once called unknown (snmp_name is a virtual_server / real_server one)."""
    result = translate(parse_text(text, "k.conf"))
    assert result.items and not [i for i in result.items if "not a keepalived 2.2 keyword" in i.reason]


# ----- AH -----------------------------------------------------------------------------------------------------

AH = {"auth_type": "AH", "auth_pass": "secret"}


def test_ah_is_carried_by_the_importer_and_accepted_by_the_agent():
    inst, items, _result = imported("  authentication {\n    auth_type AH\n    auth_pass secret\n  }\n")
    assert inst == {"authentication": AH} and items == []
    assert one(instance_raw(authentication=AH))[0].authentication.auth_type == "AH"


def test_ah_with_state_master_starts_as_backup_as_in_keepalived():
    inst, items, _result = imported("  state MASTER\n  authentication {\n    auth_type AH\n    auth_pass secret\n"
                                    "  }\n")
    assert inst == {"authentication": AH}
    assert [i[:3] for i in items] == [(7, "state", "no meaning here")]
    assert "Initial state master is incompatible with AH" in items[0][3]
    inst, warnings = one(instance_raw(authentication=AH, state="MASTER"))
    assert inst.initial_state == "BACKUP" and "Initial state master is incompatible with AH" in warnings[0]
    assert one(instance_raw(authentication=AH, state="MASTER", priority=255))[0].initial_state == "MASTER"


def test_strict_mode_drops_ah_too():
    inst, warnings = one(instance_raw(authentication=AH, strict_mode=True))
    assert inst.authentication is None and "ignored in strict mode" in warnings[0]
