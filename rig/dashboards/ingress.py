"""Ingress savings: what a transport makes each client send, per turn, per task, per fleet.

The picture the rig exists for: ``http`` resends the whole conversation, so its bytes per
turn grow linearly with the turn index, while a continuation (``ws``, ``http_chained``)
stays flat. The figures match summary.json: per-turn means over successful turns, per-task
means over completed tasks, the projection of docs/metrics.md (Projection).
"""

from __future__ import annotations

from typing import Any

from rig.dashboards.model import Expression, Panel, Query, bar_chart, dashboard, stat, time_series
from rig.dashboards.queries import (
    BASELINE_FILTER,
    PER_SECOND,
    RECORD_FILTER,
    SUCCESS,
    by_turn_transformations,
    hide_time,
    record_variables,
    sessions_variable,
)

__all__ = ["UID", "build"]

UID = "rig-ingress"
_BY_TRANSPORT = "${__field.labels.transport}"
_COMPLETED = '"ok" = true'
_PROJECTION = 'sum("bytes_sent") * 8 / (sum("task_ms") / 1000) * $sessions / 1000000000 AS "gbps"'


def _reduction(figure: str, what: str) -> Panel:
    return stat(
        f"{what} per task: reduction vs http",
        f"1 - mean {figure} per completed task of the transport / the same for http "
        "(summary.json comparison.<transport>_vs_http). 0% for http itself; negative "
        "means more than http.",
        [
            Query(
                f'SELECT mean("{figure}") AS "{figure}" FROM "task" WHERE {RECORD_FILTER}'
                f' AND {_COMPLETED} GROUP BY "transport"',
                alias="$tag_transport",
                hide=True,
            ),
            Query(
                f'SELECT mean("{figure}") AS "{figure}" FROM "task" WHERE {BASELINE_FILTER}'
                f" AND {_COMPLETED}",
                alias="http",
                hide=True,
            ),
            Expression("reduce", "B", hide=True),
            Expression("math", "1 - $A / $C"),
        ],
        "percentunit",
        decimals=1,
        display_name=_BY_TRANSPORT,
    )


def _by_turn(figure: str, what: str, description: str) -> Panel:
    return bar_chart(
        f"{what} per turn, by turn index",
        description,
        [
            Query(
                f'SELECT mean("{figure}") AS "{figure}" FROM "turn" WHERE {RECORD_FILTER}'
                f' AND {SUCCESS} GROUP BY "turn", "transport"',
                table=True,
            )
        ],
        "decbytes",
        x_field="turn",
        transformations=by_turn_transformations(figure),
    )


def build() -> dict[str, Any]:
    """The ingress savings dashboard."""
    panels = [
        _reduction("bytes_sent", "Bytes sent"),
        _reduction("bytes_recv", "Bytes received"),
        stat(
            "Projected ingress at $sessions sessions",
            "sessions x bytes sent per task x 8 / task seconds, per transport, in Gbit/s "
            "(summary.json projection): what that many concurrent agents, each starting a "
            "new task when one ends, would upload. Set the number in the variable above.",
            [
                Query(
                    f'SELECT {_PROJECTION} FROM "task" WHERE {RECORD_FILTER} AND {_COMPLETED}'
                    ' GROUP BY "transport"',
                    alias="$tag_transport",
                )
            ],
            "Gbits",
            decimals=2,
            display_name=_BY_TRANSPORT,
        ),
        stat(
            "Projected saving vs http at $sessions sessions",
            "Projected ingress of http minus that of the transport, Gbit/s "
            "(summary.json projection saving_vs_http_gbps). Each transport uses its own "
            "task time.",
            [
                Query(
                    f'SELECT {_PROJECTION} FROM "task" WHERE {RECORD_FILTER} AND {_COMPLETED}'
                    ' GROUP BY "transport"',
                    alias="$tag_transport",
                    hide=True,
                ),
                Query(
                    f'SELECT {_PROJECTION} FROM "task" WHERE {BASELINE_FILTER} AND {_COMPLETED}',
                    alias="http",
                    hide=True,
                ),
                Expression("reduce", "B", hide=True),
                Expression("math", "$C - $A"),
            ],
            "Gbits",
            decimals=2,
            display_name=_BY_TRANSPORT,
        ),
        _by_turn(
            "bytes_sent",
            "Bytes sent",
            "Mean bytes the client wrote per successful turn at each turn index: http "
            "grows with every turn (it resends the conversation), continuations stay flat. "
            "Turn 0 carries the WebSocket handshake of a new connection.",
        ),
        _by_turn(
            "bytes_recv",
            "Bytes received",
            "Mean bytes the client read per successful turn at each turn index: the "
            "streamed events, SSE-framed (http) or as WebSocket frames.",
        ),
        bar_chart(
            "Bytes sent and received per task",
            "Mean over completed tasks of the bytes written (sent) and read (received) on "
            "the wire, by transport (summary.json bytes_sent_per_task, bytes_recv_per_task).",
            [
                Query(
                    'SELECT mean("bytes_sent") AS "sent", mean("bytes_recv") AS "received"'
                    f' FROM "task" WHERE {RECORD_FILTER} AND {_COMPLETED} GROUP BY "transport"',
                    table=True,
                )
            ],
            "decbytes",
            x_field="transport",
            transformations=[hide_time()],
        ),
        time_series(
            "Client-to-server ingress rate",
            "Bits per second the clients wrote, by transport, bucketed by turn start (a "
            "turn's bytes count where it began). Failed and retried attempts included: "
            "they went out too.",
            [
                Query(
                    f'SELECT sum("bytes_sent") * 8 {PER_SECOND} AS "bits" FROM "turn"'
                    f' WHERE {RECORD_FILTER} GROUP BY time($__interval), "transport" fill(0)',
                    alias="$tag_transport",
                )
            ],
            "bps",
        ),
    ]
    return dashboard(
        UID,
        "Rig: ingress savings",
        "Bytes on the wire per turn and per task by transport, the reduction vs http, the "
        "ingress rate, and a projection to many concurrent sessions.",
        panels,
        [*record_variables(), sessions_variable()],
    )
