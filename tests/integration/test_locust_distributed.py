"""A real Locust master with two real worker processes: records reach the master whole."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from rig.report import render_run
from tests.servers import ManagedProcess, free_port, start_mock

LOCUSTFILE = str(Path(__file__).resolve().parents[2] / "locustfiles" / "agent_sessions.py")


def test_master_and_two_workers_produce_one_complete_run_directory(tmp_path: Path) -> None:
    mock, url = start_mock()
    port = free_port()
    common = [
        sys.executable, "-m", "locust", "-f", LOCUSTFILE,
        "--target-url", url, "--transports", "http,ws", "--time-scale", "0.02",
        "--out", str(tmp_path / "runs"), "--run-id", "distributed",
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

    run_dir = tmp_path / "runs" / "distributed"
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
