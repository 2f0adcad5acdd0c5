"""The comparison table in the published layout: a row per metric, a column per transport
(``http`` first) and, after each other transport, its change against ``http``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rig.report.palette import BASELINE, label, ordered
from rig.report.summary import comparison_key
from rig.report.units import format_bytes, format_delta, format_ms, format_seconds

__all__ = [
    "METRICS",
    "TAIL_METRICS",
    "Metric",
    "TableRow",
    "comparison_rows",
    "relative_change",
    "render_table",
]


@dataclass(frozen=True, slots=True)
class Metric:
    """A row of the table: its label, the summary figure, its reduction key, its units."""

    label: str
    figure: str
    reduction: str
    fmt: Callable[[float | None], str]


METRICS = (
    Metric("avg total time / task", "task_seconds_mean", "task_time_reduction", format_seconds),
    Metric("avg TTFT, all turns", "ttft_ms_mean", "ttft_reduction", format_ms),
    Metric(
        "avg TTFT, first turn", "ttft_ms_first_turn_mean", "ttft_first_turn_reduction", format_ms
    ),
    Metric("avg bytes sent / task", "bytes_sent_per_task", "bytes_sent_reduction", format_bytes),
    Metric(
        "avg bytes received / task", "bytes_recv_per_task", "bytes_recv_reduction", format_bytes
    ),
)
"""The rows, in the published order."""

TAIL_METRICS = (
    Metric("p95 total time / task", "task_seconds_p95", "task_time_p95_reduction", format_seconds),
    Metric("p95 TTFT, all turns", "ttft_ms_p95", "ttft_p95_reduction", format_ms),
)
"""Tail latency rows the HTML report adds under the published ones."""


@dataclass(frozen=True, slots=True)
class TableRow:
    """One metric across transports: printed values, and each change against http."""

    label: str
    values: dict[str, str]
    changes: dict[str, float | None]


def relative_change(summary: Mapping[str, Any], name: str, reduction: str) -> float | None:
    """``figure(name) / figure(http) - 1`` (the negated reduction): -0.82 is 82% less."""
    value = (summary.get("comparison") or {}).get(comparison_key(name), {}).get(reduction)
    return None if value is None else -value


def comparison_rows(
    summary: Mapping[str, Any], metrics: Sequence[Metric] = METRICS
) -> list[TableRow]:
    """The table's rows, one per metric; ``changes`` is empty when http did not run."""
    transports = summary["transports"]
    names = ordered(transports)
    compared = [n for n in names if n != BASELINE] if BASELINE in transports else []
    return [
        TableRow(
            label=metric.label,
            values={name: metric.fmt(transports[name][metric.figure]) for name in names},
            changes={name: relative_change(summary, name, metric.reduction) for name in compared},
        )
        for metric in metrics
    ]


def render_table(summary: Mapping[str, Any]) -> str:
    """The table as aligned plain text for a terminal, with a line of sample sizes under it."""
    transports = summary["transports"]
    names = ordered(transports)
    rows = comparison_rows(summary)
    header = ["metric"]
    for name in names:
        header.append(label(name))
        if rows and name in rows[0].changes:
            header.append("delta")
    lines = [header]
    for row in rows:
        line = [row.label]
        for name in names:
            line.append(row.values[name])
            if name in row.changes:
                line.append(format_delta(row.changes[name]))
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    ]
    counts = "; ".join(
        f"{label(name)} {f['tasks']:,} / {f['turns']:,} / {f['errors']:,}"
        for name, f in ((name, transports[name]) for name in names)
    )
    text.append(f"completed tasks / turns / failed turns: {counts}")
    delta = f"; delta = change against {label(BASELINE)}" if BASELINE in transports else ""
    text.append(f"KB = 1,000 bytes{delta}.")
    return "\n".join(text) + "\n"
