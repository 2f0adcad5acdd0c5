"""``--shape`` drives a real Locust run: the session count follows the shape's steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.servers import start_mock


def test_a_steps_shape_raises_the_sessions_level_by_level_then_ends(tmp_path: Path) -> None:
    mock, url = start_mock()
    try:
        done = subprocess.run(
            [
                sys.executable, "-m", "rig", "locust", "--headless",
                "--shape", "steps:users=2,every=4s,max=4", "--stop-timeout", "30",
                "--ttft-slo-ms", "1234", "--max-rate-limited", "0.05",
                "--target-url", url, "--time-scale", "0.02", "--out", str(tmp_path / "runs"),
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        mock.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["shape"] == "steps:users=2,every=4s,max=4"
    health = [json.loads(line) for line in (run_dir / "health.jsonl").read_text().splitlines()]
    users = [h["users"] for h in health]
    assert 2 in users and 4 in users
    assert max(users) == 4
    assert users.index(4) > users.index(2), "the second level comes after the first"
    summary = json.loads((run_dir / "summary.json").read_text())
    for figures in summary["capacity"].values():  # a steps run gets the knee, by its criteria
        assert figures["criteria"] == {"max_rate_limited": 0.05, "ttft_slo_ms": 1234.0}
        assert [level["sessions"] for level in figures["levels"]] == [2, 4]


def test_a_bad_shape_stops_locust_at_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rig", "locust", "--headless", "--shape", "steps:users=2",
         "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "missing every, max" in done.stderr
