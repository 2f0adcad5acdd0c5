"""The airplane problem's mechanism, shrunk: over a slow uplink, HTTP's requests grow with
the turn index until one takes longer to upload than the request timeout, while WebSocket
continuations stay small and complete (docs/links.md, "The airplane problem, measured").

Shrunk about 20 times against the shipped ``airplane`` profile and its 120-s timeout, so
that the test takes well under a minute:

- the workload is the shipped ``codex`` trace with every tool output made 200 KB (a
  what-if: Codex truncates its outputs to 10 KiB, docs/links.md), so HTTP's request grows
  by 200 KB a turn while a WebSocket continuation carries one output;
- the link is a profile file written here: a 0.5 Mbit/s uplink (62.5 KB/s), 100 ms of RTT
  and no loss, jitter or outages, so the turn at which HTTP fails is set by the sizes, not
  by random draws;
- ``--request-timeout 6s``: HTTP's turn 1 (240 KB: 3.8 s of upload, 4.7 s in all) fits,
  turn 2 (440 KB, 7 s of upload) cannot; a continuation (at most 211 KB, 4.1 s) always fits.

At the shipped profile's scale a continuation of that size takes over 20 s to upload and
the mock's WebSocket keepalive breaks the connection (docs/links.md, "WebSocket keepalive
on a slow link": with uvicorn's 20/20 only ``ws_stored`` completes there): this test shows
HTTP's side of the problem, not that WebSocket survives the real link.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

OUTPUT_BYTES = 200_000
PROFILE = """\
# A fast-failing variant of airplane for a test: see the module's docstring.
name: slowup
downlink_mbps: 2
uplink_mbps: 0.5
rtt_ms: 100
"""


def _big_outputs_trace(path: Path) -> None:
    """The shipped codex trace with every tool output ``OUTPUT_BYTES`` long: each turn's
    new items, the context HTTP resends and the traced body sizes grown to match."""
    source = resources.files("rig.traces").joinpath("sets", "codex.jsonl").read_text()
    grown: dict[str, int] = {}  # bytes each session's context has gained so far
    lines = []
    for line in source.splitlines():
        record = json.loads(line)
        if record["record"] == "turn":
            session, added = record["session"], 0
            for item in record["input"]:
                if item["type"] == "function_call_output":
                    added += OUTPUT_BYTES - item["bytes"]
                    item["bytes"] = OUTPUT_BYTES
            before = grown.get(session, 0)
            if record["carried_items"]:  # a stateless request resends what came before
                record["carried_bytes"] += before
                record["body_bytes"] += before
            record["body_bytes"] += added
            grown[session] = before + added
            for call in record["tool_calls"]:
                if call["output_bytes"] is not None:  # null: never answered
                    call["output_bytes"] = OUTPUT_BYTES
        lines.append(json.dumps(record, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def airplane_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("airplane")
    trace, profile = tmp_path / "big-outputs.jsonl", tmp_path / "slowup.yaml"
    _big_outputs_trace(trace)
    profile.write_text(PROFILE)
    done = subprocess.run(
        [
            sys.executable, "-m", "rig", "compare", "--transports", "http,ws",
            "--users", "2", "--duration", "4", "--stop-timeout", "50", "--time-scale", "0",
            "--preset", "fast", "--workload", f"trace:{trace}", "--link", str(profile),
            "--request-timeout", "6s", "--out", str(tmp_path / "runs"),
        ],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def test_http_times_out_as_the_context_grows_while_websocket_completes(airplane_run) -> None:
    summary = json.loads((airplane_run / "summary.json").read_text())
    assert summary["links"] == ["slowup"]
    http, ws = summary["transports"]["http"], summary["transports"]["ws"]
    # HTTP: every task dies on a timeout, never at its first (small) request.
    assert http["tasks"] == 0 and http["tasks_failed"] >= 1
    assert http["timeouts"] == http["tasks_failed"]
    outcomes = {row["turn"]: row for row in http["per_turn_outcomes"]}
    assert outcomes[0]["timeouts"] == 0 and outcomes[0]["successful"] == outcomes[0]["turns"]
    assert sum(row["timeouts"] for turn, row in outcomes.items() if turn >= 1) == http["timeouts"]
    # WebSocket: the same tasks complete, every turn of them.
    assert ws["tasks"] >= 1 and ws["tasks_failed"] == 0 and ws["timeouts"] == 0
    assert ws["task_success_rate"] == 1.0
    assert all(row["timeouts"] == 0 for row in ws["per_turn_outcomes"])
    assert max(row["turn"] for row in ws["per_turn_outcomes"]) > max(outcomes)
