"""The comparison table in the published layout: a row per metric, a column per transport
(``http`` first) and, after each other transport, its change against ``http``; under it
the sample sizes and the run's link, for a run with failed turns how the turns at each
turn index ended (:func:`per_turn_outcome_rows`), for a run over a mix of links the
figures per link (:func:`link_rows`), and for a run against a gateway the gateway's lines
(:func:`gateway_rows`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rig.loadgen import registry
from rig.report.palette import BASELINE, label, ordered
from rig.report.summary import comparison_key
from rig.report.units import (
    NO_DATA,
    format_bytes,
    format_delta,
    format_ms,
    format_seconds,
    format_share,
)

__all__ = [
    "METRICS",
    "TAIL_METRICS",
    "Metric",
    "TableRow",
    "comparison_rows",
    "count_lines",
    "gateway_rows",
    "link_cells",
    "link_line",
    "link_rows",
    "per_turn_outcome_rows",
    "relative_change",
    "render_table",
    "transport_flags",
    "transport_options_line",
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
    """The table as aligned plain text for a terminal, with the sample sizes under it
    (:func:`count_lines`), the gateway's lines, and the run's warnings: the same
    sentences the report shows before its figures (``summary["warnings"]``)."""
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
    text = _aligned(lines, left=1)
    text.extend(count_lines(summary))
    links = link_line(summary)
    if links:
        text.append(links)
    settings = transport_options_line(summary)
    if settings:
        text.append(settings)
    text.extend(workload_lines(summary))
    delta = f"; delta = change against {label(BASELINE)}" if BASELINE in transports else ""
    text.append(f"KB = 1,000 bytes{delta}.")
    outcomes = per_turn_outcome_rows(summary)
    if outcomes:
        text.append("")
        text.append(
            "turns by turn index: share successful of the turns at that index "
            "(timeouts among them); a task ends at its first failed turn"
        )
        text.extend(_aligned(outcomes, left=1))
    by_link = link_rows(summary)
    if by_link:
        text.append("")
        text.append("by link (tasks and turns of the sessions on each link):")
        text.extend(_aligned(by_link, left=2))
    gateway = gateway_rows(summary)
    if gateway:
        width = max(len(name) for name, _ in gateway)
        text.append("")
        text.extend(f"{name.ljust(width)}  {value}".rstrip() for name, value in gateway)
    warnings = summary.get("warnings") or []
    if warnings:
        text.append("")
        text.extend(f"warning: {warning}" for warning in warnings)
    return "\n".join(text) + "\n"


def _aligned(lines: Sequence[Sequence[str]], left: int) -> list[str]:
    """Rows of cells as aligned text: the first ``left`` columns to the left, the rest
    (figures) to the right."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    ]


def link_line(summary: Mapping[str, Any]) -> str:
    """The run's link, or its mix: ``link: airplane``; empty for a summary without
    ``links`` (written before it existed)."""
    links = summary.get("links") or []
    if len(links) == 1:
        suffix = " (no link emulation)" if links[0] == "direct" else " (every session)"
        return f"link: {links[0]}{suffix}"
    if links:
        return f"links: {', '.join(links)} (each session one; figures by link below)"
    return ""


def transport_flags(summary: Mapping[str, Any]) -> list[str]:
    """The transports' settings that differ from their defaults, as their flags
    (``--ws-deflate yes``)."""
    given = summary.get("transport_options") or {}
    flags = []
    for name, settings in given.items():
        spec = registry.REGISTRY.get(name)  # summarize keeps the registry's only
        options = {option.name: option for option in spec.options} if spec else {}
        for option, value in settings.items():
            if option in options:
                flags.append(f"{options[option].flag(name)} {_flag_value(value)}")
    return flags


def transport_options_line(summary: Mapping[str, Any]) -> str:
    """``transport options: --ws-deflate yes``; empty when none (:func:`transport_flags`)."""
    flags = transport_flags(summary)
    return "transport options: " + ", ".join(flags) if flags else ""


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def per_turn_outcome_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """How the turns at each index ended, per transport, as a header and a row per turn
    index: ``90% of 20 (2)`` is 18 of 20 turns successful, 2 timed out. Empty when no
    turn failed (every cell would read 100%)."""
    transports = summary["transports"]
    names = ordered(transports)
    if not any(transports[n].get("errors") for n in names):
        return []
    by_index: dict[int, dict[str, Mapping[str, Any]]] = {}
    for name in names:
        for entry in transports[name].get("per_turn_outcomes") or []:
            by_index.setdefault(entry["turn"], {})[name] = entry
    rows = [["turn", *(label(name) for name in names)]]
    for index in sorted(by_index):
        cells = [str(index)]
        for name in names:
            entry = by_index[index].get(name)
            cells.append(
                "-"
                if entry is None
                else f"{format_share(entry['success_rate'])} of {entry['turns']:,} "
                f"({entry['timeouts']:,})"
            )
        rows.append(cells)
    return rows


LINK_COLUMNS = (
    "link",
    "transport",
    "tasks ok / failed",
    "success",
    "failed turns (timeouts)",
    "task p50 / p90",
    "TTFT p50",
    "sent / task",
    "received / task",
)
"""The by-link table's columns (:func:`link_rows`)."""


def link_cells(figures: Mapping[str, Any]) -> list[str]:
    """One link's and transport's figures (an entry of ``summary["by_link"]``) as the
    cells of :data:`LINK_COLUMNS` after the link and transport."""
    return [
        f"{figures['tasks']:,} / {figures['tasks_failed']:,}",
        format_share(figures["task_success_rate"]),
        f"{figures['errors']:,} ({figures['timeouts']:,})",
        f"{format_seconds(figures['task_seconds_p50'])} / "
        f"{format_seconds(figures['task_seconds_p90'])}",
        format_ms(figures["ttft_ms_p50"]),
        format_bytes(figures["bytes_sent_per_task"]),
        format_bytes(figures["bytes_recv_per_task"]),
    ]


def link_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """``summary["by_link"]`` as a header and a row per link and transport, the link named
    on its first row; empty for a run on one link."""
    by_link = summary.get("by_link") or {}
    if not by_link:
        return []
    rows = [list(LINK_COLUMNS)]
    for link in sorted(by_link):
        for position, name in enumerate(ordered(by_link[link])):
            first = link if position == 0 else ""
            rows.append([first, label(name), *link_cells(by_link[link][name])])
    return rows


def workload_lines(summary: Mapping[str, Any]) -> list[str]:
    """For a trace replay: which trace, and how close the request bodies sent were to the
    traced ones over the same transport (mean and max relative difference)."""
    workload = summary.get("workload")
    if not isinstance(workload, Mapping):
        return []
    lines = [
        f"workload: trace {workload.get('trace')} ({workload.get('sessions')} sessions, "
        f"{workload.get('turns')} turns), replayed round robin"
    ]
    fidelity = workload.get("fidelity") or {}
    parts = [
        f"{label(name)} {f['mean_rel_diff']:.2%} / {f['max_rel_diff']:.2%} ({f['turns']:,} turns)"
        for name, f in fidelity.items()
        if f is not None
    ]
    if parts:
        lines.append("replay fidelity, request body vs traced, mean / max: " + "; ".join(parts))
    ingress = _per_request(summary["transports"])
    if ingress:
        lines.append("bytes sent / request (a WebSocket warm-up is one): " + ingress)
    return lines


def _per_request(transports: Mapping[str, Mapping[str, Any]]) -> str:
    """Each transport's bytes sent per request it made, with the change against HTTP:
    the ingress a target takes per model request of the traced agent."""
    sent = {
        name: transports[name]["bytes_sent_total"] / transports[name]["turns"]
        for name in ordered(transports)
        if transports[name].get("turns")
    }
    base = sent.get(BASELINE)
    parts = []
    for name, value in sent.items():
        change = f" ({format_delta(value / base - 1)})" if base and name != BASELINE else ""
        parts.append(f"{label(name)} {format_bytes(value)}{change}")
    return "; ".join(parts)


def count_lines(summary: Mapping[str, Any]) -> list[str]:
    """What the figures are over, per transport: tasks completed and failed, and turns,
    failed turns (error or timeout) and turns that gave up rate-limited, with the
    rejected attempts behind them."""
    transports = summary["transports"]
    figures = [(label(name), transports[name]) for name in ordered(transports)]
    tasks = "; ".join(f"{name} {f['tasks']:,} / {f['tasks_failed']:,}" for name, f in figures)
    turns = "; ".join(
        f"{name} {f['turns']:,} / {f['errors']:,} / {f['rate_limited']:,} "
        f"({f['rate_limit_hits']:,})"
        for name, f in figures
    )
    lines = [
        f"tasks completed / failed: {tasks}",
        f"turns / failed / gave up rate-limited (rate-limit hits): {turns}",
    ]
    recoveries = [(name, f["recovery"]) for name, f in figures if f.get("recovery")]
    if any(r["breaks"] or r["reconnected_turns"] for _, r in recoveries):
        lines.append(
            "broken connections / reconnected turns (rate) / lost turns / fallback sessions, "
            "time to recover mean: "
            + "; ".join(
                f"{name} {r['breaks']:,} / {r['reconnected_turns']:,} "
                f"({_share(r['reconnect_rate'])}) / {r['lost_turns']:,} / "
                f"{r['fallback_sessions']:,}, {_ms(r['recover_ms_mean'])}"
                for name, r in recoveries
            )
        )
    return lines


def _ms(ms: float | None) -> str:
    return NO_DATA if ms is None else format_ms(ms)


def _count(value: Any) -> str:
    return NO_DATA if value is None else f"{value:,}"


def _signed_ms(ms: float | None) -> str:
    return NO_DATA if ms is None else ("+" if ms > 0 else "") + format_ms(ms)


def _share(part: float | None) -> str:
    return NO_DATA if part is None else f"{part * 100:.1f}%"


def gateway_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The gateway's lines (``summary["gateway"]``) and the direct twins' added TTFT
    (``summary["direct"]``) as (label, value) pairs; none without either section. A
    figure the gateway does not report reads ``n/a``."""
    gateway = summary.get("gateway")
    direct = summary.get("direct")
    rows: list[tuple[str, str]] = []
    if gateway:
        bytes_pair = "{} / {}".format
        rows += [
            ("gateway", str(gateway.get("url") or NO_DATA)),
            (
                "client edge bytes in / out",
                bytes_pair(
                    format_bytes(gateway.get("client_bytes_in")),
                    format_bytes(gateway.get("client_bytes_out")),
                ),
            ),
            (
                "upstream bytes out / in",
                bytes_pair(
                    format_bytes(gateway.get("upstream_bytes_out")),
                    format_bytes(gateway.get("upstream_bytes_in")),
                ),
            ),
            (
                "ingress saved at the client edge",
                f"{format_bytes(gateway.get('ingress_saved_bytes'))} "
                f"({_share(gateway.get('ingress_saved'))} of upstream bytes out)",
            ),
        ]
    for name, figures in ((direct or {}).get("added_ttft") or {}).items():
        rows.append(
            (
                f"added TTFT p50 / p90, {label(name)}",
                f"{_signed_ms(figures.get('added_ttft_ms_p50'))} / "
                f"{_signed_ms(figures.get('added_ttft_ms_p90'))} (through "
                f"{format_ms(figures.get('ttft_ms_p50'))} / "
                f"{format_ms(figures.get('ttft_ms_p90'))}, direct "
                f"{format_ms(figures.get('direct_ttft_ms_p50'))} / "
                f"{format_ms(figures.get('direct_ttft_ms_p90'))}; "
                f"{figures.get('paired_turns', 0):,} paired turns)",
            )
        )
    if not gateway:
        return rows
    memory = gateway.get("memory") or {}
    misses = " / ".join(
        _count(gateway.get(f"misses_{cause}"))
        for cause in ("evicted", "expired", "foreign", "unknown")
    )
    rows += [
        (
            "hits connection / checkpoint",
            f"{_count(gateway.get('hits_connection'))} / {_count(gateway.get('hits_checkpoint'))}",
        ),
        (
            "misses (evicted / expired / foreign / unknown)",
            f"{_count(gateway.get('misses_not_found'))} ({misses})",
        ),
        (
            "resumes / evictions",
            f"{_count(gateway.get('resumes'))} / {_count(gateway.get('evictions'))}",
        ),
        (
            "checkpoint writes / bytes / failures",
            f"{_count(gateway.get('checkpoint_writes'))} / "
            f"{format_bytes(gateway.get('checkpoint_bytes'))} / "
            f"{_count(gateway.get('checkpoint_failures'))}, "
            f"{format_ms(gateway.get('checkpoint_ms_mean'))} a write",
        ),
        (
            "upstream requests / mean TTFB",
            f"{_count(gateway.get('upstream_requests'))} / "
            f"{format_ms(gateway.get('upstream_ttfb_ms_mean'))}",
        ),
        (
            "upstream errors / 429s / retries",
            f"{_count(gateway.get('upstream_errors'))} / "
            f"{_count(gateway.get('upstream_rate_limited'))} / "
            f"{_count(gateway.get('upstream_retries'))}",
        ),
        (
            "memory per session: RSS / RSS growth / conversation",
            f"{format_bytes(memory.get('memory_rss_bytes_per_session'))} / "
            f"{format_bytes(memory.get('memory_rss_growth_per_session'))} / "
            f"{format_bytes(memory.get('session_bytes_per_session'))} "
            f"(at {_count(memory.get('sessions'))} sessions)",
        ),
    ]
    reconciliation = gateway.get("reconciliation") or {}
    for key, what, ours, theirs in (
        ("client_bytes_in", "client bytes in", "gateway", "load_generator"),
        ("upstream_bytes_out", "upstream bytes out", "gateway", "upstream"),
    ):
        entry = reconciliation.get(key)
        if not entry:
            continue
        difference = entry.get("difference")
        verdict = "n/a" if difference is None else "agree" if difference == 0 else "DIFFER"
        rows.append(
            (
                f"reconciled: {what}",
                f"{verdict}: gateway {_count(entry.get(ours))}, "
                f"{theirs.replace('_', ' ')} {_count(entry.get(theirs))}",
            )
        )
    return rows
