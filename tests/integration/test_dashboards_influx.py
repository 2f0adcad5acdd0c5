"""Every dashboard panel's query, with its variables substituted as Grafana does, against a
real InfluxDB 1.x filled by a real rig run: each runs, returns the series it should (right
tags), and the figures agree with the run's summary.json."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest

from rig.dashboards import ALL, build_all, panel_queries, variable_queries
from rig.metrics.influxql import InfluxQLClient
from rig.metrics.rundir import RunDirectory
from tests.servers import InfluxDBServer

TRANSPORTS = {"http", "ws"}
# Queries that are rightly empty in a run without rate limits, errors or saturation.
QUIET = ('FROM "ratelimit"', "'rate_limited'", "'error'", "'timeout'", "'reconnected'")


@pytest.fixture(scope="module")
def filled(influxdb: InfluxDBServer, tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("dashboards")
    influxdb.query('CREATE DATABASE "dashboards"')
    done = subprocess.run(
        [
            sys.executable, "-m", "rig", "compare", "--users", "2", "--duration", "4",
            "--time-scale", "0.02", "--preset", "instant", "--transports", "http,ws",
            "--out", str(tmp_path / "runs"), "--sink", "influx-v1",
            "--influx-url", influxdb.url, "--influx-database", "dashboards",
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = (tmp_path / "runs").iterdir()
    run = RunDirectory(path)
    summary = json.loads((path / "summary.json").read_text())
    meta = run.read_json("meta.json")
    client = InfluxQLClient(influxdb.url, "dashboards")
    window = (int((meta["started_at"] - 60) * 1e9), int((time.time() + 60) * 1e9))
    return client, run, summary, window


def _queries(filled, uid: str, **variables):
    _, run, _, (start, end) = filled
    values = {"run": run.path.name, "scenario": ALL, "transport": ALL, "target": ALL}
    values |= {"link": ALL, **variables}
    return panel_queries(build_all()[uid], values, start, end, interval_ms=1000)


def _by_title(filled, uid: str, title: str, ref_id: str = "A", **variables):
    client = filled[0]
    (query,) = [
        q
        for q in _queries(filled, uid, **variables)
        if q.panel_title == title and q.ref_id == ref_id
    ]
    return client.query(query.influxql)


def _per_transport(series: list[dict], column: str) -> dict[str, float]:
    out = {}
    for item in series:
        index = item["columns"].index(column)
        (row,) = item["values"]
        out[item["tags"]["transport"]] = row[index]
    return out


@pytest.mark.parametrize("uid", sorted(build_all()))
def test_every_panel_query_runs_and_returns_its_series(filled, uid: str) -> None:
    client = filled[0]
    checked = 0
    for query in _queries(filled, uid):
        series = client.query(query.influxql)  # raises on any InfluxQL error
        if any(marker in query.influxql for marker in QUIET):
            continue
        if '"saturated" = true' in query.influxql:
            continue
        assert series, f"{uid} / {query.panel_title} / {query.ref_id}: no data\n{query.influxql}"
        for item in series:
            tags = item.get("tags") or {}
            if "transport" in tags:
                assert tags["transport"] in TRANSPORTS, (query.panel_title, tags)
            if "worker" in tags:
                assert tags["worker"] == "local", (query.panel_title, tags)
            if "turn" in tags:
                assert tags["turn"].isdigit()
        checked += 1
    assert checked > 0


def test_variable_queries_list_the_runs_tags(filled) -> None:
    client, run, _, _ = filled
    for uid, dashboard in build_all().items():
        values = {"run": run.path.name, "scenario": ALL, "transport": ALL, "target": ALL}
        for name, query in variable_queries(dashboard, {**values, "link": ALL}).items():
            series = client.query(query)
            listed = {value for item in series for _, value in item["values"]}
            expected = {
                "run": {run.path.name},
                "transport": TRANSPORTS,
                "target": {"mock"},
                "link": {"direct"},
            }.get(name)
            if expected is not None:
                assert expected <= listed, (uid, name, listed)
            else:
                assert listed, (uid, name)


def test_latency_figures_agree_with_the_summary(filled) -> None:
    summary = filled[2]["transports"]
    tasks = _per_transport(_by_title(filled, "rig-latency", "Completed tasks"), "tasks")
    assert tasks == {name: summary[name]["tasks"] for name in TRANSPORTS}
    mean = _per_transport(_by_title(filled, "rig-latency", "TTFT mean, all turns"), "ttft_ms")
    p95 = _per_transport(_by_title(filled, "rig-latency", "TTFT p95, all turns"), "ttft_ms")
    turns = filled[1].turns()
    for name in TRANSPORTS:
        # summary.json rounds to 0.01 ms
        assert mean[name] == pytest.approx(summary[name]["ttft_ms_mean"], abs=0.0051)
        # InfluxQL's percentile() takes rank round(n * p / 100) where the report takes
        # ceil(n * p / 100) (docs/dashboards.md): check it against the records themselves.
        ttfts = sorted(
            t.ttft_ms
            for t in turns
            if t.tags.transport == name and t.status in ("ok", "reconnected")
        )
        rank = math.floor(len(ttfts) * 0.95 + 0.5)
        assert p95[name] == pytest.approx(ttfts[rank - 1], abs=1e-9)


def test_ingress_figures_agree_with_the_summary(filled) -> None:
    _, _, summary, _ = filled
    per_task = _by_title(filled, "rig-ingress", "Bytes sent and received per task")
    sent = _per_transport(per_task, "sent")
    for name in TRANSPORTS:
        expected = summary["transports"][name]["bytes_sent_per_task"]
        assert sent[name] == pytest.approx(expected, abs=1)
    # The reduction stat: 1 - A/B of its two hidden queries.
    title = "Bytes sent per task: reduction vs http"
    a = _per_transport(_by_title(filled, "rig-ingress", title, "A"), "bytes_sent")
    (b_series,) = _by_title(filled, "rig-ingress", title, "B")
    baseline = b_series["values"][0][1]
    reduction = 1 - a["ws"] / baseline
    assert reduction == pytest.approx(
        summary["comparison"]["ws_vs_http"]["bytes_sent_reduction"], abs=1e-3
    )
    # Bytes sent per turn index: the linear-vs-flat picture, turn by turn.
    (table,) = [
        q
        for q in _queries(filled, "rig-ingress")
        if q.panel_title == "Bytes sent per turn, by turn index"
    ]
    rows = filled[0].query(table.influxql)
    got = {(s["tags"]["transport"], int(s["tags"]["turn"])): s["values"][0][1] for s in rows}
    for name in TRANSPORTS:
        for entry in summary["transports"][name]["per_turn"]:
            assert got[(name, entry["turn"])] == pytest.approx(entry["bytes_sent_mean"], abs=1)
    # The projection panel at 10,000 sessions matches the report's projection table.
    projected = _per_transport(
        _by_title(filled, "rig-ingress", "Projected ingress at 10000 sessions", sessions="10000"),
        "gbps",
    )
    for row in summary["projection"]:
        if row["sessions"] == 10_000:
            assert projected[row["transport"]] == pytest.approx(row["ingress_gbps"], rel=2e-3)


def test_health_figures_agree_with_the_health_records(filled) -> None:
    _, run, _, _ = filled
    health = run.health()
    (series,) = _by_title(filled, "rig-health", "Metric points written and dropped")
    written = series["values"][0][series["columns"].index("written")]
    assert written == health[-1].points_written
    # Users: per 1 s bucket, the last sample of each worker, summed over workers.
    (users,) = _by_title(filled, "rig-health", "Users")
    expected: dict[int, int] = {}
    for sample in sorted(health, key=lambda h: h.ts):
        expected[int(sample.ts)] = sample.users
    got = {time_ns // 1_000_000_000: value for time_ns, value in users["values"]}
    assert got == expected


def test_by_link_figures_agree_with_the_records(filled) -> None:
    _, run, summary, _ = filled
    tasks = run.tasks()
    got = {
        (s["tags"]["link"], s["tags"]["transport"]): s["values"][0][1]
        for s in _by_title(filled, "rig-latency", "Task time p50 by link")
    }
    assert set(got) == {("direct", name) for name in TRANSPORTS}  # a run without --link
    counts = {
        ref: {
            (s["tags"]["link"], s["tags"]["transport"]): s["values"][0][1]
            for s in _by_title(filled, "rig-latency", "Task success rate by link", ref)
        }
        for ref in ("A", "B")
    }
    for name in TRANSPORTS:
        # InfluxQL's percentile() takes rank round(n * p / 100) (see the latency test).
        seconds = sorted(t.task_ms for t in tasks if t.tags.transport == name and t.ok)
        assert got["direct", name] == pytest.approx(
            seconds[math.floor(len(seconds) * 0.5 + 0.5) - 1]
        )
        figures = summary["transports"][name]
        assert counts["A"]["direct", name] == figures["tasks"]
        assert counts["B"]["direct", name] == figures["tasks"] + figures["tasks_failed"]
