"""Virtual MAC (use_vmac): the agent makes a private-mode macvlan per instance with the RFC MAC, puts the VIPs on
it, sends adverts and GARP / NA from it, sets keepalived's sysctls; a client's neighbour entry for the VIP keeps
the virtual MAC across a failover. The VMAC goes with the agent (stop, reload) and a crashed agent's is adopted."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import threading

import pytest

from hanode.lab.procs import wait_for
from helpers_ops import assert_status_schema
from helpers_vrrp import (VIP4, VIP6, agent_config, inst, instance, new_lab, rewrite_config, state, status,
                          wait_state)

pytestmark = pytest.mark.netns

MAC4, MAC6 = "00:00:5e:00:01:33", "00:00:5e:00:02:34"   # VRIDs 51 and 52
MAC6_51 = "00:00:5e:00:02:33"


def _config(router_id: str, priority: int, **extra) -> dict:
    v4 = instance(vrid=51, priority=priority, version=3, advert_int=0.3, use_vmac=True, **extra)
    v6 = instance(vrid=52, priority=priority, version=3, advert_int=0.3, vips=(VIP6,), use_vmac=True)
    return agent_config(router_id, {"VI_1": v4, "VI_6": v6})


def sysctl(lab, host, path: str) -> int:
    return int(lab.run(host, ["cat", f"/proc/sys/net/{path}"]).stdout)


def link(lab, host, name: str) -> dict | None:
    proc = lab.run(host, ["ip", "-d", "-j", "link", "show", "dev", name], check=False)
    if proc.returncode:
        return None
    entry = json.loads(proc.stdout)[0]
    return {"mac": entry["address"], "kind": entry.get("linkinfo", {}).get("info_kind"),
            "mode": entry.get("linkinfo", {}).get("info_data", {}).get("mode"), "base": entry.get("link")}


def link_local(lab, host, ifname: str) -> list[str]:
    return [a.split("/")[0] for a in host.addresses(ifname, family=6) if ipaddress.ip_interface(a).ip.is_link_local]


def wait_neighbour(lab, client, vip: str) -> str:
    """Pings the VIP until it answers; returns the client's neighbour entry for it."""
    lab.wait_reachable(client, vip, timeout=10)
    return lab.neighbour(client, vip)


def test_vmac_failover_keeps_the_clients_neighbour_entry(lab_factory):
    lab = new_lab(lab_factory, nodes=2, clients=1)
    n1, n2 = lab.nodes
    client = lab.clients[0]
    # all.rp_filter on: keepalived (and hanode) raise every interface to it, then turn all off for the VMAC
    lab.run(n1, ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"])
    sniffer = lab.sniff_vrrp()
    a1 = lab.start_agent(n1, _config("n1", 150))
    a2 = lab.start_agent(n2, _config("n2", 100))
    for name in ("VI_1", "VI_6"):
        wait_state(a1, "MASTER", name, timeout=20)
        wait_state(a2, "BACKUP", name)

    assert link(lab, n1, "vrrp.51") == {"mac": MAC4, "kind": "macvlan", "mode": "private", "base": "eth0"}
    assert link(lab, n1, "vrrp.52") == {"mac": MAC6, "kind": "macvlan", "mode": "private", "base": "eth0"}
    assert n1.has_address(VIP4, "vrrp.51") and n1.has_address(VIP6, "vrrp.52")
    assert not n1.has_address(VIP4, "eth0")
    assert link(lab, n2, "vrrp.51") is not None and not n2.has_address(VIP4, "vrrp.51"), "the backup's VMAC waits"
    # keepalived's sysctls (vrrp_if_config.c), and hanode's arp_announce on the base
    assert {k: sysctl(lab, n1, f"ipv4/conf/vrrp.51/{k}") for k in ("arp_ignore", "accept_local", "rp_filter")} == {
        "arp_ignore": 1, "accept_local": 1, "rp_filter": 0}
    assert {k: sysctl(lab, n1, f"ipv4/conf/eth0/{k}") for k in ("arp_ignore", "arp_filter", "arp_announce")} == {
        "arp_ignore": 1, "arp_filter": 1, "arp_announce": 2}
    assert (sysctl(lab, n1, "ipv4/conf/all/rp_filter"), sysctl(lab, n1, "ipv4/conf/eth0/rp_filter")) == (0, 1)
    assert sysctl(lab, n1, "ipv6/conf/vrrp.51/disable_ipv6") == 1
    assert sysctl(lab, n1, "ipv6/conf/vrrp.52/addr_gen_mode") == 1
    assert link_local(lab, n1, "vrrp.52") == link_local(lab, n1, "eth0"), "the base's link-local, no EUI-64 one"

    # adverts leave the VMACs
    since = sniffer.frames[-1]["t"] if sniffer.frames else 0
    sniffer.wait_for_adverts(4, timeout=10, since=since)
    macs = {(f["vrid"], f["src_mac"]) for f in sniffer.frames if f["t"] >= since and f["priority"] == 150}
    assert macs == {(51, MAC4), (52, MAC6)}

    entry = inst(a1)
    own = {"interface": "vrrp.51", "kind": "macvlan", "base": "eth0", "mac": MAC4, "state": "created", "error": None}
    assert entry["vmac"] == {"interfaces": [own], "xmit_base": False, "wire_interface": "vrrp.51"}
    assert entry["vips"] == [f"{VIP4}/24 dev vrrp.51"]
    assert_status_schema(status(a1))

    before4, before6 = wait_neighbour(lab, client, VIP4), wait_neighbour(lab, client, VIP6)
    assert (before4, before6) == (MAC4, MAC6)
    assert a1.stop() == 0
    for name in ("VI_1", "VI_6"):
        wait_state(a2, "MASTER", name, timeout=10)
    # the client's entries are untouched by the failover (read before any new traffic), and traffic flows
    assert (lab.neighbour(client, VIP4), lab.neighbour(client, VIP6)) == (MAC4, MAC6)
    assert (wait_neighbour(lab, client, VIP4), wait_neighbour(lab, client, VIP6)) == (MAC4, MAC6)
    assert n2.has_address(VIP4, "vrrp.51")

    # the stopped agent took its VMACs away and put the sysctls back
    assert link(lab, n1, "vrrp.51") is None and link(lab, n1, "vrrp.52") is None
    assert {k: sysctl(lab, n1, f"ipv4/conf/eth0/{k}") for k in ("arp_ignore", "arp_filter", "arp_announce")} == {
        "arp_ignore": 0, "arp_filter": 0, "arp_announce": 0}
    assert sysctl(lab, n1, "ipv4/conf/all/rp_filter") == 1


def test_a_crashed_agents_vmac_is_adopted_and_a_reload_removes_it(lab_factory):
    lab = new_lab(lab_factory, nodes=1, clients=0)
    (n1,) = lab.nodes
    config = agent_config("n1", {"VI_1": instance(vrid=51, priority=150, version=3, advert_int=0.3,
                                                  use_vmac=True)})
    a1 = lab.start_agent(n1, config)
    wait_state(a1, "MASTER", timeout=20)
    assert inst(a1)["vmac"]["interfaces"][0]["state"] == "created"
    a1.kill()     # the agent and its VRRP process, at once: nothing cleaned up
    assert link(lab, n1, "vrrp.51") is not None, "a killed agent leaves its VMAC"
    # an interface of another kind where the next VMAC would go: never touched, the instance says why
    lab.run(n1, ["ip", "link", "add", "vrrp.52", "type", "veth", "peer", "name", "vrrp52p"])
    config["vrrp_instances"]["VI_2"] = instance(vrid=52, priority=150, version=3, advert_int=0.3,
                                                vips=("198.51.100.102",), use_vmac=True)
    a1 = lab.start_agent(n1, config)
    wait_state(a1, "MASTER", timeout=20)
    assert inst(a1)["vmac"]["interfaces"][0]["state"] == "adopted"
    second = inst(a1, "VI_2")
    assert second["state"] == "FAULT" and "VMAC vrrp.52 down" in second["fault_reasons"]
    assert second["vmac"]["interfaces"][0]["state"] == "error"
    assert "exists and is a veth, not a macvlan" in second["vmac"]["interfaces"][0]["error"]
    assert link(lab, n1, "vrrp.52")["kind"] == "veth"

    # reload without use_vmac: the VIP moves to eth0 and the VMAC goes
    del config["vrrp_instances"]["VI_2"]
    config["vrrp_instances"]["VI_1"].pop("use_vmac")
    rewrite_config(a1, config)
    a1.reload()
    wait_for(lambda: link(lab, n1, "vrrp.51") is None and n1.has_address(VIP4, "eth0"), 10,
             what="the VMAC removed and the VIP on eth0")
    assert state(a1) == "MASTER" and inst(a1)["vmac"] is None
    assert sysctl(lab, n1, "ipv4/conf/eth0/arp_ignore") == 0
    assert link(lab, n1, "vrrp.52")["kind"] == "veth", "not ours: left alone"


def test_use_vmac_addr_and_garp_extra_if(lab_factory):
    """An IPv6 address of an IPv4 instance gets a VMAC of its own (use_vmac_addr: vrrp6.51, the IPv6 VRRP MAC),
    and garp_extra_if re-announces it from there every interval while MASTER."""
    lab = new_lab(lab_factory, nodes=1, clients=1)
    (n1,), client = lab.nodes, lab.clients[0]
    evip = "2001:db8:100::151"
    config = agent_config("n1", {"VI_1": instance(vrid=51, priority=150, version=3, advert_int=0.3, use_vmac=True,
                                                  use_vmac_addr=True, garp_extra_if=1, garp_master_delay=60,
                                                  virtual_ipaddress_excluded=[f"{evip}/64"])})
    capture = lab.popen(client, ["tcpdump", "-l", "-n", "-e", "-i", "eth0", "icmp6 and ip6[40] == 136"],
                        log_name="tcpdump-na", stdout=subprocess.PIPE)
    a1 = lab.start_agent(n1, config)
    wait_state(a1, "MASTER", timeout=20)
    assert link(lab, n1, "vrrp6.51") == {"mac": MAC6_51, "kind": "macvlan", "mode": "private", "base": "eth0"}
    assert n1.has_address(evip, "vrrp6.51") and n1.has_address(VIP4, "vrrp.51")
    assert [i["interface"] for i in inst(a1)["vmac"]["interfaces"]] == ["vrrp.51", "vrrp6.51"]
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(capture.popen.stdout), daemon=True)
    reader.start()
    # the takeover's burst of 5, then one every second from garp_extra_if (the second burst would come after 60 s)
    wait_for(lambda: sum(1 for line in list(lines) if MAC6_51 in line and evip in line) >= 7, 15,
             what="NAs for the eVIP from its VMAC, refreshed by garp_extra_if")
    capture.kill()
