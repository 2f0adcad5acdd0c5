"""Codex CLI (the real process) against ``rig mock --record``, then ``rig trace import
codex`` on the rollout Codex wrote: the two traces of one session agree on its model turns
and tool calls, and the recording's request sizes are the bytes Codex sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rig.traces import Session, read_trace
from rig.traces.codex import find_rollouts
from tests.e2e.test_codex import MODEL, _run_codex


def _calls(session: Session) -> list[tuple[str, int, int | None]]:
    return [(c.name, c.argument_bytes, c.output_bytes) for c in session.tool_calls]


@pytest.mark.parametrize("websockets", [False, True], ids=["http-sse", "websocket"])
def test_a_recorded_and_an_imported_codex_session_agree(tmp_path: Path, websockets: bool) -> None:
    record = tmp_path / "recorded"
    events, stats, _ = _run_codex(
        tmp_path, websockets, MODEL, "--scenario", "fix_failing_test", "--record", str(record)
    )
    (recorded,) = read_trace(record).sessions
    (rollout,) = find_rollouts([tmp_path / "codex-home" / "sessions"])
    out = tmp_path / "imported.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "rig", "trace", "import", "codex", str(rollout), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 session(s)" in done.stdout
    (imported,) = read_trace(out).sessions

    # One session each, from the same agent and model.
    assert recorded.info.agent == imported.info.agent == "codex_exec/0.171.0"
    assert recorded.info.model == imported.info.model == MODEL
    assert recorded.info.transport == ("ws" if websockets else "sse")

    # The same model turns: Codex's own count, the mock's, the rollout's.
    model_turns = [t for t in recorded.turns if t.kind != "warmup"]
    agent_messages = [
        e for e in events
        if e["type"] == "item.completed" and e["item"]["type"] == "agent_message"
    ]  # fmt: skip
    assert len(model_turns) == len(imported.turns) == len(agent_messages)
    assert len(model_turns) == stats["responses_completed"]
    if websockets:
        assert recorded.turns[0].kind == "warmup"
        assert {t.kind for t in model_turns} == {"continuation"}
    else:
        assert [t.kind for t in recorded.turns] == ["full"] * len(recorded.turns)
        assert all(t.carried_items > 0 for t in recorded.turns[1:])

    # The same tool calls, with the same argument and output sizes, and the same usage.
    assert _calls(recorded) == _calls(imported)
    assert {c.name for c in recorded.tool_calls} >= {"exec_command", "apply_patch"}
    assert [t.usage for t in model_turns] == [t.usage for t in imported.turns]

    # The recording's request sizes are what Codex sent; every turn resent the tools.
    assert sum(t.body_bytes or 0 for t in recorded.turns) == stats["bytes_in"]
    assert all(t.tool_count and t.tools_bytes and t.tools_bytes > 1000 for t in recorded.turns)
