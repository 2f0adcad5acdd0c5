"""The InfluxDB schema the dashboards query, as data.

The metrics sink writes one measurement per record kind (docs/metrics.md, Records): the
record's bounded labels become tags, everything else fields. The dashboards are written
against exactly this; a test checks every query names only what is listed here, and that
the list agrees with the record dataclasses of :mod:`rig.metrics.records`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMON_TAGS", "SCHEMA", "Measurement"]

COMMON_TAGS = ("run", "scenario", "transport", "target", "link", "worker")
"""Tags of every measurement (``RecordTags``)."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement: its tags and its fields with their InfluxDB types."""

    name: str
    tags: tuple[str, ...]
    fields: dict[str, str]
    """Field name -> ``integer``, ``float``, ``string`` or ``boolean``."""


SCHEMA: dict[str, Measurement] = {
    m.name: m
    for m in (
        Measurement(
            "turn",
            (*COMMON_TAGS, "turn"),
            {
                "session": "string",
                "bytes_sent": "integer",
                "bytes_recv": "integer",
                "body_bytes_sent": "integer",
                "body_bytes_recv": "integer",
                "ttfb_ms": "float",
                "ttft_ms": "float",
                "turn_ms": "float",
                "input_tokens": "integer",
                "cached_tokens": "integer",
                "output_tokens": "integer",
                "tool_calls": "integer",
                "retries": "integer",
                "status": "string",
                "error": "string",
            },
        ),
        Measurement(
            "task",
            COMMON_TAGS,
            {
                "session": "string",
                "task_ms": "float",
                "turns": "integer",
                "bytes_sent": "integer",
                "bytes_recv": "integer",
                "tool_calls": "integer",
                "ok": "boolean",
                "error": "string",
            },
        ),
        Measurement(
            "ratelimit",
            (*COMMON_TAGS, "limit"),
            {"retry_after_ms": "float", "remaining": "integer"},
        ),
        Measurement(
            "rig",
            COMMON_TAGS,
            {
                "users": "integer",
                "turns_per_s": "float",
                "cpu_percent": "float",
                "lag_ms_p99": "float",
                "lag_ms_max": "float",
                "saturated": "boolean",
                "points_written": "integer",
                "points_dropped": "integer",
            },
        ),
    )
}
"""Measurement name -> what it holds."""
