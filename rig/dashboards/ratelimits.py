"""Rate limits: rejected attempts, what the target asked the client to wait, what was left.

A ``ratelimit`` point is one rejected attempt (an HTTP 429 or a WebSocket
``rate_limit_exceeded`` error event), retried or not; a turn that finally gave up is a
``turn`` point with status ``rate_limited``. The configured limit is not in the data: the
``limit_rpm`` variable draws it as a reference line.
"""

from __future__ import annotations

from typing import Any

from rig.dashboards.model import Query, bar_chart, dashboard, gauge, stat, time_series
from rig.dashboards.queries import (
    PER_SECOND,
    RECORD_FILTER,
    SUCCESS,
    hide_time,
    limit_variable,
    record_variables,
)

__all__ = ["UID", "build"]

UID = "rig-ratelimits"
_BY_TRANSPORT = "${__field.labels.transport}"
_GAVE_UP = "\"status\" = 'rate_limited'"


def build() -> dict[str, Any]:
    """The rate limits dashboard."""
    panels = [
        stat(
            "Rejected attempts",
            "HTTP 429 answers and WebSocket rate_limit_exceeded events, by transport "
            "(summary.json rate_limit_hits).",
            [
                Query(
                    f'SELECT count("retry_after_ms") AS "rejected" FROM "ratelimit"'
                    f' WHERE {RECORD_FILTER} GROUP BY "transport"',
                    alias="$tag_transport",
                )
            ],
            "short",
            display_name=_BY_TRANSPORT,
            width=12,
        ),
        stat(
            "Turns that gave up on a rate limit",
            "Turns recorded with status rate_limited, by transport (summary.json rate_limited).",
            [
                Query(
                    f'SELECT count("turn_ms") AS "rate_limited" FROM "turn"'
                    f' WHERE {RECORD_FILTER} AND {_GAVE_UP} GROUP BY "transport"',
                    alias="$tag_transport",
                )
            ],
            "short",
            display_name=_BY_TRANSPORT,
            width=12,
        ),
        time_series(
            "Rejected attempts per second, by transport and limit",
            "429s (HTTP) and rate_limit_exceeded error events (WebSocket) per second, by "
            "transport and the limit the target named (requests, tokens, connections, "
            "inflight).",
            [
                Query(
                    f'SELECT count("retry_after_ms") {PER_SECOND} AS "rejected"'
                    f' FROM "ratelimit" WHERE {RECORD_FILTER}'
                    ' GROUP BY time($__interval), "transport", "limit" fill(0)',
                    alias="$tag_transport $tag_limit",
                )
            ],
            "reqps",
            bars=True,
        ),
        time_series(
            "Turns giving up on a rate limit, per second",
            "Turns that ended with status rate_limited (the retries ran out), by transport.",
            [
                Query(
                    f'SELECT count("turn_ms") {PER_SECOND} AS "rate_limited" FROM "turn"'
                    f" WHERE {RECORD_FILTER} AND {_GAVE_UP}"
                    ' GROUP BY time($__interval), "transport" fill(0)',
                    alias="$tag_transport",
                )
            ],
            "reqps",
            bars=True,
        ),
        time_series(
            "Successful turns per second against the configured limit",
            "Turns that produced an answer per second, all selected transports together and "
            "by transport, with the request limit typed in the limit_rpm variable (per "
            "minute, drawn per second).",
            [
                Query(
                    f'SELECT count("turn_ms") {PER_SECOND} AS "turns" FROM "turn"'
                    f" WHERE {RECORD_FILTER} AND {SUCCESS} GROUP BY time($__interval) fill(0)",
                    alias="all selected",
                ),
                Query(
                    f'SELECT count("turn_ms") {PER_SECOND} AS "turns" FROM "turn"'
                    f" WHERE {RECORD_FILTER} AND {SUCCESS}"
                    ' GROUP BY time($__interval), "transport" fill(0)',
                    alias="$tag_transport",
                ),
                Query(
                    'SELECT count("turn_ms") * 0 + $limit_rpm / 60 AS "limit" FROM "turn"'
                    " WHERE $timeFilter AND \"run\" = '$run' GROUP BY time($__interval) fill(0)",
                    alias="configured limit",
                ),
            ],
            "reqps",
        ),
        bar_chart(
            "Retry-after distribution, by limit",
            "What the target asked the client to wait (retry-after), percentiles (nearest "
            "rank) and maximum, by the limit it named.",
            [
                Query(
                    'SELECT percentile("retry_after_ms", 50) AS "p50",'
                    ' percentile("retry_after_ms", 90) AS "p90",'
                    ' percentile("retry_after_ms", 99) AS "p99", max("retry_after_ms") AS "max"'
                    f' FROM "ratelimit" WHERE {RECORD_FILTER} GROUP BY "limit"',
                    table=True,
                )
            ],
            "ms",
            x_field="limit",
            transformations=[hide_time()],
        ),
        gauge(
            "Remaining quota",
            "What the target said was left in its last rejection, per limit.",
            [
                Query(
                    'SELECT last("remaining") AS "remaining" FROM "ratelimit"'
                    f' WHERE {RECORD_FILTER} GROUP BY "limit"',
                    alias="$tag_limit",
                )
            ],
            "short",
            width=12,
        ),
    ]
    return dashboard(
        UID,
        "Rig: rate limits",
        "Rejected attempts by transport and limit, retry-after, successful turns against "
        "the configured limit, remaining quota.",
        panels,
        [*record_variables(), limit_variable()],
    )
