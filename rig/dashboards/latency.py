"""Latency: time to first token by turn index, turn and task times, the first turn, and
task time, task success and timeouts by link and turn index (a ``--links`` mix, or a
poor link where turns time out as the context grows).

TTFT figures are over turns that produced an answer (status ``ok`` or ``reconnected``) and
percentiles are nearest-rank (InfluxQL ``percentile``), as in summary.json. Latencies of a
window where the load generator was saturated are not trustworthy: see the rig health
dashboard.
"""

from __future__ import annotations

from typing import Any

from rig.dashboards.model import (
    Expression,
    Panel,
    Query,
    bar_chart,
    dashboard,
    stat,
    time_series,
)
from rig.dashboards.queries import (
    RECORD_FILTER,
    SUCCESS,
    by_link_transformations,
    by_turn_transformations,
    hide_time,
    record_variables,
)

__all__ = ["UID", "build"]

UID = "rig-latency"
_BY_TRANSPORT = "${__field.labels.transport}"
_PERCENTILES = (50, 90, 95, 99)


def _ttft_stat(title: str, aggregate: str, description: str) -> Panel:
    return stat(
        title,
        description,
        [
            Query(
                f'SELECT {aggregate} AS "ttft_ms" FROM "turn" WHERE {RECORD_FILTER}'
                f' AND {SUCCESS} GROUP BY "transport"',
                alias="$tag_transport",
            )
        ],
        "ms",
        decimals=0,
        display_name=_BY_TRANSPORT,
    )


def _ttft_by_turn(percentile: int) -> Panel:
    return bar_chart(
        f"TTFT p{percentile} by turn index",
        f"The {percentile}th percentile of time to first token at each turn index, by "
        "transport: http's grows with the context it resends (parse and prefill), a "
        "continuation's stays flat.",
        [
            Query(
                f'SELECT percentile("ttft_ms", {percentile}) AS "ttft_ms" FROM "turn"'
                f' WHERE {RECORD_FILTER} AND {SUCCESS} GROUP BY "turn", "transport"',
                table=True,
            )
        ],
        "ms",
        x_field="turn",
        transformations=by_turn_transformations("ttft_ms"),
    )


def _distribution(measurement: str, figure: str, condition: str, what: str) -> Panel:
    columns = ", ".join(f'percentile("{figure}", {p}) AS "p{p}"' for p in _PERCENTILES)
    return bar_chart(
        f"{what} distribution",
        f"Percentiles (nearest rank) and the maximum of {figure} by transport.",
        [
            Query(
                f'SELECT {columns}, max("{figure}") AS "max" FROM "{measurement}"'
                f' WHERE {RECORD_FILTER} AND {condition} GROUP BY "transport"',
                table=True,
            )
        ],
        "ms",
        x_field="transport",
        transformations=[hide_time()],
    )


def _task_time_by_link(percentile: int) -> Panel:
    return bar_chart(
        f"Task time p{percentile} by link",
        f"The {percentile}th percentile (nearest rank) of completed tasks' time on each "
        "link, by transport (summary.json by_link.<link>.<transport>.task_seconds_p"
        f"{percentile}): on a slow uplink, resending the whole context costs upload time "
        "every turn.",
        [
            Query(
                f'SELECT percentile("task_ms", {percentile}) AS "task_ms" FROM "task"'
                f' WHERE {RECORD_FILTER} AND "ok" = true GROUP BY "link", "transport"',
                table=True,
            )
        ],
        "ms",
        x_field="link",
        transformations=by_link_transformations("task_ms"),
    )


def _task_success_by_link() -> Panel:
    tasks = 'SELECT count("task_ms") AS "tasks" FROM "task" WHERE ' + RECORD_FILTER
    return stat(
        "Task success rate by link",
        "Completed tasks over every task that ended, per transport and link "
        "(summary.json by_link.<link>.<transport>.task_success_rate, or "
        "task_success_rate for a run on one link). A link and transport without a "
        "completed task shows nothing.",
        [
            Query(
                f'{tasks} AND "ok" = true GROUP BY "link", "transport"',
                alias="$tag_transport on $tag_link",
                hide=True,
            ),
            Query(
                f'{tasks} GROUP BY "link", "transport"',
                alias="$tag_transport on $tag_link",
                hide=True,
            ),
            Expression("math", "$A / $B"),
        ],
        "percentunit",
        width=12,
        decimals=1,
        display_name="${__field.labels.transport} on ${__field.labels.link}",
    )


def _timeouts_by_turn() -> Panel:
    return bar_chart(
        "Timeouts by turn index",
        "Turns that ended as a timeout (the request timeout, or the stream idle timeout on "
        "the last attempt) at each turn index, by transport (summary.json "
        "per_turn_outcomes timeouts). A task ends at its first failed turn; on a poor link "
        "http's requests grow with the context until they outlast the timeout.",
        [
            Query(
                'SELECT count("turn_ms") AS "timeouts" FROM "turn"'
                f' WHERE {RECORD_FILTER} AND "status" = \'timeout\' GROUP BY "turn", "transport"',
                table=True,
            )
        ],
        "short",
        x_field="turn",
        transformations=by_turn_transformations("timeouts"),
    )


def build() -> dict[str, Any]:
    """The latency dashboard."""
    panels = [
        _ttft_stat(
            "TTFT mean, all turns",
            'mean("ttft_ms")',
            "Mean time to first token over successful turns (summary.json ttft_ms_mean).",
        ),
        _ttft_stat(
            "TTFT p95, all turns",
            'percentile("ttft_ms", 95)',
            "95th percentile of time to first token over successful turns "
            "(summary.json ttft_ms_p95).",
        ),
        _ttft_stat(
            "TTFB mean, all turns",
            'mean("ttfb_ms")',
            "Mean time to the first event of any kind (response.created): the server's "
            "acceptance of the request, before the model starts.",
        ),
        stat(
            "Completed tasks",
            "Tasks that reached a final answer, by transport (summary.json tasks): the "
            "sample behind the task-time figures.",
            [
                Query(
                    f'SELECT count("task_ms") AS "tasks" FROM "task" WHERE {RECORD_FILTER}'
                    ' AND "ok" = true GROUP BY "transport"',
                    alias="$tag_transport",
                )
            ],
            "short",
            display_name=_BY_TRANSPORT,
        ),
        _ttft_by_turn(50),
        _ttft_by_turn(95),
        bar_chart(
            "First-turn TTFT (handshake cost)",
            "Time to first token at turn index 0: the same request on every transport, so "
            "differences are connection set-up (a new WebSocket's upgrade, TLS) "
            "(summary.json ttft_ms_first_turn_mean).",
            [
                Query(
                    'SELECT mean("ttft_ms") AS "mean", percentile("ttft_ms", 50) AS "p50",'
                    ' percentile("ttft_ms", 95) AS "p95", mean("ttfb_ms") AS "ttfb mean"'
                    f' FROM "turn" WHERE {RECORD_FILTER} AND {SUCCESS} AND "turn" = \'0\''
                    ' GROUP BY "transport"',
                    table=True,
                )
            ],
            "ms",
            x_field="transport",
            transformations=[hide_time()],
        ),
        time_series(
            "TTFT p95 over time",
            "95th percentile of time to first token per time bucket, by transport "
            "(bucketed by turn start).",
            [
                Query(
                    'SELECT percentile("ttft_ms", 95) AS "ttft_ms" FROM "turn"'
                    f" WHERE {RECORD_FILTER} AND {SUCCESS}"
                    ' GROUP BY time($__interval), "transport" fill(none)',
                    alias="$tag_transport",
                )
            ],
            "ms",
        ),
        _distribution("turn", "turn_ms", SUCCESS, "Turn time"),
        _distribution("task", "task_ms", '"ok" = true', "Task time"),
        _task_time_by_link(50),
        _task_time_by_link(90),
        _task_success_by_link(),
        _timeouts_by_turn(),
    ]
    return dashboard(
        UID,
        "Rig: latency",
        "Time to first token by turn index and transport, the first turn's handshake cost, "
        "the distributions of turn and task times, and task time, task success and "
        "timeouts by link and turn index.",
        panels,
        record_variables(),
    )
