"""The readable `hanode status` table (pure)."""

from __future__ import annotations


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def render_status(status: dict) -> str:
    agent = status.get("agent", {})
    config = agent.get("config", {})
    lines = [f"hanode {agent.get('version', '?')} on {agent.get('router_id', '?')}  pid {agent.get('pid')}  "
             f"up {agent.get('uptime_s', 0):.0f}s  config {str(config.get('applied_digest') or '')[:12]}"
             + (f"  (STALE: {', '.join(agent['stale'])} restarting)" if agent.get("stale") else "")]
    instances = status.get("instances", {})
    if instances:
        rows = [["INSTANCE", "STATE", "PRIO", "EFF", "VRID", "IF", "MASTER", "VIPS", "REASON"]]
        for name, inst in sorted(instances.items()):
            reason = "; ".join(inst.get("fault_reasons") or []) or (inst.get("last_transition") or {}).get("reason", "")
            rows.append([name, inst["state"] + (" (drained)" if inst.get("drained") else ""), str(inst["priority"]),
                         str(inst["effective_priority"]), str(inst["virtual_router_id"]), inst.get("interface", ""),
                         str(inst.get("master_address") or "-"), ",".join(v.split()[0] for v in inst.get("vips", [])) or "-",
                         reason])
        lines += [""] + _table(rows)
        for name, inst in sorted(instances.items()):
            lines += _plumbing_lines(name, inst)
    else:
        lines.append("no VRRP instances")
    static = (status.get("vrrp") or {}).get("static") or {}
    lines += _entries_line("static", "addresses, routes and rules",
                           [e for key in ("addresses", "routes", "rules") for e in static.get(key, [])])
    for name, group in sorted(status.get("sync_groups", {}).items()):
        lines.append(f"sync group {name}: {group['state']} ({', '.join(group['members'])})")
    for server in status.get("virtual_servers", []) or []:
        lines.append(f"virtual server {server.get('name', '?')}: {server.get('summary', '')}")
    last = config.get("last_reload")
    if last and not last.get("ok"):
        lines.append("last reload REFUSED: " + "; ".join(last.get("errors", [])))
    return "\n".join(lines)


def _plumbing_lines(name: str, inst: dict) -> list[str]:
    """What the agent made for an instance besides its VIPs: VMACs, virtual routes and rules."""
    lines = []
    for link in (inst.get("vmac") or {}).get("interfaces", []):
        mac = f" {link['mac']}" if link.get("mac") else ""
        error = f": {link['error']}" if link.get("error") else ""
        lines.append(f"{name}: {link['kind']} {link['interface']}{mac} on {link['base']} {link['state']}{error}")
    lines += _entries_line(name, "virtual routes and rules", inst.get("virtual_routes", []) + inst.get("virtual_rules", []))
    return lines


def _entries_line(name: str, what: str, entries: list[dict]) -> list[str]:
    if not entries:
        return []
    added = sum(1 for e in entries if e["state"] == "added")
    problems = [f"{e['entry']}: {e['state']}{' (' + e['error'] + ')' if e.get('error') else ''}"
                for e in entries if e["state"] in ("error", "present")]
    return [f"{name}: {what}: {added} of {len(entries)} added" + ("; " + "; ".join(problems) if problems else "")]
