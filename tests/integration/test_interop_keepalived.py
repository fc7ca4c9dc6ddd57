"""Interop with real keepalived (Debian's 2.2.7) in the same VRID: v2 multicast, v2 unicast with PASS
authentication, v3 over IPv4, v3 over IPv6. In each mode and in both directions (hanode higher, keepalived
higher) the mixed pair elects the right master, fails over when the master stops, and the master preempts
back when it returns. Neither side complains about the other's packets."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from hanode.lab.lab import Host, Lab
from hanode.lab.procs import wait_for
from helpers_vrrp import (PASSWORD, VIP4, VIP6, inst, keepalived_complaints, keepalived_conf, link_local,
                          master_down_s, new_lab, single, wait_sole_holder, wait_state)

pytestmark = pytest.mark.netns

HIGH, LOW = 150, 100
ERROR_COUNTERS = ("packet_len_err", "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err",
                  "invalid_authtype", "authtype_mismatch", "auth_failure", "vers_err", "chk_err")


@dataclass(frozen=True)
class Mode:
    version: int
    advert_int: float
    vip: str
    unicast: bool = False
    password: str | None = None
    checksum_form: str = "rfc"  # how keepalived's adverts checksum, as hanode sees it


MODES = {
    "v2-multicast": Mode(2, 1, VIP4),
    "v2-unicast-pass": Mode(2, 1, VIP4, unicast=True, password=PASSWORD),
    "v3-ipv4": Mode(3, 0.3, VIP4, checksum_form="pseudo"),  # keepalived's v3 IPv4 form: with a pseudo-header
    "v3-ipv6": Mode(3, 0.3, VIP6, checksum_form="ipv6"),
}


class Side:
    """One node of the pair, running hanode or keepalived; stop() and start() again at will."""

    def __init__(self, lab: Lab, host: Host, peer: Host, software: str, priority: int, mode: Mode):
        self.lab, self.host, self.peer, self.software, self.priority, self.mode = lab, host, peer, software, priority, mode
        self.handle = None
        self.keepalived_logs: list[str] = []

    @property
    def address(self) -> str:
        """The advert source address: the primary IPv4 address, or the link-local one for IPv6."""
        return link_local(self.host) if self.mode.vip == VIP6 else self.host.ipv4

    def start(self) -> None:
        m = self.mode
        unicast = dict(unicast_src=self.host.ipv4, unicast_peers=(self.peer.ipv4,)) if m.unicast else {}
        if self.software == "keepalived":
            conf = keepalived_conf(self.host.name, self.priority, version=m.version, advert_int=m.advert_int,
                                   vips=(m.vip,), password=m.password, **unicast)
            self.handle = self.lab.start_keepalived(self.host, conf)
            return
        extra = {}
        if m.unicast:
            extra.update(unicast_src_ip=self.host.ipv4, unicast_peers=[self.peer.ipv4])
        if m.password:
            extra["authentication"] = {"auth_type": "PASS", "auth_pass": m.password}
        self.handle = self.lab.start_agent(self.host, single(self.host.name, self.priority, version=m.version,
                                                             advert_int=m.advert_int, vips=(m.vip,), **extra))

    def stop(self) -> None:
        assert self.handle.stop() == 0
        if self.software == "keepalived":
            self.keepalived_logs.append(self.handle.log_text())

    def complaints(self) -> list[str]:
        if self.software != "keepalived":
            return []
        texts = self.keepalived_logs + ([self.handle.log_text()] if self.handle.running else [])
        return [line for text in texts for line in keepalived_complaints(text)]


def _hanode(sides: list[Side]) -> Side:
    return next(s for s in sides if s.software == "hanode")


def _master_is(lab: Lab, master: Side, backup: Side, sniffer) -> None:
    """The master alone holds the VIP, hanode agrees, and the wire carries only the master's adverts."""
    m = master.mode
    wait_sole_holder(lab.nodes, m.vip, master.host, timeout=20)
    hanode = _hanode([master, backup])
    if not hanode.handle.running:
        pass  # hanode is the stopped one: the VIP and the wire tell
    elif hanode is master:
        entry = wait_state(hanode.handle, "MASTER", timeout=10)
    else:
        entry = wait_for(lambda: (e := inst(hanode.handle))["state"] == "BACKUP" and
                         e["master_address"] == master.address and e, 10 + 4 * m.advert_int,
                         what=f"hanode to follow {master.software}")
        assert entry["master_priority"] == master.priority
    since = time.monotonic()
    ours = sniffer.wait_for_adverts(2, timeout=10 * m.advert_int + 5, src=master.address, since=since)
    assert {a.priority for a in ours} == {master.priority}
    # Only the master advertises (the sniffer timestamps on reading: allow it 0.2 s of lag for the last
    # advert the other side sent before it stepped down).
    others = [a for a in sniffer.adverts(vrid=51, since=since + 0.2) if a.src != master.address]
    assert others == [], others
    wait_sole_holder(lab.nodes, m.vip, master.host, timeout=1)  # still (no flip while we watched)


@pytest.mark.parametrize("direction", ["hanode-higher", "keepalived-higher"])
@pytest.mark.parametrize("mode_name", list(MODES))
def test_mixed_pair_elects_fails_over_and_preempts_back(lab_factory, mode_name, direction):
    mode = MODES[mode_name]
    lab = new_lab(lab_factory, nodes=2, clients=0)
    n1, n2 = lab.nodes
    soft_high, soft_low = ("hanode", "keepalived") if direction == "hanode-higher" else ("keepalived", "hanode")
    high = Side(lab, n1, n2, soft_high, HIGH, mode)
    low = Side(lab, n2, n1, soft_low, LOW, mode)
    hanode = _hanode([high, low])
    sniffer = lab.sniff_vrrp()
    high.start()
    low.start()
    _master_is(lab, high, low, sniffer)
    if mode.unicast:
        sent = [f for f in sniffer.frames if f["src"] == high.address]
        assert sent and {f["dst"] for f in sent} == {low.host.ipv4}, "unicast adverts go to the peer only"

    # The master stops: priority 0 on the wire, the backup takes over after its Skew_Time.
    stopped_at = time.monotonic()
    high.stop()
    zero = wait_for(lambda: [a for a in sniffer.adverts(src=high.address, since=stopped_at) if a.priority == 0], 5,
                    what=f"a priority-0 advert from {high.software}")
    _master_is(lab, low, high, sniffer)
    takeover = sniffer.adverts(src=low.address, since=zero[0].t)[0]
    handover_s = takeover.t - zero[0].t
    print(f"\nMEASURE interop {mode_name} {high.software}->{low.software} handover {handover_s * 1000:.1f} ms")
    assert handover_s < master_down_s(LOW, mode.advert_int, mode.version)  # well before a timeout would
    if hanode is low:
        assert inst(hanode.handle)["stats"]["pri_zero_rcvd"] == 1

    # The master returns and preempts back.
    high.start()
    _master_is(lab, high, low, sniffer)

    entry = inst(hanode.handle)
    peer = entry["peers"][(low if hanode is high else high).address]
    assert {k: entry["stats"][k] for k in ERROR_COUNTERS} == dict.fromkeys(ERROR_COUNTERS, 0)
    assert peer["checksum_form"] == mode.checksum_form
    assert entry["stats"]["advert_rcvd"] > 0
    for side in (high, low):
        assert side.complaints() == [], f"{side.software} on {side.host.name} complained"
    ka = high if high.software == "keepalived" else low
    assert "Entering MASTER STATE" in "".join(ka.keepalived_logs) + ka.handle.log_text()
