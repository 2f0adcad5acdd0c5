"""CLI errors a user meets before anything runs."""

from __future__ import annotations

import subprocess
import sys


def test_rig_mock_rejects_a_bad_preset_before_serving() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rig", "mock", "--preset", "warp-speed", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown latency preset 'warp-speed'" in done.stderr


def test_rig_without_a_command_shows_usage() -> None:
    done = subprocess.run([sys.executable, "-m", "rig"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "compare" in done.stderr and "mock" in done.stderr
