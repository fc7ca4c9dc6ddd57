"""Every cross-node check, proven by a failing inventory: `ansible-playbook` with the role's first step stops
with a message naming host and variable, and nothing after it runs (no host is touched)."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "targets"))
from ansible_run import playbook, write_inventory  # noqa: E402

ADDRESSES = {"n1": "198.51.100.11", "n2": "198.51.100.12", "n3": "198.51.100.13"}
VI_1 = {"interface": "eth0", "virtual_router_id": 51, "version": 3, "advert_int": 0.2, "unicast": True,
        "virtual_ipaddresses": ["198.51.100.100/24 dev eth0"]}


def inventory(marker: Path) -> dict:
    hosts = {h: {"ansible_connection": "local", "ha_node_priority": p,
                 "ha_node_interfaces": {"eth0": [f"{a}/24"], "eth1": [f"203.0.113.{a.rsplit('.', 1)[1]}/24"]}}
             for (h, a), p in zip(ADDRESSES.items(), (150, 120, 100))}
    return {"all": {"vars": {"marker": str(marker), "ansible_python_interpreter": sys.executable},
                    "children": {"ha_nodes": {"hosts": hosts,
                                              "vars": {"ha_node_cluster": "web", "ha_node_instances": {"VI_1": copy.deepcopy(VI_1)}}}}}}


def host(inv, name):
    return inv["all"]["children"]["ha_nodes"]["hosts"][name]


def own_instances(inv, name, **changes):
    """Gives one host its own copy of the instances (host_vars), changed."""
    instances = copy.deepcopy(inv["all"]["children"]["ha_nodes"]["vars"]["ha_node_instances"])
    instances["VI_1"].update(changes)
    host(inv, name)["ha_node_instances"] = instances
    return inv


def everyone(inv, **changes):
    inv["all"]["children"]["ha_nodes"]["vars"]["ha_node_instances"]["VI_1"].update(changes)
    return inv


def explicit_peers(inv, peers):
    for name, plist in peers.items():
        instances = copy.deepcopy(inv["all"]["children"]["ha_nodes"]["vars"]["ha_node_instances"])
        instances["VI_1"].pop("unicast")
        instances["VI_1"]["unicast_peers"] = plist
        host(inv, name)["ha_node_instances"] = instances
    return inv


def other_cluster(inv, vrid):
    inv["all"]["children"]["db_nodes"] = {"hosts": {"m1": {
        "ansible_connection": "local", "ha_node_cluster": "db", "ha_node_priority": 100,
        "ha_node_interfaces": {"eth0": ["198.51.100.21/24"]},
        "ha_node_instances": {"DB": {"interface": "eth0", "virtual_router_id": vrid, "virtual_ipaddresses": ["198.51.100.99/24"]}}}}}
    inv["all"]["children"]["ha_nodes"]["children"] = {"db_nodes": {}}
    return inv


CASES = [
    ("vrid", lambda i: own_instances(i, "n3", virtual_router_id=52),
     "n3: ha_node_instances.VI_1.virtual_router_id: 52 here but 51 on n1, n2"),
    ("version", lambda i: own_instances(i, "n2", version=2, advert_int=1),
     "n2: ha_node_instances.VI_1.version: 2 here but 3 on n1, n3"),
    ("advert_int", lambda i: own_instances(i, "n1", advert_int=0.5),
     "n1: ha_node_instances.VI_1.advert_int: 0.5 here but 0.2 on n2, n3"),
    ("auth", lambda i: own_instances(everyone(i, version=2, advert_int=1, authentication={"auth_type": "PASS", "auth_pass": "a"}),
                                     "n3", version=2, advert_int=1, authentication={"auth_type": "PASS", "auth_pass": "b"}),
     "n3: ha_node_instances.VI_1.authentication: {auth_pass: ***, auth_type: PASS} here but"),
    ("vips", lambda i: own_instances(i, "n2", virtual_ipaddresses=["198.51.100.100/24", "198.51.100.101/24"]),
     "n2: ha_node_instances.VI_1.virtual_ipaddresses: [198.51.100.100/24, 198.51.100.101/24] here but [198.51.100.100/24] on n1, n3"),
    ("priorities collide", lambda i: host(i, "n3").update(ha_node_priority=120) or i,
     "n3: ha_node_priority: priority 120 of VI_1 collides with n2"),
    ("two owners", lambda i: [host(i, n).update(ha_node_priority=255) for n in ("n1", "n2")] and i,
     "n1: ha_node_instances.VI_1.priority: 255 (address owner) on n1, n2"),
    ("asymmetric peers", lambda i: explicit_peers(i, {"n1": ["198.51.100.12", "198.51.100.13"], "n2": ["198.51.100.11", "198.51.100.13"],
                                                      "n3": ["198.51.100.12"]}),
     "n3: ha_node_instances.VI_1.unicast_peers: does not list member n1, n1 (198.51.100.11) lists this node, so the peer lists are asymmetric"),
    ("shared vrid on one segment", lambda i: other_cluster(i, 51),
     "m1: ha_node_instances.DB.virtual_router_id: 51 is also used by instance VI_1 of cluster web (n1, n2, n3) on the same segment 198.51.100.0/24"),
    ("nopreempt with MASTER", lambda i: own_instances(i, "n1", nopreempt=True, state="MASTER"),
     "n1: ha_node_instances.VI_1.nopreempt: nopreempt with state MASTER"),
    ("vip outside subnets", lambda i: everyone(i, virtual_ipaddresses=["10.9.9.9/24"]),
     "n1: ha_node_instances.VI_1.virtual_ipaddresses[0]: 10.9.9.9 is outside every subnet of eth0 on this node (198.51.100.0/24)"),
    ("agent check: unknown key", lambda i: own_instances(i, "n2", prority=5),
     "n2: ha_node_instances.VI_1.prority: unknown key"),
    ("agent check: v2 needs whole seconds", lambda i: everyone(i, version=2, advert_int=0.5),
     "n1: ha_node_instances.VI_1.advert_int: must be whole seconds with version 2"),
    ("agent check: script", lambda i: everyone(i, track_scripts=[{"name": "chk_missing"}]),
     "n1: ha_node_instances.VI_1.track_scripts[0].name: no vrrp_script named 'chk_missing'"),
]


@pytest.mark.parametrize("breaker,expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_broken_fleet_stops_the_play_naming_host_and_variable(tmp_path, breaker, expected):
    marker = tmp_path / "reached"
    inv = write_inventory(tmp_path / "hosts.yml", breaker(inventory(marker)))
    run = playbook(inv, "fleet_check.yml")
    assert run.returncode != 0, run.stdout
    assert expected in run.stdout, run.stdout[-3000:]
    assert "no host was touched" in run.stdout
    assert not marker.exists()


def test_a_consistent_fleet_passes_with_derived_peers_and_a_plan(tmp_path):
    marker = tmp_path / "reached"
    inv = write_inventory(tmp_path / "hosts.yml", inventory(marker))
    run = playbook(inv, "fleet_check.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    configs = json.loads(marker.read_text())
    for name, address in ADDRESSES.items():
        vi = configs[name]["vrrp_instances"]["VI_1"]
        assert vi["unicast_src_ip"] == address
        assert sorted(vi["unicast_peers"]) == sorted(a for h, a in ADDRESSES.items() if h != name)
    assert "n1                    150       150     82.812      682.812  -> n2 takes over within 706.25 ms" in run.stdout


# lb_backend auto: each host judged by its own kernel, never the controller's ----------------------------------

VIRTUAL_SERVERS = [{"address": "198.51.100.200", "port": 80, "protocol": "TCP", "lb_algo": "wlc", "lb_kind": "NAT",
                    "real_servers": [{"address": "203.0.113.21", "port": 8080}]}]  # wlc: IPVS only


def machine(tmp_path: Path, ipvs: bool) -> list[str]:
    """A command prefix that runs as on a machine of its own, as far as the IPVS probe can tell: a private mount
    namespace whose /sys/module holds ip_vs (a loaded module) or nothing. This kernel has no IPVS otherwise."""
    setup = "mount -t tmpfs hanode-caps /sys/module" + (" && mkdir /sys/module/ip_vs" if ipvs else "")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{setup} && exec "$0" "$@"']


def machine_python(tmp_path: Path, name: str, ipvs: bool) -> str:
    """That machine's Python, as a host's ansible_python_interpreter (the role runs the probe with it)."""
    script = tmp_path / f"python-{name}"
    prefix = " ".join(f"'{part}'" for part in machine(tmp_path, ipvs))
    script.write_text(f'#!/bin/sh\nexec {prefix} {sys.executable} "$@"\n')
    script.chmod(0o755)
    return str(script)


def lb_fleet(tmp_path: Path, marker: Path, hosts_with_ipvs: set[str]) -> Path:
    inv = inventory(marker)
    inv["all"]["children"]["ha_nodes"]["vars"]["ha_node_virtual_servers"] = VIRTUAL_SERVERS
    for name in ADDRESSES:
        host(inv, name)["ansible_python_interpreter"] = machine_python(tmp_path, name, name in hosts_with_ipvs)
    return write_inventory(tmp_path / "hosts.yml", inv)


def test_lb_backend_auto_controller_without_ipvs_hosts_with_it_passes(tmp_path):
    """A controller whose kernel has no ip_vs (macOS, a container) accepts an IPVS-only virtual server for
    hosts whose kernels have it: the role's probe ran on each host and ha_plan used its answer."""
    assert not Path("/proc/net/ip_vs").exists(), "this test needs a kernel without IPVS (see PREAMBLE)"
    marker = tmp_path / "reached"
    run = playbook(lb_fleet(tmp_path, marker, set(ADDRESSES)), "fleet_check.yml", wrapper=tuple(machine(tmp_path, False)))
    assert run.returncode == 0, run.stdout[-3000:]
    configs = json.loads(marker.read_text())
    assert all(configs[name]["virtual_servers"][0]["lb_algo"] == "wlc" for name in ADDRESSES)
    assert "lb_backend" not in run.stdout  # no warning either: every host's capabilities were known


def test_lb_backend_auto_controller_with_ipvs_host_without_it_fails_naming_that_host(tmp_path):
    """The reverse: the controller has ip_vs, n2 does not. Only n2 is refused, with its own kernel's reason."""
    assert not Path("/proc/net/ip_vs").exists(), "this test needs a kernel without IPVS (see PREAMBLE)"
    marker = tmp_path / "reached"
    run = playbook(lb_fleet(tmp_path, marker, {"n1", "n3"}), "fleet_check.yml", wrapper=tuple(machine(tmp_path, True)))
    assert run.returncode != 0, run.stdout[-3000:]
    kernel = os.uname().release
    assert ("n2: ha_node_virtual_servers[0].lb_algo: wlc needs lb_backend: ipvs (nftables implements rr, wrr, sh, dh "
            "with lb_kind NAT); lb_backend auto uses nftables here because kernel "
            f"{kernel} has no IPVS (no /proc/net/ip_vs, no ip_vs module)") in run.stdout, run.stdout[-3000:]
    assert "n1: ha_node_virtual_servers" not in run.stdout and "n3: ha_node_virtual_servers" not in run.stdout
    assert "no host was touched" in run.stdout
    assert not marker.exists()


def test_preflight_without_systemd_needs_the_lab_mode_asked_for(tmp_path):
    """This machine's PID 1 is not systemd: service_mode auto is an error naming every host; lab passes."""
    marker = tmp_path / "reached"
    pid1 = Path("/proc/1/comm").read_text().strip()
    assert pid1 != "systemd", "this test needs a machine whose PID 1 is not systemd"
    inv = write_inventory(tmp_path / "hosts.yml", inventory(marker))
    run = playbook(inv, "preflight.yml")
    assert run.returncode != 0
    for name in ADDRESSES:
        assert (f"{name} cannot run the agent, no host was changed. It needs: systemd (ha_node_service_mode auto; "
                f"PID 1 is {pid1}): set ha_node_service_mode: lab") in run.stdout, run.stdout[-3000:]
    assert not marker.exists()

    inv = write_inventory(tmp_path / "hosts.yml", everyone_vars(inventory(marker), ha_node_service_mode="lab"))
    run = playbook(inv, "preflight.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    found = json.loads(marker.read_text())
    assert [f["service_mode"] for f in found] == ["lab"] * 3
    major, minor = sys.version_info[:2]
    assert found[0]["platform"]["tag"].startswith(f"cp{major}{minor}-glibc") and found[0]["problems"] == []


def everyone_vars(inv, **variables):
    inv["all"]["children"]["ha_nodes"]["vars"].update(variables)
    return inv
