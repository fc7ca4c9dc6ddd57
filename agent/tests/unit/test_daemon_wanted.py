"""Which processes a config runs: VRRP only for VRRP instances or static addresses, routes or rules (keepalived
2.2.7 starts no VRRP child without them), the checker only for virtual servers or connection sync; and which of
them stands for the whole config in status (applied_digest)."""

from __future__ import annotations

import copy

import pytest

from pure_helpers import config_raw, instance_raw
from hanode.config.loaded import LoadedConfig
from hanode.config.parse import parse_config
from hanode.daemon.wanted import child_wanted, config_keeper

SERVICE = {"lb_backend": "nftables", "virtual_servers": [{
    "address": "198.51.100.100", "port": 80, "protocol": "tcp", "lb_algo": "rr", "lb_kind": "NAT",
    "real_servers": [{"address": "203.0.113.11", "port": 8080, "checks": [{"type": "TCP_CHECK"}]}]}]}


def loaded(raw: dict) -> LoadedConfig:
    config, problems = parse_config(copy.deepcopy(raw))
    return LoadedConfig(path="agent.yaml", raw=None, digest="d", config=config, problems=problems)


@pytest.mark.parametrize("raw, vrrp, checker, keeper", [
    (config_raw(), True, False, "vrrp"),
    (config_raw(instances={}, **SERVICE), False, True, "checker"),
    (config_raw(**SERVICE), True, True, "vrrp"),
    (config_raw(instances={}, static_routes=["198.19.9.0/24 via 198.51.100.254 dev eth0"]), True, False, "vrrp"),
    (config_raw(instances={}, static_ipaddress=["198.51.100.250/32 dev eth0"]), True, False, "vrrp"),
    (config_raw(instances={}, vrrp_scripts={"chk": {"script": "/bin/true"}}), False, False, None),
    (config_raw(instances={}), False, False, None),
])
def test_a_process_runs_only_for_the_sections_it_serves(raw, vrrp, checker, keeper):
    config = loaded(raw)
    assert (child_wanted("vrrp", config), child_wanted("checker", config), config_keeper(config)) == \
        (vrrp, checker, keeper)


def test_a_sync_group_has_instances_so_it_runs_vrrp():
    raw = config_raw(instances={"VI_1": instance_raw()}, groups={"G1": {"group": ["VI_1"]}})
    assert child_wanted("vrrp", loaded(raw))
