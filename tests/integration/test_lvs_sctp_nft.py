"""An SCTP virtual server on the nftables backend (host kernel). This kernel has no SCTP sockets, so the
associations are started with hand-made INIT / INIT-ACK packets (sctp_raw.py, raw IP sockets): each INIT to
VIP:3868 reaches a real server DNATed to its own address (round robin over both), its INIT-ACK returns to the
client from the VIP, and the director's conntrack tracks the associations as SCTP. The real SCTP stack
through IPVS, and across a failover, is tested inside UML (ipvs/test_connsync_ipvs.py).

    c1 -> VIP 198.51.100.100:3868/SCTP on director n1 -> r1, r2 (203.0.113.11-12:3868), default route via n1
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hanode.lab.procs import python_env, wait_for
from helpers_checker import VIP, lb_config, new_lab, start_director, status

pytestmark = pytest.mark.netns

SCRIPT = Path(__file__).with_name("sctp_raw.py")
PORT = 3868
SPORTS = [40001, 40002, 40003, 40004]


def test_sctp_associations_are_dnated_to_the_real_servers_and_answered_from_the_vip(lab_factory):
    lab = new_lab(lab_factory, real_servers=2)
    n1, c1 = lab.nodes[0], lab.clients[0]
    r1, r2 = lab.real_servers
    logs = {r.name: r.dir / "sctp-inits.jsonl" for r in (r1, r2)}
    for r in (r1, r2):
        lab.popen(r, [sys.executable, str(SCRIPT), "respond", "--out", str(logs[r.name])], log_name="sctp",
                  env=python_env())
    vs = {"address": VIP, "port": PORT, "protocol": "SCTP", "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 1,
          "real_servers": [{"address": r.ipv4, "port": PORT, "checks": [{"type": "PING_CHECK"}]} for r in (r1, r2)]}
    agent = start_director(lab, n1, lb_config("n1", [vs]))
    wait_for(lambda: all(rs["health"] == "up" and rs["kernel_weight"] == 1
                         for rs in status(agent)["virtual_servers"][0]["real_servers"]), 20, what="both servers up")
    assert status(agent)["virtual_servers"][0]["name"] == f"{VIP}:{PORT}/SCTP"
    ruleset = lab.run(n1, ["nft", "list", "table", "ip", "hanode"]).stdout
    assert "sctp" in ruleset and "udp" not in ruleset, ruleset

    out = c1.dir / "sctp-init.json"
    lab.run(c1, [sys.executable, str(SCRIPT), "initiate", "--dst", VIP, "--dport", str(PORT), "--sports",
                 ",".join(map(str, SPORTS)), "--out", str(out)], timeout=60)
    result = json.loads(out.read_text())
    answers = result["answers"]
    assert sorted(a["dport"] for a in answers) == SPORTS, result
    assert {(a["src"], a["sport"]) for a in answers} == {(VIP, PORT)}, "INIT-ACKs come back from the VIP"

    def arrived() -> list[dict]:
        rows = [dict(json.loads(line), server=name) for name, log in logs.items() if log.exists()
                for line in log.read_text().splitlines()]
        return rows if len(rows) >= len(SPORTS) else []
    rows = wait_for(arrived, 10, what="every INIT at a real server")
    assert {row["server"] for row in rows} == {"r1", "r2"}, rows
    for row in rows:
        server = r1 if row["server"] == "r1" else r2
        assert (row["src"], row["dst"], row["dport"]) == (c1.ipv4, server.ipv4, PORT), row
    tracked = lab.run(n1, ["conntrack", "-L", "-p", "sctp"], check=False).stdout
    assert sum(f"dport={PORT} " in line for line in tracked.splitlines()) == len(SPORTS), tracked
