"""Checks a Grafana dashboard of the mixin and lists its queries with the Grafana variables filled in.

    python3 monitoring/check_dashboard.py monitoring/dashboards/hanode-fleet.json   # problems, exit 1 if any

Structure: a current schemaVersion, a Prometheus `datasource` variable that every panel and query uses,
unique panel ids, unique refIds per panel, panels inside the 24-column grid without overlaps, every query
variable's query and every panel query non-empty. The queries themselves are parsed by promtool (as
recording rules) in the mixin's tests and run against a real Prometheus in the integration test.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

MIN_SCHEMA_VERSION = 39                   # Grafana 11.0; 41 is Grafana 12
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What a query gets for each Grafana variable when it is run outside Grafana: every value.
DEFAULT_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))    # panels of a collapsed row
    return out


def queries(dashboard: dict, variables: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable, with the variables replaced (`$job`
    and the other query variables by `.*`, $__rate_interval by 1m unless given)."""
    values = dict(DEFAULT_VARIABLES)
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            values["$" + var["name"]] = ".*"
    values.update(variables or {})
    names = sorted(values, key=len, reverse=True)   # $__rate_interval before $__range...
    pattern = re.compile("|".join(re.escape(name) for name in names))

    def fill(text: str) -> str:
        return pattern.sub(lambda match: values[match.group(0)], text)
    out = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            out.append((f"panel {panel.get('id')} {panel.get('title')!r} {target.get('refId')}", fill(target.get("expr", ""))))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query", {}).get("query", "") if isinstance(var.get("query"), dict) else var.get("query", "")
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
            out.append((f"variable {var['name']}", fill(match.group(1) if match else query)))
    return out


def problems(dashboard: dict) -> list[str]:
    found = []
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < MIN_SCHEMA_VERSION:
        found.append(f"schemaVersion {dashboard.get('schemaVersion')!r}: a current Grafana has {MIN_SCHEMA_VERSION} or more")
    for key in ("uid", "title"):
        if not dashboard.get(key):
            found.append(f"{key}: missing")
    variables = dashboard.get("templating", {}).get("list", [])
    if not any(v.get("name") == "datasource" and v.get("type") == "datasource" and v.get("query") == "prometheus"
               for v in variables):
        found.append("templating: no `datasource` variable of type datasource for prometheus")
    ids, cells = set(), {}
    for panel in panels(dashboard):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        found += _panel_problems(panel, where, ids, cells)
    for where, expr in queries(dashboard):
        if not expr.strip():
            found.append(f"{where}: empty query")
    return found


def _panel_problems(panel: dict, where: str, ids: set, cells: dict) -> list[str]:
    found = []
    if panel.get("id") in ids:
        found.append(f"{where}: id used twice")
    ids.add(panel.get("id"))
    grid = panel.get("gridPos") or {}
    if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")) or grid["x"] + grid["w"] > 24:
        return found + [f"{where}: gridPos {grid} is not inside the 24-column grid"]
    for x in range(grid["x"], grid["x"] + grid["w"]):
        for y in range(grid["y"], grid["y"] + grid["h"]):
            if (x, y) in cells:
                return found + [f"{where}: overlaps {cells[(x, y)]}"]
            cells[(x, y)] = where
    if panel.get("type") == "row":
        return found
    if panel.get("datasource") != DATASOURCE:
        found.append(f"{where}: datasource is not the `datasource` variable")
    targets = panel.get("targets") or []
    if not targets:
        found.append(f"{where}: no query")
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs):
        found.append(f"{where}: refIds {refs} repeat")
    found += [f"{where} {t.get('refId')}: datasource is not the `datasource` variable"
              for t in targets if t.get("datasource") != DATASOURCE]
    return found


def main(argv: list[str] | None = None) -> int:
    found = []
    for path in argv if argv is not None else sys.argv[1:]:
        found += [f"{path}: {problem}" for problem in problems(json.loads(Path(path).read_text()))]
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
