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
    else:
        lines.append("no VRRP instances")
    for name, group in sorted(status.get("sync_groups", {}).items()):
        lines.append(f"sync group {name}: {group['state']} ({', '.join(group['members'])})")
    for server in status.get("virtual_servers", []) or []:
        lines.append(f"virtual server {server.get('name', '?')}: {server.get('summary', '')}")
    last = config.get("last_reload")
    if last and not last.get("ok"):
        lines.append("last reload REFUSED: " + "; ".join(last.get("errors", [])))
    return "\n".join(lines)
