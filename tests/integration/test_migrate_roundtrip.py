"""Round trip on the wire: real keepalived with the original keepalived.conf in one namespace lab, hanode with the
config `hanode import-keepalived` made from it in another; the same node must become master and the same VIPs
(address, prefix, dev, label, scope, broadcast) must be on it, also after a health check fails or a link drops.

The load-balancer samples cannot run here (this kernel has no IPVS and keepalived's checker exits without it):
their virtual_server blocks are compared field by field with the kernel table the agent would program
(hanode.lvs.desired, the planner's input); the IPVS table itself is compared in the issue-3 UML harness.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from hanode.config.load import load_config
from hanode.lab import netns
from hanode.lab.procs import hanode_argv, python_env
from hanode.lvs.desired import desired_state
from hanode.lvs.kernel import SVC_F_PERSISTENT
from hanode.migrate.keepalived import parse_text

SAMPLES = Path(__file__).parent / "keepalived_configs"
SETTLE_S = 5.0      # a placement must hold this long (> Master_Down_Interval of 3.6 s at advert_int 1)
DEADLINE_S = 45.0


# ----- helpers ----------------------------------------------------------------------------------------------

@pytest.fixture
def workdir():
    """A root-owned directory outside /tmp for flag files and script stubs (keepalived's and hanode's script
    security both refuse scripts under directories others can write)."""
    path = Path(tempfile.mkdtemp(prefix="kimp-", dir="/run"))
    path.chmod(0o755)
    (path / "bin").mkdir()
    (path / "state").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def lab_addresses(text: str) -> str:
    """The Debian samples' 192.168.200.N / 192.168.201.N as lab addresses 198.51.100.(100+N) / 203.0.113.(200+N)."""
    text = re.sub(r"192\.168\.200\.(\d+)", lambda m: f"198.51.100.{100 + int(m.group(1))}", text)
    return re.sub(r"192\.168\.201\.(\d+)", lambda m: f"203.0.113.{200 + int(m.group(1))}", text)


def stage(text: str, workdir: Path) -> str:
    """Script paths under /usr/local/bin point at stubs in workdir/bin; @STATE@ at workdir/state. Scripts run as
    root in both (`script_user root`: this host has no keepalived_script user, and hanode runs scripts as root
    only when the config says so)."""
    for name in set(re.findall(r"/usr/local/bin/([\w.-]+)", text)):
        stub = workdir / "bin" / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    if "script_user" not in text:
        text += "\nglobal_defs {\n    script_user root\n}\n"
    return text.replace("/usr/local/bin/", f"{workdir}/bin/").replace("@STATE@", str(workdir / "state"))


def imported(text: str, workdir: Path, name: str, complete: bool = True) -> dict:
    """`hanode import-keepalived` on the text and `hanode check-config` on the result; complete: nothing may be
    left out (the VRRP shapes), else the output still has to pass check-config."""
    conf, out = workdir / f"{name}.conf", workdir / f"{name}.yaml"
    conf.write_text(text)
    proc = subprocess.run(hanode_argv() + ["import-keepalived", str(conf), "-o", str(out)], capture_output=True,
                          text=True, env=python_env(), timeout=60, check=False)
    assert proc.returncode == (0 if complete else 3) or not complete and proc.returncode == 0, proc.stderr
    check = subprocess.run(hanode_argv() + ["check-config", str(out)], capture_output=True, text=True,
                           env=python_env(), timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    return yaml.safe_load(out.read_text())


def addresses(host) -> set[tuple]:
    """(dev, address/prefix, label, scope, broadcast) of every address of the host; label None when it is the dev."""
    out = set()
    for link in netns.ip_json(host.netns, "addr", "show"):
        for info in link.get("addr_info", []):
            label = info.get("label")
            out.add((link["ifname"], f"{info['local']}/{info['prefixlen']}",
                     None if label in (None, link["ifname"]) else label, info.get("scope"), info.get("broadcast")))
    return out


class Pair:
    """Two lab nodes (n1, n2) running either keepalived or hanode, and their VIPs."""

    def __init__(self, lab, kind: str):
        self.lab, self.kind = lab, kind
        self.baseline = {h.name: addresses(h) for h in lab.nodes}
        self.handles = {}

    def start(self, node: str, config):
        if self.kind == "keepalived":
            self.handles[node] = self.lab.start_keepalived(node, config)
        else:
            self.handles[node] = self.lab.start_agent(node, config, timeout=30)

    def placement(self) -> dict:
        for name, handle in self.handles.items():
            if not handle.running:
                raise handle.failure(f"{self.kind} on {name} exited with {handle.returncode}")
        return {h.name: sorted(addresses(h) - self.baseline[h.name]) for h in self.lab.nodes}

    def states(self) -> dict:
        """hanode only: instance -> {node: state}."""
        out = {}
        for name, handle in self.handles.items():
            for inst, data in handle.status()["instances"].items():
                out.setdefault(inst, {})[name] = data["state"]
        return out


def settle(*pairs: Pair) -> list[dict]:
    """Waits until every pair's VIP placement has not changed for SETTLE_S and no VIP is on two nodes at once."""
    deadline = time.monotonic() + DEADLINE_S
    last = [None] * len(pairs)
    since = [0.0] * len(pairs)
    while True:
        now = time.monotonic()
        for i, pair in enumerate(pairs):
            current = pair.placement()
            held = [a[1] for vips in current.values() for a in vips]
            if current != last[i] or len(held) != len(set(held)):
                last[i], since[i] = current, now
        if all(now - s >= SETTLE_S for s in since):
            return last
        if now > deadline:
            raise AssertionError("VIPs did not settle: " + "; ".join(f"{p.kind}: {last[i]}" for i, p in enumerate(pairs)))
        time.sleep(0.2)


def masters(states: dict) -> dict:
    out = {}
    for inst, per_node in states.items():
        owners = [node for node, state in per_node.items() if state == "MASTER"]
        assert len(owners) == 1, f"{inst}: {per_node}"
        out[inst] = owners[0]
    return out


@pytest.fixture
def pairs(lab_factory):
    def make():
        # one real server so that the nodes get their backend port (eth1)
        return (Pair(lab_factory(nodes=2, clients=0, real_servers=1), "keepalived"),
                Pair(lab_factory(nodes=2, clients=0, real_servers=1), "hanode"))
    return make


def run_both(pairs, workdir: Path, texts: dict, complete: bool = True) -> tuple[Pair, Pair]:
    """n1 starts first in both labs and is left to settle, then n2: the same order and the same moment for both
    implementations (which node starts first decides an election between equal priorities, for keepalived too)."""
    keepalived, hanode = pairs()
    staged = {node: stage(text, workdir) for node, text in texts.items()}
    configs = {node: imported(text, workdir, node, complete) for node, text in staged.items()}
    for i, node in enumerate(("n1", "n2")):
        hanode.start(node, configs[node])
        keepalived.start(node, staged[node])
        if i == 0:
            settle(keepalived, hanode)
    return keepalived, hanode


def same_on_the_wire(keepalived: Pair, hanode: Pair, moved_from: dict | None = None) -> dict:
    """The settled placement, the same for both. With moved_from (the placement before an event), first waits until
    both implementations have left it: a change can take longer than SETTLE_S to begin (a tracking script's fall
    count, then Master_Down_Interval), and an unchanged placement would otherwise look settled."""
    if moved_from is not None:
        wait_until_moved(moved_from, keepalived, hanode)
    k_place, h_place = settle(keepalived, hanode)
    assert h_place == k_place, f"keepalived: {k_place}\nhanode:     {h_place}"
    return h_place


def wait_until_moved(before: dict, *pairs: Pair) -> None:
    deadline = time.monotonic() + DEADLINE_S
    waiting = list(pairs)
    while waiting:
        waiting = [pair for pair in waiting if pair.placement() == before]
        if waiting and time.monotonic() > deadline:
            raise AssertionError(f"VIPs never left {before}: " + ", ".join(p.kind for p in waiting))
        time.sleep(0.2)


def cidrs(placement: dict) -> dict:
    return {node: sorted(v[1] for v in vips) for node, vips in placement.items()}


# ----- VRRP shapes on the wire --------------------------------------------------------------------------------

pytestmark_netns = pytest.mark.netns


@pytestmark_netns
def test_quickstart_active_active(pairs, workdir):
    texts = {n: (SAMPLES / f"quickstart/node{n[1]}.conf").read_text() for n in ("n1", "n2")}
    keepalived, hanode = run_both(pairs, workdir, texts)
    placement = same_on_the_wire(keepalived, hanode)
    assert cidrs(placement) == {"n1": ["198.51.100.100/24", "198.51.100.101/24"], "n2": ["198.51.100.102/24"]}
    assert ("eth0", "198.51.100.101/24", "eth0:web", "global", None) in placement["n1"]
    assert masters(hanode.states()) == {"VI_1": "n1", "VI_2": "n2"}


@pytestmark_netns
def test_debian_vrrp_sample_on_both_nodes(pairs, workdir):
    """The same file on both nodes: equal priorities, so the node that started first (n1) stays master (an equal
    advert does not preempt); the address listed twice (once with a label) is on the master once, as keepalived's
    second add fails."""
    text = lab_addresses((SAMPLES / "debian/keepalived.conf.vrrp").read_text())
    keepalived, hanode = run_both(pairs, workdir, {"n1": text, "n2": text}, complete=False)
    placement = same_on_the_wire(keepalived, hanode)
    assert placement["n2"] == [] and len(placement["n1"]) == 12
    assert masters(hanode.states()) == {"VI_1": "n1", "VI_2": "n1", "VI_3": "n1", "VI_4": "n1"}


@pytestmark_netns
def test_debian_sync_sample_nine_instances_two_groups(pairs, workdir):
    text = lab_addresses((SAMPLES / "debian/keepalived.conf.vrrp.sync").read_text())
    keepalived, hanode = run_both(pairs, workdir, {"n1": text, "n2": text})
    placement = same_on_the_wire(keepalived, hanode)
    assert placement["n2"] == [] and len(placement["n1"]) == 9
    assert set(masters(hanode.states()).values()) == {"n1"}


@pytestmark_netns
def test_unicast_pair_with_tracking_script_fails_over_like_keepalived(pairs, workdir):
    for node in ("n1", "n2"):
        (workdir / "state" / f"{node}-healthy").touch()
    texts = {n: (SAMPLES / f"unicast-tracking/node{n[1]}.conf").read_text() for n in ("n1", "n2")}
    keepalived, hanode = run_both(pairs, workdir, texts)
    placement = same_on_the_wire(keepalived, hanode)
    assert cidrs(placement) == {"n1": ["198.51.100.110/24"], "n2": []}
    (workdir / "state" / "n1-healthy").unlink()          # n1's backend check fails: 100 - 20 < 90
    placement = same_on_the_wire(keepalived, hanode, moved_from=placement)
    assert cidrs(placement) == {"n1": [], "n2": ["198.51.100.110/24"]}
    assert masters(hanode.states()) == {"VI_0": "n2"}
    (workdir / "state" / "n1-healthy").touch()           # healthy again: n1 preempts back
    assert cidrs(same_on_the_wire(keepalived, hanode, moved_from=placement)) == {"n1": ["198.51.100.110/24"], "n2": []}


@pytestmark_netns
def test_reverse_weights_move_the_master_like_keepalived(pairs, workdir):
    """`weight 20 reverse` on a script: its success (the node is drained) costs 20 points; `weight 1 reverse` on
    a track_file: its value is subtracted. Both implementations move the VIP the same way at each step."""
    state = workdir / "state"
    for node in ("n1", "n2"):
        (state / f"{node}-maint").write_text("0\n")
    texts = {n: (SAMPLES / f"reverse-weights/node{n[1]}.conf").read_text() for n in ("n1", "n2")}
    keepalived, hanode = run_both(pairs, workdir, texts)
    placement = same_on_the_wire(keepalived, hanode)
    assert cidrs(placement) == {"n1": ["198.51.100.120/24"], "n2": []}
    (state / "n1-drain").touch()                        # drained: 100 - 20 < 90
    placement = same_on_the_wire(keepalived, hanode, moved_from=placement)
    assert cidrs(placement) == {"n1": [], "n2": ["198.51.100.120/24"]}
    (state / "n1-drain").unlink()                       # back at 100: n1 preempts
    placement = same_on_the_wire(keepalived, hanode, moved_from=placement)
    assert cidrs(placement) == {"n1": ["198.51.100.120/24"], "n2": []}
    (state / "n1-maint").write_text("15\n")             # 100 - 15 < 90
    placement = same_on_the_wire(keepalived, hanode, moved_from=placement)
    assert cidrs(placement) == {"n1": [], "n2": ["198.51.100.120/24"]}
    assert masters(hanode.states()) == {"VI_R": "n2"}


@pytestmark_netns
def test_sync_group_moves_both_addresses_when_a_link_fails(pairs, workdir):
    texts = {n: (SAMPLES / f"sync-group/node{n[1]}.conf").read_text() for n in ("n1", "n2")}
    keepalived, hanode = run_both(pairs, workdir, texts)
    placement = same_on_the_wire(keepalived, hanode)
    assert cidrs(placement) == {"n1": ["198.51.100.105/24", "203.0.113.205/24"], "n2": []}
    assert ("eth0", "198.51.100.105/24", "eth0:pub", "global", None) in placement["n1"]
    for pair in (keepalived, hanode):
        pair.lab.port_set("n1", "eth1", False)            # n1 loses the private network: the whole group moves
    assert cidrs(same_on_the_wire(keepalived, hanode, moved_from=placement)) == {"n1": [], "n2": ["198.51.100.105/24", "203.0.113.205/24"]}
    states = hanode.states()
    assert {inst: per_node["n1"] for inst, per_node in states.items()} == {"VI_EXT": "FAULT", "VI_INT": "FAULT"}
    assert {inst: per_node["n2"] for inst, per_node in states.items()} == {"VI_EXT": "MASTER", "VI_INT": "MASTER"}


# ----- LVS samples: the table the agent would program, field by field with the keepalived blocks ---------------

LVS_SAMPLES = ["lvs-nat-http/keepalived.conf", "debian/keepalived.conf.sample", "debian/keepalived.conf.quorum",
               "debian/keepalived.conf.fwmark", "debian/keepalived.conf.SSL_GET", "debian/keepalived.conf.inhibit",
               "debian/keepalived.conf.misc_check_arg", "debian/keepalived.conf.status_code",
               "debian/keepalived.conf.UDP_CHECK", "debian/keepalived.conf.PING_CHECK",
               "debian/keepalived.conf.SMTP_CHECK", "debian/keepalived.conf.HTTP_GET.port",
               "debian/keepalived.conf.virtualhost"]
FWD = {"NAT": "NAT", "DR": "DR", "TUN": "TUN"}


def keepalived_table(text: str) -> dict:
    """What keepalived programs at start (no check result yet, no alpha): straight from the blocks, with
    keepalived's own defaults (wlc, NAT, weight 1, UDP without a protocol, real server port = service port)."""
    table = {}
    for vs in parse_text(text, "k.conf").nodes:
        if vs.keyword != "virtual_server" or vs.args[0] == "group":
            continue
        kv = {n.keyword: n.args for n in vs.children if n.children is None}
        proto = (kv.get("protocol") or ["UDP"])[0]
        key = ("fwmark", int(vs.args[1])) if vs.args[0] == "fwmark" else (proto, vs.args[0], int(vs.args[1]))
        port = 0 if vs.args[0] == "fwmark" else int(vs.args[1])
        sched = (kv.get("lb_algo") or kv.get("lvs_sched") or ["wlc"])[0]
        kind = (kv.get("lb_kind") or kv.get("lvs_method") or ["NAT"])[0]
        persistence = int(kv["persistence_timeout"][0]) if "persistence_timeout" in kv else 0
        dests = {}
        for rs in (n for n in vs.children if n.keyword == "real_server"):
            rkv = {n.keyword: n.args for n in rs.children if n.children is None}
            rport = int(rs.args[1]) if len(rs.args) > 1 else port
            dests[(rs.args[0], rport)] = (int((rkv.get("weight") or ["1"])[0]), FWD[kind])
        alpha = "alpha" in kv
        table[key] = (sched, persistence, {} if alpha else dests)
    return table


def hanode_table(config_path: str) -> dict:
    lvs = load_config(config_path).config.sections["lvs"]
    state, _quorum = desired_state(lvs, {})
    table = {}
    for key, entry in state.items():
        tkey = ("fwmark", key.fwmark) if key.fwmark else (key.protocol, key.address, key.port)
        persistence = entry.service.timeout_s if entry.service.flags & SVC_F_PERSISTENT else 0
        dests = {(d.key.address, d.key.port): (d.weight, d.fwd_method) for d in entry.dests.values()}
        table[tkey] = (entry.service.scheduler, persistence, dests)
    return table


@pytest.mark.parametrize("sample", LVS_SAMPLES)
def test_virtual_servers_program_what_keepalived_would(sample, workdir):
    text = (SAMPLES / sample).read_text().replace("/usr/local/sbin/", "/usr/local/bin/")
    imported(stage(text, workdir), workdir, "lvs", complete=False)
    assert hanode_table(str(workdir / "lvs.yaml")) == keepalived_table(text.replace("/usr/local/sbin/", "/usr/local/bin/"))


CHECK_FIELDS = {"connect_timeout": ("connect_timeout_ms", 1000), "delay_before_retry": ("delay_before_retry_ms", 1000),
                "retry": ("retry", 1), "nb_get_retry": ("retry", 1), "connect_port": ("connect_port", 1),
                "delay_loop": ("delay_loop_ms", 1000), "helo_name": ("helo_name", None),
                "misc_timeout": ("misc_timeout_ms", 1000)}


@pytest.mark.parametrize("sample", LVS_SAMPLES)
def test_checkers_keep_every_setting_of_the_original(sample, workdir):
    """Each real server's checkers, in order, with every setting the keepalived block gives."""
    text = (SAMPLES / sample).read_text().replace("/usr/local/sbin/", "/usr/local/bin/")
    imported(stage(text, workdir), workdir, "lvs", complete=False)
    lvs = load_config(str(workdir / "lvs.yaml")).config.sections["lvs"]
    services = [vs for vs in parse_text(text, "k.conf").nodes
                if vs.keyword == "virtual_server" and vs.args[0] != "group"]
    assert len(services) == len(lvs.virtual_servers)
    for vs_node, vs in zip(services, lvs.virtual_servers):
        rs_nodes = [n for n in vs_node.children if n.keyword == "real_server"]
        assert [(n.args[0]) for n in rs_nodes] == [rs.address for rs in vs.real_servers]
        for rs_node, rs in zip(rs_nodes, vs.real_servers):
            expected = []
            for check in (n for n in rs_node.children if n.children is not None):
                hosts = [h for h in check.children if h.keyword == "host"] or [None]
                for host in hosts:
                    fields = {n.keyword: n.args for n in check.children if n.children is None}
                    fields.update({n.keyword: n.args for n in (host.children if host else [])})
                    expected.append((check.keyword, fields, [u for u in check.children if u.keyword == "url"]))
            assert [c.type for c in rs.checks] == [e[0] for e in expected]
            for check, (_kind, fields, urls) in zip(rs.checks, expected):
                for keyword, (attr, scale) in CHECK_FIELDS.items():
                    if keyword in fields:
                        value = fields[keyword][0]
                        want = value if scale is None else round(float(value) * scale)
                        assert getattr(check, attr) == want, (sample, keyword)
                if "connect_ip" in fields:
                    assert check.connect_ip == fields["connect_ip"][0]
                if "misc_path" in fields:
                    assert check.misc_path.split()[0].endswith(Path(fields["misc_path"][0].split()[0]).name)
                for url_node, url in zip(urls, check.urls):
                    ufields = {n.keyword: n.args for n in url_node.children}
                    assert url.path == ufields.get("path", ["/"])[0]
                    if "digest" in ufields:
                        assert url.digest == ufields["digest"][0]
                    if "status_code" in ufields:
                        assert [f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in url.status_codes] == \
                            ufields["status_code"]
                assert len(check.urls) == len(urls) or (not urls and check.type not in ("HTTP_GET", "SSL_GET"))
