"""The cluster model: each cross-node check is proven by a fleet that breaks exactly that rule, and the
problem names the host and the Ansible variable (table-driven)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.hanode.fleet.plugins.module_utils import _cluster

IFACES = {
    "n1": {"eth0": ["198.51.100.11/24", "2001:db8:100::11/64", "fe80::1/64"], "eth1": ["203.0.113.1/24"]},
    "n2": {"eth0": ["198.51.100.12/24", "2001:db8:100::12/64", "fe80::2/64"], "eth1": ["203.0.113.2/24"]},
    "n3": {"eth0": ["198.51.100.13/24", "2001:db8:100::13/64", "fe80::3/64"], "eth1": ["203.0.113.3/24"]},
}
VI_1 = {"interface": "eth0", "virtual_router_id": 51, "version": 3, "advert_int": 0.2, "unicast": True,
        "virtual_ipaddresses": ["198.51.100.100/24 dev eth0"]}


def fleet():
    return {host: {"cluster": "web", "priority": prio, "instances": {"VI_1": copy.deepcopy(VI_1)},
                   "interfaces": copy.deepcopy(IFACES[host])}
            for host, prio in (("n1", 150), ("n2", 120), ("n3", 100))}


def build(models):
    return _cluster.build(models, sorted(models))


def test_a_consistent_fleet_has_no_problem_and_renders_every_node():
    result = build(fleet())
    assert result["errors"] == [] and result["warnings"] == []
    vi = result["configs"]["n2"]["vrrp_instances"]["VI_1"]
    assert vi["priority"] == 120 and vi["unicast_src_ip"] == "198.51.100.12"
    assert "unicast" not in vi and "priority_order" not in vi
    assert result["members"] == {"web/VI_1": ["n1", "n2", "n3"]}


@pytest.mark.parametrize("host", ["n1", "n2", "n3"])
def test_derived_unicast_peers_are_the_other_members_never_the_node_itself(host):
    configs = build(fleet())["configs"]
    vi = configs[host]["vrrp_instances"]["VI_1"]
    others = sorted(configs[h]["vrrp_instances"]["VI_1"]["unicast_src_ip"] for h in configs if h != host)
    assert sorted(vi["unicast_peers"]) == others
    assert vi["unicast_src_ip"] not in vi["unicast_peers"]


def _set(models, host, key, value, instance="VI_1"):
    models[host]["instances"][instance][key] = value
    return models


def _del(models, host, key, instance="VI_1"):
    models[host]["instances"][instance].pop(key)
    return models


def _explicit_peers(models, peers):
    for host, plist in peers.items():
        _del(models, host, "unicast")
        _set(models, host, "unicast_peers", plist)
    return models


def _second_cluster(models, vrid, iface_addr="198.51.100.21/24"):
    models["m1"] = {"cluster": "db", "priority": 100, "interfaces": {"eth0": [iface_addr]},
                    "instances": {"DB": {"interface": "eth0", "virtual_router_id": vrid,
                                         "virtual_ipaddresses": [iface_addr.split("/")[0][:-2] + "99/24"]}}}
    return models


BROKEN = [
    ("vrid differs", lambda m: _set(m, "n3", "virtual_router_id", 52),
     "n3: ha_node_instances.VI_1.virtual_router_id: 52 here but 51 on n1, n2"),
    ("version differs", lambda m: _set(m, "n2", "version", 2),
     "n2: ha_node_instances.VI_1.version: 2 here but 3 on n1, n3"),
    ("advert_int differs", lambda m: _set(m, "n1", "advert_int", 1),
     "n1: ha_node_instances.VI_1.advert_int: 1.0 here but 0.2 on n2, n3"),
    ("auth differs", lambda m: [_set(m, h, "authentication", {"auth_type": "PASS", "auth_pass": p})
                                for h, p in (("n1", "a"), ("n2", "a"), ("n3", "b"))][-1],
     "n3: ha_node_instances.VI_1.authentication: {auth_pass: ***, auth_type: PASS} here but"),
    ("vip set differs", lambda m: _set(m, "n2", "virtual_ipaddresses", ["198.51.100.100/24", "198.51.100.101/24"]),
     "n2: ha_node_instances.VI_1.virtual_ipaddresses: [198.51.100.100/24, 198.51.100.101/24] here but [198.51.100.100/24] on n1, n3"),
    ("priorities collide", lambda m: m["n3"].update(priority=120) or m,
     "n3: ha_node_priority: priority 120 of VI_1 collides with n2"),
    ("two owners", lambda m: m["n1"].update(priority=255) or m["n2"].update(priority=255) or m,
     "n1: ha_node_instances.VI_1.priority: 255 (address owner) on n1, n2: at most one member of VI_1 may own the addresses"),
    ("asymmetric peers", lambda m: _explicit_peers(m, {"n1": ["198.51.100.12", "198.51.100.13"], "n2": ["198.51.100.11", "198.51.100.13"],
                                                       "n3": ["198.51.100.12"]}),
     "n3: ha_node_instances.VI_1.unicast_peers: does not list member n1, n1 (198.51.100.11) lists this node, so the peer lists are asymmetric"),
    ("peer list misses a member", lambda m: _explicit_peers(m, {"n1": ["198.51.100.12"], "n2": ["198.51.100.11"], "n3": ["198.51.100.11", "198.51.100.12"]}),
     "n1: ha_node_instances.VI_1.unicast_peers: does not list member n3, n3 (198.51.100.13) lists this node"),
    ("peer list holds the node itself", lambda m: _explicit_peers(m, {"n1": ["198.51.100.11", "198.51.100.12", "198.51.100.13"],
                                                                      "n2": ["198.51.100.11", "198.51.100.13"], "n3": ["198.51.100.11", "198.51.100.12"]}),
     "n1: ha_node_instances.VI_1.unicast_peers: contains this node's own address 198.51.100.11"),
    ("unicast mixed with multicast", lambda m: _del(m, "n2", "unicast"),
     "n2: ha_node_instances.VI_1.unicast_peers: members of VI_1 mix unicast and multicast"),
    ("two clusters share a VRID on one segment", lambda m: _second_cluster(m, 51),
     "m1: ha_node_instances.DB.virtual_router_id: 51 is also used by instance VI_1 of cluster web (n1, n2, n3) on the same segment 198.51.100.0/24"),
    ("nopreempt with state MASTER", lambda m: _set(_set(m, "n1", "state", "MASTER"), "n1", "nopreempt", True),
     "n1: ha_node_instances.VI_1.nopreempt: nopreempt with state MASTER"),
    ("vip outside every subnet", lambda m: [_set(m, h, "virtual_ipaddresses", ["10.9.9.9/24"]) for h in m][-1],
     "n2: ha_node_instances.VI_1.virtual_ipaddresses[0]: 10.9.9.9 is outside every subnet of eth0 on this node (198.51.100.0/24)"),
    ("vip on another device outside its subnets", lambda m: [_set(m, h, "virtual_ipaddresses", ["198.51.100.100/24 dev eth1"]) for h in m][-1],
     "n1: ha_node_instances.VI_1.virtual_ipaddresses[0]: 198.51.100.100 is outside every subnet of eth1 on this node (203.0.113.0/24)"),
    ("interface missing", lambda m: m["n2"]["instance_overrides"].update({"VI_1": {"interface": "eth7"}}) or m
     if m["n2"].setdefault("instance_overrides", {}) is not None else m,
     "n2: ha_node_instances.VI_1.interface: eth7 does not exist on this node (has: eth0, eth1)"),
    ("override for an unknown instance", lambda m: m["n1"].update(instance_overrides={"VI_9": {"priority": 1}}) or m,
     "n1: ha_node_instance_overrides.VI_9: no instance VI_9 in ha_node_instances (known: VI_1)"),
    ("host not in priority_order", lambda m: [_set(m, h, "priority_order", ["n1", "n2"]) for h in m][-1],
     "n3: ha_node_instances.VI_1.priority_order: this node is a member of VI_1 but not in priority_order"),
    ("no interface facts", lambda m: m["n3"].update(interfaces={}) or m,
     "n3: ha_node_interfaces: no interface addresses known for this node"),
    ("agent option that the role owns", lambda m: m["n1"].update(agent_options={"router_id": "x"}) or m,
     "n1: ha_node_agent_options.router_id: is set by the role from ha_node_router_id"),
]


@pytest.mark.parametrize("breaker,expected", [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_each_broken_fleet_is_stopped_with_host_and_variable(breaker, expected):
    result = build(breaker(fleet()))
    assert any(error.startswith(expected) for error in result["errors"]), result["errors"]


def test_different_vrids_on_one_segment_and_one_vrid_on_another_segment_are_fine():
    assert build(_second_cluster(fleet(), 52))["errors"] == []
    assert build(_second_cluster(fleet(), 51, iface_addr="192.168.77.21/24"))["errors"] == []


def test_same_vrid_in_another_family_is_fine():
    models = _second_cluster(fleet(), 51)
    models["m1"]["interfaces"] = {"eth0": ["2001:db8:100::21/64"]}
    models["m1"]["instances"]["DB"].update(version=3, virtual_ipaddresses=["2001:db8:100::99/64"])
    assert build(models)["errors"] == []


def test_priority_order_gives_descending_priorities_and_overrides_win():
    models = fleet()
    for host in models:
        models[host].pop("priority")
        _set(models, host, "priority_order", ["n3", "n1", "n2"])
    models["n2"]["instance_overrides"] = {"VI_1": {"priority": 42}}
    configs = build(models)["configs"]
    assert [configs[h]["vrrp_instances"]["VI_1"]["priority"] for h in ("n3", "n1", "n2")] == [200, 190, 42]


def test_an_unmanaged_explicit_peer_is_a_warning_not_an_error():
    models = _explicit_peers(fleet(), {"n1": ["198.51.100.12", "198.51.100.13", "198.51.100.50"],
                                       "n2": ["198.51.100.11", "198.51.100.13"], "n3": ["198.51.100.11", "198.51.100.12"]})
    result = build(models)
    assert result["errors"] == []
    assert result["warnings"] == ["n1: ha_node_instances.VI_1.unicast_peers: 198.51.100.50 is not a member of VI_1 in this play; "
                                  "its peer list cannot be checked"]


def test_the_rendered_config_keeps_other_sections():
    models = fleet()
    for host in models:
        models[host].update(scripts={"chk": {"script": "/bin/true", "weight": 10}}, lb_backend="nftables",
                            virtual_servers=[{"address": "198.51.100.100", "port": 80}], sync_groups={"G": {"group": ["VI_1"]}},
                            agent_options={"enable_script_security": False}, control_socket="/run/x.sock")
    config = build(models)["configs"]["n1"]
    assert list(config) == ["router_id", "control_socket", "enable_script_security", "vrrp_scripts", "vrrp_instances",
                            "vrrp_sync_groups", "lb_backend", "virtual_servers"]
    assert config["router_id"] == "n1"


@pytest.mark.parametrize("path,var", [
    ("vrrp_instances.VI_1.priority", "ha_node_instances.VI_1.priority"),
    ("vrrp_scripts.chk.weight", "ha_node_scripts.chk.weight"),
    ("virtual_servers[0].real_servers[1].port", "ha_node_virtual_servers[0].real_servers[1].port"),
    ("vrrp_sync_groups.G.group[0]", "ha_node_sync_groups.G.group[0]"),
    ("lb_backend", "ha_node_lb_backend"),
    ("script_user", "ha_node_agent_options.script_user"),
    ("vrrp_instancesX", "ha_node_agent_options.vrrp_instancesX"),
])
def test_agent_field_paths_name_the_variable_a_user_edits(path, var):
    assert _cluster.agent_path_to_var(path) == var


def test_interfaces_from_network_facts():
    facts = {"interfaces": ["lo", "eth0", "br-lan"],
             "lo": {"ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0"}},
             "eth0": {"ipv4": {"address": "198.51.100.11", "netmask": "255.255.255.0"},
                      "ipv4_secondaries": [{"address": "198.51.100.100", "netmask": "255.255.255.0"}],
                      "ipv6": [{"address": "2001:db8:100::11", "prefix": "64"}, {"address": "fe80::1%eth0", "prefix": "64"}]},
             "br_lan": {"ipv4": {"address": "10.1.0.1", "netmask": "255.255.0.0"}}}
    assert _cluster.interfaces_from_facts(facts) == {
        "lo": ["127.0.0.1/8"],
        "eth0": ["198.51.100.11/24", "198.51.100.100/24", "2001:db8:100::11/64", "fe80::1/64"],
        "br-lan": ["10.1.0.1/16"],
    }


def test_plans_show_effective_priority_timers_and_who_takes_over():
    models = fleet()
    for host in models:
        models[host]["scripts"] = {"chk": {"script": "/bin/true", "weight": 20}}
        _set(models, host, "track_scripts", [{"name": "chk"}])
    plan = build(models)["plans"][0]
    assert plan["master"] == "n1"
    assert plan["nodes"]["n1"] == {"priority": 150, "effective_priority": 170, "skew_time_ms": 67.187,
                                   "master_down_interval_ms": 667.187, "nopreempt": False}
    assert plan["after_failure_of"]["n1"]["new_master"] == "n2"
    assert plan["after_failure_of"]["n1"]["takeover_ms"] == plan["nodes"]["n2"]["master_down_interval_ms"]
    assert plan["after_failure_of"]["n2"] == {"new_master": "n1", "takeover_ms": None}


def test_interface_keys_pass_through_to_the_agent_config():
    """use_vmac, routes and rules, multicast groups, unicast options and static entries are the agent's business:
    the model passes them on untouched (the agent's check-config judges them on the host)."""
    models = fleet()
    extra = {"use_vmac": True, "vmac_xmit_base": True, "garp_extra_if": "all 60", "check_unicast_src": True,
             "unicast_ttl": 64, "unicast_fault_no_peer": True,
             "virtual_routes": ["198.18.0.0/16 via 198.51.100.254 src 198.51.100.100"],
             "virtual_rules": ["from 198.51.100.100 table 100 preference 100"]}
    top = {"vrrp_mcast_group4": "224.0.0.19", "vrrp_check_unicast_src": True,
           "static_routes": ["198.19.9.0/24 via 198.51.100.254 dev eth0"], "static_ipaddress": ["198.51.100.250/32 dev eth0"]}
    for host in models:
        models[host]["instances"]["VI_1"].update(copy.deepcopy(extra))
        models[host]["agent_options"] = copy.deepcopy(top)
    result = build(models)
    assert result["errors"] == []
    config = result["configs"]["n1"]
    assert {k: config["vrrp_instances"]["VI_1"][k] for k in extra} == extra
    assert {k: config[k] for k in top} == top
