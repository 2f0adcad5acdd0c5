"""report.html: one self-contained page a capacity planner can open offline or attach.

Inline CSS and inline SVG only: no script, no font, image or stylesheet from anywhere, so
it renders the same with no network. Every string taken from the run (ids, names, meta,
warnings) is escaped.
"""

from __future__ import annotations

import datetime
import html
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from rig.metrics.rundir import RunDirectory
from rig.report.palette import BASELINE, color, dash, label, ordered
from rig.report.projection import SESSIONS
from rig.report.summary import TASK_TIME_PARTS, comparison_key
from rig.report.svg import Bar, Box, Series, bar_chart, box_plot, line_chart
from rig.report.table import (
    LINK_COLUMNS,
    METRICS,
    TAIL_METRICS,
    comparison_rows,
    gateway_rows,
    link_cells,
    transport_flags,
)
from rig.report.units import (
    NO_DATA,
    format_bytes,
    format_delta,
    format_gbps,
    format_ms,
    format_seconds,
)

__all__ = [
    "CAPACITY_PLOT_IDS",
    "FEW_TURNS",
    "PLOT_IDS",
    "PROJECTION_ASSUMPTIONS",
    "readable_time",
    "render_html",
]

PLOT_IDS = (
    "plot-bytes-per-turn",
    "plot-ttft-per-turn",
    "plot-task-time",
    "plot-errors",
    "plot-success-per-turn",
    "plot-timeouts-per-turn",
)
"""The ``id`` of each plot's ``<svg>``, in page order."""

CAPACITY_PLOT_IDS = (
    "plot-capacity-throughput",
    "plot-capacity-rejected",
    "plot-capacity-ttft",
)
"""The capacity section's plots (runs driven by a steps shape), in page order."""

_CSS = """
:root { --ink: #1f2933; --muted: #5f6b7a; --line: #dde2e8; --panel: #f6f8fa;
  --better: #0b7a3e; --worse: #b42318; --warn-bg: #fff7e6; --warn-line: #f0b429; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 48px; }
header { border-bottom: 3px solid var(--ink); padding-bottom: 14px; margin-bottom: 20px; }
h1 { font-size: 26px; margin: 0 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 6px; }
p { margin: 6px 0 10px; }
.sub { color: var(--muted); margin: 0; }
.sub b { color: var(--ink); font-weight: 600; }
.warnings { background: var(--warn-bg); border: 1px solid var(--warn-line);
  border-left-width: 6px; border-radius: 6px; padding: 10px 16px; margin: 16px 0; }
.warnings h2 { border: 0; margin: 0 0 4px; font-size: 16px; padding: 0; }
.warnings ul { margin: 0; padding-left: 20px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 14px; margin: 12px 0 4px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 16px; }
.card .value { font-size: 30px; font-weight: 700; line-height: 1.15;
  font-variant-numeric: tabular-nums; }
.card .what { color: var(--muted); font-size: 13px; }
.card .assumes { color: var(--muted); font-size: 12px; margin-top: 6px; }
.card.caveat .value { color: var(--muted); text-decoration: line-through dotted; }
.card .unreliable { color: var(--worse); font-size: 12px; font-weight: 600; margin-top: 4px; }
div.stack { display: flex; height: 14px; min-width: 240px; }
span.part { display: inline-block; height: 14px; }
th span.part { width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
.part-0 { background: #d55e00; } .part-1 { background: #e69f00; }
.part-2 { background: #0072b2; } .part-3 { background: #56b4e9; }
.part-4 { background: #bbbbbb; }
table { border-collapse: collapse; margin: 8px 0 6px; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 14px; border-bottom: 1px solid var(--line); text-align: right;
  white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th.group { text-align: center; border-bottom: 1px solid var(--line); }
table.kv th { text-align: left; font-weight: 600; padding-right: 28px; }
table.kv td, td.text { text-align: left; white-space: normal; }
thead th { background: var(--panel); border-bottom: 2px solid var(--ink); font-weight: 600;
  white-space: normal; vertical-align: bottom; }
.scroll { overflow-x: auto; }
#comparison-table th, #comparison-table td { padding: 6px 10px; }
th .key { display: block; color: var(--muted); font-weight: 400; font-size: 12px; }
td.delta, th.delta { color: var(--muted); }
tr.tail td { color: var(--muted); }
tr.tail td.better, tr.tail td.worse { opacity: 0.85; }
tr.counts td { color: var(--muted); font-size: 13px; }
td.better { color: var(--better); font-weight: 700; }
td.worse { color: var(--worse); font-weight: 700; }
.card .better { color: var(--better); }
.card .worse { color: var(--worse); }
table.wide { width: 100%; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
  margin-right: 6px; vertical-align: -1px; }
.note { color: var(--muted); font-size: 13px; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 22px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 28px; align-items: start; }
th.text { text-align: left; }
code, .formula { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 13px; }
.formula { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 14px; margin: 10px 0; white-space: pre; overflow-x: auto; }
.ok { color: var(--better); font-weight: 700; }
.bad { color: var(--worse); font-weight: 700; }
dl.defs { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 8px 0; }
dl.defs dt { font-weight: 600; }
dl.defs dd { margin: 0; color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { .plots, .columns { grid-template-columns: 1fr; } figure { break-inside: avoid; } }
"""

_LATENCY_TERMS = {
    "base_ms": "fixed cost per response: queueing, routing, first decode step (ms)",
    "parse_ms_per_kb": "parse and tokenise, per KB of request the server processes (ms)",
    "rehydrate_ms_per_kb": "load a stored conversation, per KB (HTTP previous_response_id)",
    "prefill_ms_per_1k_tokens": "prefill, per 1,000 input tokens not in the prompt cache",
    "tokens_per_s": "output rate, one streamed delta per token",
    "jitter": "relative standard deviation applied to TTFT and token rate",
    "prompt_cache_hit_rate": "chance a stateless request reaches a replica holding its prefix",
}

_FORMULA = (
    "TTFT = base_ms\n"
    "     + parse_ms_per_kb          x KB of request parsed and tokenised\n"
    "     + rehydrate_ms_per_kb      x KB of conversation loaded from the store\n"
    "     + prefill_ms_per_1k_tokens x (input tokens - cached tokens) / 1000\n"
    "     (x (1 + N(0, jitter)))\n"
    "output: one token every 1 / tokens_per_s seconds"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _swatch(name: str) -> str:
    return f'<span class="swatch" style="background:{color(name)}"></span>'


def _transport_head(name: str) -> str:
    return f'{_e(label(name))}<span class="key">{_swatch(name)}{_e(name)}</span>'


def _verdict(change: float | None) -> str:
    """``better`` for a fall of more than half a percent, ``worse`` for such a rise: every
    compared figure (bytes, times) is better smaller."""
    if change is not None and change < -0.005:
        return "better"
    if change is not None and change > 0.005:
        return "worse"
    return ""


def _delta_cell(change: float | None) -> str:
    kind = f"delta {_verdict(change)}".strip()
    return f'<td class="{kind}">{_e(format_delta(change))}</td>'


def _header(summary: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    facts = [("target", summary.get("target")), ("scenario", summary.get("scenario"))]
    started = readable_time(meta.get("started_at"))
    if started:
        facts.append(("started", started))
    duration = summary.get("duration_s")
    facts.append(
        (
            "duration",
            f"{format_seconds(duration)}, start to end, drain included"
            if duration is not None
            else None,
        )
    )
    workload = summary.get("workload")
    if isinstance(workload, Mapping):
        facts.append(("trace", f"{workload.get('trace')} ({workload.get('sessions')} sessions)"))
        fidelity = [
            f"{name} {f['mean_rel_diff']:.2%} mean, {f['max_rel_diff']:.2%} max"
            for name, f in (workload.get("fidelity") or {}).items()
            if f is not None
        ]
        if fidelity:
            facts.append(("replay fidelity (body vs traced)", "; ".join(fidelity)))
    facts.append(("users", summary.get("users")))
    facts.append(("transports", ", ".join(ordered(summary["transports"]))))
    if summary.get("preset"):
        facts.append(("mock preset", summary["preset"]))
    links = summary.get("links") or []
    if len(links) == 1:
        facts.append(("link", links[0] + (" (no emulation)" if links[0] == "direct" else "")))
    elif links:
        facts.append(("links", ", ".join(links) + " (figures by link below)"))
    flags = transport_flags(summary)
    if flags:
        facts.append(("transport options", ", ".join(flags)))
    shown = " · ".join(f"{_e(k)} <b>{_e(v)}</b>" for k, v in facts if v not in (None, ""))
    return (
        "<header>"
        f"<h1>Stateless HTTP vs stateful continuation · run {_e(summary.get('run_id'))}</h1>"
        f'<p class="sub">{shown}</p>'
        "</header>"
    )


def _warnings(summary: Mapping[str, Any]) -> str:
    warnings = summary.get("warnings") or []
    if not warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    return (
        '<section class="warnings" id="warnings">'
        f"<h2>Read this first</h2><ul>{items}</ul></section>"
    )


def _headline(summary: Mapping[str, Any]) -> str:
    comparison = summary.get("comparison") or {}
    compared = [n for n in ordered(summary["transports"]) if comparison_key(n) in comparison]
    if not compared:
        return ""
    name = "ws" if "ws" in compared else compared[0]
    figures = comparison[comparison_key(name)]
    saving = next(
        (
            row["saving_vs_http_gbps"]
            for row in summary.get("projection") or []
            if row["transport"] == name and row["sessions"] == max(SESSIONS)
        ),
        None,
    )

    def card(reduction: float | None, what: str) -> str:
        change = None if reduction is None else -reduction
        return (
            f'<div class="card"><div class="value {_verdict(change)}">'
            f"{_e(format_delta(change))}</div>"
            f'<div class="what">{_e(what)}</div></div>'
        )

    if saving is None and all(value is None for value in figures.values()):
        return ""
    caveats = summary.get("projection_caveats") or []
    unreliable = (
        '<div class="unreliable">unreliable: ' + _e("; ".join(caveats)) + "</div>"
        if caveats
        else ""
    )
    cards = [
        card(figures.get("bytes_sent_reduction"), "bytes sent per task"),
        card(figures.get("task_time_reduction"), "total time per task"),
        card(figures.get("ttft_reduction"), "time to first token, all turns"),
        f'<div class="card{" caveat" if caveats else ""}" id="headline-ingress">'
        f'<div class="value">{_e(format_gbps(_magnitude(saving)))}</div>'
        f'<div class="what">{"more" if saving is not None and saving < 0 else "less"} '
        f"ingress at {max(SESSIONS):,} concurrent sessions</div>"
        f'<div class="assumes">{_e(PROJECTION_ASSUMPTIONS)}</div>{unreliable}</div>',
    ]
    return (
        f'<section id="headline"><h2>{_e(label(name))} against {_e(label(BASELINE))}</h2>'
        f'<div class="cards">{"".join(cards)}</div></section>'
    )


PROJECTION_ASSUMPTIONS = (
    "Assumes every session starts its next task as soon as one ends, each transport at "
    "this run's mean bytes sent and time per completed task (sessions x bytes x 8 / "
    "seconds), on this run's link and workload."
)
"""What the headline's ingress figure assumes, said on the card."""


def readable_time(value: Any) -> str | None:
    """A wall-clock time in seconds since the epoch (meta.json's ``started_at``) as
    ``2026-12-02 12:06:05 UTC``; ``None`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    try:
        moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _task_parts(summary: Mapping[str, Any]) -> str:
    """Each transport's mean task time by part, as a stacked bar and its figures."""
    transports = summary["transports"]
    names = [n for n in ordered(transports) if transports[n].get("task_time_parts")]
    parts = list(TASK_TIME_PARTS)
    rows = []
    longest = max(
        (math.fsum(v or 0 for v in transports[n]["task_time_parts"].values()) for n in names),
        default=0.0,
    )
    if not longest:
        return ""
    for name in names:
        figures = transports[name]["task_time_parts"]
        bar = "".join(
            f'<span class="part part-{i}" style="width:{(figures[part] or 0) / longest:.2%}" '
            f'title="{_e(_PART_LABELS[part])}: {_e(format_seconds(figures[part]))}"></span>'
            for i, part in enumerate(parts)
        )
        cells = "".join(f"<td>{_e(format_seconds(figures[part]))}</td>" for part in parts)
        rows.append(
            f"<tr><th>{_transport_head(name)}</th>{cells}"
            f'<td class="stack"><div class="stack">{bar}</div></td></tr>'
        )
    head = "".join(
        f'<th><span class="part part-{i}"></span>{_e(_PART_LABELS[part])}</th>'
        for i, part in enumerate(parts)
    )
    meanings = "; ".join(f"{_PART_LABELS[p]}: {TASK_TIME_PARTS[p]}" for p in parts)
    return (
        '<section id="task-parts"><h2>Where a task\'s time goes</h2>'
        f'<div class="scroll"><table class="wide"><thead><tr><th>transport</th>{head}'
        "<th>per completed task</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
        f'<p class="note">Means per completed task, from its turns\' records; the parts add '
        f"up to the mean task time. {_e(meanings)}.</p></section>"
    )


_PART_LABELS = {
    "connect_s": "connection set-up",
    "upload_s": "upload",
    "first_token_s": "server parse and prefill",
    "streaming_s": "streaming",
    "tools_s": "tool time",
}


def _magnitude(value: float | None) -> float | None:
    return None if value is None else abs(value)


def _comparison_table(summary: Mapping[str, Any]) -> str:
    transports = summary["transports"]
    names = ordered(transports)
    rows = comparison_rows(summary, METRICS)
    tail = comparison_rows(summary, TAIL_METRICS)
    compared = set(rows[0].changes) if rows else set()
    head = ["<th>metric</th>"]
    for name in names:
        head.append(f"<th>{_transport_head(name)}</th>")
        if name in compared:
            head.append(f'<th class="delta">delta<span class="key">vs {_e(BASELINE)}</span></th>')
    body = []
    for row, kind in [*((r, "") for r in rows), *((r, ' class="tail"') for r in tail)]:
        cells = [f"<td>{_e(row.label)}</td>"]
        for name in names:
            cells.append(f"<td>{_e(row.values[name])}</td>")
            if name in compared:
                cells.append(_delta_cell(row.changes[name]))
        body.append(f"<tr{kind}>{''.join(cells)}</tr>")
    counts = ["<td>completed tasks / turns</td>"]
    for name in names:
        figures = transports[name]
        counts.append(f"<td>{figures['tasks']:,} / {figures['turns']:,}</td>")
        if name in compared:
            counts.append('<td class="delta"></td>')
    body.append(f'<tr class="counts">{"".join(counts)}</tr>')
    return (
        '<section id="comparison"><h2>Comparison</h2>'
        f'<div class="scroll"><table id="comparison-table"><thead><tr>{"".join(head)}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
        '<p class="note">Means over completed tasks; TTFT over successful turns; p95 by '
        "nearest rank. "
        "delta = change against HTTP: negative is less, which is better for every row. "
        "KB = 1,000 bytes, counted on the wire (headers and framing included).</p></section>"
    )


def _by_link(summary: Mapping[str, Any]) -> str:
    """A compact table per link of a run over a mix of links (``summary["by_link"]``);
    nothing for a run on one link."""
    by_link = summary.get("by_link") or {}
    if not by_link:
        return ""
    head = "".join(f"<th>{_e(column)}</th>" for column in LINK_COLUMNS[1:])
    tables = []
    for link in sorted(by_link):
        rows = "".join(
            f"<tr><td>{_swatch(name)}{_e(label(name))}</td>"
            + "".join(f"<td>{_e(cell)}</td>" for cell in link_cells(figures))
            + "</tr>"
            for name, figures in ((n, by_link[link][n]) for n in ordered(by_link[link]))
        )
        tables.append(
            f"<h3>{_e(link)}</h3>"
            f'<table class="by-link" data-link="{_e(link)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    return (
        '<section id="by-link"><h2>By link</h2>'
        '<p class="note">Each session ran over one link of the mix; each table holds the '
        "tasks and turns of the sessions on that link. Success: completed tasks of the tasks "
        "that ended; failed turns: error or timeout; task time (p50 / p90, nearest rank) and "
        "bytes per completed task; TTFT p50 over successful turns.</p>"
        + "".join(tables)
        + "</section>"
    )


def _gateway(summary: Mapping[str, Any]) -> str:
    """The gateway's side (``summary["gateway"]``) and the TTFT it adds against the direct
    twins (``summary["direct"]``); nothing for a run with neither."""
    rows = gateway_rows(summary)
    if not rows:
        return ""
    body = "".join(f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in rows)
    return (
        '<section id="gateway"><h2>The gateway: client edge, upstream, added latency</h2>'
        f'<table class="kv wide">{body}</table>'
        '<p class="note">Counters are the gateway\'s <code>/stats</code> over the run '
        "(application bytes: request bodies and WebSocket messages). Upstream bytes out is "
        "what the gateway re-sends on the datacenter side; ingress saved is upstream bytes "
        "out less client bytes in. Added TTFT: the same sessions sent through the target "
        "and straight to the upstream in the same run, over the turns answered in both. "
        "Memory per session at the sample with the most sessions; n/a: not reported by "
        "this gateway.</p></section>"
    )


def _level_series(capacity: Mapping[str, Any], figure: str, scale: float) -> list[Series]:
    series = []
    for name in ordered(capacity):
        points = tuple(
            (float(level["sessions"]), level[figure] * scale)
            for level in capacity[name]["levels"]
            if level[figure] is not None
        )
        series.append(Series(name, label(name), color(name), points, dash(name)))
    return series


def _rate_limits(summary: Mapping[str, Any]) -> str:
    """Rejected attempts by limit, time waited, and throughput against the quota."""
    section = summary.get("rate_limits") or {}
    figures = section.get("transports") or {}
    quota = section.get("quota")
    if not quota and not any(f["hits"] for f in figures.values()):
        return ""
    rows = []
    for name in ordered(figures):
        f = figures[name]
        kinds = ", ".join(f"{kind} {count}" for kind, count in f["by_kind"].items()) or "none"
        share, wait, rate = f["share_of_request_quota"], f["wait_s"], f["turns_per_s"]
        rows.append(
            f"<tr><th>{_transport_head(name)}</th><td>{_e(f['hits'])}</td><td>{_e(kinds)}</td>"
            f"<td>{_e(NO_DATA if wait is None else f'{wait:.1f} s')}</td>"
            f"<td>{_e(NO_DATA if rate is None else f'{rate:.2f}')}</td>"
            f"<td>{_e(NO_DATA if share is None else f'{share:.0%}')}</td></tr>"
        )
    limits = ", ".join(
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in (quota or {}).items()
    )
    return (
        "<section><h2>Rate limits</h2>"
        f'<p class="sub">Quota: <b>{_e(limits or "not known (an external target)")}</b>. '
        "Every rejected attempt (HTTP 429 or a WebSocket <code>rate_limit_exceeded</code> "
        "event) is counted; the session then waits as its retry policy says, and that "
        "waiting is part of its turn and task times.</p>"
        "<table><thead><tr><th>transport</th><th>rejected attempts</th><th>by limit</th>"
        "<th>time waited</th><th>successful turns/s</th><th>share of the request quota</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>"
    )


def _capacity(summary: Mapping[str, Any]) -> str:
    """The knee per transport, why, and throughput, rejections and TTFT against sessions."""
    capacity = summary.get("capacity")
    if not capacity:
        return ""
    rows = []
    for name in ordered(capacity):
        figures = capacity[name]
        knee = figures.get("at_knee") or {}
        bound = figures.get("bound_by") or "nothing: every level passed"
        rows.append(
            f"<tr><th>{_transport_head(name)}</th><td>{_e(figures['max_sessions'])}</td>"
            f"<td>{_e(knee.get('turns_per_s', NO_DATA))}</td>"
            f"<td>{_e(format_bytes(knee['bytes_sent_per_s']) + '/s' if knee else NO_DATA)}</td>"
            f"<td>{_e(bound)}</td></tr>"
        )
    criteria = next(iter(capacity.values()))["criteria"]
    plots = [
        line_chart(
            CAPACITY_PLOT_IDS[0], "Successful turns per second, by concurrent sessions",
            _level_series(capacity, "turns_per_s", 1.0), "concurrent sessions", "turns/s",
            lambda s, x, y: f"{s.label}, {x:.0f} sessions: {y:.2f} turns/s",
        ),
        line_chart(
            CAPACITY_PLOT_IDS[1], "Attempts rejected by a rate limit",
            _level_series(capacity, "rate_limited_fraction", 100.0), "concurrent sessions",
            "% of attempts rejected",
            lambda s, x, y: f"{s.label}, {x:.0f} sessions: {y:.1f}% rejected",
        ),
        line_chart(
            CAPACITY_PLOT_IDS[2], "TTFT p95, by concurrent sessions",
            _level_series(capacity, "ttft_ms_p95", 1.0), "concurrent sessions", "TTFT p95, ms",
            lambda s, x, y: f"{s.label}, {x:.0f} sessions: {format_ms(y)}",
        ),
    ]  # fmt: skip
    return (
        "<section><h2>Capacity: concurrent sessions per transport</h2>"
        f'<p class="sub">The knee is the largest session level, from the first, at which at '
        f"most <b>{criteria['max_rate_limited']:.1%}</b> of attempts were rejected by a rate "
        f"limit and TTFT p95 stayed within <b>{criteria['ttft_slo_ms']:g} ms</b>; each "
        "level's first quarter is left out while new sessions start. Faster turns mean more "
        "requests per minute: under a requests limit the faster transport meets it at fewer "
        "sessions, while under a tokens limit the one that re-sends its context does.</p>"
        "<table><thead><tr><th>transport</th><th>max sessions</th><th>turns/s at the knee</th>"
        "<th>sent at the knee</th><th>the next level broke</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + "".join(plots)
        + _phase_gateways(capacity)
        + "</section>"
    )


def _phase_gateways(capacity: Mapping[str, Any]) -> str:
    """The gateway's figures over each transport's phase (``capacity.<t>.gateway``), as the
    run-wide gateway section shows them; nothing when no phase read a gateway."""
    tables = []
    for name in ordered(capacity):
        section = capacity[name].get("gateway")
        if not section:
            continue
        rows = gateway_rows({"gateway": section})
        body = "".join(f"<tr><th>{_e(row)}</th><td>{_e(value)}</td></tr>" for row, value in rows)
        tables.append(
            f"<h3>The gateway during the {_e(label(name))} phase</h3>"
            f'<table class="kv wide">{body}</table>'
        )
    if not tables:
        return ""
    return "".join(tables) + (
        '<p class="note">Each phase ran against a gateway of its own (the embedded one is '
        "started afresh for each transport); its <code>/stats</code> over the phase, "
        "application bytes; memory per session at the sample with the most sessions.</p>"
    )


FEW_TURNS = 10
"""A per-turn mean over fewer successful turns than this is drawn hollow: few samples."""


def _per_turn_series(summary: Mapping[str, Any], figure: str, scale: float) -> list[Series]:
    series = []
    for name in ordered(summary["transports"]):
        entries = [e for e in summary["transports"][name]["per_turn"] if e[figure] is not None]
        points = tuple((float(e["turn"]), e[figure] * scale) for e in entries)
        sparse = frozenset(float(e["turn"]) for e in entries if e["n"] < FEW_TURNS)
        series.append(Series(name, label(name), color(name), points, dash(name), sparse))
    return series


def _outcome_series(summary: Mapping[str, Any], figure: str, scale: float) -> list[Series]:
    """Per transport, ``figure`` of ``per_turn_outcomes`` at each turn index; a point over
    fewer than :data:`FEW_TURNS` turns is hollow."""
    series = []
    for name in ordered(summary["transports"]):
        entries = summary["transports"][name].get("per_turn_outcomes") or []
        points = tuple((float(e["turn"]), e[figure] * scale) for e in entries)
        sparse = frozenset(float(e["turn"]) for e in entries if e["turns"] < FEW_TURNS)
        series.append(Series(name, label(name), color(name), points, dash(name), sparse))
    return series


def _samples_at(summary: Mapping[str, Any]) -> dict[tuple[str, float], int]:
    """``n`` of every per-turn point, by (transport, turn index)."""
    return {
        (name, float(entry["turn"])): entry["n"]
        for name, figures in summary["transports"].items()
        for entry in figures["per_turn"]
    }


def _rate_limited(summary: Mapping[str, Any]) -> bool:
    return any(f["rate_limit_hits"] or f["rate_limited"] for f in summary["transports"].values())


def _plots(summary: Mapping[str, Any], run: RunDirectory) -> str:
    names = ordered(summary["transports"])
    n_at = _samples_at(summary)

    def n(series: Series, x: float) -> str:
        count = n_at.get((series.key, x), 0)
        return f"n = {count:,}" + (" (few samples)" if count < FEW_TURNS else "")

    bytes_plot = line_chart(
        PLOT_IDS[0],
        "Bytes sent per request, by turn",
        _per_turn_series(summary, "bytes_sent_mean", 1 / 1000),
        "turn index (0 = first turn of a task)",
        "KB sent per request (mean)",
        lambda s, x, y: f"{s.label}, turn {x:.0f}: {format_bytes(y * 1000)}, {n(s, x)}",
    )
    ttft_plot = line_chart(
        PLOT_IDS[1],
        "Time to first token, by turn",
        _per_turn_series(summary, "ttft_ms_mean", 1.0),
        "turn index (0 = first turn of a task)",
        "TTFT, ms (mean)",
        lambda s, x, y: f"{s.label}, turn {x:.0f}: {format_ms(y)}, {n(s, x)}",
    )
    per_turn_note = (
        " Hover a point for n, the successful turns its mean is over; a hollow point "
        f"rests on fewer than {FEW_TURNS} (later turn indices exist only in longer tasks)."
    )
    limited = _rate_limited(summary)
    bytes_note = (
        " This run was rate-limited: a turn's bytes are every attempt's, the rejected ones "
        "included."
        if limited
        else ""
    )
    ttft_note = (
        " This run was rate-limited: a retried turn's TTFT runs from its first attempt, so "
        "it includes the back-off waits."
        if limited
        else ""
    )
    seconds: dict[str, list[float]] = defaultdict(list)
    for task in run.tasks():
        if task.ok:
            seconds[task.tags.transport].append(task.task_ms / 1000)
    boxes = [
        box
        for name in names
        if (box := Box.of(name, label(name), color(name), seconds.get(name, []))) is not None
    ]
    task_plot = box_plot(
        PLOT_IDS[2], "Total time per task", boxes, "seconds per completed task", format_seconds
    )
    bars = [
        Bar(group, name, label(name), color(name), summary["transports"][name][figure])
        for group, figure in (
            ("failed turns", "errors"),
            ("rate-limited turns", "rate_limited"),
            ("rate-limit hits", "rate_limit_hits"),
        )
        for name in names
    ]
    error_plot = bar_chart(PLOT_IDS[3], "Errors and rate limits", bars, "count")
    outcomes = {
        (name, float(entry["turn"])): entry
        for name in names
        for entry in summary["transports"][name].get("per_turn_outcomes") or []
    }

    def ended(series: Series, x: float) -> str:
        entry = outcomes.get((series.key, x)) or {}
        turns = entry.get("turns", 0)
        return (
            f"{entry.get('successful', 0):,} of {turns:,} turns successful, "
            f"{entry.get('errors', 0):,} failed ({entry.get('timeouts', 0):,} timed out)"
            + (" (few samples)" if turns < FEW_TURNS else "")
        )

    success_plot = line_chart(
        PLOT_IDS[4],
        "Turns that succeeded, by turn",
        _outcome_series(summary, "success_rate", 100.0),
        "turn index (0 = first turn of a task)",
        "% of the turns at that index",
        lambda s, x, y: f"{s.label}, turn {x:.0f}: {y:.1f}%, {ended(s, x)}",
    )
    timeout_plot = line_chart(
        PLOT_IDS[5],
        "Turns that timed out, by turn",
        _outcome_series(summary, "timeout_rate", 100.0),
        "turn index (0 = first turn of a task)",
        "% of the turns at that index",
        lambda s, x, y: f"{s.label}, turn {x:.0f}: {y:.1f}% timed out; {ended(s, x)}",
    )
    figures = [
        (
            "Bytes sent per request, by turn",
            bytes_plot,
            "Mean wire bytes the client sent for one turn (headers, framing and body; a "
            "WebSocket handshake is charged to its connection's first turn, its close to "
            "the session's last). Stateless HTTP re-sends the whole conversation, so its "
            "requests grow with every turn; a continuation sends only the new items."
            + bytes_note
            + per_turn_note,
        ),
        (
            "Time to first token, by turn",
            ttft_plot,
            "Mean time from the turn's start (before connecting, when the turn opens a "
            "connection) to the first content delta, over successful turns. The server "
            "parses and prefills whatever it was sent." + ttft_note + per_turn_note,
        ),
        (
            "Total time per task",
            task_plot,
            "First turn's start to the final answer, simulated tool time included, over "
            "completed tasks. Quartiles by nearest rank."
            + (" Rate-limit back-off waits are inside it." if limited else ""),
        ),
        (
            "Errors and rate limits",
            error_plot,
            "Turns that failed (error or timeout), turns that gave up rate-limited, and "
            "rejected attempts "
            "(HTTP 429 or rate_limit_exceeded), retried or not.",
        ),
        (
            "Turns that succeeded, by turn",
            success_plot,
            "Of the turns at each turn index, the share that produced an answer (ok or "
            "reconnected), by transport. A task ends at its first failed turn, so an index "
            "is reached only by tasks whose earlier turns succeeded; on a slow link a "
            "request that resends the whole context takes longer with every turn, until it "
            "outgrows the request timeout. Hover a point for its counts; a hollow point "
            f"rests on fewer than {FEW_TURNS} turns.",
        ),
        (
            "Turns that timed out, by turn",
            timeout_plot,
            "Of the turns at each turn index, the share that ended as a timeout (the "
            "request timeout, or the stream idle timeout on the last attempt), by "
            "transport.",
        ),
    ]
    cells = "".join(
        f"<figure><h3>{_e(title)}</h3>{svg}<figcaption>{_e(caption)}</figcaption></figure>"
        for title, svg, caption in figures
    )
    return (
        '<section id="plots"><h2>Per turn and per task</h2>'
        f'<div class="plots">{cells}</div></section>'
    )


def _reliability(summary: Mapping[str, Any]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "transport",
            "tasks completed",
            "tasks failed",
            "turns",
            "turns failed",
            "failed share",
            "rate-limited turns",
            "rate-limit hits",
        )
    )
    rows = []
    for name in ordered(summary["transports"]):
        f = summary["transports"][name]
        share = f"{f['errors'] / f['turns']:.1%}" if f["turns"] else NO_DATA
        cells = [
            f"<td>{_swatch(name)}{_e(label(name))}</td>",
            *(f"<td>{f[key]:,}</td>" for key in ("tasks", "tasks_failed", "turns", "errors")),
            f"<td>{share}</td>",
            f"<td>{f['rate_limited']:,}</td>",
            f"<td>{f['rate_limit_hits']:,}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<section id="reliability"><h2>Errors and rate limits</h2>'
        f'<table class="wide"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        '<p class="note">Faster turns mean more requests per minute per agent, so continuation '
        "transports can meet request-rate limits sooner than the same agents over HTTP.</p>"
        f"{_recovery(summary)}</section>"
    )


def _recovery(summary: Mapping[str, Any]) -> str:
    """Connections that broke and how sessions recovered; nothing when none broke."""
    figures = {
        name: summary["transports"][name].get("recovery") or {}
        for name in ordered(summary["transports"])
    }
    if not any(f.get("breaks") or f.get("reconnected_turns") for f in figures.values()):
        return ""
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "transport",
            "broken connections",
            "reconnected turns",
            "reconnect rate",
            "time to recover mean",
            "p95",
            "lost turns",
            "resent bytes",
            "fallback sessions",
        )
    )
    rows = []
    for name, f in figures.items():
        rate = f.get("reconnect_rate")
        cells = [
            f"<td>{_swatch(name)}{_e(label(name))}</td>",
            f"<td>{f.get('breaks', 0):,}</td>",
            f"<td>{f.get('reconnected_turns', 0):,}</td>",
            f"<td>{NO_DATA if rate is None else f'{rate:.1%}'}</td>",
            *(
                f"<td>{NO_DATA if f.get(key) is None else format_ms(f[key])}</td>"
                for key in ("recover_ms_mean", "recover_ms_p95")
            ),
            f"<td>{f.get('lost_turns', 0):,}</td>",
            f"<td>{format_bytes(f.get('resent_bytes', 0))}</td>",
            f"<td>{f.get('fallback_sessions', 0):,}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        "<h3>Broken connections</h3>"
        f'<table class="wide"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        '<p class="note">A broken connection: reset, closed, refused or silent for the stream '
        "idle timeout under a turn. Time to recover: from a turn's first break to the "
        "target's next answer. Lost turns gave up after a break; resent bytes are request "
        "bodies sent again after one (the full context, unless the target continues).</p>"
    )


def _projection(summary: Mapping[str, Any]) -> str:
    rows = summary.get("projection") or []
    names = ordered({row["transport"] for row in rows})
    sessions = sorted({row["sessions"] for row in rows})
    by_key = {(row["transport"], row["sessions"]): row for row in rows}
    head = ['<th rowspan="2">transport</th>']
    head.append(f'<th colspan="{len(sessions)}" class="group">ingress, Gbps</th>')
    if BASELINE in names:
        head.append(
            f'<th colspan="{len(sessions)}" class="group">saving vs {_e(BASELINE)}, Gbps</th>'
        )
    counts = [f"<th>{_count(count)} sessions</th>" for count in sessions]
    sub = counts * (2 if BASELINE in names else 1)
    body = []
    for name in names:
        cells = [f"<td>{_swatch(name)}{_e(label(name))}</td>"]
        cells += [f"<td>{_gbps(by_key[name, n]['ingress_gbps'])}</td>" for n in sessions]
        if name == BASELINE:
            cells += ['<td class="delta">baseline</td>' for _ in sessions]
        elif BASELINE in names:
            cells += [_saving_cell(by_key[name, n]["saving_vs_http_gbps"]) for n in sessions]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<section id="projection"><h2>Projected client-to-server ingress</h2>'
        "<p>At steady state each session starts its next task when one ends, so "
        "<code>ingress = sessions &times; bytes sent per task &times; 8 / task seconds</code>, "
        "from this run's means (1 Gbps = 10<sup>9</sup> bit/s). Each transport uses its own "
        "task time: faster tasks start more often, so the saving is below an estimate "
        "at equal task times.</p>"
        f'<div class="scroll"><table id="projection-table" class="wide"><thead>'
        f"<tr>{''.join(head)}</tr><tr>{''.join(sub)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _count(sessions: int) -> str:
    """``10k``, ``1M``: session counts as a capacity planner says them."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if sessions >= size and sessions % size == 0:
            return f"{sessions // size:,}{suffix}"
    return f"{sessions:,}"


def _gbps(gbps: float | None) -> str:
    """A Gbps figure without its unit (the column header says it)."""
    return _e(format_gbps(gbps).removesuffix(" Gbps"))


def _saving_cell(gbps: float | None) -> str:
    kind = "delta better" if gbps is not None and gbps > 0 else "delta"
    return f'<td class="{kind}">{_gbps(gbps)}</td>'


def _latency_model(meta: Mapping[str, Any]) -> str:
    model = meta.get("latency_model")
    if not isinstance(model, dict):
        return ""
    rows = []
    for key in sorted(model):
        if key in ("name", "description"):
            continue
        rows.append(
            f"<tr><td><code>{_e(key)}</code></td><td>{_e(model[key])}</td>"
            f'<td class="text">{_e(_LATENCY_TERMS.get(key, ""))}</td></tr>'
        )
    preset = meta.get("preset") or model.get("name") or "custom"
    description = f" ({_e(model['description'])})" if model.get("description") else ""
    return (
        '<section id="latency-model"><h2>Latency model of the mock</h2>'
        f"<p>The target was the mock provider with preset <b>{_e(preset)}</b>{description}. "
        "Its latencies come from this model, not from a real model: the transports differ "
        "only in what the server was sent, parsed, rehydrated and prefilled. Bytes are "
        "measured for real either way.</p>"
        f'<div class="formula">{_e(_FORMULA)}</div>'
        '<table class="wide"><thead><tr><th>parameter</th><th>value</th>'
        '<th class="text">meaning</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _health(summary: Mapping[str, Any]) -> str:
    rig = summary.get("rig") or {}
    if rig.get("saturated"):
        verdict = '<span class="bad">saturated: latency figures unreliable</span>'
    elif rig.get("samples"):
        verdict = '<span class="ok">not saturated</span>'
    else:
        verdict = f"{NO_DATA} (no health records)"
    facts = [
        ("state", verdict),
        ("health samples", _e(_samples(rig.get("samples", 0), rig.get("workers", 0)))),
        ("saturated samples", _e(rig.get("saturated_samples", 0))),
        ("scheduling lag p99 (worst sample)", _e(format_ms(rig.get("lag_ms_p99_max")))),
        ("scheduling lag max", _e(format_ms(rig.get("lag_ms_max")))),
        ("CPU mean / max", _e(_cpu(rig.get("cpu_percent_mean"), rig.get("cpu_percent_max")))),
    ]
    if rig.get("points_written") is not None or rig.get("points_dropped"):
        facts.append(("metric points written / dropped", _points(rig)))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in facts)
    return (
        '<div id="rig-health"><h2>Load generator health</h2>'
        f'<table class="kv wide">{rows}</table>{_health_by_worker(rig.get("by_worker") or {})}'
        '<p class="note">A load generator that falls behind its own schedule inflates every '
        "latency it measures; these are its own figures for this run.</p></div>"
    )


def _health_by_worker(by_worker: Mapping[str, Mapping[str, Any]]) -> str:
    """Each load-generator process's load and lag, when there was more than one."""
    if len(by_worker) < 2:
        return ""
    head = "".join(
        f"<th>{_e(h)}</th>"
        for h in ("process", "sessions", "turns/s", "CPU mean / max", "lag p99", "saturated")
    )
    rows = "".join(
        f"<tr><td>{_e(worker)}</td><td>{_e(w.get('users_max'))}</td>"
        f"<td>{_e(w.get('turns_per_s_mean'))}</td>"
        f"<td>{_e(_cpu(w.get('cpu_percent_mean'), w.get('cpu_percent_max')))}</td>"
        f"<td>{_e(format_ms(w.get('lag_ms_p99_max')))}</td>"
        f"<td>{_e(w.get('saturated_samples'))} of {_e(w.get('samples'))}</td></tr>"
        for worker, w in by_worker.items()
    )
    return (
        f'<table id="rig-health-workers" class="wide"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _points(rig: Mapping[str, Any]) -> str:
    """The sink's figures, dropped points marked as a fault (InfluxDB lacks them)."""
    written, dropped = rig.get("points_written") or 0, rig.get("points_dropped") or 0
    sink = f" ({rig['sink']})" if rig.get("sink") else ""
    text = f"{written:,} / {dropped:,}{sink}"
    if dropped:
        return f'<span class="bad">{_e(text)}: InfluxDB lacks {dropped:,} points</span>'
    return _e(text)


def _samples(samples: int, workers: int) -> str:
    return f"{samples:,} from {workers:,} worker{'' if workers == 1 else 's'}"


def _cpu(mean_percent: float | None, max_percent: float | None) -> str:
    if mean_percent is None:
        return NO_DATA
    return f"{mean_percent:.0f}% / {max_percent:.0f}%"


def _run_details(meta: Mapping[str, Any]) -> str:
    rows = []
    for key in sorted(meta):
        value = meta[key]
        if isinstance(value, dict):
            continue
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value)
        if key == "started_at":
            value = readable_time(value) or value
        rows.append(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>")
    return f'<div id="run"><h2>Run</h2><table class="kv wide">{"".join(rows)}</table></div>'


_DEFINITIONS: Sequence[tuple[str, str]] = (
    (
        "bytes sent / received",
        "every byte written to / read from the TCP connection, counted "
        "at the socket: request line, headers, body, chunk and WebSocket framing",
    ),
    (
        "TTFT",
        "turn's start (before connecting, when the turn opens a connection; else its "
        "request's first byte) to the first content delta (text or tool-call arguments)",
    ),
    (
        "connection set-up",
        "TCP, TLS and WebSocket upgrade, charged to the turn that opens the connection "
        "(connect_ms); a WebSocket's close is charged to the session's last turn",
    ),
    ("task time", "first turn's start to the final answer, simulated tool time included"),
    ("per task", "means over completed tasks; TTFT over turns with status ok or reconnected"),
    ("p95", "nearest rank: the smallest measured value with 95% of values at or below it"),
    ("reduction", "1 - transport / http; summary.json holds every figure"),
)


def _definitions() -> str:
    items = "".join(f"<dt>{_e(term)}</dt><dd>{_e(text)}</dd>" for term, text in _DEFINITIONS)
    return f'<section id="definitions"><h2>Definitions</h2><dl class="defs">{items}</dl></section>'


def render_html(summary: Mapping[str, Any], run: RunDirectory) -> str:
    """The report page for ``summary`` (from :func:`rig.report.summary.build_summary`),
    with task-time distributions and run details read from ``run``."""
    meta = run.read_json("meta.json")
    title = f"rig report {summary.get('run_id')}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        _header(summary, meta),
        _warnings(summary),
        _headline(summary),
        _comparison_table(summary),
        _by_link(summary),
        _gateway(summary),
        _capacity(summary),
        _plots(summary, run),
        _task_parts(summary),
        _reliability(summary),
        _rate_limits(summary),
        _projection(summary),
        _latency_model(meta),
        f'<section class="columns">{_health(summary)}{_run_details(meta)}</section>',
        _definitions(),
        f"<footer>summary.json (schema {_e(summary.get('schema_version'))}) holds every "
        "figure on this page; <code>rig report RUN_DIR</code> rebuilds both.</footer>",
        "</main></body></html>\n",
    ]
    return "\n".join(part for part in parts if part)
