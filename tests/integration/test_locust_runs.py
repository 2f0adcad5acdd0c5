"""Two rig runs in one process share nothing: each run's state lives on its own
``LocustRun``, which detaches from Locust's events when the run ends.

The runs go in a child process (Locust patches its process with gevent), against a real
mock; the child reports what each run held, and the assertions are here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rig.collector import THRESHOLDS
from tests.servers import start_mock

TWO_RUNS = r"""
import gc, json, sys
import gevent
from locust.env import Environment
from locust.event import Events
from rig.locust.plugin import LocustRun, user_classes
from rig.options import RunOptions

url, out = sys.argv[1], sys.argv[2]
events = Events()  # one set of events for both runs, as in a `locust -f` process
report = []
runs = [({"preset": "first"}, ["ws.turns>=1"], "default"), ({}, [], "tuned")]
for n, (extra, checks, gc_mode) in enumerate(runs):
    options = RunOptions(
        target_url=url, transports="http", time_scale=0.0, out=out, run_id=f"run{n}",
        check=checks, users_per_transport=1, gc=gc_mode,
    )
    environment = Environment(user_classes=user_classes(["http"]), events=events)
    runner = environment.create_local_runner()
    run = LocustRun.attach(environment, options, extra_meta=extra)
    listening = len(events.test_start._handlers)
    runner.start(1, spawn_rate=10)
    for _ in range(2000):  # bounded by count: until the session has made a few turns
        if run.relay.turns >= 3:
            break
        gevent.sleep(0.01)
    runner.stop()
    runner.quit()
    events.quitting.fire(environment=environment, reverse=True)
    report.append({
        "listening_during": listening,
        "listening_after": len(events.test_start._handlers) + len(events.quitting._handlers),
        "attached_after": hasattr(environment, "rig_run"),
        "sessions_started": next(run.counters["http"]),
        "checks": len(run.checks),
        "run_dir": str(run.relay.run.path),
        "turns": run.relay.turns,
        "frozen": gc.get_freeze_count(),
        "threshold": list(gc.get_threshold()),
    })
print(json.dumps(report))
"""


def test_a_second_run_in_the_same_process_inherits_nothing_from_the_first(
    tmp_path: Path,
) -> None:
    mock, url = start_mock()
    try:
        done = subprocess.run(
            [sys.executable, "-c", TWO_RUNS, url, str(tmp_path / "runs")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        mock.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    for run in (first, second):
        assert run["listening_during"] == 1  # its own listener, not the earlier run's too
        assert run["listening_after"] == 0 and not run["attached_after"]
        assert run["sessions_started"] == 1  # counters start again: one session each
        assert run["turns"] >= 3
    assert (first["checks"], second["checks"]) == (1, 0)
    assert first["run_dir"] != second["run_dir"]
    first_meta = json.loads((Path(first["run_dir"]) / "meta.json").read_text())
    second_meta = json.loads((Path(second["run_dir"]) / "meta.json").read_text())
    assert first_meta["preset"] == "first"
    assert "preset" not in second_meta
    # --gc: the interpreter's own collector in the first run; settled once the second
    # run's users were spawned (what they built frozen, rarer collections).
    assert first["frozen"] == 0 and first["threshold"] == [700, 10, 10]
    assert second["frozen"] > 0 and tuple(second["threshold"]) == THRESHOLDS
    second_turns = (Path(second["run_dir"]) / "turns.jsonl").read_text().splitlines()
    assert second_turns and all(json.loads(t)["run"] == "run1" for t in second_turns)
