"""``rig compare`` and ``rig report`` run as a user runs them, against real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, start_mock

QUICK = ["--users", "2", "--duration", "4", "--time-scale", "0.02", "--preset", "instant"]


def _compare(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rig", "compare", "--out", str(tmp_path / "runs"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def compared(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp_path = tmp_path_factory.mktemp("compare")
    done = _compare(
        tmp_path,
        *QUICK,
        "--transports", "http,ws,chat",
        "--json", str(tmp_path / "summary.json"),
        "--check", "ws_vs_http.bytes_sent_reduction>=0.5",
    )  # fmt: skip
    return done, tmp_path


def test_compare_prints_the_table_and_passes_the_check(compared) -> None:
    done, _ = compared
    assert done.returncode == 0, done.stderr[-3000:]
    assert "avg bytes sent / task" in done.stdout
    assert "check ok" in done.stdout


def test_compare_writes_the_run_directory_and_the_json(compared) -> None:
    _, tmp_path = compared
    (run_dir,) = (tmp_path / "runs").iterdir()
    for name in ("meta.json", "turns.jsonl", "tasks.jsonl", "summary.json", "report.html"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert set(summary["transports"]) == {"http", "ws", "chat"}
    assert summary["target"] == "mock"
    for figures in summary["transports"].values():
        assert figures["tasks"] > 0 and figures["errors"] == 0
    # The summary agrees with the records it was built from.
    turns = [json.loads(line) for line in (run_dir / "turns.jsonl").read_text().splitlines()]
    ws_turns = [t for t in turns if t["transport"] == "ws"]
    assert summary["transports"]["ws"]["turns"] == len(ws_turns)
    # The cells are paired: user k of every transport plays the same scenario's tasks.
    by_transport: dict[str, dict[str, str]] = {}
    for turn in turns:
        if turn["turn"] == 0:
            user_task = turn["session"].split("-", 1)[1]  # "<worker>-<user>-<task>"
            by_transport.setdefault(turn["transport"], {})[user_task] = turn["scenario"]
    shared = set.intersection(*(set(cells) for cells in by_transport.values()))
    assert shared
    for key in shared:
        assert len({cells[key] for cells in by_transport.values()}) == 1, key
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["latency_model"]["name"] == "instant" and meta["duration_s"] > 0


def test_report_rerenders_a_run_directory(compared) -> None:
    _, tmp_path = compared
    (run_dir,) = (tmp_path / "runs").iterdir()
    before = (run_dir / "summary.json").read_bytes()
    (run_dir / "report.html").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "rig", "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (run_dir / "report.html").is_file()
    assert (run_dir / "summary.json").read_bytes() == before


def test_a_failed_check_exits_1_and_names_it(tmp_path: Path) -> None:
    done = _compare(tmp_path, *QUICK, "--check", "ws_vs_http.bytes_sent_reduction>=0.999")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "FAIL ws_vs_http.bytes_sent_reduction>=0.999" in done.stdout


def test_an_unreachable_target_exits_3(tmp_path: Path) -> None:
    done = _compare(
        tmp_path, *QUICK, "--target-url", f"http://127.0.0.1:{free_port()}/v1", timeout=60
    )
    assert done.returncode == 3
    assert "unreachable" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transports", "http,pigeon"], "pigeon"),
        (["--check", "ws_vs_http.bytes_sent_reduction=>0.8"], "bytes_sent_reduction"),
        (["--preset", "warp"], "warp"),
        (["--target-url", "http://127.0.0.1:1/v1,127.0.0.1:2/v1"], "'127.0.0.1:2/v1'"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = _compare(tmp_path, *QUICK, *args, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize("quota", [["--rpm", "5"], ["--burst", "0.5"], ["--limits", "x.yaml"]])
def test_a_quota_with_a_target_url_is_refused_not_ignored(tmp_path: Path, quota: list[str]) -> None:
    # The quota configures the embedded mock; a target of one's own has its own limits.
    # The target is unreachable on purpose: the refusal comes before any connection.
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = _compare(tmp_path, *QUICK, "--target-url", url, *quota, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "embedded mock" in done.stderr and "--target-url" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_report_on_a_non_run_directory_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rig", "report", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert str(tmp_path) in done.stderr


def test_ws_mux_is_a_sixth_cell_with_fewer_sockets_than_sessions(tmp_path: Path) -> None:
    """``rig compare`` runs the registered ``ws_mux`` like any transport: in the table and
    summary.json, on fewer sockets than sessions, every turn reconciled with the mock."""
    process, url = start_mock("--preset", "instant")
    try:
        done = _compare(
            tmp_path, *QUICK, "--users", "6", "--transports", "http,ws_mux",
            "--ws-mux-sessions-per-connection", "3", "--target-url", url,
        )  # fmt: skip
        stats = httpx.get(url.removesuffix("/v1") + "/stats", timeout=30).json()
    finally:
        process.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WebSocket multiplexed" in done.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["transports"]["ws_mux"]["tasks"] > 0
    assert summary["transports"]["ws_mux"]["errors"] == 0
    turns = [json.loads(line) for line in (run_dir / "turns.jsonl").read_text().splitlines()]
    mux = [t for t in turns if t["transport"] == "ws_mux"]
    http = [t for t in turns if t["transport"] == "http"]
    assert mux and http and all(t["status"] == "ok" for t in turns)
    # 6 ws_mux sessions at 3 per connection: 2 WebSockets (the http sessions open none).
    assert stats["connections_total"] == 2
    assert stats["responses_completed"] == len(turns)
    assert stats["bytes_in"] == sum(t["body_bytes_sent"] for t in turns)
    assert stats["bytes_out"] == sum(t["body_bytes_recv"] for t in turns)


def test_a_target_of_two_urls_spreads_the_run_over_both(tmp_path: Path) -> None:
    """``--target-url URL1,URL2``: the sessions' connections go to both mocks in turn, and
    the two mocks' counters add up to the run's records."""
    first, url1 = start_mock("--preset", "instant")
    second, url2 = start_mock("--preset", "instant")
    try:
        done = _compare(
            tmp_path, *QUICK, "--transports", "http,ws", "--target-url", f"{url1},{url2}"
        )
        stats = [
            httpx.get(u.removesuffix("/v1") + "/stats", timeout=30).json() for u in (url1, url2)
        ]
    finally:
        first.stop()
        second.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    turns = [json.loads(line) for line in (run_dir / "turns.jsonl").read_text().splitlines()]
    assert turns and all(t["status"] == "ok" for t in turns)
    assert {t["target"] for t in turns} == {"127.0.0.1"}  # the target's name, as with one URL
    # 2 http + 2 ws sessions, one connection each, in turn: two on each mock.
    assert all(s["responses_completed"] > 0 for s in stats)
    assert sum(s["connections_total"] for s in stats) == 2  # the ws sessions' sockets
    assert sum(s["responses_completed"] for s in stats) == len(turns)
    assert sum(s["bytes_in"] for s in stats) == sum(t["body_bytes_sent"] for t in turns)
    assert sum(s["bytes_out"] for s in stats) == sum(t["body_bytes_recv"] for t in turns)
