"""Strict mode and no_accept in namespaces, and strict mode against Debian's keepalived 2.2.7 both ways.

- A strict keepalived (vrrp_strict, with a PASS authentication block it ignores) and a strict hanode (strict_mode,
  with the same block, ignored as keepalived ignores it) hear each other: the higher priority is MASTER, the
  other follows, neither complains, and the backup takes over when the master stops. Whoever is MASTER (not the
  address owner), a client's ping to the VIP goes unanswered: no_accept, keepalived's nftables table on one side,
  hanode's (inet hanode_noaccept) on the other.
- no_accept on its own: the VIP is in hanode's set only while MASTER; a reload to accept: true lets the client
  reach the VIP without a state change, and stopping the agent leaves no table behind."""

from __future__ import annotations

import json

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import (PASSWORD, VIP4, inst, keepalived_complaints, keepalived_conf, new_lab, rewrite_config,
                          single, wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

HIGH, LOW = 150, 100
LINK_LOCAL_VIP = "fe80::5:1"
AUTH = {"auth_type": "PASS", "auth_pass": PASSWORD}
ERROR_COUNTERS = ("packet_len_err", "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err",
                  "invalid_authtype", "authtype_mismatch", "auth_failure", "vers_err", "chk_err")


def blocked(lab, host, set_name: str = "vips4") -> list | None:
    """The elements of hanode's no_accept set on host (None: no table)."""
    proc = lab.run(host, ["nft", "-j", "list", "set", "inet", "hanode_noaccept", set_name], check=False)
    if proc.returncode:
        return None
    for item in json.loads(proc.stdout)["nftables"]:
        if "set" in item:
            return sorted(item["set"].get("elem", []), key=str)
    return []


def start(lab, host, software, priority):
    if software == "keepalived":
        conf = keepalived_conf(host.name, priority, password=PASSWORD, global_extra=("vrrp_strict",))
        return lab.start_keepalived(host, conf)
    return lab.start_agent(host, single(host.name, priority, strict_mode=True, authentication=AUTH))


@pytest.mark.parametrize("hanode_priority", [HIGH, LOW], ids=["hanode-higher", "keepalived-higher"])
def test_strict_pair_with_keepalived_elects_blocks_the_vip_and_fails_over(lab_factory, hanode_priority):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    client = lab.clients[0]
    hanode = start(lab, n1, "hanode", hanode_priority)
    keepalived = start(lab, n2, "keepalived", HIGH + LOW - hanode_priority)
    (master, master_handle), (backup, backup_handle) = sorted(
        [(n1, hanode), (n2, keepalived)], key=lambda pair: pair[0] is not (n1 if hanode_priority == HIGH else n2))
    wait_sole_holder(lab.nodes, VIP4, master, timeout=20)
    wait_state(hanode, "MASTER" if master is n1 else "BACKUP", timeout=10)
    if master is n2:
        assert wait_for(lambda: inst(hanode)["master_priority"] == HIGH, 10, what="hanode to follow keepalived")
    # no_accept on whichever side is MASTER: the VIP does not answer, the node's own address does
    assert lab.ping(client, master.ipv4, timeout=1)
    assert not lab.ping(client, VIP4, timeout=1), "a strict non-owner master answered on its VIP"
    assert blocked(lab, n1) == ([VIP4] if master is n1 else None)    # hanode's table exists once it is needed
    errors = {k: v for k, v in inst(hanode)["stats"].items() if v and k in ERROR_COUNTERS}
    assert errors == {}, "hanode rejected keepalived's adverts"

    assert master_handle.stop() == 0
    wait_sole_holder(lab.nodes, VIP4, backup, timeout=15)
    if backup is n1:
        wait_state(hanode, "MASTER", timeout=5)
        assert blocked(lab, n1) == [VIP4]
    assert not lab.ping(client, VIP4, timeout=1), "the new strict master answered on its VIP"
    text = keepalived.log_text()
    assert keepalived_complaints(text) == []
    assert "Strict mode does not support authentication" in text      # keepalived ignores it, as hanode does


def test_no_accept_blocks_the_vip_while_master_and_a_reload_to_accept_opens_it(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=1)
    node, client = lab.nodes[0], lab.clients[0]
    config = single(node.name, HIGH, accept=False, virtual_ipaddress_excluded=[f"{LINK_LOCAL_VIP}/64"])
    handle = lab.start_agent(node, config)
    wait_state(handle, "MASTER", timeout=10)
    assert blocked(lab, node) == [VIP4] and node.has_address(VIP4)
    # a link-local VIP is blocked on its own interface only, as keepalived's vips_link_local set keys it
    assert blocked(lab, node, "vips6ll") == [{"concat": [LINK_LOCAL_VIP, "eth0"]}]
    assert lab.ping(client, node.ipv4, timeout=1)
    assert not lab.ping(client, VIP4, timeout=1)
    assert not lab.ping(client, f"{LINK_LOCAL_VIP}%eth0", timeout=1)
    became_master = inst(handle)["stats"]["become_master"]

    config["vrrp_instances"]["VI_1"]["accept"] = True
    rewrite_config(handle, config)
    assert "reloaded: applied" in handle.reload().stdout
    assert lab.wait_reachable(client, VIP4, timeout=5)
    assert lab.wait_reachable(client, f"{LINK_LOCAL_VIP}%eth0", timeout=5)
    assert blocked(lab, node) == [] and blocked(lab, node, "vips6ll") == []
    assert inst(handle)["state"] == "MASTER" and inst(handle)["stats"]["become_master"] == became_master

    assert handle.stop() == 0
    assert blocked(lab, node) is None, "the agent left its nftables table behind"
