"""Capture VRRP adverts, gratuitous ARPs and unsolicited NAs sent by a real keepalived.

Writes agent/tests/unit/golden/keepalived_<version>.json, which test_packet.py and
test_garp.py replay. Never run by the test suite. Needs root, iproute2 and keepalived:

    sudo .venv/bin/python scripts/capture_keepalived_golden.py [--output PATH] [--timeout-s 30]

Two namespaces pk-<random>-a / pk-<random>-b joined by a veth pair; keepalived runs in
"a" with the instances in INSTANCES; an AF_PACKET socket in "b" records what arrives.
Expected fields come from the configuration below, never from hanode's decoder.
Namespaces and keepalived are always removed (try/finally).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPO / "agent/tests/unit/golden"

IF_A, IF_B = "va", "vb"
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
V4_A, V4_B = "198.51.100.1", "198.51.100.2"
V6_A, V6_B = "2001:db8:100::1", "2001:db8:100::2"
PASSWORD = "hapass1"  # 7 bytes: shows keepalived's NUL padding to 8

# name -> keepalived settings and what the advert must decode to
INSTANCES = {
    "v2_multicast_pass": dict(
        version=2, vrid=51, priority=150, advert_int="1", max_advert_int_cs=100, family=4,
        vips=["198.51.100.10", "198.51.100.11"], auth=PASSWORD, checksum_form="rfc", dst="224.0.0.18",
    ),
    "v3_ipv4_multicast": dict(
        version=3, vrid=52, priority=120, advert_int="0.5", max_advert_int_cs=50, family=4,
        vips=["198.51.100.20"], checksum_form="pseudo", dst="224.0.0.18",
    ),
    "v3_ipv6_multicast": dict(
        version=3, vrid=53, priority=200, advert_int="0.3", max_advert_int_cs=30, family=6,
        vips=["2001:db8:100::20", "2001:db8:100::21"], checksum_form="ipv6", dst="ff02::12",
    ),
    "v2_unicast": dict(
        version=2, vrid=54, priority=100, advert_int="1", max_advert_int_cs=100, family=4,
        vips=["198.51.100.40"], unicast=True, checksum_form="rfc", dst=V4_B,
    ),
    "v2_ipv6_multicast": dict(
        version=2, vrid=55, priority=90, advert_int="1", max_advert_int_cs=100, family=6,
        vips=["2001:db8:100::50"], checksum_form="ipv6", dst="ff02::12",
    ),
    "v3_ipv4_unicast": dict(
        version=3, vrid=56, priority=110, advert_int="1", max_advert_int_cs=100, family=4,
        vips=["198.51.100.60"], unicast=True, checksum_form="pseudo", dst=V4_B,
    ),
    "v3_ipv4_unicast_old_checksum": dict(
        version=3, vrid=57, priority=111, advert_int="1", max_advert_int_cs=100, family=4,
        vips=["198.51.100.70"], unicast=True, old_unicast_checksum=True, checksum_form="pseudo_mcast", dst=V4_B,
    ),
}


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def netns_exec(ns: str, *argv: str) -> None:
    run("ip", "netns", "exec", ns, *argv)


# --- lab --------------------------------------------------------------------


def create_lab(ns_a: str, ns_b: str) -> None:
    for ns in (ns_a, ns_b):
        run("ip", "netns", "add", ns)
        netns_exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        run("ip", "-n", ns, "link", "set", "lo", "up")
    # Forwarding on in "a": keepalived then sets the Router flag in its NAs.
    netns_exec(ns_a, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    run("ip", "-n", ns_a, "link", "add", IF_A, "address", MAC_A, "type", "veth",
        "peer", "name", IF_B, "address", MAC_B, "netns", ns_b)
    for ns, ifname, v4, v6 in ((ns_a, IF_A, V4_A, V6_A), (ns_b, IF_B, V4_B, V6_B)):
        run("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", ifname)
        run("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", ifname, "nodad")
        run("ip", "-n", ns, "link", "set", ifname, "up")


def remove_lab(ns_a: str, ns_b: str) -> None:
    for ns in (ns_a, ns_b):
        run("ip", "netns", "del", ns, check=False)


def link_local_of(ns: str, ifname: str) -> str:
    out = run("ip", "-n", ns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link").stdout
    return out.split()[3].split("/")[0]


# --- keepalived ------------------------------------------------------------


def instance_config(name: str, spec: dict) -> str:
    lines = [
        f"vrrp_instance {name} {{",
        "    state BACKUP",
        f"    interface {IF_A}",
        f"    version {spec['version']}",
        f"    virtual_router_id {spec['vrid']}",
        f"    priority {spec['priority']}",
        f"    advert_int {spec['advert_int']}",
    ]
    if spec.get("auth"):
        lines += ["    authentication {", "        auth_type PASS", f"        auth_pass {spec['auth']}", "    }"]
    if spec.get("unicast"):
        lines += [f"    unicast_src_ip {V4_A}", "    unicast_peer {", f"        {V4_B}", "    }"]
    if spec.get("old_unicast_checksum"):
        lines.append("    old_unicast_checksum")
    prefix = 24 if spec["family"] == 4 else 64
    lines += ["    virtual_ipaddress {"] + [f"        {vip}/{prefix}" for vip in spec["vips"]] + ["    }", "}"]
    return "\n".join(lines)


def keepalived_config() -> str:
    head = "global_defs {\n    router_id pk_golden\n    vrrp_garp_master_delay 0\n}\n"
    return head + "\n".join(instance_config(name, spec) for name, spec in INSTANCES.items()) + "\n"


def keepalived_version() -> str:
    out = run("keepalived", "--version", check=False)
    first = (out.stdout + out.stderr).split()
    return first[1].lstrip("v") if len(first) > 1 else "unknown"


def start_keepalived(ns: str, workdir: Path) -> subprocess.Popen:
    conf = workdir / "keepalived.conf"
    conf.write_text(keepalived_config())
    argv = ["ip", "netns", "exec", ns, "keepalived", "-n", "-l", "-D", "-f", str(conf),
            "-p", str(workdir / "keepalived.pid"), "-r", str(workdir / "vrrp.pid")]
    log = open(workdir / "keepalived.log", "w")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_keepalived(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- capture (runs inside namespace b) ---------------------------------------


def sniff(ifname: str) -> None:
    """Child mode: print every frame seen on ifname as one hex line."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind((ifname, 0))
    print("ready", flush=True)
    while True:
        frame, addr = sock.recvfrom(65535)
        if addr[2] != socket.PACKET_OUTGOING:
            print(frame.hex(), flush=True)


def start_sniffer(ns: str) -> subprocess.Popen:
    argv = ["ip", "netns", "exec", ns, sys.executable, str(Path(__file__).resolve()), "--sniff", IF_B]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("sniffer did not start")
    return proc


def ip_text(raw: bytes) -> str:
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw)


def classify(frame: bytes) -> tuple[str, dict] | None:
    """('advert', record) / ('garp', record) / ('na', record) for frames from keepalived."""
    src_mac = ":".join(f"{b:02x}" for b in frame[6:12])
    if src_mac != MAC_A or len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    body = frame[14:]
    if ethertype == 0x0806 and len(body) >= 28 and body[14:18] == body[24:28]:  # sender ip == target ip
        return "garp", {"ip": ip_text(body[14:18]), "src_mac": src_mac, "frame_hex": frame.hex()}
    if ethertype == 0x0800 and body[9] == 112:
        ihl = (body[0] & 0x0F) * 4
        total = struct.unpack_from("!H", body, 2)[0]
        datagram = body[:total]
        return "advert", {
            "family": 4, "src": ip_text(body[12:16]), "dst": ip_text(body[16:20]), "ttl": body[8],
            "datagram_hex": datagram.hex(), "vrrp_hex": datagram[ihl:].hex(),
        }
    if ethertype == 0x86DD and len(body) >= 40:
        payload_len, next_header, hop_limit = struct.unpack_from("!HBB", body, 4)
        payload = body[40 : 40 + payload_len]
        record = {"src": ip_text(body[8:24]), "dst": ip_text(body[24:40]), "hop_limit": hop_limit}
        if next_header == 112:
            return "advert", {"family": 6, **record, "ttl": hop_limit, "vrrp_hex": payload.hex()}
        if next_header == 58 and payload[:1] == b"\x88":
            return "na", {"ip": ip_text(payload[8:24]), "src_mac": src_mac, **record,
                          "icmpv6_hex": payload.hex(), "frame_hex": frame.hex()}
    return None


def instance_for(record: dict) -> str | None:
    vrid = bytes.fromhex(record["vrrp_hex"])[1]
    for name, spec in INSTANCES.items():
        if spec["vrid"] == vrid and spec["family"] == record["family"]:
            return name
    return None


def collect(sniffer: subprocess.Popen, timeout_s: float) -> dict:
    adverts: dict[str, dict] = {}
    garps: dict[str, dict] = {}
    nas: dict[str, dict] = {}
    want_v4 = {v for s in INSTANCES.values() if s["family"] == 4 for v in s["vips"]}
    want_v6 = {v for s in INSTANCES.values() if s["family"] == 6 for v in s["vips"]}
    selector = selectors.DefaultSelector()
    selector.register(sniffer.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(adverts) == len(INSTANCES) and set(garps) >= want_v4 and set(nas) >= want_v6:
            break
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            continue
        line = sniffer.stdout.readline()
        if not line:
            break
        found = classify(bytes.fromhex(line.strip()))
        if found is None:
            continue
        kind, record = found
        if kind == "advert":
            name = instance_for(record)
            # Skip priority-0 adverts; keep the first advert of each instance.
            if name and name not in adverts and bytes.fromhex(record["vrrp_hex"])[2] != 0:
                adverts[name] = record
        elif kind == "garp":
            garps.setdefault(record["ip"], record)
        elif kind == "na":
            nas.setdefault(record["ip"], record)
    return {"adverts": adverts, "garps": garps, "nas": nas}


# --- output -----------------------------------------------------------------


def expected_fields(spec: dict) -> dict:
    auth_data = b""
    if spec["version"] == 2 and spec["family"] == 4:
        auth_data = spec.get("auth", "").encode()[:8].ljust(8, b"\x00")
    return {
        "version": spec["version"], "vrid": spec["vrid"], "priority": spec["priority"],
        "max_advert_int_cs": spec["max_advert_int_cs"], "addresses": spec["vips"],
        "auth_type": 1 if spec.get("auth") else 0, "auth_data_hex": auth_data.hex(),
        "checksum_form": spec["checksum_form"],
    }


def golden_document(version: str, captured: dict, link_local_a: str) -> dict:
    adverts = []
    for name, spec in INSTANCES.items():
        record = captured["adverts"].get(name)
        if record is None:
            continue
        adverts.append({"name": name, **record, "expected": expected_fields(spec)})
    return {
        "keepalived_version": version,
        "generated_by": "scripts/capture_keepalived_golden.py",
        "sender": {"mac": MAC_A, "ipv4": V4_A, "ipv6": V6_A, "link_local": link_local_a,
                   "ipv6_forwarding": True},
        "instances": {name: instance_config(name, spec) for name, spec in INSTANCES.items()},
        "adverts": adverts,
        "garps": sorted(captured["garps"].values(), key=lambda r: r["ip"]),
        "unsolicited_nas": sorted(captured["nas"].values(), key=lambda r: r["ip"]),
    }


def capture(output: Path, timeout_s: float) -> int:
    suffix = secrets.token_hex(3)
    ns_a, ns_b = f"pk-{suffix}-a", f"pk-{suffix}-b"
    keepalived = sniffer = None
    with tempfile.TemporaryDirectory(prefix="pk-golden-") as tmp:
        workdir = Path(tmp)
        try:
            create_lab(ns_a, ns_b)
            link_local_a = link_local_of(ns_a, IF_A)
            sniffer = start_sniffer(ns_b)
            keepalived = start_keepalived(ns_a, workdir)
            captured = collect(sniffer, timeout_s)
        finally:
            if keepalived is not None:
                stop_keepalived(keepalived)
            if sniffer is not None and sniffer.poll() is None:
                os.killpg(sniffer.pid, signal.SIGTERM)
                sniffer.wait()
            remove_lab(ns_a, ns_b)
            log = workdir / "keepalived.log"
            log_text = log.read_text() if log.exists() else ""
    missing = sorted(set(INSTANCES) - set(captured["adverts"]))
    document = golden_document(keepalived_version(), captured, link_local_a)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {output}: {len(document['adverts'])} adverts, {len(document['garps'])} GARPs, "
          f"{len(document['unsolicited_nas'])} NAs")
    if missing:
        print(f"missing adverts for: {', '.join(missing)}\n--- keepalived log ---\n{log_text}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    parser.add_argument("--sniff", metavar="IFNAME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sniff:
        sniff(args.sniff)
        return 0
    output = args.output or DEFAULT_OUTPUT_DIR / f"keepalived_{keepalived_version()}.json"
    return capture(output, args.timeout_s)


if __name__ == "__main__":
    sys.exit(main())
