"""The README's migration walkthrough, on the wire: a keepalived pair is replaced by hanode node by node, with the
imported configs, without the VIP going off the network for more than milliseconds (hanode speaks the same VRRP, so
mixed keepalived/hanode pairs elect and hand over like pure ones).

Every address change on both nodes is recorded with kernel timestamps (`ip -ts monitor address`), so a gap of a
few milliseconds between one node dropping the VIP and the other taking it would be seen.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from hanode.lab import netns
from hanode.lab.procs import wait_for
from test_migrate_roundtrip import Pair, imported, settle, stage  # same directory (pytest rootdir-relative)

SAMPLES = Path(__file__).parent / "keepalived_configs"
VIP = "198.51.100.110"
CANARY = "127.0.0.2"
EVENT = re.compile(r"^\[(\S+)\] (Deleted )?\d+: (\S+)\s+inet6? (\S+)/")

pytestmark = pytest.mark.netns


class AddressLog:
    """`ip -ts -o monitor address` in each node namespace; who held the VIP when."""

    def __init__(self, lab, holders: set[str]):
        self.events: list[tuple[datetime, str, bool]] = []
        self.initial = set(holders)
        self.lock = threading.Lock()
        self.procs = []
        self.ready: set[str] = set()
        for host in lab.nodes:
            proc = subprocess.Popen(netns.exec_argv(host.netns, ["ip", "-ts", "-o", "monitor", "address"]),
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(host.name, proc), daemon=True).start()
        for host in lab.nodes:   # a canary address on lo, added until the monitor reports it: it is listening
            def heard(host=host) -> bool:
                if host.name not in self.ready:
                    netns.ip(host.netns, "addr", "replace", CANARY + "/8", "dev", "lo")
                    netns.ip(host.netns, "addr", "del", CANARY + "/8", "dev", "lo")
                return host.name in self.ready
            wait_for(heard, 10, interval=0.1, what=f"address monitor on {host.name}")

    def _read(self, node: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            match = EVENT.match(line)
            if match and match.group(4) == CANARY:
                self.ready.add(node)
            elif match and match.group(4) == VIP:
                with self.lock:
                    self.events.append((datetime.fromisoformat(match.group(1)), node, not match.group(2)))

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(5)

    def gaps(self) -> list[float]:
        """Seconds during which no node held the VIP, one entry per such period."""
        holders, gaps, empty_since = set(self.initial), [], None
        with self.lock:
            events = sorted(self.events)
        for when, node, added in events:
            (holders.add if added else holders.discard)(node)
            if not holders and empty_since is None:
                empty_since = when
            elif holders and empty_since is not None:
                gaps.append((when - empty_since).total_seconds())
                empty_since = None
        assert empty_since is None, f"the VIP is on no node since {empty_since}"
        return gaps

    def moves(self) -> int:
        with self.lock:
            return sum(1 for _when, _node, added in self.events if added)


def holder(pair: Pair) -> str:
    owners = [node for node, vips in pair.placement().items() if any(v[1].startswith(VIP + "/") for v in vips)]
    assert len(owners) == 1, owners
    return owners[0]


def set_priority(handle, priority: int) -> None:
    config = yaml.safe_load(handle.config_path.read_text())
    config["vrrp_instances"]["VI_0"]["priority"] = priority
    handle.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    handle.reload()


def wait_holder(pair: Pair, node: str) -> None:
    wait_for(lambda: holder(pair) == node, 30, what=f"{VIP} on {node}")


@pytest.fixture
def workdir():
    """Root-owned, outside /tmp (script security); both nodes' backend checks start healthy."""
    path = Path(tempfile.mkdtemp(prefix="kimp-", dir="/run"))
    path.chmod(0o755)
    for sub in ("bin", "state"):
        (path / sub).mkdir()
    for node in ("n1", "n2"):
        (path / "state" / f"{node}-healthy").touch()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_pair(lab, workdir, kinds: dict) -> tuple[Pair, dict, dict]:
    """n1 then n2 (n1 settles first) with keepalived or hanode per node; the unicast-tracking shape."""
    texts = {n: stage((SAMPLES / f"unicast-tracking/node{n[1]}.conf").read_text(), workdir) for n in ("n1", "n2")}
    configs = {n: imported(text, workdir, n) for n, text in texts.items()}
    pair = Pair(lab, "mixed")
    for node in ("n1", "n2"):
        if kinds[node] == "keepalived":
            pair.handles[node] = lab.start_keepalived(node, texts[node])
        else:
            pair.handles[node] = lab.start_agent(node, configs[node], timeout=30)
        settle(pair)
    assert holder(pair) == "n1"
    return pair, texts, configs


def test_replacing_keepalived_node_by_node_never_leaves_the_vip_unserved(lab_factory, workdir):
    """README walkthrough: replace the backup, move the master role to hanode by priority, replace the old master,
    give the priorities back. The VIP never moves while a backup is replaced; the two handovers by preemption leave
    it on no node for at most a few milliseconds, never the Skew_Time of a stop. (hanode, like keepalived, adds the
    VIPs before its first advert as master, so the two holders overlap.)"""
    lab = lab_factory(nodes=2, clients=0)
    pair, _texts, configs = start_pair(lab, workdir, {"n1": "keepalived", "n2": "keepalived"})
    # 1. the backup: stop keepalived, start hanode with the imported config; the keepalived master stays
    log = AddressLog(lab, {"n1"})
    pair.handles.pop("n2").stop()
    agent2 = pair.handles["n2"] = lab.start_agent("n2", configs["n2"], timeout=30)
    wait_for(lambda: agent2.status()["instances"]["VI_0"]["master_address"] == "198.51.100.11", 30,
             what="hanode on n2 hearing keepalived on n1")
    assert agent2.status()["instances"]["VI_0"]["state"] == "BACKUP"
    settle(pair)
    log.stop()
    assert holder(pair) == "n1" and log.moves() == 0
    # 2. hanode on n2 takes the master role from keepalived by priority (preemption, not a stop)
    log = AddressLog(lab, {"n1"})
    set_priority(agent2, 110)
    wait_holder(pair, "n2")
    settle(pair)
    log.stop()
    takeover = log.gaps()
    assert log.moves() == 1 and all(g < 0.02 for g in takeover)
    # 3. the old master, now a backup, is replaced; the VIP stays on n2
    log = AddressLog(lab, {"n2"})
    pair.handles.pop("n1").stop()
    agent1 = pair.handles["n1"] = lab.start_agent("n1", configs["n1"], timeout=30)
    wait_for(lambda: agent1.status()["instances"]["VI_0"]["state"] == "BACKUP", 30, what="hanode n1 BACKUP")
    # 4. n2 gets its own priority back and n1 (100) preempts, as keepalived's n1 was master at the start
    set_priority(agent2, 90)
    wait_holder(pair, "n1")
    [final] = settle(pair)
    log.stop()
    assert [v[1] for v in final["n1"]] == [f"{VIP}/24"] and final["n2"] == []
    assert log.moves() == 1
    handback = log.gaps()
    print(f"\nVIP on no node: keepalived -> hanode {[round(g * 1000, 2) for g in takeover]} ms, "
          f"hanode -> hanode {[round(g * 1000, 2) for g in handback]} ms")
    assert all(g < 0.02 for g in handback)


def test_stopping_a_keepalived_master_hands_over_to_hanode_within_skew_time(lab_factory, workdir):
    """The plain way (stop keepalived on the master) also works across implementations; the VIP is then off the
    network for about Skew_Time of the backup ((256 - 90) / 256 = 0.65 s), which the walkthrough avoids."""
    lab = lab_factory(nodes=2, clients=0)
    pair = start_pair(lab, workdir, {"n1": "keepalived", "n2": "hanode"})[0]
    log = AddressLog(lab, {"n1"})
    pair.handles.pop("n1").stop()
    wait_holder(pair, "n2")
    log.stop()
    [gap] = log.gaps()
    print(f"\nkeepalived master stopped -> hanode backup took {VIP} after {gap * 1000:.0f} ms")
    assert 0.3 < gap < 1.5
