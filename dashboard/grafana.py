"""Grafana dashboard JSON (schemas of Grafana 8 to 11) as a Vigil dashboard definition.

Taken: timeseries, graph, stat, singlestat, gauge, bargauge, table and text panels (rows are
flattened: a collapsed row's panels come out too), their Prometheus targets' ``expr`` and
``legendFormat``, ``fieldConfig.defaults`` (unit, decimals, min, max, thresholds), the grid
position, the time range and refresh, the folder (the export API's ``meta.folderTitle``), and
``templating.list`` query (``label_values``) and custom variables. Everything else is named in
the list ``convert`` returns, never silently dropped.
"""

import re

from dashboard.models import GRID_COLUMNS, REFRESH_SECONDS, Panel
from dashboard.timerange import DEFAULT_RANGE, RANGES
from dashboard.variables import LABEL_VALUES

PANEL_TYPES = {
    "timeseries": Panel.Type.TIMESERIES,
    "graph": Panel.Type.TIMESERIES,
    "stat": Panel.Type.STAT,
    "singlestat": Panel.Type.STAT,
    "gauge": Panel.Type.GAUGE,
    "bargauge": Panel.Type.BARGAUGE,
    "table": Panel.Type.TABLE,
    "text": Panel.Type.TEXT,
}
# Grafana's unit ids that Vigil writes in a scale of its own; others stay as the axis title.
UNITS = {
    "percent": "percent",
    "bytes": "bytes",
    "decbytes": "bytes",
    "Bps": "bytes/s",
    "binBps": "bytes/s",
    "s": "s",
    "ms": "ms",
    "short": "",
    "none": "",
    "": "",
}
GRAFANA_COLUMNS = 24
# Grafana's grid rows are 30 px (and margins); Vigil's are 80 px.
GRID_ROW_RATIO = 0.45
OLD_VARIABLE_SYNTAX = re.compile(r"\[\[(\w+)(?::\w+)?\]\]")
# Grafana's built-ins Vigil does not define ($__interval, $__rate_interval, $__range are).
UNKNOWN_BUILTIN = re.compile(r"\$\{?__(?!interval\b|rate_interval\b|range\b)\w+")


def is_grafana(document: dict) -> bool:
    """Grafana's JSON (its own keys, or an export wrapped in ``dashboard``), not Vigil's."""
    inner = document.get("dashboard", document)
    return isinstance(inner, dict) and ("schemaVersion" in inner or "templating" in inner)


def convert(document: dict) -> tuple[dict, list[str]]:
    """The Vigil definition (``Dashboard.to_dict``'s shape) of a Grafana dashboard, and what of
    it could not be imported, one sentence each."""
    grafana = document.get("dashboard", document)
    left_out: list[str] = []
    time_from = str(grafana.get("time", {}).get("from", "")).removeprefix("now-")
    if time_from not in RANGES:
        if time_from:
            left_out.append(f"Time range from {time_from!r}: the dashboard opens on the last hour.")
        time_from = DEFAULT_RANGE
    refresh = grafana.get("refresh") or "off"
    if refresh not in REFRESH_SECONDS:
        left_out.append(f"Refresh every {refresh}: the dashboard does not refresh by itself.")
        refresh = "off"
    meta = document.get("meta", {}) if isinstance(document.get("meta"), dict) else {}
    # Grafana's export API names the folder beside the dashboard; "General" is no folder.
    folder = str(meta.get("folderTitle") or "")
    definition = {
        "title": str(grafana.get("title") or "Imported dashboard"),
        "folder": "" if folder == "General" else folder[:100],
        "tags": [str(tag) for tag in grafana.get("tags", [])],
        "time_range": time_from,
        "refresh": refresh,
        "variables": _variables(grafana.get("templating", {}).get("list", []), left_out),
        "panels": [],
    }
    for panel in _flattened(grafana.get("panels", [])):
        converted = _panel(panel, left_out)
        if converted:
            definition["panels"].append(converted)
    return definition, left_out


def _flattened(panels: list[dict]) -> list[dict]:
    """Rows out, their panels (a collapsed row holds its own) in."""
    flat = []
    for panel in panels:
        if panel.get("type") == "row":
            flat += panel.get("panels", [])
        else:
            flat.append(panel)
    return sorted(flat, key=lambda panel: (_grid(panel)["y"], _grid(panel)["x"]))


def _grid(panel: dict) -> dict:
    return {"x": 0, "y": 0, "w": 12, "h": 8, **panel.get("gridPos", {})}


def _variables(variables: list[dict], left_out: list[str]) -> list[dict]:
    converted = []
    for variable in variables:
        name, kind = variable.get("name", ""), variable.get("type")
        common = {
            "name": name,
            "multi": bool(variable.get("multi")),
            "include_all": bool(variable.get("includeAll")),
        }
        query = variable.get("query", "")
        if isinstance(query, dict):  # Grafana 9 and later
            query = query.get("query", "")
        if kind == "query" and LABEL_VALUES.match(query or ""):
            converted.append({**common, "kind": "query", "query": query.strip()})
        elif kind == "custom":
            options = [option.split(" : ")[-1].strip() for option in str(query).split(",")]
            converted.append({**common, "kind": "custom", "options": [o for o in options if o]})
        else:
            left_out.append(f"Variable ${name} ({kind} {query!r}): only label_values and custom.")
    return converted


def _panel(panel: dict, left_out: list[str]) -> dict | None:
    grafana_type, title = panel.get("type", ""), panel.get("title", "")
    if grafana_type not in PANEL_TYPES:
        left_out.append(f"Panel {title!r}: {grafana_type} panels are not drawn by Vigil.")
        return None
    grid = _grid(panel)
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    converted = {
        "type": PANEL_TYPES[grafana_type],
        "title": title,
        "description": panel.get("description", ""),
        "x": min(round(grid["x"] * GRID_COLUMNS / GRAFANA_COLUMNS), GRID_COLUMNS - 1),
        "y": round(grid["y"] * GRID_ROW_RATIO),
        "width": max(1, round(grid["w"] * GRID_COLUMNS / GRAFANA_COLUMNS)),
        "height": max(2, round(grid["h"] * GRID_ROW_RATIO)),
        "queries": _queries(panel, left_out),
        "unit": _unit(defaults.get("unit") or _graph_unit(panel), title, left_out),
        "decimals": defaults.get("decimals"),
        "min": defaults.get("min"),
        "max": defaults.get("max"),
        "thresholds": _thresholds(defaults.get("thresholds", {})),
        "text": panel.get("options", {}).get("content") or panel.get("content", ""),
    }
    if grafana_type == "text" and panel.get("options", {}).get("mode") == "html":
        left_out.append(f"Panel {title!r}: its HTML is shown as Markdown text.")
    if not converted["queries"] and grafana_type != "text":
        left_out.append(f"Panel {title!r}: no Prometheus query, so it shows no data.")
    return converted


def _queries(panel: dict, left_out: list[str]) -> list[dict]:
    queries = []
    for target in panel.get("targets", []):
        ref = f"query {target.get('refId', '?')} of panel {panel.get('title', '')!r}"
        if target.get("hide"):
            left_out.append(f"The hidden {ref}.")
            continue
        expr = OLD_VARIABLE_SYNTAX.sub(r"$\1", str(target.get("expr", "")).strip())
        if not expr:
            left_out.append(f"The {ref}: not a Prometheus expression.")
            continue
        for builtin in sorted(set(UNKNOWN_BUILTIN.findall(expr))):
            left_out.append(f"The {ref} uses {builtin}, which Vigil does not define.")
        legend = target.get("legendFormat", "")
        queries.append({"expr": expr, "legend": "" if legend == "__auto" else legend})
    return queries


def _graph_unit(panel: dict) -> str:
    """The old graph panel kept its unit on the left y axis."""
    axes = panel.get("yaxes") or [{}]
    return axes[0].get("format", "")


def _unit(unit: str, title: str, left_out: list[str]) -> str:
    if unit in UNITS:
        return UNITS[unit]
    left_out.append(f"Panel {title!r}: unit {unit!r} is shown as a label, not scaled.")
    return unit


def _thresholds(thresholds: dict) -> list[dict]:
    """Grafana's steps above its base (the step whose value is null); "dark-red" is red."""
    steps = []
    for step in thresholds.get("steps", []):
        if step.get("value") is None:
            continue
        colour = re.sub(r"^(super-light|light|semi-dark|dark)-", "", str(step.get("color", "")))
        steps.append({"value": float(step["value"]), "color": colour})
    return sorted(steps, key=lambda step: step["value"])
