"""InfluxQL fragments shared by the dashboards: filters, variables, rates.

Only InfluxQL that InfluxDB 1.6 already understood (aggregates, ``percentile``, subqueries,
arithmetic across the aggregates of one measurement), so the same queries run on
InfluxDB 1.x, on 2.x through a DBRP mapping and on 3.x.
"""

from __future__ import annotations

from typing import Any

from rig.dashboards.model import tag_variable, textbox_variable

__all__ = [
    "BASELINE_FILTER",
    "HEALTH_FILTER",
    "PER_SECOND",
    "RECORD_FILTER",
    "SUCCESS",
    "by_link_transformations",
    "by_turn_transformations",
    "hide_time",
    "limit_variable",
    "record_variables",
    "sessions_variable",
]

RECORD_FILTER = (
    '$timeFilter AND "run" = \'$run\' AND "scenario" =~ /^$scenario$/'
    ' AND "transport" =~ /^$transport$/ AND "target" =~ /^$target$/ AND "link" =~ /^$link$/'
)
"""Time range and every variable: the WHERE clause of ``turn``, ``task`` and ``ratelimit``."""

BASELINE_FILTER = (
    '$timeFilter AND "run" = \'$run\' AND "scenario" =~ /^$scenario$/'
    ' AND "transport" = \'http\' AND "target" =~ /^$target$/ AND "link" =~ /^$link$/'
)
"""The same for the ``http`` baseline, whichever transports are selected."""

HEALTH_FILTER = '$timeFilter AND "run" = \'$run\' AND "target" =~ /^$target$/'
"""The ``rig`` measurement: one point per worker, tagged with the run's scenario option
(not a session's), transport ``all`` and no particular link, so only run and target apply."""

SUCCESS = "(\"status\" = 'ok' OR \"status\" = 'reconnected')"
"""Turns that produced an answer (summary.json's per-turn and TTFT figures use these)."""

PER_SECOND = "/ ($__interval_ms / 1000)"
"""Appended to a count or sum per ``$__interval`` bucket: the rate per second."""


def record_variables() -> list[dict[str, Any]]:
    """``run`` (newest first, one at a time) and the tag filters, all from ``turn``."""
    in_run = "\"run\" = '$run'"
    return [
        tag_variable(
            "run",
            "turn",
            "",
            multi=False,
            descending=True,
            description="The run id (runs/<run-id>/); ids sort by start time, newest first.",
        ),
        tag_variable("scenario", "turn", in_run, description="Scenarios the sessions played."),
        tag_variable("transport", "turn", in_run, description="http, http_chained, ws, ..."),
        tag_variable("target", "turn", in_run, description="The system under test."),
        tag_variable("link", "turn", in_run, description="The link profile (direct: none)."),
    ]


def sessions_variable() -> dict[str, Any]:
    """How many concurrent sessions the projection panels scale the measured run to."""
    return textbox_variable(
        "sessions",
        "projected sessions",
        "10000",
        "Concurrent agent sessions for the projection panels, each starting a new task "
        "when one ends.",
    )


def limit_variable() -> dict[str, Any]:
    """The target's configured request limit: not in the data, so the reader types it."""
    return textbox_variable(
        "limit_rpm",
        "request limit (per minute)",
        "1000",
        "The target's configured request rate limit, requests per minute; drawn as a "
        "reference line against successful turns per second.",
    )


def by_turn_transformations(value_field: str) -> list[dict[str, Any]]:
    """Rows (turn, transport, value) -> one row per turn index, one column per transport,
    in numeric turn order (the ``turn`` tag is a string, so it sorts 0, 1, 10, 2 as text).
    """
    matrix_row = "turn\\transport"  # groupingToMatrix names its first column row\column
    return [
        {
            "id": "groupingToMatrix",
            "options": {
                "columnField": "transport",
                "emptyValue": "null",
                "rowField": "turn",
                "valueField": value_field,
            },
        },
        {"id": "organize", "options": {"renameByName": {matrix_row: "turn"}}},
        {
            "id": "convertFieldType",
            "options": {
                "conversions": [{"destinationType": "number", "targetField": "turn"}],
                "fields": {},
            },
        },
        {"id": "sortBy", "options": {"fields": {}, "sort": [{"desc": False, "field": "turn"}]}},
        {
            "id": "convertFieldType",
            "options": {
                "conversions": [{"destinationType": "string", "targetField": "turn"}],
                "fields": {},
            },
        },
    ]


def by_link_transformations(value_field: str) -> list[dict[str, Any]]:
    """Rows (link, transport, value) -> one row per link, one column per transport."""
    return [
        {
            "id": "groupingToMatrix",
            "options": {
                "columnField": "transport",
                "emptyValue": "null",
                "rowField": "link",
                "valueField": value_field,
            },
        },
        {"id": "organize", "options": {"renameByName": {"link\\transport": "link"}}},
    ]


def hide_time() -> dict[str, Any]:
    """Drop the Time column of a table-format result (bar charts over a tag)."""
    return {"id": "organize", "options": {"excludeByName": {"Time": True}}}
