"""Reload (hanode reload / SIGHUP): unrelated changes cause no state flip and never drop the VIP, a priority
change applies in place, an invalid config is refused and the running one stays."""

from __future__ import annotations

import signal
import time

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (VIP4, VIP4_B, AddressSampler, agent_config, events, holders, inst, instance, new_lab,
                          rewrite_config, script_dir, single, status, wait_sole_holder, wait_state, write_script)

pytestmark = pytest.mark.netns

V3 = {"version": 3, "advert_int": 0.3}  # a reload that stalled adverts for ~1 s would flip the backup


def _wait_applied(handle, generation: int) -> dict:
    def applied() -> dict | None:
        st = status(handle)
        config = st["agent"]["config"]
        return st if config["generation"] == generation and config["applied_generation"] == generation else None
    return wait_for(applied, 15, what=f"generation {generation} applied on {handle.host.name}")


def test_reload_with_a_new_instance_and_a_new_notify_script_flips_nothing(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    with script_dir() as directory:
        log = directory / "notify.log"
        for name in ("old", "new"):
            write_script(directory, f"{name}.sh", f'echo "{name} $*" >> {log}\n')

        def configs(script: str, with_vi_2: bool) -> tuple[dict, dict]:
            out = []
            for router_id, priority in (("n1", 150), ("n2", 100)):
                instances = {"VI_1": instance(51, priority, notify_master=f"{directory}/{script}.sh", **V3)}
                if with_vi_2:
                    instances["VI_2"] = instance(52, priority, vips=(VIP4_B,), **V3)
                out.append(agent_config(router_id, instances))
            return out[0], out[1]

        first = configs("old", with_vi_2=False)
        a1 = lab.start_agent(n1, first[0])
        a2 = lab.start_agent(n2, first[1])
        wait_state(a1, "MASTER", timeout=15)
        wait_state(a2, "BACKUP")
        wait_sole_holder(lab.nodes, VIP4, n1)
        wait_for(lambda: log.exists() and log.read_text() == "old \n", 5, what="notify_master of n1")
        before = {h: (inst(h)["transitions"], inst(h)["stats"]["become_master"]) for h in (a1, a2)}

        second = configs("new", with_vi_2=True)
        with AddressSampler(n1, VIP4, pid=a1.pid) as sampler:
            for handle, config in ((a1, second[0]), (a2, second[1])):
                rewrite_config(handle, config)
                assert "reloaded: applied" in handle.reload().stdout
                _wait_applied(handle, 2)
            # The new instance comes up next to the old one (and its election takes a while: keep sampling).
            wait_state(a1, "MASTER", "VI_2", timeout=10)
            wait_state(a2, "BACKUP", "VI_2")
        assert len(sampler.samples) > 20 and not sampler.errors
        assert sampler.missing == [], "VIP of VI_1 removed during the reload"
        for handle in (a1, a2):
            assert (inst(handle)["transitions"], inst(handle)["stats"]["become_master"]) == before[handle]
            assert status(handle)["agent"]["config"]["last_reload"]["ok"] is True
        assert (inst(a1)["state"], inst(a2)["state"]) == ("MASTER", "BACKUP")
        wait_sole_holder(lab.nodes, VIP4_B, n1)
        # The changed notify script is the one that runs next.
        a1.stop()
        wait_state(a2, "MASTER", timeout=10)
        wait_for(lambda: log.read_text().splitlines()[1:] == ["new "], 5, what="the new notify_master on n2")
        assert log.read_text().splitlines() == ["old ", "new "]


def test_reload_changes_priority_in_place(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, single("n1", 150, **V3))
    a2 = lab.start_agent(n2, single("n2", 100, **V3))
    wait_state(a1, "MASTER", timeout=15)
    wait_state(a2, "BACKUP")
    # The MASTER lowered to 130 (still above n2): it stays MASTER and advertises 130 from now on.
    rewrite_config(a1, single("n1", 130, **V3))
    a1.reload()
    st = _wait_applied(a1, 2)["instances"]["VI_1"]
    assert (st["state"], st["priority"], st["effective_priority"], st["transitions"]) == ("MASTER", 130, 130, 2)
    since = time.monotonic()
    sniffer.wait_for_adverts(4, timeout=5, src=n1.ipv4, since=since)
    # (the first one may be the last 150 advert, read late by the sniffer)
    assert {a.priority for a in sniffer.adverts(src=n1.ipv4, since=since)[1:]} == {130}
    # The BACKUP raised to 200: it preempts, without going through INIT again.
    rewrite_config(a2, single("n2", 200, **V3))
    a2.send_signal(signal.SIGHUP)  # the other way to reload
    _wait_applied(a2, 2)
    wait_state(a2, "MASTER", timeout=10)
    wait_state(a1, "BACKUP", timeout=5)
    wait_sole_holder(lab.nodes, VIP4, n2)
    assert [(e["from"], e["to"]) for e in events(a2, "transition")] == [("INIT", "BACKUP"), ("BACKUP", "MASTER")]
    assert inst(a2)["effective_priority"] == 200 and inst(a1)["master_priority"] == 200


def test_invalid_config_on_reload_is_refused_and_the_running_one_stays(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    a1 = lab.start_agent(n1, single("n1", 150, **V3))
    wait_state(a1, "MASTER", timeout=15)
    good = status(a1)["agent"]["config"]
    bad = single("n1", 300, **V3)
    bad["vrrp_instances"]["VI_1"]["prority"] = 1
    rewrite_config(a1, bad)
    with pytest.raises(RuntimeError) as refused:
        a1.reload()
    assert "vrrp_instances.VI_1.priority: must be 1..255, got 300" in str(refused.value)
    assert "vrrp_instances.VI_1.prority: unknown key" in str(refused.value)
    st = status(a1)
    config = st["agent"]["config"]
    assert config["last_reload"]["ok"] is False
    assert any("vrrp_instances.VI_1.priority" in e for e in config["last_reload"]["errors"])
    assert (config["digest"], config["generation"], config["applied_digest"]) == \
        (good["digest"], good["generation"], good["applied_digest"])
    entry = st["instances"]["VI_1"]
    assert (entry["state"], entry["priority"], entry["transitions"]) == ("MASTER", 150, 2)
    assert holders(lab.nodes, VIP4) == ["n1"]
    # SIGHUP with the same broken file: refused the same way, and the agent keeps running.
    a1.send_signal(signal.SIGHUP)
    wait_for(lambda: status(a1)["agent"]["config"]["last_reload"]["at"] > config["last_reload"]["at"], 10,
             what="the SIGHUP reload to be refused")
    assert a1.running and inst(a1)["state"] == "MASTER"
    # Fixed: the next reload applies.
    rewrite_config(a1, single("n1", 140, **V3))
    a1.reload()
    assert _wait_applied(a1, 2)["instances"]["VI_1"]["priority"] == 140
    assert status(a1)["agent"]["config"]["last_reload"]["ok"] is True


def test_reload_that_removes_the_master_instance_steps_it_down_with_priority_0(lab_factory):
    lab = new_lab(lab_factory, nodes=2)
    n1, n2 = lab.nodes
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, agent_config("n1", {"VI_1": instance(51, 150, **V3),
                                                 "VI_2": instance(52, 150, vips=(VIP4_B,), **V3)}))
    a2 = lab.start_agent(n2, single("n2", 100, **V3))
    wait_state(a1, "MASTER", timeout=15)
    wait_state(a2, "BACKUP")
    wait_sole_holder(lab.nodes, VIP4, n1)
    reloaded_at = time.monotonic()
    rewrite_config(a1, agent_config("n1", {"VI_2": instance(52, 150, vips=(VIP4_B,), **V3)}))
    a1.reload()
    wait_for(lambda: [a for a in sniffer.adverts(src=n1.ipv4, vrid=51, since=reloaded_at) if a.priority == 0], 5,
             what="a priority-0 advert for the removed instance")
    wait_state(a2, "MASTER", timeout=5)
    wait_sole_holder(lab.nodes, VIP4, n2)
    st = _wait_applied(a1, 2)
    assert list(st["instances"]) == ["VI_2"] and st["instances"]["VI_2"]["state"] == "MASTER"
    # (a regular advert may still have gone out between our clock reading and the reload)
    sent = [a.priority for a in sniffer.adverts(src=n1.ipv4, vrid=51, since=reloaded_at)]
    assert sent[-1] == 0 and sent.count(0) == 1 and set(sent[:-1]) <= {150}, "one priority-0 advert, then silence"
    assert holders(lab.nodes, VIP4_B) == ["n1"]
