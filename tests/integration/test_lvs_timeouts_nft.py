"""lvs_timeouts on the nftables backend, in a namespace lab: keepalived's tcp / tcpfin / udp become conntrack
timeout policies for the connections to the virtual servers, read back from the director's conntrack table
(`conntrack -L`) for real connections through the VIP.

    client c1 -> VIP 198.51.100.100:80 (TCP) and :53 (UDP) on director n1 -> r1 (203.0.113.11:8080 / :5353)
"""

from __future__ import annotations

import re
import sys

import pytest

from hanode.lab.procs import wait_for
from helpers_checker import VIP, lb_config, new_lab, real_server, start_director, virtual_server

pytestmark = pytest.mark.netns

TCP_S, TCPFIN_S, UDP_S = 1234, 17, 77
HOLD = ("import socket, sys, time\n"
        "s = socket.create_connection((sys.argv[1], 80), timeout=5)\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "u.sendto(b'x', (sys.argv[1], 53))\n"
        "print('connected', flush=True)\n"
        "time.sleep(60)\n")


def entry(lab, node, proto: str, state: str | None = None) -> tuple[str, int] | None:
    """(state, seconds left) of the director's conntrack entry for the client's connection to the VIP."""
    out = lab.run(node, ["conntrack", "-L", "-p", proto, "--orig-dst", VIP], check=False).stdout
    for line in out.splitlines():
        found = re.match(rf"{proto}\s+\d+\s+(\d+)\s+(?:([A-Z_]+)\s+)?", line)
        if found and (state is None or found.group(2) == state):
            return found.group(2) or "", int(found.group(1))
    return None


def test_lvs_timeouts_set_the_conntrack_timeouts_of_connections_through_the_vip(lab_factory):
    lab = new_lab(lab_factory, real_servers=1)
    n1, (r1,), (c1,) = lab.nodes[0], lab.real_servers, lab.clients
    lab.start_http_server(r1)
    udp = virtual_server([real_server(r1, checks=[]) | {"port": 5353}], port=53, protocol="UDP")
    config = lb_config("n1", [virtual_server([real_server(r1, checks=[])]), udp],
                       lvs_timeouts={"tcp": TCP_S, "tcpfin": TCPFIN_S, "udp": UDP_S})
    start_director(lab, n1, config)
    client = lab.popen(c1, [sys.executable, "-c", HOLD, VIP], log_name="hold")
    state, left_s = wait_for(lambda: entry(lab, n1, "tcp", "ESTABLISHED"), 10, what="the TCP connection's entry")
    assert TCP_S - 30 <= left_s <= TCP_S, left_s                    # the kernel's default is 432000 s
    _state, left_s = wait_for(lambda: entry(lab, n1, "udp"), 10, what="the UDP flow's entry")
    assert UDP_S - 30 <= left_s <= UDP_S, left_s                    # default 30 s unreplied
    client.kill()                                                   # the client's FIN
    state, left_s = wait_for(lambda: (e := entry(lab, n1, "tcp")) and e[0] != "ESTABLISHED" and e, 10,
                             what="the connection closing")
    print(f"\nMEASURE closing entry {state} {left_s} s")
    assert state in ("FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT") and left_s <= TCPFIN_S, (state, left_s)
