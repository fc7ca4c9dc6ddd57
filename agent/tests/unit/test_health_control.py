"""Operator drain (rs_disable / rs_enable): which names it accepts, the errors it gives, and the health the
kernel planner then sees (weight 0 for a drained live server, a down server stays down)."""

from __future__ import annotations

from hanode.config.model import AgentConfig
from hanode.health.answer import drained_state_path
from hanode.health.runner import DISABLED_REASON, CheckerRunner, load_drained, save_drained
from hanode.lvs.desired import RsHealth, desired_state
from hanode.lvs.kernel import ServiceKey
from hanode.lvs.model import Check, LvsConfig, RealServer, VirtualServer

TCP = Check(type="TCP_CHECK")
WEB = VirtualServer(address="198.51.100.100", port=80, real_servers=(
    RealServer("203.0.113.11", 8080, checks=(TCP,)), RealServer("203.0.113.12", 8080, checks=(TCP,))))
DNS = VirtualServer(address="198.51.100.100", port=53, protocol="UDP", real_servers=(RealServer("203.0.113.11", 53),))
MARK = VirtualServer(fwmark=7, real_servers=(RealServer("2001:db8:203::11", 443),))


def runner() -> CheckerRunner:
    """A runner with no control socket: drains are not saved (see the integration test for that)."""
    r = CheckerRunner(emit=lambda event: None)
    r._set_config(AgentConfig(router_id="n1", control_socket="",
                              sections={"lvs": LvsConfig(virtual_servers=(WEB, DNS, MARK))}))
    return r


def control(r: CheckerRunner, action: str, vs: str | None, rs: str | None) -> dict:
    return r.control({"action": action, "virtual_server": vs, "real_server": rs})


def test_names_full_and_short():
    r = runner()
    assert control(r, "rs_disable", "198.51.100.100:80/TCP", "203.0.113.11:8080") == {
        "ok": True, "virtual_server": "198.51.100.100:80/TCP", "real_server": "203.0.113.11:8080"}
    assert control(r, "rs_disable", "198.51.100.100:53", "203.0.113.11")["real_server"] == "203.0.113.11:53"
    assert control(r, "rs_disable", "7/TCP", "2001:db8:203::11")["virtual_server"] == "fwmark 7/TCP"
    assert r.disabled == {("198.51.100.100:80/TCP", "203.0.113.11:8080"), ("198.51.100.100:53/UDP", "203.0.113.11:53"),
                          ("fwmark 7/TCP", "[2001:db8:203::11]:443")}
    assert control(r, "rs_enable", "198.51.100.100:80/TCP", "203.0.113.11:8080")["ok"]
    assert ("198.51.100.100:80/TCP", "203.0.113.11:8080") not in r.disabled


def test_errors_name_what_is_configured():
    r = runner()
    missing = control(r, "rs_disable", "198.51.100.1:80", "203.0.113.11")
    assert missing["ok"] is False and "does not exist" in missing["error"]
    assert "198.51.100.100:80/TCP, 198.51.100.100:53/UDP, fwmark 7/TCP" in missing["error"]
    wrong_rs = control(r, "rs_disable", "198.51.100.100:80/TCP", "203.0.113.99")
    assert wrong_rs == {"ok": False, "error": "virtual server 198.51.100.100:80/TCP has no real server '203.0.113.99' "
                                              "(configured: 203.0.113.11:8080, 203.0.113.12:8080)"}
    assert control(r, "rs_disable", None, None)["error"].startswith("give virtual_server")
    assert control(r, "rs_drain", "198.51.100.100:80/TCP", "203.0.113.11")["error"] == "unknown control action 'rs_drain'"
    assert r.disabled == set()


def test_a_drained_server_is_weight_zero_while_up_and_down_when_down():
    r = runner()
    control(r, "rs_disable", "198.51.100.100:80/TCP", "203.0.113.11")
    control(r, "rs_disable", "198.51.100.100:80/TCP", "203.0.113.12")
    r.scheduler.health_cache[("198.51.100.100:80/TCP", "203.0.113.12:8080")] = RsHealth(False, None, "refused")
    health = r._health_map()
    assert health[("198.51.100.100:80/TCP", "203.0.113.11:8080")] == RsHealth(True, 0, DISABLED_REASON)
    assert health[("198.51.100.100:80/TCP", "203.0.113.12:8080")] == RsHealth(False, None, "refused")
    assert health[("198.51.100.100:53/UDP", "203.0.113.11:53")] == RsHealth(True, None, None)


def test_the_incremental_desired_state_follows_drains_and_health_changes():
    """On a health change or a drain the checker updates the last desired state from the changed servers
    only; it must equal the full computation, and a reload starts over from the full one."""
    r = runner()
    assert r._desired_update() is None                       # nothing computed yet: in full
    r.desired, r.quorum = desired_state(r.lvs, r._health_map(), r.quorum)
    control(r, "rs_disable", "198.51.100.100:80/TCP", "203.0.113.11")
    down = ("198.51.100.100:80/TCP", "203.0.113.12:8080")
    r.scheduler.health_cache[down] = RsHealth(False, None, "refused")
    r._on_health_change(down)
    assert r.changed == {("198.51.100.100:80/TCP", "203.0.113.11:8080"), down}
    update = r._desired_update()
    assert update == desired_state(r.lvs, r._health_map(), r.quorum) and r.changed == set()
    web = update[0][ServiceKey.for_address(4, "TCP", "198.51.100.100", 80)].dests
    assert {str(k): d.weight for k, d in web.items()} == {"203.0.113.11:8080": 0}
    r._set_config(AgentConfig(router_id="n1", control_socket="", sections={"lvs": LvsConfig(virtual_servers=(WEB,))}))
    assert r._desired_update() is None


def test_drained_servers_are_saved_next_to_the_control_socket_and_read_back(tmp_path):
    path = drained_state_path(str(tmp_path / "lb1.sock"))
    assert path == str(tmp_path / "lb1.lvs-drained.json")
    assert load_drained(path) == set()
    save_drained(path, {("198.51.100.100:80/TCP", "203.0.113.11:8080")})
    assert load_drained(path) == {("198.51.100.100:80/TCP", "203.0.113.11:8080")}
    (tmp_path / "lb1.lvs-drained.json").write_text("{not json")
    assert load_drained(path) == set()
