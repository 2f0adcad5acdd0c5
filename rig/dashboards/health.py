"""Rig health: is the load generator fast enough to trust its latencies?

From the ``rig`` measurement (one point per load-generator process every 2 s: users,
turns/s, CPU, scheduling lag, the metrics sink's counters) and from the turns' status.
Panels that sum over workers use 5 s buckets at least, so every bucket holds a point of
every worker. A saturated window (lag p99 > 10 ms or CPU > 90%) means that window's
latencies are suspect; bytes are unaffected.
"""

from __future__ import annotations

from typing import Any

from rig.dashboards.model import Query, dashboard, stat, time_series
from rig.dashboards.queries import HEALTH_FILTER, PER_SECOND, RECORD_FILTER, record_variables

__all__ = ["NOT_OK_STATUSES", "UID", "build"]

UID = "rig-health"
_MIN_INTERVAL = "5s"
NOT_OK_STATUSES = ("error", "timeout", "rate_limited", "reconnected")
"""Turn statuses other than ``ok``; ``status`` is a field, so one query each."""


def _summed_over_workers(field: str) -> str:
    """The per-bucket sum over workers of each worker's last value in the bucket."""
    return (
        f'SELECT sum("{field}") AS "{field}" FROM (SELECT last("{field}") AS "{field}"'
        f' FROM "rig" WHERE {HEALTH_FILTER} GROUP BY time($__interval), "worker" fill(none))'
        " WHERE $timeFilter GROUP BY time($__interval) fill(none)"
    )


def build() -> dict[str, Any]:
    """The rig health dashboard."""
    panels = [
        time_series(
            "Users",
            "Simulated agent sessions running, summed over load-generator processes.",
            [Query(_summed_over_workers("users"), alias="users")],
            "short",
            width=8,
            min_interval=_MIN_INTERVAL,
        ),
        time_series(
            "Turns per second",
            "Turns finished per second as the load generators count them, summed over processes.",
            [Query(_summed_over_workers("turns_per_s"), alias="turns/s")],
            "reqps",
            width=8,
            min_interval=_MIN_INTERVAL,
        ),
        time_series(
            "Worker CPU",
            "CPU of each load-generator process, % of one core (saturated above 90%).",
            [
                Query(
                    'SELECT mean("cpu_percent") AS "cpu" FROM "rig"'
                    f' WHERE {HEALTH_FILTER} GROUP BY time($__interval), "worker" fill(none)',
                    alias="$tag_worker",
                )
            ],
            "percent",
            width=8,
            min_interval=_MIN_INTERVAL,
        ),
        time_series(
            "Scheduling lag",
            "How late a greenlet that asks to wake every 50 ms wakes, p99 and maximum per "
            "2 s window, per process: every latency that process measures includes it "
            "(saturated above 10 ms p99).",
            [
                Query(
                    'SELECT max("lag_ms_p99") AS "p99", max("lag_ms_max") AS "max" FROM "rig"'
                    f' WHERE {HEALTH_FILTER} GROUP BY time($__interval), "worker" fill(none)',
                    alias="$tag_worker $col",
                )
            ],
            "ms",
            min_interval=_MIN_INTERVAL,
        ),
        time_series(
            "Metric points written and dropped per second",
            "The metrics sink's points written to InfluxDB and dropped (queue full or "
            "write failed), per process: any drop means the dashboards miss data.",
            [
                Query(
                    'SELECT non_negative_derivative(last("points_written"), 1s) AS "written",'
                    ' non_negative_derivative(last("points_dropped"), 1s) AS "dropped"'
                    f' FROM "rig" WHERE {HEALTH_FILTER}'
                    ' GROUP BY time($__interval), "worker" fill(none)',
                    alias="$tag_worker $col",
                )
            ],
            "short",
            min_interval=_MIN_INTERVAL,
        ),
        stat(
            "Metric points written and dropped",
            "Totals over the run: each process's last cumulative count, summed.",
            [
                Query(
                    'SELECT sum("written") AS "written", sum("dropped") AS "dropped" FROM'
                    ' (SELECT last("points_written") AS "written",'
                    ' last("points_dropped") AS "dropped"'
                    f' FROM "rig" WHERE {HEALTH_FILTER} GROUP BY "worker") WHERE $timeFilter',
                    alias="$col",
                )
            ],
            "short",
        ),
        stat(
            "Saturated windows",
            "2 s windows in which a process was saturated (lag p99 > 10 ms or CPU > 90%), "
            "per process (summary.json rig.saturated_samples). Latencies of those windows "
            "are suspect.",
            [
                Query(
                    'SELECT count("lag_ms_p99") AS "saturated" FROM "rig"'
                    f' WHERE {HEALTH_FILTER} AND "saturated" = true GROUP BY "worker"',
                    alias="$tag_worker",
                )
            ],
            "short",
        ),
        time_series(
            "Turns by status (other than ok), per second",
            "Turns that failed (error, timeout), gave up on a rate limit (rate_limited) or "
            "succeeded only after re-opening the connection (reconnected), per second.",
            [
                Query(
                    f'SELECT count("turn_ms") {PER_SECOND} AS "{status}" FROM "turn"'
                    f" WHERE {RECORD_FILTER} AND \"status\" = '{status}'"
                    " GROUP BY time($__interval) fill(0)",
                    alias=status,
                )
                for status in NOT_OK_STATUSES
            ],
            "reqps",
            bars=True,
        ),
    ]
    for panel in panels:
        panel.color_by_transport = False
    return dashboard(
        UID,
        "Rig: load generator health",
        "Users, turns per second, CPU and scheduling lag of every load-generator process, "
        "the metrics sink's points written and dropped, and turns by status.",
        panels,
        record_variables(),
    )
