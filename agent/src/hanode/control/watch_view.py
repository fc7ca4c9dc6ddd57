"""The live `hanode status --watch` screen (pure): a status document in, lines of text out, with ANSI colour
for VRRP states and real-server health when asked. The CLI owns the clock, the terminal and the redraw."""

from __future__ import annotations

RESET = "\x1b[0m"
COLOURS = {"MASTER": "\x1b[1;32m", "BACKUP": "\x1b[36m", "FAULT": "\x1b[1;31m", "INIT": "\x1b[33m",
           "STOP": "\x1b[33m", "up": "\x1b[32m", "down": "\x1b[1;31m", "disabled": "\x1b[33m",
           "REFUSED": "\x1b[1;31m", "STALE": "\x1b[33m"}


def paint(text: str, key: str, colour: bool) -> str:
    code = COLOURS.get(key) if colour else None
    return f"{code}{text}{RESET}" if code else text


def _rows(rows: list[list[tuple[str, str]]], colour: bool) -> list[str]:
    """Columns padded on the plain text, then painted: colour never shifts the alignment. Each cell is
    (text, colour key; "" for none)."""
    widths = [max(len(row[i][0]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [paint(text.ljust(width), key, colour) for (text, key), width in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return lines


def _header(status: dict, interval_s: float, clock: str, colour: bool) -> str:
    agent = status.get("agent", {})
    config = agent.get("config", {})
    line = (f"hanode {agent.get('version', '?')} on {agent.get('router_id', '?')}  up {agent.get('uptime_s', 0):.0f}s"
            f"  config {str(config.get('applied_digest') or '')[:12]}  every {interval_s:g}s  {clock}")
    if agent.get("stale"):
        line += "  " + paint(f"STALE: {', '.join(agent['stale'])} restarting", "STALE", colour)
    return line


def _instances(status: dict, colour: bool) -> list[str]:
    instances = status.get("instances") or {}
    if not instances:
        return ["no VRRP instances"]
    rows = [[(h, "") for h in ("INSTANCE", "STATE", "PRIO", "VRID", "IF", "MASTER", "VIPS", "WHY")]]
    for name, inst in sorted(instances.items()):
        state = inst.get("state", "?")
        shown = state + (" (drained)" if inst.get("drained") else "")
        prio = f"{inst.get('effective_priority')}/{inst.get('priority')}"
        why = "; ".join(inst.get("fault_reasons") or []) or (inst.get("last_transition") or {}).get("reason", "")
        vips = ",".join(v.split()[0] for v in inst.get("vips", [])) or "-"
        rows.append([(name, ""), (shown, state), (prio, ""), (str(inst.get("virtual_router_id")), ""),
                     (inst.get("interface", ""), ""), (str(inst.get("master_address") or "-"), ""), (vips, ""),
                     (why, "")])
    return _rows(rows, colour)


def _virtual_servers(status: dict, colour: bool) -> list[str]:
    lines = []
    for vs in status.get("virtual_servers") or []:
        sorry = "  " + paint("on sorry server", "down", colour) if vs.get("sorry_server_active") else ""
        lines += ["", f"{vs.get('name', '?')}  {vs.get('summary', '')}{sorry}"]
        rows = []
        for rs in vs.get("real_servers") or []:
            health = rs.get("health", "?")
            weight = rs.get("kernel_weight")
            latency = (rs.get("last_check") or {}).get("latency_ms")
            detail = rs.get("failure_reason") or (f"{latency:.1f} ms" if latency is not None else "")
            rows.append([("  " + str(rs.get("name")), ""), (health, health),
                         (f"weight {'-' if weight is None else weight}/{rs.get('weight')}", ""), (detail, "")])
        lines += _rows(rows, colour) if rows else ["  no real servers"]
    return lines


def render_watch(status: dict, *, interval_s: float, clock: str, colour: bool) -> list[str]:
    """The screen for one status document: header, instances, sync groups, virtual servers, a refused reload."""
    lines = [_header(status, interval_s, clock, colour), ""] + _instances(status, colour)
    for name, group in sorted((status.get("sync_groups") or {}).items()):
        lines.append(f"sync group {name}: {paint(group['state'], group['state'], colour)} "
                     f"({', '.join(group['members'])})")
    lines += _virtual_servers(status, colour)
    last = (status.get("agent", {}).get("config") or {}).get("last_reload")
    if last and not last.get("ok"):
        lines += ["", paint("last reload REFUSED", "REFUSED", colour) + ": " + "; ".join(last.get("errors", []))]
    return lines


def render_unavailable(error: str, *, interval_s: float, clock: str, colour: bool) -> list[str]:
    return [f"hanode status  every {interval_s:g}s  {clock}", "", paint(f"no answer: {error}", "down", colour)]


def frame(lines: list[str], ansi: bool) -> str:
    """What one redraw writes: on a terminal, home the cursor and overwrite each line in place (erasing the
    rest of each line and everything below), as watch(1) does without the flicker of a full clear."""
    if not ansi:
        return "\n".join(lines) + "\n\n"
    return "\x1b[H" + "".join(line + "\x1b[K\n" for line in lines) + "\x1b[J"
