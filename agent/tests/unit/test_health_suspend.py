"""ha_suspend: which services' checks wait (pure: health/suspend.py), the scheduler probing nothing for them
while their servers keep their health (keepalived's disabled checkers), and the config rules."""

from __future__ import annotations

import asyncio

import pytest
from virtual_time import run_virtual

from hanode.config.parse import parse_config
from hanode.config.problems import ConfigError
from hanode.health.hysteresis import CheckResult
from hanode.health.scheduler import Scheduler
from hanode.health.spec import check_specs
from hanode.health.suspend import service_addresses, suspended, transitions, watched
from hanode.lvs.model import Check, GroupMember, LvsConfig, RealServer, VirtualServer

CHECK = Check(type="TCP_CHECK", connect_timeout_ms=200, retry=0, delay_before_retry_ms=100, warmup_ms=0)
SERVER = RealServer(address="127.0.0.1", port=8080, checks=(CHECK,))


def vs(address="198.51.100.100", **fields) -> VirtualServer:
    return VirtualServer(address=address, port=80, delay_loop_ms=100, real_servers=(SERVER,), **fields)


def test_a_service_waits_until_one_of_its_addresses_or_its_groups_is_local():
    group = VirtualServer(group="web", ha_suspend=True, real_servers=(SERVER,),
                          members=(GroupMember(4, "198.51.100.10", 80), GroupMember(6, "2001:db8::a", 80)))
    services = [vs(ha_suspend=True), vs("198.51.100.101"), group]
    watch = watched(services)
    assert watch == {"198.51.100.100:80/TCP": frozenset({"198.51.100.100"}),
                     "group web/TCP": frozenset({"198.51.100.10", "2001:db8::a"})}
    assert suspended(watch, ["192.0.2.1"]) == {"198.51.100.100:80/TCP", "group web/TCP"}
    assert suspended(watch, ["198.51.100.100", "2001:0db8:0::a"]) == frozenset()   # any spelling of an address
    assert suspended(watch, ["198.51.100.10"]) == {"198.51.100.100:80/TCP"}
    assert service_addresses(vs("2001:db8:0::1")) == {"2001:db8::1"}
    assert transitions(frozenset({"a", "b"}), frozenset({"b", "c"})) == (["c"], ["a"])


def test_suspended_checks_probe_nothing_keep_health_and_resume_within_a_delay_loop():
    config = LvsConfig(virtual_servers=(vs(ha_suspend=True),))
    answers = {"ok": True}
    probes: list[float] = []

    async def scenario(clock):
        async def probe(_p):
            probes.append(clock.now_s)
            await asyncio.sleep(0)
            return CheckResult(answers["ok"], reason=None if answers["ok"] else "connection refused")

        scheduler = Scheduler(runner=probe, clock_ms=lambda: int(clock.now_s * 1000), draw=lambda: 0)
        scheduler.apply(check_specs(config))
        scheduler.suspended = frozenset({"198.51.100.100:80/TCP"})
        scheduler.start()
        await asyncio.sleep(0.5)
        while_suspended = (len(probes), scheduler.skipped)
        answers["ok"] = False          # the server fails while nothing looks at it
        await asyncio.sleep(0.5)
        health_suspended = scheduler.health()
        resumed_at = clock.now_s
        scheduler.suspended = frozenset()
        await asyncio.sleep(0.5)
        first = probes[0] - resumed_at if probes else None
        health = scheduler.health()
        await scheduler.stop()
        return while_suspended, health_suspended, first, health

    (probed, skipped), health_suspended, first_s, health = run_virtual(scenario)
    assert probed == 0 and skipped >= 4
    assert all(h.up for h in health_suspended.values())
    assert first_s is not None and 0 <= first_s <= 0.1 + 0.02
    assert not any(h.up for h in health.values())


def test_ha_suspend_is_refused_for_fwmark_services_and_carried_for_addresses():
    real = [{"address": "203.0.113.11", "port": 80}]
    raw = {"virtual_servers": [{"fwmark": 7, "ha_suspend": True, "lb_kind": "DR", "real_servers": real},
                               {"address": "198.51.100.100", "port": 80, "ha_suspend": True, "real_servers": real}]}
    with pytest.raises(ConfigError) as refused:
        parse_config(raw)
    assert [(p.path, "fwmark" in p.message) for p in refused.value.problems] == [("virtual_servers[0].ha_suspend",
                                                                                  True)]
    config, _problems = parse_config({"virtual_servers": raw["virtual_servers"][1:]})
    assert config.sections["lvs"].virtual_servers[0].ha_suspend
