"""``--arrivals`` through the Locust plugin: with ``recorded``, every session's config
carries the run's start (so its first task waits for its traced start); with ``spawn``
none does; meta.json says which."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SESSION_ARRIVALS = r"""
import json, sys
from locust.env import Environment
from locust.event import Events
from rig.locust.plugin import LocustRun, user_classes
from rig.options import RunOptions

report = {}
for arrivals in ("spawn", "recorded"):
    options = RunOptions(target_url="http://127.0.0.1:9/v1", transports="http",
                         workload="trace:codex", arrivals=arrivals, out=sys.argv[1])
    environment = Environment(user_classes=user_classes(["http"]), events=Events())
    environment.create_local_runner()
    run = LocustRun.attach(environment, options)
    configs = [run.session_config("http", 0)[0] for _ in range(3)]
    report[arrivals] = {
        "run_started": [config.run_started for config in configs],
        "started": run.started,
        "meta": run.meta()["arrivals"],
    }
print(json.dumps(report))
"""


def test_recorded_arrivals_give_every_session_the_runs_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SESSION_ARRIVALS, str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["spawn"]["run_started"] == [None, None, None]
    assert report["spawn"]["meta"] == "spawn"
    recorded = report["recorded"]
    assert recorded["run_started"] == [recorded["started"]] * 3
    assert recorded["meta"] == "recorded"
