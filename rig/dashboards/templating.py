"""Grafana's template variable substitution for InfluxQL, so panel queries run outside it.

``panel_queries(dashboard, variables, from_ns, to_ns)`` gives each panel's final InfluxQL
as Grafana would send it to InfluxDB for that selection and time range: what tests run
against a real InfluxDB, and what a reader can paste into the ``influx`` shell.
``prometheus_queries(dashboard, variables, interval_ms=...)`` does the same for PromQL
targets (the gateway's dashboard), for any Prometheus-compatible server.

The rules followed (Grafana's template service and its InfluxDB datasource):

- ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]`` are replaced; unknown names stay;
- a variable that is multi-value or offers "All" is regex-escaped (in PromQL as the
  Prometheus datasource does, its backslashes doubled for the string), and several values
  become ``(a|b)``; "All" with a custom all value (ours: ``.*``) is that value, unescaped;
  other variables go in verbatim;
- ``$timeFilter`` is ``time >= <from>ms and time <= <to>ms``;
- ``$__interval`` is the range over the panel's data points, rounded as Grafana rounds it
  and never below the panel's minimum interval; ``$__interval_ms`` the same in ms;
  ``$__from`` / ``$__to`` are the range's ends in ms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALL",
    "PanelQuery",
    "PromPanelQuery",
    "escape_promql_regex",
    "escape_regex",
    "interpolate",
    "panel_queries",
    "parse_interval_ms",
    "prometheus_queries",
    "round_interval_ms",
    "variable_queries",
]

ALL = "$__all"
"""The value Grafana stores when "All" is selected."""

_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_PROMQL_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")
_MAX_DATA_POINTS = 1000
_DEFAULT_MIN_INTERVAL_MS = 1

# Grafana's rangeutil.roundInterval: (below this many ms, use this interval).
_ROUNDING: tuple[tuple[int, int], ...] = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_YEAR_MS = 31_536_000_000
_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@dataclass(frozen=True, slots=True)
class PanelQuery:
    """One InfluxQL query of one panel, variables substituted."""

    dashboard_uid: str
    panel_title: str
    ref_id: str
    influxql: str
    result_format: str = "time_series"
    hidden: bool = False
    """An input to a server-side expression, not drawn itself."""


@dataclass(frozen=True, slots=True)
class PromPanelQuery:
    """One PromQL target of one panel, variables substituted."""

    dashboard_uid: str
    panel_title: str
    ref_id: str
    expr: str
    legend: str


def escape_regex(value: str) -> str:
    """Grafana's ``escapeRegex``: every regex metacharacter and ``/`` backslashed."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def round_interval_ms(interval_ms: float) -> int:
    """Grafana's rounding of a computed interval to a readable one."""
    for below, rounded in _ROUNDING:
        if interval_ms < below:
            return rounded
    return _YEAR_MS


def parse_interval_ms(text: str) -> int:
    """``"5s"`` -> 5000; the panel's minimum interval notation (``ms s m h d w``)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text.strip().lstrip(">"))
    if match is None:
        raise ValueError(f"not an interval: {text!r} (expected e.g. 500ms, 5s, 1m)")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def _format_interval(ms: int) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def escape_promql_regex(value: str) -> str:
    """Grafana's Prometheus ``prometheusSpecialRegexEscape``: a value inside a PromQL
    string used as a regex, so each metacharacter gets a backslash the string keeps."""
    value = value.replace("\\", "\\\\\\\\")
    return _PROMQL_REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), value)


def _format_value(
    value: str | list[str],
    variable: Mapping[str, Any],
    fmt: str | None,
    escape: Callable[[str], str] = escape_regex,
) -> str:
    values = [value] if isinstance(value, str) else list(value)
    if values in ([ALL], ["All"]):
        custom_all = variable.get("allValue")
        if custom_all:
            return str(custom_all)
        raise ValueError(
            f"variable {variable.get('name')!r}: give the values 'All' stands for as a "
            "list (it has no custom all value)"
        )
    if fmt in ("raw", "csv"):
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "regex" or variable.get("multi") or variable.get("includeAll"):
        escaped = [escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    return ",".join(values)


def interpolate(
    text: str,
    variables: Mapping[str, str | list[str]],
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    escape: Callable[[str], str] = escape_regex,
) -> str:
    """Replace Grafana variable references in ``text``; unknown names are left as they are.

    ``definitions``: the dashboard's variable definitions by name (multi, includeAll,
    allValue decide the formatting); a name without one is inserted verbatim. ``escape``:
    how a multi-value variable's values are escaped as a regex (InfluxQL's by default,
    :func:`escape_promql_regex` for PromQL).
    """
    definitions = definitions or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name not in variables:
            return match.group(0)
        definition = definitions.get(name, {"name": name})
        return _format_value(variables[name], definition, fmt, escape)

    return _VARIABLE.sub(replace, text)


def _builtins(
    time_from_ns: int, time_to_ns: int, min_interval: str, interval_ms: int | None
) -> dict[str, str]:
    from_ms = time_from_ns // 1_000_000
    to_ms = -(-time_to_ns // 1_000_000)
    if interval_ms is None:
        floor = parse_interval_ms(min_interval) if min_interval else _DEFAULT_MIN_INTERVAL_MS
        interval_ms = max(round_interval_ms((to_ms - from_ms) / _MAX_DATA_POINTS), floor)
    return {
        "timeFilter": f"time >= {from_ms}ms and time <= {to_ms}ms",
        "__interval": _format_interval(interval_ms),
        "__interval_ms": str(interval_ms),
        "__from": str(from_ms),
        "__to": str(to_ms),
    }


def _definitions(dashboard: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def panel_queries(
    dashboard: Mapping[str, Any],
    variables: Mapping[str, str | list[str]],
    time_from_ns: int,
    time_to_ns: int,
    *,
    interval_ms: int | None = None,
) -> list[PanelQuery]:
    """Every InfluxQL target of every panel, as Grafana would send it.

    ``variables``: a value (or list of values, or ``"$__all"``) per dashboard variable;
    textbox variables default to their text. ``interval_ms`` fixes ``$__interval``
    instead of computing it from the range (1,000 points) and the panel's minimum.
    Server-side expression targets are not InfluxQL and are left out; the queries they
    read are included with ``hidden`` set.
    """
    definitions = _definitions(dashboard)
    values: dict[str, str | list[str]] = {
        name: d["query"] for name, d in definitions.items() if d.get("type") == "textbox"
    }
    values.update(variables)
    missing = sorted(
        name for name, d in definitions.items() if d.get("type") == "query" and name not in values
    )
    if missing:
        raise ValueError(f"no value for the dashboard variables {', '.join(missing)}")
    out: list[PanelQuery] = []
    for panel in _panels(dashboard):
        builtins = _builtins(time_from_ns, time_to_ns, panel.get("interval", ""), interval_ms)
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") != "influxdb":
                continue
            query = interpolate(target["query"], {**values, **builtins}, definitions)
            out.append(
                PanelQuery(
                    dashboard_uid=dashboard["uid"],
                    panel_title=interpolate(panel["title"], values, definitions),
                    ref_id=target["refId"],
                    influxql=query,
                    result_format=target.get("resultFormat", "time_series"),
                    hidden=bool(target.get("hide")),
                )
            )
    return out


def prometheus_queries(
    dashboard: Mapping[str, Any],
    variables: Mapping[str, str | list[str]],
    *,
    interval_ms: int,
    scrape_interval_ms: int,
) -> list[PromPanelQuery]:
    """Every PromQL target of every panel, as Grafana would send it.

    ``variables``: a value (or list, or ``"$__all"``) per dashboard variable.
    ``interval_ms``: ``$__interval`` (Grafana derives it from the range and the panel's
    width); ``scrape_interval_ms``: the datasource's scrape interval, which with it makes
    ``$__rate_interval``. Targets of other datasources are left out.
    """
    definitions = _definitions(dashboard)
    missing = sorted(
        name
        for name, d in definitions.items()
        if d.get("type") == "query" and name not in variables
    )
    if missing:
        raise ValueError(f"no value for the dashboard variables {', '.join(missing)}")
    rate_interval_ms = max(interval_ms + scrape_interval_ms, 4 * scrape_interval_ms)
    builtins = {
        "__interval": _format_interval(interval_ms),
        "__interval_ms": str(interval_ms),
        "__rate_interval": _format_interval(rate_interval_ms),
    }
    out: list[PromPanelQuery] = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") != "prometheus":
                continue
            out.append(
                PromPanelQuery(
                    dashboard_uid=dashboard["uid"],
                    panel_title=interpolate(panel["title"], variables, definitions),
                    ref_id=target["refId"],
                    expr=interpolate(
                        target["expr"],
                        {**variables, **builtins},
                        definitions,
                        escape=escape_promql_regex,
                    ),
                    legend=target.get("legendFormat", ""),
                )
            )
    return out


def variable_queries(
    dashboard: Mapping[str, Any], variables: Mapping[str, str | list[str]]
) -> dict[str, str]:
    """Each query variable's ``SHOW TAG VALUES`` with the variables it depends on filled."""
    definitions = _definitions(dashboard)
    return {
        name: interpolate(d["query"], variables, definitions)
        for name, d in definitions.items()
        if d.get("type") == "query"
    }


def _panels(dashboard: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """Panels in order, including those nested in collapsed rows."""
    out: list[Mapping[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out
