"""Issue 13 on a real IPVS (inside UML): virtual_server_groups and the IPVS options, each seen in traffic.

One service mixes NAT (r1), DR (r2, the VIP on its loopback) and TUN (r3, IPIP into tunl0); the replies of
DR and TUN come back through the director with the VIP as source, so the director accepts local sources on
those links (accept_local), as a one-armed lab needs. A group of two VIPs shares one set of real servers and
one quorum; uthreshold stops new connections to a busy server; lvs_timeouts, scheduler flags, the SIP
persistence engine and GUE tunnel options are read back from the kernel by ipvsadm and by hanode's codec.
"""

from __future__ import annotations

import collections
import re
import subprocess

import pytest

from conftest import VIP, ipvsadm_rules, ns, rs_addr, sh
from hanode.config.parse import parse_config
from hanode.lvs.backend import open_backend
from hanode.lvs.desired import RsHealth, desired_state
from hanode.lvs.reconciler import Reconciler

VIP2 = "198.51.100.101"
PORT = 8080          # the service's port is the real servers' port: DR and TUN cannot change it


def lvs(raw: dict):
    config, _problems = parse_config({"lb_backend": "ipvs", **raw})
    return config.sections["lvs"]


@pytest.fixture
def lb(clean_ipvs, run):
    """(topology, apply(config, health, previous) -> quorum, backend)."""
    holder = {}

    def apply(config, health=None, previous=None):
        if "backend" in holder and config.lvs_timeouts:      # open_backend sets them: reopen, as a start does
            run(holder.pop("backend").close())
        if "backend" not in holder:
            holder["backend"] = run(open_backend(config))
            holder["reconciler"] = Reconciler(holder["backend"])
        state, quorum = desired_state(config, health or {}, previous)
        result = run(holder["reconciler"].reconcile(state, refresh=True))   # the test flushes between phases
        assert result.ok, result.errors
        assert run(holder["reconciler"].dump()) == state     # hanode's codec reads back what it wrote
        return quorum

    yield clean_ipvs, apply
    if "backend" in holder:
        run(holder["backend"].close())


@pytest.fixture
def one_armed(topology):
    """r2 answers for the VIP (DR) and r3 decapsulates IPIP to it (TUN); the director forwards their replies."""
    ns("ipvs-r2", ["ip", "addr", "add", f"{VIP}/32", "dev", "lo"], check=True)
    ns("ipvs-r3", ["ip", "link", "set", "tunl0", "up"], check=True)
    ns("ipvs-r3", ["ip", "addr", "add", f"{VIP}/32", "dev", "tunl0"], check=True)
    for setting in ("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.tunl0.rp_filter=0"):
        ns("ipvs-r3", ["sysctl", "-qw", setting], check=True)
    sh("sysctl -qw net.ipv4.conf.vr2.accept_local=1", "sysctl -qw net.ipv4.conf.vr3.accept_local=1",
       f"ip addr add {VIP2}/32 dev vc1")
    try:
        yield topology
    finally:
        ns("ipvs-r2", ["ip", "addr", "del", f"{VIP}/32", "dev", "lo"])
        ns("ipvs-r3", ["ip", "addr", "del", f"{VIP}/32", "dev", "tunl0"])
        subprocess.run(f"sysctl -qw net.ipv4.conf.vr2.accept_local=0 net.ipv4.conf.vr3.accept_local=0; "
                       f"ip addr del {VIP2}/32 dev vc1", shell=True, check=False)


def thresholds() -> str:
    """`ipvsadm -Ln --thresholds`: ipvsadm -S leaves the thresholds out."""
    return subprocess.run(["ipvsadm", "-Ln", "--thresholds"], capture_output=True, text=True, check=True).stdout


def get(vip: str, port: int = PORT) -> str:
    proc = ns("ipvs-c1", ["curl", "-sS", "-m", "5", f"http://{vip}:{port}/"])
    assert proc.returncode == 0, f"GET {vip}:{port}: {proc.stderr}"
    return proc.stdout.strip()


def test_mixed_forwarding_thresholds_and_kernel_options(lb, one_armed):
    """NAT, DR and TUN real servers in one rr service all answer through the VIP; then uthreshold 1 lets one
    connection reach r1 and sends the rest to r2; then the options without traffic of their own."""
    _topo, apply = lb
    servers = [{"address": rs_addr(1), "port": PORT},
               {"address": rs_addr(2), "port": PORT, "lvs_method": "DR"},
               {"address": rs_addr(3), "port": PORT, "lvs_method": "TUN"}]
    apply(lvs({"virtual_servers": [{"address": VIP, "port": PORT, "lb_algo": "rr", "real_servers": servers}]}))
    assert {r for r in ipvsadm_rules() if r.startswith("-a")} == {
        f"-a -t {VIP}:{PORT} -r {rs_addr(1)}:{PORT} -m -w 1", f"-a -t {VIP}:{PORT} -r {rs_addr(2)}:{PORT} -g -w 1",
        f"-a -t {VIP}:{PORT} -r {rs_addr(3)}:{PORT} -i -w 1 --tun-type ipip"}
    assert collections.Counter(get(VIP) for _request in range(6)) == {"r1": 2, "r2": 2, "r3": 2}

    # a service of its own: IPVS would revive r1's destination above with its connection counts
    capped = [{"address": rs_addr(1), "port": PORT, "uthreshold": 1}, {"address": rs_addr(2), "port": PORT}]
    apply(lvs({"virtual_servers": [{"address": VIP2, "port": PORT, "lb_algo": "rr", "real_servers": capped}]}))
    assert re.search(rf"-> {rs_addr(1)}:{PORT}\s+1\s+0\s+0\s+0\s", thresholds()), thresholds()
    # the first connection to r1 stays counted (TIME_WAIT): r1 is over its threshold for the rest
    assert collections.Counter(get(VIP2) for _request in range(6)) == {"r1": 1, "r2": 5}

    subprocess.run(["ipvsadm", "-C"], check=True)
    apply(lvs({"lvs_timeouts": {"tcp": 900, "tcpfin": 30, "udp": 45}, "virtual_servers": [
        {"address": VIP, "port": 5060, "protocol": "UDP", "lb_algo": "sh", "sh-port": True, "sh-fallback": True,
         "persistence_timeout": 60, "persistence_engine": "sip",
         "sorry_server": {"address": rs_addr(4), "lvs_method": "DR", "inhibit": True},
         "real_servers": [{"address": rs_addr(1), "lvs_method": "TUN", "tunnel_type": "gue", "tunnel_port": 6080,
                           "tunnel_csum": "csum", "uthreshold": 10, "lthreshold": 5}]}]}))
    rules = ipvsadm_rules()
    assert f"-A -u {VIP}:5060 -s sh -p 60 --pe sip -b sh-fallback,sh-port" in rules, rules
    assert any(r.startswith(f"-a -u {VIP}:5060 -r {rs_addr(1)}:5060 -i -w 1 --tun-type gue --tun-port 6080")
               for r in rules), rules
    assert re.search(rf"-> {rs_addr(1)}:5060\s+10\s+5\s", thresholds()), thresholds()
    assert f"-a -u {VIP}:5060 -r {rs_addr(4)}:5060 -g -w 0" in rules, rules
    timeouts = subprocess.run(["ipvsadm", "-L", "--timeout"], capture_output=True, text=True, check=True).stdout
    assert "Timeout (tcp tcpfin udp): 900 30 45" in timeouts


def test_group_members_share_real_servers_health_and_quorum(lb, one_armed):
    """A group of two VIPs (a range) and a fwmark: every member holds r1 and r2; r1 down takes it out of every
    member (one health entry); r2 down too loses the group's quorum of 2 and the sorry server serves both VIPs."""
    _topo, apply = lb
    config = lvs({"virtual_server_groups": {"pair": [{"address": f"{VIP}-101", "port": PORT}, {"fwmark": 5}]},
                  "virtual_servers": [{"group": "pair", "protocol": "TCP", "lb_algo": "rr", "quorum": 2,
                                       "sorry_server": {"address": rs_addr(4), "port": PORT},
                                       "real_servers": [{"address": rs_addr(i), "port": PORT} for i in (1, 2)]}]})
    vs = config.virtual_servers[0]
    quorum = apply(config)
    services = [r for r in ipvsadm_rules() if r.startswith("-A")]
    assert sorted(services) == sorted([f"-A -t {VIP}:{PORT} -s rr", f"-A -t {VIP2}:{PORT} -s rr", "-A -f 5 -s rr"])
    for vip in (VIP, VIP2):
        assert {get(vip) for _request in range(4)} == {"r1", "r2"}
    quorum = apply(config, {(vs.name, f"{rs_addr(1)}:{PORT}"): RsHealth(False)}, quorum)
    assert not any(rs_addr(1) in r for r in ipvsadm_rules())
    assert quorum[vs.name].up is False          # 1 live of quorum 2: the sorry server for every member
    for vip in (VIP, VIP2):
        assert {get(vip) for _request in range(3)} == {"r4"}
    quorum = apply(config, {}, quorum)
    assert quorum[vs.name].up and sum(rs_addr(1) in r for r in ipvsadm_rules()) == 3
    for vip in (VIP, VIP2):
        assert {get(vip) for _request in range(4)} == {"r1", "r2"}
