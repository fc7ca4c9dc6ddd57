"""The VRRP demo on the namespace lab: two hanode agents, a client, a VIP that moves when the master stops.

Run through `make demo-vrrp`; the lab stays up afterwards so you can look around, and the last lines
say how to remove it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from hanode.lab.lab import Lab

VIP = "198.51.100.100"
HANODE = os.path.join(os.path.dirname(sys.executable), "hanode")


def config(host, priority: int) -> dict:
    return {
        "router_id": host.name,
        "control_socket": str(host.control_socket),
        "vrrp_instances": {"VI_1": {
            "interface": "eth0", "virtual_router_id": 51, "priority": priority, "advert_int": 1,
            "authentication": {"auth_type": "PASS", "auth_pass": "demo"},
            "virtual_ipaddresses": [f"{VIP}/24 dev eth0 label eth0:vip"],
        }},
    }


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def show_status(host) -> None:
    print(f"--- hanode status on {host.name} ({host.netns})", flush=True)
    subprocess.run([HANODE, "status", "--socket", str(host.control_socket)], check=False)


def state(agent) -> str:
    try:
        return agent.status()["instances"]["VI_1"]["state"]
    except Exception:  # noqa: BLE001 - the agent may be starting or stopped
        return "?"


def main() -> int:
    lab = Lab(nodes=2, clients=1, persistent=True).up()
    n1, n2 = lab.nodes
    client = lab.clients[0]
    banner(f"lab {lab.prefix}: {n1.name} {n1.ipv4} (priority 150), {n2.name} {n2.ipv4} (priority 100), "
           f"client {client.ipv4}; VIP {VIP}")
    agents = {n1.name: lab.start_agent(n1, config(n1, 150)), n2.name: lab.start_agent(n2, config(n2, 100))}
    lab.wait_for(lambda: state(agents[n1.name]) == "MASTER" and state(agents[n2.name]) == "BACKUP",
                 timeout=15, what=f"{n1.name} MASTER and {n2.name} BACKUP")
    banner("election done")
    show_status(n1)
    show_status(n2)
    lab.wait_reachable(client, VIP, timeout=5)
    print(f"client reaches {VIP}; its neighbour entry: {lab.neighbour(client, VIP)} ({n1.name} is {n1.mac})")

    banner(f"stopping the master's agent on {n1.name} (SIGTERM: priority-0 advert, VIP released)")
    started = time.monotonic()
    agents[n1.name].stop()
    lab.wait_for(lambda: state(agents[n2.name]) == "MASTER", timeout=10, what=f"{n2.name} MASTER")
    print(f"{n2.name} became MASTER {time.monotonic() - started:.3f} s after the stop")
    show_status(n2)
    print(f"VIP on {n1.name}: {n1.has_address(VIP)}   VIP on {n2.name}: {n2.has_address(VIP)}")
    lab.wait_reachable(client, VIP, timeout=5)
    print(f"client reaches {VIP}; its neighbour entry: {lab.neighbour(client, VIP)} ({n2.name} is {n2.mac})")

    banner("the lab stays up so you can look around, e.g.:")
    print(f"  ip netns exec {n2.netns} ip addr show eth0")
    print(f"  {HANODE} status --socket {n2.control_socket}")
    print(f"  {HANODE} events --socket {n2.control_socket}")
    print(f"remove it with:  {HANODE} lab down {lab.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
