"""The README's main-job command, run as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys


def test_rig_demo_runs_every_scenario_and_reports_the_saving() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rig", "demo"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for scenario in ("fix_failing_test", "add_search_feature", "refactor_api_layer"):
        assert f"{scenario}:" in out
    saving = re.search(r"all scenarios: (\d+)% fewer request bytes", out)
    assert saving is not None, out
    assert 50 <= int(saving.group(1)) < 100


def test_rig_demo_rejects_an_unknown_scenario() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rig", "demo", "--scenario", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown scenario 'nope'" in done.stderr


def test_rig_mock_rejects_a_bad_preset_before_serving() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rig", "mock", "--preset", "warp-speed", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown latency preset 'warp-speed'" in done.stderr
