"""The terminal comparison table: the published layout, human units, deltas against http."""

from __future__ import annotations

import json
import re

import pytest

from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
from rig.report.summary import summarize
from rig.report.table import comparison_rows, render_table
from rig.report.units import (
    format_bytes,
    format_delta,
    format_gbps,
    format_ms,
    format_seconds,
    format_share,
)

# The published GPT-5.4 cell (BACKGROUND.md): two turns whose TTFTs average to the
# published all-turn figure, and one task with the published per-task figures.
PUBLISHED = {
    "http": {"ttft": (1255.0, 1251.0), "seconds": 40.8, "sent": 176_000, "recv": 485_000},
    "ws": {"ttft": (1075.0, 1147.0), "seconds": 28.9, "sent": 32_000, "recv": 343_000},
}


def tags(transport: str) -> RecordTags:
    return RecordTags(run="r1", scenario="mixed", transport=transport, target="mock")


def published_summary(transports: tuple[str, ...] = ("http", "ws")) -> dict:
    turns, tasks = [], []
    for name in transports:
        cell = PUBLISHED[name]
        for index, ttft in enumerate(cell["ttft"]):
            turns.append(
                TurnRecord(
                    tags=tags(name),
                    session="s0",
                    turn=index,
                    ts=0.0,
                    bytes_sent=1,
                    bytes_recv=1,
                    body_bytes_sent=1,
                    body_bytes_recv=1,
                    ttfb_ms=ttft,
                    ttft_ms=ttft,
                    turn_ms=ttft,
                    input_tokens=1,
                    cached_tokens=0,
                    output_tokens=1,
                    tool_calls=1,
                    status="ok",
                )
            )
        tasks.append(
            TaskRecord(
                tags=tags(name),
                session="s0",
                ts=0.0,
                task_ms=cell["seconds"] * 1000,
                turns=2,
                bytes_sent=cell["sent"],
                bytes_recv=cell["recv"],
                tool_calls=2,
                ok=True,
            )
        )
    return summarize({"run_id": "r1"}, turns, tasks)


def test_the_table_reproduces_the_published_layout_and_figures() -> None:
    lines = render_table(published_summary()).splitlines()
    assert lines[0].split() == ["metric", "HTTP", "WebSocket", "delta"]
    cells = {label: rest for label, *rest in (re.split(r"\s{2,}", line) for line in lines[1:6])}
    assert cells == {
        "avg total time / task": ["40.8 s", "28.9 s", "-29%"],
        "avg TTFT, all turns": ["1,253 ms", "1,111 ms", "-11%"],
        "avg TTFT, first turn": ["1,255 ms", "1,075 ms", "-14%"],
        "avg bytes sent / task": ["176 KB", "32.0 KB", "-82%"],
        "avg bytes received / task": ["485 KB", "343 KB", "-29%"],
    }


def test_columns_are_aligned() -> None:
    lines = render_table(published_summary()).splitlines()[:6]
    ends = {len(line) for line in lines}
    assert len(ends) == 1  # every cell right-aligned to the same last column


def test_the_last_lines_give_sample_sizes_and_units() -> None:
    text = render_table(published_summary())
    assert "tasks completed / failed: HTTP 1 / 0; WebSocket 1 / 0" in text
    assert (
        "turns / failed / gave up rate-limited (rate-limit hits): HTTP 2 / 0 / 0 (0); "
        "WebSocket 2 / 0 / 0 (0)"
    ) in text
    assert "KB = 1,000 bytes" in text


def rate_limited_summary() -> dict:
    """The published cell, plus 45 http tasks that gave up rate-limited on their first
    turn after 3 rejected attempts each."""
    summary = published_summary()
    figures = summary["transports"]["http"]
    figures.update(tasks_failed=45, rate_limited=45, rate_limit_hits=135)
    figures["turns"] += 45
    return summary


def test_failed_tasks_and_rate_limited_give_ups_are_counted() -> None:
    text = render_table(rate_limited_summary())
    assert "tasks completed / failed: HTTP 1 / 45; WebSocket 1 / 0" in text
    assert "HTTP 47 / 0 / 45 (135)" in text


def test_the_table_prints_the_reports_warnings() -> None:
    summary = published_summary()
    summary["warnings"] = ["http: 45 of 46 tasks failed", "load generator saturated"]
    lines = render_table(summary).splitlines()
    assert lines[-2:] == [
        "warning: http: 45 of 46 tasks failed",
        "warning: load generator saturated",
    ]


def test_a_run_with_rate_limited_tasks_warns_in_the_table() -> None:
    turns = [
        TurnRecord(
            tags=tags("http"), session=f"s{i}", turn=0, ts=0.0, bytes_sent=1, bytes_recv=1,
            body_bytes_sent=1, body_bytes_recv=1, ttfb_ms=1.0, ttft_ms=1.0, turn_ms=1.0,
            input_tokens=1, cached_tokens=0, output_tokens=0, tool_calls=0,
            status="rate_limited",
        )
        for i in range(3)
    ]  # fmt: skip
    tasks = [
        TaskRecord(tags=tags("http"), session=f"s{i}", ts=0.0, task_ms=1.0, turns=1,
                   bytes_sent=1, bytes_recv=1, tool_calls=0, ok=False)
        for i in range(3)
    ]  # fmt: skip
    text = render_table(summarize({"run_id": "r"}, turns, tasks))
    assert "warning: http: 3 of 3 tasks failed" in text
    assert "3 turns gave up rate-limited" in text


def test_http_comes_first_even_from_a_summary_with_sorted_keys() -> None:
    summary = json.loads(json.dumps(published_summary(), sort_keys=True))
    assert list(summary["transports"]) == ["http", "ws"]
    summary["transports"] = {
        "ws": summary["transports"]["ws"],
        "http": summary["transports"]["http"],
    }
    header = render_table(summary).splitlines()[0].split()
    assert header == ["metric", "HTTP", "WebSocket", "delta"]


def test_without_http_there_are_no_delta_columns() -> None:
    summary = published_summary(("ws",))
    assert render_table(summary).splitlines()[0].split() == ["metric", "WebSocket"]
    assert all(row.changes == {} for row in comparison_rows(summary))


def test_rows_carry_changes_as_fractions_for_the_html_report() -> None:
    rows = comparison_rows(published_summary())
    assert rows[3].label == "avg bytes sent / task"
    assert rows[3].changes["ws"] == pytest.approx(32 / 176 - 1, abs=1e-4)


@pytest.mark.parametrize(
    ("value", "text"),
    [(40.8, "40.8 s"), (5.25, "5.25 s"), (125.0, "125 s"), (0.25, "250 ms"), (None, "n/a")],
)
def test_seconds(value: float | None, text: str) -> None:
    assert format_seconds(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(1253.4, "1,253 ms"), (45.21, "45.2 ms"), (0.423, "0.42 ms"), (None, "n/a")]
)
def test_milliseconds(value: float | None, text: str) -> None:
    assert format_ms(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (176_000, "176 KB"),
        (32_000, "32.0 KB"),
        (2_710, "2.71 KB"),
        (812, "812 B"),
        (1_234_000, "1.23 MB"),
        (None, "n/a"),
    ],
)
def test_bytes(value: float | None, text: str) -> None:
    assert format_bytes(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(-0.8182, "-82%"), (0.05, "+5%"), (-0.004, "-0.4%"), (0.0001, "0%"), (None, "n/a")],
)
def test_deltas(value: float | None, text: str) -> None:
    assert format_delta(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(28.8, "28.8 Gbps"), (0.0883, "0.088 Gbps"), (1440.2, "1,440 Gbps"), (3.65, "3.65 Gbps")],
)
def test_gbps(value: float, text: str) -> None:
    assert format_gbps(value) == text


# -- links and turn outcomes -------------------------------------------------------------


def linked(summary: dict, links: list[str], by_link: dict | None = None) -> dict:
    summary["links"] = links
    if by_link is not None:
        summary["by_link"] = by_link
    return summary


LINK_CELL = {
    "tasks": 12,
    "tasks_failed": 3,
    "task_success_rate": 0.8,
    "turns": 90,
    "errors": 4,
    "timeouts": 3,
    "task_seconds_p50": 61.2,
    "task_seconds_p90": 118.0,
    "ttft_ms_p50": 2140.0,
    "bytes_sent_per_task": 176_000,
    "bytes_recv_per_task": 485_000,
}


def test_the_table_states_the_runs_single_link() -> None:
    text = render_table(linked(published_summary(), ["airplane"]))
    assert "link: airplane (every session)" in text
    assert "by link" not in text
    assert "link: direct (no link emulation)" in render_table(
        linked(published_summary(), ["direct"])
    )


def test_a_mix_of_links_gets_a_row_per_link_and_transport() -> None:
    by_link = {
        "cable": {"http": dict(LINK_CELL), "ws": {**LINK_CELL, "tasks_failed": 0}},
        "airplane": {"ws": {**LINK_CELL, "task_success_rate": 0.995}},
    }
    text = render_table(linked(published_summary(), ["airplane", "cable"], by_link))
    assert "links: airplane, cable (each session one; figures by link below)" in text
    lines = text.splitlines()
    start = lines.index("by link (tasks and turns of the sessions on each link):")
    header, *rows = lines[start + 1 : start + 5]
    assert header.split("  ")[0] == "link"
    assert [re.split(r"\s{2,}", row) for row in rows] == [
        ["airplane", "WebSocket", "12 / 3", "99.5%", "4 (3)", "61.2 s / 118 s", "2,140 ms",
         "176 KB", "485 KB"],
        ["cable", "HTTP", "12 / 3", "80%", "4 (3)", "61.2 s / 118 s", "2,140 ms", "176 KB",
         "485 KB"],
        ["", "WebSocket", "12 / 0", "80%", "4 (3)", "61.2 s / 118 s", "2,140 ms", "176 KB",
         "485 KB"],
    ]  # fmt: skip


def test_turn_outcomes_by_index_appear_when_turns_failed() -> None:
    turns = [
        TurnRecord(
            tags=tags(name),
            session=f"{name}-{number}",
            turn=index,
            ts=0.0,
            bytes_sent=1,
            bytes_recv=1,
            body_bytes_sent=1,
            body_bytes_recv=1,
            ttfb_ms=1.0,
            ttft_ms=1.0,
            turn_ms=1.0,
            input_tokens=1,
            cached_tokens=0,
            output_tokens=1,
            tool_calls=1,
            status="timeout" if (name, index, number) == ("http", 1, 0) else "ok",
        )
        for name in ("http", "ws")
        for number in range(2)
        for index in range(2 if name == "http" else 3)
    ]
    text = render_table(summarize({"run_id": "r"}, turns, []))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("turns by turn index"))
    assert [re.split(r"\s{2,}", line.strip()) for line in lines[start + 1 : start + 5]] == [
        ["turn", "HTTP", "WebSocket"],
        ["0", "100% of 2 (0)", "100% of 2 (0)"],
        ["1", "50% of 2 (1)", "100% of 2 (0)"],
        ["2", "-", "100% of 2 (0)"],
    ]
    assert "turns by turn index" not in render_table(published_summary())


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "n/a"), (1.0, "100%"), (0.9996, "99.9%"), (0.92, "92%"), (0.995, "99.5%"),
     (0.075, "7.5%"), (0.0004, "<0.1%"), (0.0, "0%")],
)  # fmt: skip
def test_shares(value: float | None, text: str) -> None:
    assert format_share(value) == text
