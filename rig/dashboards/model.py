"""Grafana's dashboard JSON model, the small part of it the rig's dashboards use.

Plain builders that return dicts shaped as Grafana saves them (schema version 39,
Grafana 10.4 and later read it; older versions migrate it). Panels are laid out left to
right on Grafana's 24-column grid in the order given, and numbered from 1, so the same
builders always give the same JSON.

The load's dashboards query raw InfluxQL against the datasource ``rig-influxdb``, with
server-side expressions (``__expr__``) for arithmetic across queries (a reduction
relative to ``http``), which InfluxQL cannot do. The gateway's dashboard queries PromQL
against the datasource ``rig-prometheus`` (:class:`PromQuery`); a panel's datasource is
its targets'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rig.loadgen.registry import names
from rig.report.palette import color

__all__ = [
    "DATASOURCE",
    "DATASOURCE_UID",
    "EXPRESSION_DATASOURCE",
    "PROMETHEUS_DATASOURCE",
    "PROMETHEUS_DATASOURCE_UID",
    "SCHEMA_VERSION",
    "Expression",
    "Panel",
    "PromQuery",
    "Query",
    "Target",
    "bar_chart",
    "dashboard",
    "gauge",
    "label_variable",
    "stat",
    "tag_variable",
    "textbox_variable",
    "time_series",
]

SCHEMA_VERSION = 39
DATASOURCE_UID = "rig-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
EXPRESSION_DATASOURCE = {"type": "__expr__", "uid": "__expr__"}
PROMETHEUS_DATASOURCE_UID = "rig-prometheus"
PROMETHEUS_DATASOURCE = {"type": "prometheus", "uid": PROMETHEUS_DATASOURCE_UID}
_GRID_COLUMNS = 24


@dataclass(frozen=True, slots=True)
class Query:
    """One raw InfluxQL target. ``table``: rows with tag columns instead of time series
    (what bar charts over a tag need); ``hide``: an input to an expression only."""

    influxql: str
    alias: str = ""
    table: bool = False
    hide: bool = False


@dataclass(frozen=True, slots=True)
class Expression:
    """A Grafana server-side expression over the panel's other targets."""

    kind: Literal["math", "reduce"]
    expression: str
    reducer: str = "last"
    hide: bool = False


@dataclass(frozen=True, slots=True)
class PromQuery:
    """One PromQL target, drawn as a range; ``legend`` is Grafana's legend format
    (``{{instance}}``)."""

    expr: str
    legend: str = ""


Target = Query | Expression | PromQuery
"""Any target a panel may hold."""


@dataclass(slots=True)
class Panel:
    """A panel before layout: what it shows, how big it is, how it draws."""

    type: str
    title: str
    description: str
    targets: list[Target]
    width: int = 12
    height: int = 8
    unit: str = "short"
    min_interval: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    color_by_transport: bool = True


def _target(target: Target, ref_id: str) -> dict[str, Any]:
    if isinstance(target, PromQuery):
        return {
            "datasource": dict(PROMETHEUS_DATASOURCE),
            "editorMode": "code",
            "expr": target.expr,
            "instant": False,
            "legendFormat": target.legend or "__auto",
            "range": True,
            "refId": ref_id,
        }
    if isinstance(target, Expression):
        out: dict[str, Any] = {
            "datasource": dict(EXPRESSION_DATASOURCE),
            "expression": target.expression,
            "hide": target.hide,
            "refId": ref_id,
            "type": target.kind,
        }
        if target.kind == "reduce":
            out["reducer"] = target.reducer
            out["settings"] = {"mode": "dropNN"}
        return out
    out = {
        "datasource": dict(DATASOURCE),
        "hide": target.hide,
        "query": target.influxql,
        "rawQuery": True,
        "refId": ref_id,
        "resultFormat": "table" if target.table else "time_series",
    }
    if target.alias:
        out["alias"] = target.alias
    return out


def _transport_overrides() -> list[dict[str, Any]]:
    """Each transport in the report's colour, whatever the panel appends to its name."""
    return [
        {
            "matcher": {"id": "byRegexp", "options": f"^{name}( .*)?$"},
            "properties": [
                {"id": "color", "value": {"fixedColor": color(name), "mode": "fixed"}},
            ],
        }
        for name in names()
    ]


def _panel_json(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "color": {"mode": "palette-classic"},
        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
        "unit": panel.unit,
        **panel.defaults,
    }
    if panel.custom:
        defaults["custom"] = panel.custom
    prometheus = any(isinstance(t, PromQuery) for t in panel.targets)
    out: dict[str, Any] = {
        "datasource": dict(PROMETHEUS_DATASOURCE if prometheus else DATASOURCE),
        "description": panel.description,
        "fieldConfig": {
            "defaults": defaults,
            "overrides": _transport_overrides() if panel.color_by_transport else [],
        },
        "gridPos": grid,
        "id": panel_id,
        "options": panel.options,
        "targets": [_target(t, chr(ord("A") + i)) for i, t in enumerate(panel.targets)],
        "title": panel.title,
        "type": panel.type,
    }
    if panel.min_interval:
        out["interval"] = panel.min_interval
    if panel.transformations:
        out["transformations"] = panel.transformations
    return out


def _legend() -> dict[str, Any]:
    return {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}


def time_series(
    title: str,
    description: str,
    targets: list[Target],
    unit: str,
    *,
    width: int = 12,
    min_interval: str = "",
    bars: bool = False,
) -> Panel:
    """Lines (or bars) over time, one series per tag combination."""
    return Panel(
        "timeseries",
        title,
        description,
        targets,
        width=width,
        unit=unit,
        min_interval=min_interval,
        options={"legend": _legend(), "tooltip": {"mode": "multi", "sort": "desc"}},
        custom={
            "drawStyle": "bars" if bars else "line",
            "fillOpacity": 60 if bars else 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
        },
    )


def bar_chart(
    title: str,
    description: str,
    targets: list[Target],
    unit: str,
    *,
    x_field: str,
    width: int = 12,
    transformations: list[dict[str, Any]] | None = None,
) -> Panel:
    """Bars over a category (a tag such as the turn index or the transport)."""
    return Panel(
        "barchart",
        title,
        description,
        targets,
        width=width,
        unit=unit,
        options={
            "barWidth": 0.9,
            "groupWidth": 0.8,
            "legend": _legend(),
            "orientation": "vertical",
            "showValue": "never",
            "stacking": "none",
            "tooltip": {"mode": "multi", "sort": "none"},
            "xField": x_field,
            "xTickLabelRotation": 0,
        },
        custom={"fillOpacity": 80, "lineWidth": 1},
        transformations=transformations or [],
    )


def _reduce_options() -> dict[str, Any]:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(
    title: str,
    description: str,
    targets: list[Target],
    unit: str,
    *,
    width: int = 6,
    decimals: int | None = None,
    display_name: str = "",
) -> Panel:
    """One big number per series (per transport). ``display_name`` names each number
    (``${__field.labels.transport}`` names expression results as well as query series)."""
    defaults: dict[str, Any] = {} if decimals is None else {"decimals": decimals}
    if display_name:
        defaults["displayName"] = display_name
    return Panel(
        "stat",
        title,
        description,
        targets,
        width=width,
        height=5,
        unit=unit,
        defaults=defaults,
        options={
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": _reduce_options(),
            "textMode": "value_and_name",
        },
    )


def gauge(
    title: str,
    description: str,
    targets: list[Target],
    unit: str,
    *,
    width: int = 6,
) -> Panel:
    """A dial per series, from 0 up (remaining quota)."""
    return Panel(
        "gauge",
        title,
        description,
        targets,
        width=width,
        unit=unit,
        defaults={"min": 0},
        options={
            "reduceOptions": _reduce_options(),
            "showThresholdLabels": False,
            "showThresholdMarkers": False,
        },
        color_by_transport=False,
    )


def _layout(panels: list[Panel]) -> list[dict[str, Any]]:
    """Left to right, wrapping at 24 columns; a row is as tall as its tallest panel."""
    out: list[dict[str, Any]] = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > _GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        grid = {"h": panel.height, "w": panel.width, "x": x, "y": y}
        out.append(_panel_json(panel, panel_id, grid))
        x += panel.width
        row_height = max(row_height, panel.height)
    return out


def tag_variable(
    name: str,
    measurement: str,
    where: str,
    *,
    multi: bool = True,
    description: str = "",
    descending: bool = False,
) -> dict[str, Any]:
    """A variable whose values are a tag's values (``SHOW TAG VALUES``).

    Multi-value variables offer "All" as the regex ``.*`` (short queries however many
    values exist); single-value ones are used as exact matches.
    """
    query = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{name}"'
    if where:
        query += f" WHERE {where}"
    out: dict[str, Any] = {
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "datasource": dict(DATASOURCE),
        "definition": query,
        "description": description,
        "hide": 0,
        "includeAll": multi,
        "label": name,
        "multi": multi,
        "name": name,
        "options": [],
        "query": query,
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 2 if descending else 1,
        "type": "query",
    }
    if multi:
        out["allValue"] = ".*"
    return out


def label_variable(name: str, metric: str, description: str = "") -> dict[str, Any]:
    """A multi-value variable whose values are a Prometheus label's (``label_values``),
    "All" being the regex ``.*``."""
    query = f"label_values({metric}, {name})"
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": dict(PROMETHEUS_DATASOURCE),
        "definition": query,
        "description": description,
        "hide": 0,
        "includeAll": True,
        "label": name,
        "multi": True,
        "name": name,
        "options": [],
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def textbox_variable(name: str, label_text: str, default: str, description: str) -> dict[str, Any]:
    """A free-text variable (a number the panels compute with)."""
    return {
        "current": {"selected": False, "text": default, "value": default},
        "description": description,
        "hide": 0,
        "label": label_text,
        "name": name,
        "options": [{"selected": True, "text": default, "value": default}],
        "query": default,
        "skipUrlSync": False,
        "type": "textbox",
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    variables: list[dict[str, Any]],
) -> dict[str, Any]:
    """A whole dashboard: panels laid out, variables, links to its siblings (tag ``rig``).

    No ``id`` and no ``version``: Grafana assigns both, and the uid is what identifies it
    in provisioning and in ``rig dashboards push``.
    """
    return {
        "annotations": {"list": []},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": ["rig"],
                "targetBlank": False,
                "title": "rig dashboards",
                "type": "dashboards",
            }
        ],
        "liveNow": False,
        "panels": _layout(panels),
        "refresh": "10s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["rig"],
        "templating": {"list": variables},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "weekStart": "",
    }
