"""A real Locust master with two real worker processes: records reach the master whole,
each worker writes its points to a real InfluxDB, and the master's exit code and log carry
the ``--check`` verdicts and summary.json (what a Kubernetes job acts on)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from rig.metrics.influxql import InfluxQLClient
from rig.report import render_run
from tests.servers import InfluxDBServer, ManagedProcess, free_port, start_mock

LOCUSTFILE = str(Path(__file__).resolve().parents[2] / "locustfiles" / "agent_sessions.py")


def test_master_and_two_workers_produce_one_complete_run_directory(
    tmp_path: Path, influxdb: InfluxDBServer
) -> None:
    # The fast preset and tools at a tenth of real time keep users mid-task when the run
    # time ends: the workers' last records and points come after the master's quit began.
    mock, url = start_mock("--preset", "fast")
    port = free_port()
    influxdb.query('CREATE DATABASE "distributed"')
    common = [
        sys.executable, "-m", "locust", "-f", LOCUSTFILE,
        "--target-url", url, "--transports", "http,ws", "--time-scale", "0.1",
        "--out", str(tmp_path / "runs"),
        "--sink", "influx-v1", "--influx-url", influxdb.url, "--influx-database", "distributed",
    ]  # fmt: skip
    master = subprocess.Popen(
        [
            *common,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--headless",
            "--expect-workers",
            "2",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "6s",
            "--stop-timeout",
            "60s",
            "--csv",
            str(tmp_path / "locust"),
            "--check",
            "ws_vs_http.bytes_sent_reduction>=0.5",
            "--summary-stdout",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    workers = [
        ManagedProcess(
            [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            "Starting Locust",
        )
        for _ in range(2)
    ]
    try:
        output, _ = master.communicate(timeout=180)
    finally:
        for worker in workers:
            worker.stop()
        mock.stop()
    assert master.returncode == 0, output[-3000:]

    # No --run-id: the master made one, and the workers used it.
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert "did not send their final records" not in output
    turns = [json.loads(line) for line in (run_dir / "turns.jsonl").read_text().splitlines()]
    tasks = [json.loads(line) for line in (run_dir / "tasks.jsonl").read_text().splitlines()]
    # Every turn Locust counted (its own aggregate over both workers) is in the run directory.
    with open(tmp_path / "locust_stats.csv", newline="") as handle:
        aggregated = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    assert len(turns) == int(aggregated["Request Count"]) > 0
    assert {t["worker"] for t in turns} == {"w0", "w1"}
    assert {t["transport"] for t in turns} == {"http", "ws"}
    assert tasks and all(t["ok"] for t in tasks)
    # Sessions never collide across workers.
    assert len({(t["session"], t["turn"]) for t in turns}) == len(turns)
    summary = render_run(run_dir).summary
    assert set(summary["transports"]) == {"http", "ws"}
    assert summary["transports"]["ws"]["turns"] == sum(t["transport"] == "ws" for t in turns)
    # The master rendered the report itself, logged the verdict and printed summary.json.
    assert "check ok ws_vs_http.bytes_sent_reduction>=0.5" in output
    printed = [line for line in output.splitlines() if line.startswith('{"comparison"')]
    assert [json.loads(line) for line in printed] == [summary]
    # Both workers wrote their own points; together they are the run directory's turns.
    client = InfluxQLClient(influxdb.url, "distributed")
    rows = list(
        client.rows(f"SELECT bytes_sent, worker, session FROM turn WHERE run = '{run_dir.name}'")
    )
    assert sorted((r["worker"], r["session"], r["bytes_sent"]) for r in rows) == sorted(
        (t["worker"], t["session"], t["bytes_sent"]) for t in turns
    )
    assert summary["rig"]["sink"] == "influx-v1"
    assert summary["rig"]["points_dropped"] == 0
    assert summary["rig"]["points_written"] == len(rows) + len(tasks) + summary["rig"]["samples"]


def test_a_failed_check_makes_locusts_exit_code_1_and_names_the_check(tmp_path: Path) -> None:
    mock, url = start_mock()
    try:
        done = subprocess.run(
            [
                sys.executable, "-m", "rig", "locust", "--headless", "-u", "2", "-r", "2",
                "-t", "3s", "--target-url", url, "--time-scale", "0.02",
                "--out", str(tmp_path / "runs"),
                "--check", "ws_vs_http.bytes_sent_reduction>=0.5",
                "--check", "ws_vs_http.bytes_sent_reduction>=0.999",
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        mock.stop()
    assert done.returncode == 1, done.stderr[-3000:]
    assert "check FAIL ws_vs_http.bytes_sent_reduction>=0.999" in done.stderr
    assert "check ok ws_vs_http.bytes_sent_reduction>=0.5" in done.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "summary.json").is_file() and (run_dir / "report.html").is_file()


def test_a_malformed_check_is_refused_at_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rig", "locust", "--headless", "-u", "1", "-t", "1s",
         "--out", str(tmp_path / "runs"), "--check", "ws_vs_http.bytes_sent_reduction>>1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "bytes_sent_reduction>>1" in done.stderr
    assert not (tmp_path / "runs").exists()
