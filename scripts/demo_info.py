"""Reads `ansible ha_nodes -m hanode.fleet.ha_info` output (default callback, JSON results) on stdin and prints
one line per node and instance, and one per virtual server (scripts/demo_ansible.sh, scripts/demo_hosts.sh)."""

import json
import sys


def main():
    hosts, host, lines = {}, None, []
    for line in sys.stdin.read().splitlines():
        if host is None and " => {" in line:
            host, lines = line.split(" | ")[0], ["{"]
        elif host is not None:
            lines.append(line)
            if line == "}":
                hosts[host], host = json.loads("\n".join(lines)), None
    for host, data in sorted(hosts.items()):
        for name, inst in sorted((data.get("instances") or {}).items()):
            line = "  %-3s %s: %-7s priority %3s  master %-15s vips %s"
            print(line % (host, name, inst["state"], inst["priority"], inst["master_address"], ", ".join(inst["vips"])))
        for vs in data.get("virtual_servers") or []:
            servers = ", ".join("%s %s (weight %s)" % (rs["name"], rs["health"], rs.get("kernel_weight")) for rs in vs["real_servers"])
            print("  %-3s virtual server %s: %s" % (host, vs["name"], servers))


if __name__ == "__main__":
    main()
