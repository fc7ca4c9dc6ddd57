"""IPsec AH authentication (auth_type AH, VRRPv2) against Debian's keepalived 2.2.7, both ways: the pair elects the
higher priority (each side accepts the other's AH adverts, or both would hold the VIP), the backup takes over
when the master stops, and the stopped side, started again with its sequence counter at 0, learns the current
master's sequence number and preempts back with higher ones (keepalived drops a replayed or older number).
Neither side complains about the other's packets."""

from __future__ import annotations

import pytest

from hanode.lab.procs import wait_for
from helpers_vrrp import inst, keepalived_complaints, keepalived_conf, new_lab, single, wait_sole_holder, wait_state

pytestmark = pytest.mark.netns

HIGH, LOW = 150, 100
PASSWORD = "s3cr3t"
KEEPALIVED_AH = ("authentication {", "    auth_type AH", f"    auth_pass {PASSWORD}", "}")
ERROR_COUNTERS = ("packet_len_err", "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err",
                  "invalid_authtype", "authtype_mismatch", "auth_failure", "vers_err", "chk_err")


def start(lab, host, software, priority):
    if software == "keepalived":
        return lab.start_keepalived(host, keepalived_conf(host.name, priority, extra=KEEPALIVED_AH))
    return lab.start_agent(host, single(host.name, priority,
                                        authentication={"auth_type": "AH", "auth_pass": PASSWORD}))


@pytest.mark.parametrize("hanode_priority", [HIGH, LOW], ids=["hanode-higher", "keepalived-higher"])
def test_ah_pair_with_keepalived_elects_fails_over_and_preempts_back(lab_factory, hanode_priority):
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    handles = {n1: start(lab, n1, "hanode", hanode_priority),
               n2: start(lab, n2, "keepalived", HIGH + LOW - hanode_priority)}
    high, low = (n1, n2) if hanode_priority == HIGH else (n2, n1)
    software = {n1: "hanode", n2: "keepalived"}
    wait_sole_holder(lab.nodes, "198.51.100.100", high, timeout=20)
    hanode = handles[n1]
    if high is n2:
        wait_for(lambda: inst(hanode)["state"] == "BACKUP" and inst(hanode)["master_priority"] == HIGH, 10,
                 what="hanode to follow keepalived's AH adverts")
    else:
        wait_state(hanode, "MASTER", timeout=10)

    assert handles[high].stop() == 0                       # the backup takes over
    wait_sole_holder(lab.nodes, "198.51.100.100", low, timeout=15)
    keepalived_logs = [handles[n2].log_text()] if high is n2 else []
    handles[high] = start(lab, high, software[high], HIGH)   # back with its counter at 0: learns, then preempts
    wait_sole_holder(lab.nodes, "198.51.100.100", high, timeout=20)
    hanode = handles[n1]
    wait_state(hanode, "MASTER" if high is n1 else "BACKUP", timeout=10)
    wait_sole_holder(lab.nodes, "198.51.100.100", high, timeout=1)   # still (no flip back)

    errors = {k: v for k, v in inst(hanode)["stats"].items() if v and k in ERROR_COUNTERS}
    assert errors == {}, "hanode rejected keepalived's AH adverts"
    text = "\n".join(keepalived_logs + [handles[n2].log_text()])
    assert keepalived_complaints(text) == [], "keepalived rejected hanode's AH adverts"
    # keepalived's AH complaints: "IPSEC-AH : invalid ...", "sequence number N already processed"
    assert [line for line in text.splitlines() if "IPSEC" in line and "Syncing seq_num" not in line] == []
