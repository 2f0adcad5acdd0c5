"""``--processes N``: the load spread over N Locust worker processes under a master in the
run command, one run directory out of it.

``rig compare --processes 2`` against a real mock: every turn of both workers reaches the
run directory (the records reconcile exactly with the mock's own ``/stats``: turns and
application bytes each way), both workers carried sessions of both transports, and the
summary and report show each process's load and lag. ``rig capacity --processes 2`` runs
each phase as Locust's own ``--processes`` (a master and forked workers), replaying the
shipped ``codex`` trace, and comes out with both workers' records and the replay's
fidelity.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx

from rig.run.workers import resolve_processes
from tests.servers import start_mock


def _records(run_dir: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / name).read_text().splitlines()]


def test_two_worker_processes_reconcile_every_turn_with_the_mock(tmp_path: Path) -> None:
    mock, url = start_mock("--preset", "fast")
    try:
        run = subprocess.run(
            [
                sys.executable, "-m", "rig", "compare", "--target-url", url,
                "--processes", "2", "--transports", "http,ws", "--users", "4",
                "--duration", "4", "--time-scale", "0.1", "--stop-timeout", "120",
                "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "summary.json"),
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
            timeout=300,
        )  # fmt: skip
        stats = httpx.get(url.removesuffix("/v1") + "/stats", timeout=60).json()
    finally:
        mock.stop()
    assert run.returncode == 0, run.stdout[-4000:]
    assert "in 2 worker processes" in run.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((tmp_path / "summary.json").read_text())

    # Every turn either worker made is in the run directory, and nothing else is.
    turns = _records(run_dir, "turns.jsonl")
    assert len(turns) == stats["turns"] == stats["responses_completed"]
    assert sum(t["body_bytes_sent"] for t in turns) == stats["bytes_in"]
    assert sum(t["body_bytes_recv"] for t in turns) == stats["bytes_out"]
    assert stats["errors"] == 0 and all(t["status"] == "ok" for t in turns)
    figures = summary["transports"]
    assert sum(figures[t]["turns"] for t in ("http", "ws")) == stats["turns"]

    # Both workers ran sessions of both transports (Locust spreads each class's users).
    cells = Counter((t["worker"], t["transport"]) for t in turns)
    assert {worker for worker, _ in cells} == {"w0", "w1"}, cells
    assert {transport for _, transport in cells} == {"http", "ws"}, cells
    # Session ids are transport-worker-index-task: 4 users x 2 transports, none twice.
    sessions = {t["session"].rsplit("-", 1)[0] for t in turns}
    assert len(sessions) == 8, sorted(sessions)

    # Each process's load and lag: in summary.json, the report and the progress lines.
    by_worker = summary["rig"]["by_worker"]
    assert set(by_worker) == {"w0", "w1"}
    assert sum(w["users_max"] for w in by_worker.values()) == 8
    assert all(w["samples"] > 0 and w["lag_ms_p99_max"] is not None for w in by_worker.values())
    assert summary["rig"]["workers"] == 2
    report = (run_dir / "report.html").read_text()
    assert 'id="rig-health-workers"' in report
    assert "w0 " in run.stdout and "w1 " in run.stdout and "lag p99" in run.stdout
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["processes"] == 2
    logs = sorted(p.name for p in (run_dir / "workers").iterdir())
    assert logs == ["worker-0.log", "worker-1.log"]
    assert not any(p.name.startswith(".") for p in (tmp_path / "runs").iterdir())


def test_capacity_phases_run_in_two_processes(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable, "-m", "rig", "capacity", "--processes", "2", "--transports", "ws",
            "--workload", "trace:codex",
            "--step-users", "2", "--step-time", "3s", "--max-users", "2", "--preset", "fast",
            "--time-scale", "0", "--stop-timeout", "30", "--out", str(tmp_path / "runs"),
            "--json", str(tmp_path / "summary.json"),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:]
    assert "in 2 worker processes" in run.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["rig"]["by_worker"]) == {"w0", "w1"}
    (run_dir,) = (tmp_path / "runs").iterdir()
    turns = _records(run_dir, "turns.jsonl")
    assert {t["worker"] for t in turns} == {"w0", "w1"}
    assert summary["transports"]["ws"]["turns"] == len(turns) > 0
    assert json.loads((run_dir / "meta.json").read_text())["processes"] == 2
    # The phases (rig locust children) replayed the shipped codex trace, each request the
    # size the trace says.
    assert summary["scenario"] == "trace:codex"
    fidelity = summary["workload"]["fidelity"]["ws"]
    assert fidelity["turns"] > 0 and fidelity["max_rel_diff"] <= 0.02


def test_auto_leaves_a_core_for_each_embedded_server() -> None:
    assert resolve_processes("auto", embedded_servers=1, cores=16) == 15
    assert resolve_processes("auto", embedded_servers=2, cores=16) == 14
    assert resolve_processes("auto", embedded_servers=0, cores=16) == 16
    assert resolve_processes("auto", embedded_servers=1, cores=1) == 1
    assert resolve_processes("3", embedded_servers=1, cores=2) == 3


def test_a_bad_process_count_is_a_usage_error(tmp_path: Path) -> None:
    for value in ("0", "-1", "two"):
        done = subprocess.run(
            [sys.executable, "-m", "rig", "compare", "--processes", value],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "--processes" in done.stderr
