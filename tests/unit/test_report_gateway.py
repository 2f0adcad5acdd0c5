"""summary.json's ``direct`` and ``gateway`` sections, and their lines in the table and the
page, on synthetic records and ``/stats`` samples whose true figures are worked out here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
from rig.metrics.rundir import RunDirectory
from rig.report import render_run, render_table, summarize
from rig.report.gateway import GATEWAY_FILE, added_ttft, stats_delta
from rig.report.table import gateway_rows

META = {
    "run_id": "r1",
    "target": "gateway",
    "scenario": "s",
    "duration_s": 10,
    "transports": ["ws"],
    "direct": {"target": "direct", "url": "http://127.0.0.1:9/v1", "transports": ["ws"]},
}


def turn(
    target: str, session: str, index: int, ttft: float, *, sent: int = 500, status: str = "ok"
) -> TurnRecord:
    return TurnRecord(
        tags=RecordTags(run="r1", scenario="s", transport="ws", target=target),
        session=session,
        turn=index,
        ts=1000.0 + index,
        bytes_sent=sent + 100,
        bytes_recv=2100,
        body_bytes_sent=sent,
        body_bytes_recv=2000,
        ttfb_ms=ttft / 2,
        ttft_ms=ttft,
        turn_ms=ttft * 3,
        input_tokens=100,
        cached_tokens=0,
        output_tokens=20,
        tool_calls=0,
        status=status,  # type: ignore[arg-type]
    )


def task(target: str, session: str) -> TaskRecord:
    return TaskRecord(
        tags=RecordTags(run="r1", scenario="s", transport="ws", target=target),
        session=session,
        ts=1000.0,
        task_ms=500.0,
        turns=2,
        bytes_sent=1200,
        bytes_recv=4200,
        tool_calls=0,
        ok=True,
    )


def observed(**end: int) -> dict[str, Any]:
    start = {"client_bytes_in": 100, "upstream_bytes_out": 1000, "memory_rss_bytes": 50_000_000}
    stats_end = {"client_bytes_in": 100 + 1000, "upstream_bytes_out": 1000 + 5000, **end}
    return {
        "url": "http://127.0.0.1:8100/v1",
        "embedded": True,
        "stats_start": start,
        "stats_end": stats_end,
        "samples": [
            {"sessions": 4, "memory_rss_bytes": 54_000_000, "session_bytes": 40_000},
            {"sessions": 1, "memory_rss_bytes": 53_000_000, "session_bytes": 9_000},
        ],
        "upstream_stats_start": {"bytes_in": 0},
        "upstream_stats_end": {"bytes_in": 5000 + 750},
    }


TURNS = [
    turn("gateway", "a", 0, 110.0),
    turn("gateway", "a", 1, 120.0),
    turn("direct", "a", 0, 100.0, sent=250),
    turn("direct", "a", 1, 104.0, sent=250),
    turn("direct", "b", 0, 1.0, sent=250),  # no gateway partner: not paired
    turn("direct", "b", 1, 1.0, sent=250, status="error"),
]
TASKS = [task("gateway", "a"), task("direct", "a")]


def test_counters_are_differenced_and_gauges_taken_as_they_are() -> None:
    delta = stats_delta(
        {"client_bytes_in": 10, "sessions": 3, "draining": 0},
        {"client_bytes_in": 25, "sessions": 2, "resumes": 4, "draining": 1, "upstreams": "x"},
    )
    assert delta == {"client_bytes_in": 15, "sessions": 2, "resumes": 4, "draining": 1}


def test_added_ttft_is_over_turns_answered_in_both_cells() -> None:
    through = {"ws": [t for t in TURNS if t.tags.target == "gateway"]}
    direct = {"ws": [t for t in TURNS if t.tags.target == "direct"]}
    figures = added_ttft(through, direct)["ws"]
    assert figures["turns"] == 2 and figures["direct_turns"] == 3
    assert figures["paired_turns"] == 2  # session b has no partner, its fast turn is out
    assert figures["ttft_ms_p50"] == 110.0 and figures["direct_ttft_ms_p50"] == 100.0
    assert figures["added_ttft_ms_p50"] == 10.0
    assert figures["ttft_ms_p90"] == 120.0 and figures["added_ttft_ms_p90"] == 16.0


def test_twins_leave_the_targets_figures_and_get_their_own_section() -> None:
    summary = summarize(META, TURNS, TASKS, gateway=observed())
    assert summary["transports"]["ws"]["turns"] == 2
    assert summary["transports"]["ws"]["body_bytes_sent_total"] == 1000
    assert summary["direct"]["transports"]["ws"]["turns"] == 4
    assert summary["direct"]["transports"]["ws"]["errors"] == 1
    assert "direct twin of ws: 1 of 4 turns failed" in summary["warnings"]


def test_the_gateway_section_from_stats() -> None:
    gateway = summarize(META, TURNS, TASKS, gateway=observed())["gateway"]
    assert gateway["client_bytes_in"] == 1000 and gateway["upstream_bytes_out"] == 5000
    assert gateway["ingress_saved_bytes"] == 4000 and gateway["ingress_saved"] == 0.8
    memory = gateway["memory"]
    assert memory["sessions"] == 4  # the sample with the most sessions
    assert memory["memory_rss_bytes_per_session"] == 13_500_000
    assert memory["memory_rss_growth_per_session"] == 1_000_000
    assert memory["session_bytes_per_session"] == 10_000
    edge = gateway["reconciliation"]["client_bytes_in"]
    assert edge == {"load_generator": 1000, "gateway": 1000, "difference": 0}
    # The upstream got 5750 bytes: 1000 from the twins' four turns, 5000 via the gateway.
    upstream = gateway["reconciliation"]["upstream_bytes_out"]
    assert upstream == {"upstream": 4750, "gateway": 5000, "difference": 250}
    assert gateway["added_ttft"]["ws"]["added_ttft_ms_p50"] == 10.0


def test_a_reconciliation_gap_is_a_warning() -> None:
    summary = summarize(META, TURNS, TASKS, gateway=observed())
    assert any("the upstream received 4,750 from it (+250)" in w for w in summary["warnings"])
    assert not any("bytes received from clients" in w for w in summary["warnings"])


def test_figures_the_gateway_does_not_report_are_null_and_print_as_n_a() -> None:
    gateway = summarize(META, TURNS, TASKS, gateway=observed())["gateway"]
    for name in ("checkpoint_writes", "checkpoint_bytes", "resumes", "evictions"):
        assert gateway[name] is None, name
    assert gateway["checkpoint_ms_mean"] is None and gateway["upstream_ttfb_ms_mean"] is None
    rows = dict(gateway_rows(summarize(META, TURNS, TASKS, gateway=observed())))
    assert rows["resumes / evictions"] == "n/a / n/a"
    assert rows["checkpoint writes / bytes / failures"].startswith("n/a / n/a / n/a")


def test_figures_the_gateway_reports_are_shown() -> None:
    stats = observed(
        checkpoint_writes=4,
        checkpoint_bytes=8000,
        checkpoint_us=2000,
        hits_checkpoint=3,
        upstream_errors=2,
        upstream_rate_limited=5,
    )
    summary = summarize(META, TURNS, TASKS, gateway=stats)
    gateway = summary["gateway"]
    assert gateway["checkpoint_ms_mean"] == 0.5 and gateway["checkpoint_bytes_per_write"] == 2000
    assert gateway["hits_checkpoint"] == 3
    rows = dict(gateway_rows(summary))
    assert rows["checkpoint writes / bytes / failures"] == "4 / 8.00 KB / n/a, 0.50 ms a write"
    assert rows["ingress saved at the client edge"] == "4.00 KB (80.0% of upstream bytes out)"
    assert rows["added TTFT p50 / p90, WebSocket"].startswith("+10.0 ms / +16.0 ms")
    assert rows["reconciled: upstream bytes out"].startswith("DIFFER")
    # an older gateway without the retries counter: n/a, not 0
    assert (gateway["upstream_errors"], gateway["upstream_rate_limited"]) == (2, 5)
    assert gateway["upstream_retries"] is None
    assert rows["upstream errors / 429s / retries"] == "2 / 5 / n/a"


def test_a_run_without_gateway_or_twins_has_no_gateway_lines() -> None:
    meta = {key: value for key, value in META.items() if key != "direct"}
    plain = [t for t in TURNS if t.tags.target == "gateway"]
    summary = summarize(meta, plain, TASKS[:1])
    assert "gateway" not in summary and "direct" not in summary
    assert gateway_rows(summary) == []
    assert "client edge" not in render_table(summary)


def test_the_page_and_the_table_show_the_section(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "r1", META)
    run.append([*TURNS, *TASKS])
    run.close()
    (run.path / GATEWAY_FILE).write_bytes(orjson.dumps(observed()))
    rendered = render_run(run.path)
    page = rendered.report_path.read_text()
    assert '<section id="gateway">' in page and "ingress saved at the client edge" in page
    assert rendered.summary["gateway"]["client_bytes_in"] == 1000
    assert "added TTFT p50 / p90, WebSocket" in render_table(rendered.summary)
