"""A thousand concurrent WebSocket sessions on this 2-core machine.

``rig compare`` runs 1,000 ``ws`` sessions (the ``fast`` preset's pacing, tools in real
time) for 20 s against one mock process (then their tasks in flight end); the mock streams eight tokens per delta so that one core
serves them (docs/performance.md). The run must have no failed turn, every session on one
WebSocket of its own for the whole run (the mock's count of connections equals the
sessions that ran), and records that reconcile exactly with the mock's ``/stats``: the same
number of turns, and the same application bytes in each direction.

Nothing here depends on the machine's speed: how many sessions were open *at once* is a
figure of ``bench/scale.py`` (docs/performance.md), not an assertion; the mock is asked for
its counters only after the load has ended, when it answers at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import start_mock

SESSIONS = 1000


def test_a_thousand_websocket_sessions_reconcile_with_the_mocks_own_counts(
    tmp_path: Path,
) -> None:
    mock, url = start_mock("--preset", "fast", "--delta-tokens", "8")
    try:
        run = subprocess.run(
            [
                sys.executable, "-m", "rig", "compare", "--target-url", url,
                "--transports", "ws", "--users", str(SESSIONS), "--duration", "20",
                "--stop-timeout", "180", "--out", str(tmp_path / "runs"),
                "--json", str(tmp_path / "summary.json"),
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
            timeout=900,
        )  # fmt: skip
        stats = httpx.get(url.removesuffix("/v1") + "/stats", timeout=60).json()
    finally:
        mock.stop()
    assert run.returncode == 0, run.stdout[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    ws = summary["transports"]["ws"]
    (run_dir,) = (tmp_path / "runs").iterdir()
    turns = [json.loads(line) for line in (run_dir / "turns.jsonl").read_text().splitlines()]
    failed = [(t["status"], t["turn"], t["error"]) for t in turns if t["status"] != "ok"]
    assert not failed, (len(failed), failed[:10])
    assert ws["errors"] == 0 and ws["rate_limited"] == 0 and ws["tasks_failed"] == 0
    assert ws["turns"] == stats["turns"] == stats["responses_completed"]
    assert ws["body_bytes_sent_total"] == stats["bytes_in"]
    assert ws["body_bytes_recv_total"] == stats["bytes_out"]
    assert stats["errors"] == 0
    # Each session that ran kept one WebSocket for all its tasks (session ids are
    # transport-worker-index-task), and most of the thousand ran.
    sessions = {turn["session"].rsplit("-", 1)[0] for turn in turns}
    assert stats["connections_total"] == len(sessions)
    assert len(sessions) > SESSIONS // 2, f"only {len(sessions)} sessions ran"
