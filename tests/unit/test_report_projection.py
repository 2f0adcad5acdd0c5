"""Ingress projection: the arithmetic, checked against the published 29 Gbps example."""

from __future__ import annotations

import pytest

from rig.report.projection import SESSIONS, ingress_gbps, project


def figures(bytes_per_task: float | None, task_seconds: float | None) -> dict:
    return {"bytes_sent_per_task": bytes_per_task, "task_seconds_mean": task_seconds}


def test_the_published_example_saves_about_29_gbps_at_one_million_sessions() -> None:
    # BACKGROUND.md: 1M x 176 KB vs 1M x 32 KB per 40 s task is 144 GB less per 40 s, ~29 Gbps.
    rows = project({"http": figures(176_000, 40), "ws": figures(32_000, 40)})
    ws = next(r for r in rows if r["transport"] == "ws" and r["sessions"] == 1_000_000)
    assert ws["saving_vs_http_gbps"] == pytest.approx(144e9 * 8 / 40 / 1e9)  # 28.8
    assert round(ws["saving_vs_http_gbps"]) == 29


def test_ingress_is_sessions_times_bytes_per_task_times_8_over_task_seconds() -> None:
    assert ingress_gbps(10_000, 100_000, 10) == pytest.approx(10_000 * 100_000 * 8 / 10 / 1e9)
    assert ingress_gbps(10_000, 100_000, 10) == pytest.approx(0.8)
    assert ingress_gbps(1_000_000, 176_000, 40.8) == pytest.approx(34.51, abs=0.01)


def test_each_transport_uses_its_own_task_time() -> None:
    # Published means: HTTP 176 KB in 40.8 s, WebSocket 32 KB in 28.9 s.
    rows = project({"http": figures(176_000, 40.8), "ws": figures(32_000, 28.9)}, [1_000_000])
    http, ws = rows
    assert http["ingress_gbps"] == pytest.approx(176_000 * 8 / 40.8 / 1000, abs=1e-4)
    assert ws["ingress_gbps"] == pytest.approx(32_000 * 8 / 28.9 / 1000, abs=1e-4)
    assert ws["saving_vs_http_gbps"] == pytest.approx(
        http["ingress_gbps"] - ws["ingress_gbps"], abs=1e-3
    )


def test_rows_cover_every_session_count_and_transport_in_order() -> None:
    rows = project({"http": figures(10, 1), "ws": figures(1, 1)})
    assert [(r["sessions"], r["transport"]) for r in rows] == [
        (count, name) for count in SESSIONS for name in ("http", "ws")
    ]
    assert SESSIONS == (10_000, 100_000, 1_000_000)
    assert all(r["saving_vs_http_gbps"] is None for r in rows if r["transport"] == "http")


def test_missing_figures_give_null_not_an_error() -> None:
    rows = project({"http": figures(None, None), "ws": figures(1000, 0)}, [10_000])
    assert rows == [
        {
            "sessions": 10_000,
            "transport": "http",
            "ingress_gbps": None,
            "saving_vs_http_gbps": None,
        },
        {"sessions": 10_000, "transport": "ws", "ingress_gbps": None, "saving_vs_http_gbps": None},
    ]


def test_without_http_there_is_ingress_but_no_saving() -> None:
    rows = project({"ws": figures(32_000, 40)}, [1_000_000])
    assert rows[0]["ingress_gbps"] == pytest.approx(6.4)
    assert rows[0]["saving_vs_http_gbps"] is None
