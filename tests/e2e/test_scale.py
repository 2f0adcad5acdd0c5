"""A thousand concurrent WebSocket sessions on this 2-core machine for a minute.

``rig compare`` runs 1,000 ``ws`` sessions (the ``fast`` preset's pacing, tools in real
time) against one mock process; the mock streams eight tokens per delta so that one core
serves them (docs/performance.md). The test watches the mock's own count of open
connections reach 1,000, then requires a run with no failed turn and records that
reconcile exactly with the mock's ``/stats``: the same number of turns, and the same
application bytes in each direction.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import start_mock

SESSIONS = 1000


def test_a_thousand_websocket_sessions_reconcile_with_the_mocks_own_counts(
    tmp_path: Path,
) -> None:
    mock, url = start_mock("--preset", "fast", "--delta-tokens", "8")
    stats_url = url.removesuffix("/v1") + "/stats"
    try:
        run = subprocess.Popen(
            [
                sys.executable, "-m", "rig", "compare", "--target-url", url,
                "--transports", "ws", "--users", str(SESSIONS), "--duration", "60",
                "--stop-timeout", "180", "--out", str(tmp_path / "runs"),
                "--json", str(tmp_path / "summary.json"),
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        )  # fmt: skip
        # The mock's own gauge of open connections: poll it while the run goes on.
        peak = 0
        deadline = time.monotonic() + 90
        while peak < SESSIONS and time.monotonic() < deadline and run.poll() is None:
            peak = max(peak, httpx.get(stats_url, timeout=10).json()["connections_open"])
            time.sleep(0.5)
        output, _ = run.communicate(timeout=420)
        stats = httpx.get(stats_url, timeout=10).json()
    finally:
        mock.stop()
    assert run.returncode == 0, output[-4000:]
    assert peak >= SESSIONS, f"only {peak} WebSockets were open at once"
    summary = json.loads((tmp_path / "summary.json").read_text())
    ws = summary["transports"]["ws"]
    assert ws["errors"] == 0 and ws["rate_limited"] == 0 and ws["tasks_failed"] == 0
    assert ws["turns"] == stats["turns"] == stats["responses_completed"]
    assert ws["body_bytes_sent_total"] == stats["bytes_in"]
    assert ws["body_bytes_recv_total"] == stats["bytes_out"]
    assert stats["errors"] == 0
