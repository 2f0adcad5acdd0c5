"""summary.json: every figure on synthetic records whose true values are worked out here."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import pytest

from rig.metrics.records import (
    HealthRecord,
    RateLimitRecord,
    RecordTags,
    TaskRecord,
    TurnRecord,
)
from rig.metrics.rundir import RunDirectory
from rig.report import (
    ReportError,
    build_summary,
    evaluate,
    parse_check,
    render_table,
    summarize,
)
from rig.report.stats import percentile
from rig.report.summary import FEW_TASKS

META = {"run_id": "r1", "target": "mock", "scenario": "fix_failing_test", "duration_s": 60}


def tags(transport: str, worker: str = "local") -> RecordTags:
    return RecordTags(
        run="r1", scenario="fix_failing_test", transport=transport, target="mock", worker=worker
    )


def turn(
    transport: str,
    index: int,
    *,
    sent: int = 1000,
    recv: int = 2000,
    ttft: float = 100.0,
    status: str = "ok",
    session: str = "s0",
) -> TurnRecord:
    return TurnRecord(
        tags=tags(transport),
        session=session,
        turn=index,
        ts=1000.0 + index,
        bytes_sent=sent,
        bytes_recv=recv,
        body_bytes_sent=sent - 200,
        body_bytes_recv=recv - 200,
        ttfb_ms=ttft / 2,
        ttft_ms=ttft,
        turn_ms=ttft * 3,
        input_tokens=100,
        cached_tokens=0,
        output_tokens=20,
        tool_calls=1,
        status=status,  # type: ignore[arg-type]
    )


def task(
    transport: str,
    *,
    seconds: float = 10.0,
    sent: int = 10_000,
    recv: int = 20_000,
    ok: bool = True,
    turns: int = 3,
    session: str = "s0",
) -> TaskRecord:
    return TaskRecord(
        tags=tags(transport),
        session=session,
        ts=1000.0,
        task_ms=seconds * 1000,
        turns=turns,
        bytes_sent=sent,
        bytes_recv=recv,
        tool_calls=turns,
        ok=ok,
    )


def health(
    *,
    cpu: float = 40.0,
    lag_p99: float = 5.0,
    lag_max: float = 9.0,
    saturated: bool = False,
    worker: str = "w1",
    ts: float = 1000.0,
    points_written: int = 0,
    points_dropped: int = 0,
) -> HealthRecord:
    return HealthRecord(
        tags=tags("-", worker=worker),
        ts=ts,
        users=10,
        turns_per_s=5.0,
        cpu_percent=cpu,
        lag_ms_p99=lag_p99,
        lag_ms_max=lag_max,
        saturated=saturated,
        points_written=points_written,
        points_dropped=points_dropped,
    )


def hit(transport: str) -> RateLimitRecord:
    return RateLimitRecord(
        tags=tags(transport), ts=1000.0, limit="requests", retry_after_ms=500.0, remaining=0
    )


def write_run(parent: Path, records: list, meta: dict | None = None) -> RunDirectory:
    run = RunDirectory.create(parent, "r1", dict(META if meta is None else meta))
    run.append(records)
    run.close()
    return run


# -- per-transport figures -------------------------------------------------------------


def test_per_task_figures_are_means_over_completed_tasks_only() -> None:
    tasks = [
        task("http", seconds=30, sent=100_000, recv=300_000),
        task("http", seconds=50, sent=200_000, recv=500_000, turns=5),
        task("http", seconds=999, sent=999_999, recv=999_999, ok=False),
    ]
    figures = summarize(META, [turn("http", 0)], tasks)["transports"]["http"]
    assert figures["tasks"] == 2
    assert figures["tasks_failed"] == 1
    assert figures["bytes_sent_per_task"] == 150_000
    assert figures["bytes_recv_per_task"] == 400_000
    assert figures["task_seconds_mean"] == 40
    assert figures["turns_per_task_mean"] == 4


def test_errors_count_error_and_timeout_and_rate_limited_counts_its_own_status() -> None:
    turns = [
        turn("ws", 0, status="ok"),
        turn("ws", 1, status="reconnected"),
        turn("ws", 2, status="error"),
        turn("ws", 3, status="timeout"),
        turn("ws", 4, status="rate_limited"),
    ]
    figures = summarize(META, turns, [], [hit("ws"), hit("ws"), hit("http")])["transports"]
    assert figures["ws"]["turns"] == 5
    assert figures["ws"]["errors"] == 2
    assert figures["ws"]["rate_limited"] == 1
    assert figures["ws"]["rate_limit_hits"] == 2
    assert figures["http"]["rate_limit_hits"] == 1


def test_ttft_is_over_ok_and_reconnected_turns_and_excludes_failed_ones() -> None:
    turns = [
        turn("ws", 0, ttft=100, status="ok"),
        turn("ws", 1, ttft=300, status="reconnected"),
        turn("ws", 2, ttft=5_000, status="error"),
        turn("ws", 3, ttft=9_000, status="timeout"),
        turn("ws", 4, ttft=7_000, status="rate_limited"),
    ]
    figures = summarize(META, turns, [])["transports"]["ws"]
    assert figures["ttft_ms_mean"] == 200
    assert figures["ttft_ms_p95"] == 300


def test_first_turn_ttft_is_the_mean_over_turn_index_zero() -> None:
    turns = [
        turn("http", 0, ttft=1000, session="a"),
        turn("http", 0, ttft=1200, session="b"),
        turn("http", 1, ttft=5000, session="a"),
        turn("http", 0, ttft=9999, session="c", status="error"),
    ]
    figures = summarize(META, turns, [])["transports"]["http"]
    assert figures["ttft_ms_first_turn_mean"] == 1100
    assert figures["ttft_ms_mean"] == pytest.approx((1000 + 1200 + 5000) / 3, abs=0.01)


def test_p95_is_nearest_rank_not_interpolated() -> None:
    # 20 values 1..20 ms: nearest rank ceil(0.95 * 20) = 19 -> 19 ms (interpolation: 19.05).
    turns = [turn("ws", i, ttft=float(i + 1)) for i in range(20)]
    random.Random(1).shuffle(turns)
    assert summarize(META, turns, [])["transports"]["ws"]["ttft_ms_p95"] == 19
    # 21 values: ceil(19.95) = 20th smallest.
    assert percentile([float(v) for v in range(1, 22)], 95) == 20


def test_task_seconds_p95_is_nearest_rank_over_completed_tasks() -> None:
    tasks = [task("http", seconds=s) for s in range(1, 41)]  # ceil(0.95 * 40) = 38
    tasks.append(task("http", seconds=1000, ok=False))
    assert summarize(META, [turn("http", 0)], tasks)["transports"]["http"]["task_seconds_p95"] == 38


def test_per_turn_groups_successful_turns_by_index_in_ascending_order() -> None:
    turns = [
        turn("http", 1, sent=4000, recv=1000, ttft=150, session="a"),
        turn("http", 0, sent=2000, recv=1000, ttft=100, session="a"),
        turn("http", 0, sent=2200, recv=3000, ttft=120, session="b"),
        turn("http", 1, sent=4400, recv=3000, ttft=170, session="b"),
        turn("http", 1, sent=99_999, recv=99_999, ttft=99_999, session="c", status="error"),
        turn("http", 2, sent=6000, session="a", status="timeout"),
    ]
    per_turn = summarize(META, turns, [])["transports"]["http"]["per_turn"]
    assert per_turn == [
        {"turn": 0, "n": 2, "bytes_sent_mean": 2100, "bytes_recv_mean": 2000, "ttft_ms_mean": 110},
        {"turn": 1, "n": 2, "bytes_sent_mean": 4200, "bytes_recv_mean": 2000, "ttft_ms_mean": 160},
    ]


def test_a_transport_without_data_has_nulls_and_the_json_has_no_nan() -> None:
    turns = [turn("ws", 0, status="error"), turn("http", 0)]
    tasks = [task("ws", ok=False), task("http")]
    summary = summarize(META, turns, tasks)
    ws = summary["transports"]["ws"]
    for key in (
        "bytes_sent_per_task",
        "bytes_recv_per_task",
        "task_seconds_mean",
        "ttft_ms_mean",
        "ttft_ms_first_turn_mean",
        "ttft_ms_p95",
    ):
        assert ws[key] is None, key
    assert ws["per_turn"] == []
    assert all(value is None for value in summary["comparison"]["ws_vs_http"].values())
    json.dumps(summary, allow_nan=False)  # raises on NaN or infinity
    assert "ws: no completed tasks, so its per-task figures are null" in summary["warnings"]


def test_a_transport_planned_in_meta_but_without_records_is_reported_empty() -> None:
    summary = summarize({**META, "transports": ["http", "ws"]}, [turn("http", 0)], [task("http")])
    assert summary["transports"]["ws"]["tasks"] == 0
    assert summary["transports"]["ws"]["turns"] == 0


# -- comparison --------------------------------------------------------------------------


def test_every_transport_is_compared_with_http_as_reduction_fractions() -> None:
    turns = [
        turn("http", 0, ttft=1000),
        turn("ws", 0, ttft=900),
        turn("ws_stored", 0, ttft=950),
        turn("http_chained", 0, ttft=1100),
        turn("chat", 0, ttft=1000),
    ]
    tasks = [
        task("http", seconds=40, sent=176_000, recv=485_000),
        task("ws", seconds=30, sent=32_000, recv=343_000),
        task("ws_stored", seconds=32, sent=33_000, recv=343_000),
        task("http_chained", seconds=44, sent=30_000, recv=485_000),
        task("chat", seconds=40, sent=180_000, recv=500_000),
    ]
    comparison = summarize(META, turns, tasks)["comparison"]
    assert set(comparison) == {
        "ws_vs_http",
        "ws_stored_vs_http",
        "http_chained_vs_http",
        "chat_vs_http",
    }
    ws = comparison["ws_vs_http"]
    assert ws["bytes_sent_reduction"] == pytest.approx(1 - 32_000 / 176_000, abs=1e-4)  # 0.8182
    assert ws["bytes_recv_reduction"] == pytest.approx(1 - 343_000 / 485_000, abs=1e-4)
    assert ws["task_time_reduction"] == 0.25
    assert ws["ttft_reduction"] == 0.1
    assert ws["ttft_first_turn_reduction"] == 0.1
    chained = comparison["http_chained_vs_http"]
    assert chained["task_time_reduction"] == -0.1  # slower: negative
    assert chained["ttft_reduction"] == -0.1
    chat = comparison["chat_vs_http"]
    assert chat["bytes_sent_reduction"] < 0  # sends more than http
    assert chat["ttft_reduction"] == 0


def test_without_http_there_is_no_comparison_and_a_warning_says_why() -> None:
    summary = summarize(META, [turn("ws", 0)], [task("ws")])
    assert summary["comparison"] == {}
    assert any("http was not run" in warning for warning in summary["warnings"])
    assert all(row["saving_vs_http_gbps"] is None for row in summary["projection"])


def test_a_zero_http_figure_gives_a_null_reduction_not_a_division_error() -> None:
    tasks = [task("http", sent=0), task("ws", sent=100)]
    summary = summarize(META, [turn("http", 0), turn("ws", 0)], tasks)
    assert summary["comparison"]["ws_vs_http"]["bytes_sent_reduction"] is None


# -- run, rig and warnings ---------------------------------------------------------------


def test_run_identity_comes_from_meta() -> None:
    summary = summarize({**META, "users": 200, "preset": "gpt-5.4"}, [turn("http", 0)], [])
    assert (summary["run_id"], summary["target"], summary["scenario"]) == (
        "r1",
        "mock",
        "fix_failing_test",
    )
    assert summary["duration_s"] == 60
    assert summary["users"] == 200
    assert summary["preset"] == "gpt-5.4"


def test_missing_meta_keys_fall_back_to_the_records_or_null() -> None:
    summary = summarize({}, [turn("http", 0)], [], default_run_id="dir-name")
    assert summary["run_id"] == "dir-name"
    assert summary["target"] == "mock"
    assert summary["scenario"] == "fix_failing_test"
    assert summary["duration_s"] is None
    assert summary["preset"] is None


def test_rig_health_reports_worst_lag_mean_cpu_and_saturation() -> None:
    samples = [
        health(cpu=30, lag_p99=4, lag_max=10),
        health(cpu=50, lag_p99=80, lag_max=200, saturated=True),
        health(cpu=40, lag_p99=6, lag_max=12),
    ]
    summary = summarize(META, [turn("http", 0)], [], health=samples)
    assert summary["rig"] == {
        "samples": 3,
        "workers": 1,
        "lag_ms_p99_max": 80,
        "lag_ms_max": 200,
        "cpu_percent_mean": 40,
        "cpu_percent_max": 50,
        "saturated": True,
        "saturated_samples": 1,
        "by_worker": {
            "w1": {
                "samples": 3,
                "users_max": 10,
                "turns_per_s_mean": 5.0,
                "cpu_percent_mean": 40,
                "cpu_percent_max": 50,
                "lag_ms_p99_max": 80,
                "lag_ms_max": 200,
                "saturated_samples": 1,
            }
        },
        "sink": None,
        "points_written": None,
        "points_dropped": None,
    }
    assert any(
        "load generator saturated" in w and "latency figures unreliable" in w
        for w in summary["warnings"]
    )


def test_each_worker_has_its_own_health_figures() -> None:
    samples = [
        health(worker="w0", cpu=20, lag_p99=3, lag_max=5),
        health(worker="w1", cpu=60, lag_p99=30, lag_max=90, saturated=True),
        health(worker="w0", cpu=40, lag_p99=7, lag_max=8),
    ]
    rig = summarize(META, [turn("http", 0)], [], health=samples)["rig"]
    assert rig["workers"] == 2 and list(rig["by_worker"]) == ["w0", "w1"]
    w0, w1 = rig["by_worker"]["w0"], rig["by_worker"]["w1"]
    assert (w0["samples"], w0["cpu_percent_mean"], w0["lag_ms_p99_max"]) == (2, 30, 7)
    assert (w0["saturated_samples"], w1["saturated_samples"]) == (0, 1)
    assert (w1["lag_ms_max"], w1["cpu_percent_max"]) == (90, 60)


def test_an_unsaturated_run_has_no_saturation_warning_and_no_health_gets_its_own() -> None:
    healthy = summarize(META, [turn("http", 0)], [task("http")], health=[health()])
    assert healthy["rig"]["saturated"] is False
    assert not any("saturated" in w for w in healthy["warnings"])
    blind = summarize(META, [turn("http", 0)], [task("http")])
    assert blind["rig"]["samples"] == 0
    assert blind["rig"]["lag_ms_p99_max"] is None
    assert any("no load-generator health records" in w for w in blind["warnings"])


def test_errors_and_rate_limits_are_warned_about_per_transport() -> None:
    turns = [turn("http", 0), turn("ws", 0), turn("ws", 1, status="error")]
    summary = summarize(META, turns, [task("http"), task("ws")], [hit("ws")], [health()])
    assert "ws: 1 of 2 turns failed (error or timeout)" in summary["warnings"]
    assert any(w.startswith("ws: 1 rate-limit hits") for w in summary["warnings"])


# -- from a run directory -------------------------------------------------------------------


def test_build_summary_reads_the_run_directory(tmp_path: Path) -> None:
    run = write_run(tmp_path, [turn("http", 0), task("http", sent=5000), health()])
    summary = build_summary(run)
    assert summary["run_id"] == "r1"
    assert summary["transports"]["http"]["bytes_sent_per_task"] == 5000
    assert summary["rig"]["samples"] == 1


def test_record_order_does_not_change_a_single_byte_of_summary_json(tmp_path: Path) -> None:
    rng = random.Random(3)
    records: list = []
    for session in range(30):
        for index in range(8):
            for transport in ("http", "ws"):
                records.append(
                    turn(
                        transport,
                        index,
                        sent=rng.randint(1000, 40_000),
                        ttft=rng.uniform(900, 1300),
                        session=f"s{session}",
                    )
                )
        for transport in ("http", "ws"):
            records.append(task(transport, seconds=rng.uniform(20, 40), sent=rng.randint(1, 10**6)))
    shuffled = list(records)
    rng.shuffle(shuffled)
    first = write_run(tmp_path / "a", records)
    second = write_run(tmp_path / "b", shuffled)
    written = [
        run.write_json("summary.json", build_summary(run)).read_bytes() for run in (first, second)
    ]
    assert written[0] == written[1]
    assert b"NaN" not in written[0]


def test_a_run_without_turn_records_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    run = write_run(tmp_path, [task("http")])
    with pytest.raises(ReportError, match=r"turns\.jsonl: no turn records") as caught:
        build_summary(run)
    assert "run again" in str(caught.value)


def test_a_missing_directory_or_meta_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such run directory"):
        build_summary(RunDirectory(tmp_path / "nope"))
    (tmp_path / "bare").mkdir()
    with pytest.raises(ReportError, match=r"meta\.json: missing"):
        build_summary(RunDirectory(tmp_path / "bare"))


def test_a_malformed_record_line_is_a_report_error_naming_file_and_line(tmp_path: Path) -> None:
    run = write_run(tmp_path, [turn("http", 0)])
    with open(run.path / "turns.jsonl", "ab") as handle:
        handle.write(b'{"kind": "turn", "oops": 1}\n')
    with pytest.raises(ReportError, match=r"turns\.jsonl:2: malformed record"):
        build_summary(run)


def test_summary_figures_are_finite_or_null_everywhere() -> None:
    summary = summarize(META, [turn("http", 0), turn("ws", 0)], [task("http"), task("ws")])

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, float):
            assert math.isfinite(node)

    walk(summary)


def test_few_completed_tasks_are_warned_about_as_noisy() -> None:
    few = summarize(META, [turn("ws", 0)], [task("ws") for _ in range(FEW_TASKS - 1)])
    assert any(w.startswith(f"ws: only {FEW_TASKS - 1} completed tasks") for w in few["warnings"])
    enough = summarize(META, [turn("ws", 0)], [task("ws") for _ in range(FEW_TASKS)])
    assert not any("completed tasks" in w for w in enough["warnings"])


def test_sink_points_come_from_the_runs_final_counts_when_meta_has_them() -> None:
    samples = [health(points_written=10, points_dropped=0)]
    meta = {**META, "sink": {"kind": "influx-v1", "points_written": 95, "points_dropped": 3}}
    summary = summarize(meta, [turn("http", 0)], [], health=samples)
    assert (summary["rig"]["sink"], summary["rig"]["points_written"]) == ("influx-v1", 95)
    assert summary["rig"]["points_dropped"] == 3
    assert any("dropped 3 points of 98" in w for w in summary["warnings"])


def test_a_check_on_dropped_points_fails_a_run_that_dropped_any() -> None:
    lossy = {**META, "sink": {"kind": "influx-v1", "points_written": 104, "points_dropped": 332}}
    clean = {**META, "sink": {"kind": "influx-v1", "points_written": 436, "points_dropped": 0}}
    check = parse_check("rig.points_dropped==0")
    ((failed,),) = [evaluate([check], summarize(lossy, [turn("http", 0)], []))]
    ((passed,),) = [evaluate([check], summarize(clean, [turn("http", 0)], []))]
    assert (failed.passed, failed.actual, passed.passed) == (False, 332.0, True)


def test_sink_points_otherwise_sum_each_workers_last_health_sample() -> None:
    samples = [
        health(worker="w0", ts=1.0, points_written=10, points_dropped=1),
        health(worker="w0", ts=3.0, points_written=30, points_dropped=2),
        health(worker="w1", ts=2.0, points_written=7, points_dropped=0),
    ]
    summary = summarize(META, [turn("http", 0)], [], health=samples)
    assert (summary["rig"]["points_written"], summary["rig"]["points_dropped"]) == (37, 2)


def test_rate_limits_report_hits_waits_and_throughput_against_the_quota() -> None:
    hits = [
        RateLimitRecord(tags("ws"), 1.0, "requests", 500.0, 0, waited_ms=600.0),
        RateLimitRecord(tags("ws"), 2.0, "tokens", 900.0, 10, waited_ms=1000.0),
        RateLimitRecord(tags("ws"), 3.0, "requests", 500.0, 0, waited_ms=0.0),
    ]
    meta = {**META, "mock_limits": ["--rpm", "120", "--burst", "0.5"]}
    turns = [turn("ws", i) for i in range(6)] + [turn("http", 0)]
    summary = summarize(meta, turns, [], ratelimits=hits)
    section = summary["rate_limits"]
    assert section["quota"] == {"rpm": 120, "burst": 0.5}
    ws = section["transports"]["ws"]
    assert ws["hits"] == 3 and ws["by_kind"] == {"requests": 2, "tokens": 1}
    assert ws["wait_s"] == 1.6
    assert ws["turns_per_s"] == 0.1  # 6 successful turns in 60 s
    assert ws["share_of_request_quota"] == 0.05  # of 2 requests/s
    assert summary["transports"]["ws"]["successful_turns"] == 6
    assert section["transports"]["http"]["hits"] == 0


def test_totals_add_up_every_turns_bytes() -> None:
    turns = [turn("ws", 0), turn("ws", 1), turn("ws", 2)]
    figures = summarize(META, turns, [])["transports"]["ws"]
    assert figures["bytes_sent_total"] == sum(t.bytes_sent for t in turns)
    assert figures["body_bytes_recv_total"] == sum(t.body_bytes_recv for t in turns)


def test_task_time_parts_split_a_completed_task_and_add_up_to_its_time() -> None:
    # One task of 10 s with two turns: the first opens a connection (40 ms) and writes its
    # request in 10 ms, first token at 250 ms, done at 1,000 ms; the second reuses the
    # connection: 5 ms to write, first token at 200 ms, done at 600 ms.
    turns = [
        _timed(0, connect=40.0, upload=10.0, ttft=250.0, total=1000.0),
        _timed(1, connect=0.0, upload=5.0, ttft=200.0, total=600.0),
        _timed(0, connect=9.0, upload=9.0, ttft=900.0, total=900.0, session="failed"),
    ]
    tasks = [task("ws", seconds=10.0), task("ws", ok=False, session="failed")]
    parts = summarize(META, turns, tasks)["transports"]["ws"]["task_time_parts"]
    assert parts == {
        "connect_s": 0.04,
        "upload_s": 0.015,
        "first_token_s": 0.395,  # (250 - 40 - 10) + (200 - 0 - 5) ms
        "streaming_s": 1.15,  # (1000 - 250) + (600 - 200) ms
        "tools_s": 8.4,  # 10 s less the turns' 1.6 s
    }
    assert math.isclose(sum(parts.values()), 10.0)


def _timed(
    index: int, *, connect: float, upload: float, ttft: float, total: float, session: str = "s0"
) -> TurnRecord:
    return TurnRecord(
        tags=tags("ws"), session=session, turn=index, ts=1000.0, bytes_sent=1, bytes_recv=1,
        body_bytes_sent=1, body_bytes_recv=1, ttfb_ms=ttft, ttft_ms=ttft, turn_ms=total,
        input_tokens=1, cached_tokens=0, output_tokens=1, tool_calls=1, status="ok",
        connect_ms=connect, upload_ms=upload,
    )  # fmt: skip


def test_task_time_parts_are_null_without_a_completed_task() -> None:
    summary = summarize(META, [turn("ws", 0)], [task("ws", ok=False)])
    assert set(summary["transports"]["ws"]["task_time_parts"].values()) == {None}


def test_the_projection_has_no_caveats_for_a_clean_run() -> None:
    tasks = [task(name, session=f"s{i}") for name in ("http", "ws") for i in range(FEW_TASKS)]
    turns = [turn(name, 0, session=f"s{i}") for name in ("http", "ws") for i in range(FEW_TASKS)]
    assert summarize(META, turns, tasks)["projection_caveats"] == []


def test_failures_and_rate_limits_make_the_projection_unreliable() -> None:
    tasks = [task("http", session=f"s{i}") for i in range(FEW_TASKS)]
    tasks.append(task("http", ok=False, session="x"))
    turns = [turn("http", 0, session=f"s{i}") for i in range(FEW_TASKS)]
    turns.append(turn("http", 0, status="rate_limited", session="x"))
    hits = [RateLimitRecord(tags("http"), 1000.0, "requests", 500.0, 0, 500.0)]
    caveats = summarize(META, turns, tasks, hits)["projection_caveats"]
    assert caveats == [
        f"http: 1 of {FEW_TASKS + 1} tasks failed",
        "http: 1 rate-limit hits (task times include back-off; a limited fleet sends less)",
    ]


# -- links and turn outcomes -------------------------------------------------------------


def on(link: str, record):
    """``record`` with its ``link`` tag set."""
    return dataclasses.replace(record, tags=dataclasses.replace(record.tags, link=link))


def test_a_run_on_one_link_names_it_and_has_no_by_link_section() -> None:
    summary = summarize(META, [on("airplane", turn("http", 0))], [on("airplane", task("http"))])
    assert summary["links"] == ["airplane"]
    assert "by_link" not in summary
    assert summarize(META, [turn("http", 0)], [task("http")])["links"] == ["direct"]


def test_a_mix_of_links_gets_each_links_figures_per_transport() -> None:
    turns = [
        on("cable", turn("http", 0, ttft=100, session="a")),
        on("cable", turn("http", 1, ttft=300, session="a")),
        on("airplane", turn("http", 0, ttft=2000, session="b")),
        on("airplane", turn("http", 1, ttft=9000, status="timeout", session="b")),
        on("airplane", turn("ws", 0, ttft=1500, session="c")),
    ]
    tasks = [
        on("cable", task("http", seconds=10, sent=5000, recv=7000, session="a")),
        on("cable", task("http", seconds=30, sent=7000, recv=9000, session="a2")),
        on("airplane", task("http", seconds=99, ok=False, session="b")),
        on("airplane", task("ws", seconds=50, sent=1000, recv=3000, session="c")),
    ]
    summary = summarize(META, turns, tasks)
    assert summary["links"] == ["airplane", "cable"]
    by_link = summary["by_link"]
    assert set(by_link) == {"airplane", "cable"}
    assert set(by_link["cable"]) == {"http"}  # no ws session ran on cable
    assert by_link["cable"]["http"] == {
        "tasks": 2,
        "tasks_failed": 0,
        "task_success_rate": 1.0,
        "turns": 2,
        "errors": 0,
        "timeouts": 0,
        "task_seconds_p50": 10,
        "task_seconds_p90": 30,
        "ttft_ms_p50": 100,
        "bytes_sent_per_task": 6000,
        "bytes_recv_per_task": 8000,
    }
    airplane = by_link["airplane"]["http"]
    assert (airplane["tasks"], airplane["tasks_failed"], airplane["task_success_rate"]) == (0, 1, 0)
    assert (airplane["errors"], airplane["timeouts"], airplane["ttft_ms_p50"]) == (1, 1, 2000)
    assert airplane["task_seconds_p50"] is None and airplane["bytes_sent_per_task"] is None
    assert by_link["airplane"]["ws"]["tasks"] == 1
    json.dumps(summary, allow_nan=False)


def test_each_count_by_link_sums_to_the_transports_count() -> None:
    rng = random.Random(7)
    turns, tasks = [], []
    for number in range(60):
        name, link = rng.choice(["http", "ws"]), rng.choice(["cable", "lte", "airplane"])
        status = rng.choice(["ok", "ok", "timeout", "error", "reconnected"])
        session = f"{name}-{number}"
        turns.append(on(link, turn(name, 0, session=session, status=status)))
        tasks.append(on(link, task(name, session=session, ok=status in ("ok", "reconnected"))))
    summary = summarize(META, turns, tasks)
    for name, figures in summary["transports"].items():
        for count in ("tasks", "tasks_failed", "turns", "errors", "timeouts"):
            by_link = [cells[name][count] for cells in summary["by_link"].values() if name in cells]
            assert sum(by_link) == figures[count], (name, count)


def test_timeouts_and_the_task_success_rate_per_transport() -> None:
    turns = [turn("http", 0), turn("http", 1, status="timeout"), turn("http", 2, status="error")]
    tasks = [task("http"), task("http", ok=False), task("http", ok=False), task("http")]
    figures = summarize(META, turns, tasks)["transports"]["http"]
    assert (figures["errors"], figures["timeouts"]) == (2, 1)
    assert figures["task_success_rate"] == 0.5
    assert summarize(META, turns, [])["transports"]["http"]["task_success_rate"] is None


def test_task_time_and_ttft_medians_and_p90_are_nearest_rank() -> None:
    tasks = [task("ws", seconds=s) for s in range(1, 11)]  # p50: 5th, p90: 9th
    turns = [turn("ws", 0, ttft=float(t), session=f"s{t}") for t in (40, 10, 30, 20)]
    figures = summarize(META, turns, tasks)["transports"]["ws"]
    assert (figures["task_seconds_p50"], figures["task_seconds_p90"]) == (5, 9)
    assert figures["ttft_ms_p50"] == 20


def test_turn_outcomes_count_every_status_at_each_turn_index() -> None:
    turns = [
        turn("http", 0, session="a"),
        turn("http", 0, session="b"),
        turn("http", 0, session="c", status="reconnected"),
        turn("http", 0, session="d", status="rate_limited"),
        turn("http", 1, session="a"),
        turn("http", 1, session="b", status="timeout"),
        turn("http", 1, session="c", status="error"),
        turn("http", 2, session="a", status="timeout"),
    ]
    outcomes = summarize(META, turns, [])["transports"]["http"]["per_turn_outcomes"]
    assert outcomes == [
        {
            "turn": 0,
            "turns": 4,
            "successful": 3,
            "errors": 0,
            "timeouts": 0,
            "rate_limited": 1,
            "success_rate": 0.75,
            "timeout_rate": 0,
        },
        {
            "turn": 1,
            "turns": 3,
            "successful": 1,
            "errors": 2,
            "timeouts": 1,
            "rate_limited": 0,
            "success_rate": 0.3333,
            "timeout_rate": 0.3333,
        },
        {
            "turn": 2,
            "turns": 1,
            "successful": 0,
            "errors": 1,
            "timeouts": 1,
            "rate_limited": 0,
            "success_rate": 0,
            "timeout_rate": 1,
        },
    ]


def test_transport_settings_off_their_defaults_are_named_in_summary_and_table() -> None:
    meta = {
        **META,
        "transport_options": {
            "ws": {"deflate": True, "resume": False},  # resume at its default: not named
            "ws_mux": {"sessions_per_connection": 4},  # not a transport of this run
            "nonesuch": {"x": 1},
        },
    }
    turns, tasks = [turn("http", 0), turn("ws", 0)], [task("http"), task("ws")]
    summary = summarize(meta, turns, tasks)
    assert summary["transport_options"] == {"ws": {"deflate": True}}
    assert "transport options: --ws-deflate yes" in render_table(summary).splitlines()
    plain = summarize(META, turns, tasks)
    assert plain["transport_options"] == {}
    assert "transport options" not in render_table(plain)
