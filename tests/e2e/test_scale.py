"""A thousand concurrent WebSocket sessions on this 2-core machine for a minute.

``rig compare`` runs 1,000 ``ws`` sessions (the ``fast`` preset's pacing, tools in real
time) against one mock process; the mock streams eight tokens per delta so that one core
serves them (docs/performance.md). The test watches the mock's own count of open
connections reach 1,000 (polled while the mock is saturated, so a poll may time out and
is simply retried; the polls are bounded by count, not by the clock), then requires a run with no failed turn and records that
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
POLL_TIMEOUT_S = 60.0
"""A saturated mock answers /stats late: wait long, never fail the run on one slow poll."""
MAX_POLLS = 400


def _stats(url: str, attempts: int = 10) -> dict[str, int] | None:
    """The mock's /stats, or ``None`` when it did not answer in ``attempts`` tries."""
    for _ in range(attempts):
        try:
            return httpx.get(url, timeout=POLL_TIMEOUT_S).json()
        except httpx.TransportError:  # a time-out or a refused connection: ask again
            continue
    return None


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
        for _ in range(MAX_POLLS):
            if peak >= SESSIONS or run.poll() is not None:
                break
            during = _stats(stats_url, attempts=1)
            if during is not None:
                peak = max(peak, during["connections_open"])
            time.sleep(0.5)
        output, _ = run.communicate(timeout=900)
        # The load has ended: the mock is idle now and answers at once.
        stats = _stats(stats_url)
    finally:
        mock.stop()
    assert run.returncode == 0, output[-4000:]
    assert stats is not None, "the mock's /stats did not answer after the run"
    assert peak >= SESSIONS, f"only {peak} WebSockets were open at once"
    summary = json.loads((tmp_path / "summary.json").read_text())
    ws = summary["transports"]["ws"]
    assert ws["errors"] == 0 and ws["rate_limited"] == 0 and ws["tasks_failed"] == 0
    assert ws["turns"] == stats["turns"] == stats["responses_completed"]
    assert ws["body_bytes_sent_total"] == stats["bytes_in"]
    assert ws["body_bytes_recv_total"] == stats["bytes_out"]
    assert stats["errors"] == 0
