"""virtual_routes and virtual_rules follow the master (added after the VIPs on becoming MASTER, removed on leaving
it), a reload changes only what changed, static_ipaddress / static_routes / static_rules stay from start to stop,
and nothing the agent did not add is ever removed."""

from __future__ import annotations

import pytest

from hanode.lab.procs import wait_for
from helpers_ops import assert_status_schema
from helpers_vrrp import VIP4, agent_config, inst, instance, new_lab, rewrite_config, status, wait_state

pytestmark = pytest.mark.netns

ROUTES = ("198.18.0.0/16 via 198.51.100.254 src 198.51.100.100",   # its source is the VIP
          "blackhole 198.19.7.0/24 table 100",
          "198.19.8.0/24 dev eth0 metric 7 table 300 mtu lock 1400 rtt 10ms")
RULES = ("from 198.51.100.100 table 100 preference 100", "fwmark 0x7/0xff table 300 preference 101")
STATIC = dict(static_ipaddress=["198.51.100.250/32 dev eth0"],
              static_routes=["198.19.9.0/24 via 198.51.100.254 dev eth0"],
              static_rules=["to 198.19.9.0/24 table 102 preference 102"])
# what `ip route` / `ip rule` print for them
KERNEL_ROUTES = {"198.18.0.0/16 via 198.51.100.254 dev eth0 src 198.51.100.100", "blackhole 198.19.7.0/24 table 100",
                 "198.19.8.0/24 dev eth0 table 300 metric 7 mtu lock 1400 rtt 10ms"}
KERNEL_RULES = {"100: from 198.51.100.100 lookup 100 proto keepalived",
                "101: from all fwmark 0x7/0xff lookup 300 proto keepalived"}
STATIC_ROUTE = "198.19.9.0/24 via 198.51.100.254 dev eth0"
STATIC_RULE = "102: from all to 198.19.9.0/24 lookup 102 proto keepalived"


def _config(router_id: str, priority: int, routes=ROUTES, rules=RULES) -> dict:
    return agent_config(router_id, {"VI_1": instance(priority=priority, version=3, advert_int=0.3,
                                                     virtual_routes=list(routes), virtual_rules=list(rules))},
                        **STATIC)


def routes(lab, host) -> set[str]:
    out = lab.run(host, ["ip", "route", "show", "table", "all", "proto", "keepalived"]).stdout
    return {" ".join(line.split()) for line in out.splitlines() if line.strip()}


def rules(lab, host) -> set[str]:
    out = lab.run(host, ["ip", "rule"]).stdout
    return {" ".join(line.replace(":", ": ", 1).split()) for line in out.splitlines() if "keepalived" in line}


def test_routes_and_rules_follow_the_master_and_a_reload_changes_only_what_changed(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    # n2 already has one of the routes, added by someone else: the agent must never take it away
    lab.run(n2, ["ip", "route", "add", "198.18.0.0/16", "via", "198.51.100.254", "proto", "keepalived"])
    a1 = lab.start_agent(n1, _config("n1", 150))
    a2 = lab.start_agent(n2, _config("n2", 100))
    wait_state(a1, "MASTER", timeout=20)
    wait_state(a2, "BACKUP")
    wait_for(lambda: routes(lab, n1) == KERNEL_ROUTES | {STATIC_ROUTE}, 5, what="n1's routes")
    assert rules(lab, n1) == KERNEL_RULES | {STATIC_RULE}
    assert n1.has_address("198.51.100.250", "eth0")
    # the backup has its static entries only (and the foreign route)
    assert routes(lab, n2) == {STATIC_ROUTE, "198.18.0.0/16 via 198.51.100.254 dev eth0"}
    assert rules(lab, n2) == {STATIC_RULE}
    entry = inst(a1)
    assert [(r["entry"], r["state"]) for r in entry["virtual_routes"]] == [(r, "added") for r in ROUTES]
    assert [r["state"] for r in inst(a2)["virtual_routes"]] == ["not_added"] * 3
    assert [r["state"] for r in status(a2)["vrrp"]["static"]["routes"]] == ["added"]
    assert_status_schema(status(a1))

    # failover: n1 leaves MASTER (its virtual routes and rules go, its static ones stay while it runs)
    a1.stop()
    wait_state(a2, "MASTER", timeout=10)
    wait_for(lambda: rules(lab, n2) == KERNEL_RULES | {STATIC_RULE}, 5, what="n2's rules")
    assert routes(lab, n2) >= KERNEL_ROUTES - {"198.18.0.0/16 via 198.51.100.254 dev eth0 src 198.51.100.100"}
    theirs = inst(a2)["virtual_routes"][0]
    assert theirs["state"] in ("added", "present")
    assert routes(lab, n1) == set() and rules(lab, n1) == set() and not n1.has_address("198.51.100.250")

    # reload on the master: one route and one rule go, one route comes, the others stay put
    config = _config("n2", 100, routes=ROUTES[:2] + ("198.19.10.0/24 via 198.51.100.254",), rules=RULES[:1])
    rewrite_config(a2, config)
    a2.reload()
    wait_for(lambda: "198.19.10.0/24 via 198.51.100.254 dev eth0" in routes(lab, n2), 5, what="the new route")
    assert "198.19.8.0/24 dev eth0 table 300 metric 7 mtu lock 1400 rtt 10ms" not in routes(lab, n2)
    assert rules(lab, n2) == {"100: from 198.51.100.100 lookup 100 proto keepalived", STATIC_RULE}
    assert inst(a2)["state"] == "MASTER"

    # stop: everything the agent added goes; the route it found there stays
    a2.stop()
    assert routes(lab, n2) == {"198.18.0.0/16 via 198.51.100.254 dev eth0"}
    assert rules(lab, n2) == set() and not n2.has_address(VIP4)
