"""ha_info's at-a-glance summary (module_utils/_summary.py): golden lines for a busy director, a quiet backup
and an agent whose status is still thin."""

from __future__ import annotations

from ansible_collections.hanode.fleet.plugins.module_utils._summary import summary_lines

DIRECTOR = {
    "agent": {"router_id": "lb1", "version": "0.1.0", "stale": ["checker"],
              "config": {"last_reload": {"ok": False, "errors": ["vrrp_instances.VI_1.prority: unknown key"]}}},
    "instances": {
        "VI_2": {"state": "FAULT", "priority": 100, "effective_priority": 100, "virtual_router_id": 52,
                 "interface": "eth1", "vips": ["198.51.100.102/24 dev eth1"], "drained": False,
                 "fault_reasons": ["tracked interface trk0 down"], "master_address": None},
        "VI_1": {"state": "MASTER", "priority": 150, "effective_priority": 140, "virtual_router_id": 51,
                 "interface": "eth0", "vips": ["198.51.100.100/24 dev eth0", "198.51.100.101/24"], "drained": False,
                 "fault_reasons": [], "master_address": "198.51.100.11"},
    },
    "sync_groups": {"G1": {"state": "MASTER", "members": ["VI_1"]}},
    "virtual_servers": [{"name": "198.51.100.100:80/TCP", "summary": "1/3 real servers up, quorum down",
                         "sorry_server_active": True, "sorry_server": "203.0.113.99:8080",
                         "real_servers": [{"name": "203.0.113.11:8080", "health": "up"},
                                          {"name": "203.0.113.12:8080", "health": "down",
                                           "failure_reason": "connection refused"},
                                          {"name": "203.0.113.13:8080", "health": "disabled", "failure_reason": None}]}],
}


def test_director_golden():
    assert summary_lines(DIRECTOR) == [
        "lb1 (hanode 0.1.0): FAULT VI_2; MASTER VI_1; 1 virtual server, 1/3 real servers up; STALE: checker restarting",
        "VI_1 MASTER vrid 51 eth0 prio 140/150 198.51.100.100/24,198.51.100.101/24",
        "VI_2 FAULT vrid 52 eth1 prio 100/100 198.51.100.102/24: tracked interface trk0 down",
        "sync group G1 MASTER (VI_1)",
        "198.51.100.100:80/TCP: 1/3 real servers up, quorum down, on sorry server 203.0.113.99:8080; "
        "203.0.113.12:8080 down (connection refused), 203.0.113.13:8080 disabled",
        "last reload REFUSED: vrrp_instances.VI_1.prority: unknown key",
    ]


def test_backup_golden():
    status = {"agent": {"router_id": "lb2", "version": "0.1.0", "stale": [], "config": {"last_reload": {"ok": True}}},
              "instances": {"VI_1": {"state": "BACKUP", "priority": 100, "effective_priority": 100,
                                     "virtual_router_id": 51, "interface": "eth0", "vips": [], "drained": True,
                                     "fault_reasons": [], "master_address": "198.51.100.11"}},
              "sync_groups": {}}
    assert summary_lines(status) == ["lb2 (hanode 0.1.0): BACKUP VI_1",
                                     "VI_1 BACKUP (drained) vrid 51 eth0 prio 100/100 no VIPs, master 198.51.100.11"]


def test_thin_status():
    assert summary_lines({"agent": {}}) == ["? (hanode ?): no VRRP instances"]
    assert summary_lines(None) == ["? (hanode ?): no VRRP instances"]
