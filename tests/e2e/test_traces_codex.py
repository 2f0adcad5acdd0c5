"""Codex CLI (the real process) against ``rig mock --record``, then ``rig trace import
codex`` on the rollout Codex wrote: the two traces of one session agree on its model turns
and tool calls, and the recording's request sizes are the bytes Codex sent. Then both
traces replay in one ``rig compare`` run over ``http`` and ``ws`` at 100 sessions a
transport (each traced session by half of them), and each replayed request has the size
of the request Codex sent (within 2%).

The recording is the truth for both: it holds every request as the mock received it. The
rollout holds every item Codex sent, exactly (the base instructions as the message Codex
sends them in, 0.7% off: Codex edits its text a little), but not the tool schemas or the
request's other fields (``reasoning``, ``text``, ``prompt_cache_key``, ``client_metadata``
...): those come from the shipped ``codex`` set, recorded from the same Codex version
(``--shape-from codex``). Nor does it say how a request travelled, so an imported turn's
body is the HTTP request's (its other fields are those of the shipped set's sessions,
whose workspace path, in ``client_metadata``, has another length: within 1% here). Over
WebSocket, Codex sends its instructions and tools ahead in a warm-up (``generate:
false``) the rollout does not show, so the imported trace's first request over ``ws``
carries the warm-up's items with the first turn's: it is checked
against those two together, the later turns one by one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from rig.traces import Session, TurnTrace, read_trace
from rig.traces.codex import find_rollouts
from tests.e2e.test_codex import MODEL, _run_codex

USERS = 100
"""Simulated sessions a transport in the replay."""


def _calls(session: Session) -> list[tuple[str, int, int | None]]:
    return [(c.name, c.argument_bytes, c.output_bytes) for c in session.tool_calls]


def _replay(tmp_path: Path, traces: list[Path]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``rig compare`` replaying the traces' sessions (in this order, round robin) over
    ``http`` and ``ws`` against its embedded mock, at the traced pace: the summary, and
    the turns of the tasks that ended (a task the run's end stopped is left out). The run
    lasts 7 s, so that every user has started (they start within about 5 s) and has
    played at least its first task (the run waits for the tasks in flight)."""
    both = tmp_path / "replayed.jsonl"
    both.write_bytes(b"".join(path.read_bytes() for path in traces))
    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "rig", "compare", "--workload", f"trace:{both}",
         "--transports", "http,ws", "--users", str(USERS), "--duration", "7s",
         "--time-scale", "1", "--preset", "instant", "--out", str(tmp_path / "runs"),
         "--json", str(summary)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    tasks = [json.loads(line) for line in (run / "tasks.jsonl").read_text().splitlines()]
    failed = [t for t in tasks if not t["ok"] and not t["error"].startswith("stopped:")]
    assert not failed, failed
    ended = {t["session"] for t in tasks if t["ok"]}
    turns = [json.loads(line) for line in (run / "turns.jsonl").read_text().splitlines()]
    return json.loads(summary.read_text()), [t for t in turns if t["session"] in ended]


def _by_session(turns: list[dict[str, Any]], transport: str, traced: int) -> list[list[int]]:
    """The request bodies each replayed session of ``transport`` sent, by turn, for the
    traced session number ``traced``: a simulated session's task ``n`` replays the trace's
    session ``index + n`` (round robin; the session id ends with ``-index-n``)."""
    sessions: dict[str, list[int]] = defaultdict(list)
    for turn in sorted(turns, key=lambda t: (t["session"], t["turn"])):
        index, task = (int(part) for part in turn["session"].rsplit("-", 2)[1:])
        if turn["transport"] == transport and (index + task) % 2 == traced:
            assert turn["status"] == "ok", turn
            sessions[turn["session"]].append(turn["body_bytes_sent"])
    return list(sessions.values())


def _within_2_percent(sent: int, traced: int) -> bool:
    return abs(sent - traced) <= 0.02 * traced


def _model_turns(session: Session) -> list[TurnTrace]:
    return [t for t in session.turns if t.kind != "warmup"]


@pytest.mark.parametrize("websockets", [False, True], ids=["http-sse", "websocket"])
def test_a_recorded_and_an_imported_codex_session_agree(tmp_path: Path, websockets: bool) -> None:
    record = tmp_path / "recorded"
    events, stats, _, _ = _run_codex(
        tmp_path, websockets, MODEL, "--scenario", "fix_failing_test", "--record", str(record)
    )
    (recorded,) = read_trace(record).sessions
    (rollout,) = find_rollouts([tmp_path / "codex-home" / "sessions"])
    out = tmp_path / "imported.jsonl"
    command = ["trace", "import", "codex", str(rollout), "-o", str(out), "--shape-from", "codex"]
    done = subprocess.run(
        [sys.executable, "-m", "rig", *command], capture_output=True, text=True, timeout=60
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

    # The rollout's items are the ones Codex sent (but for the instructions' small edits).
    for traced, got in zip(model_turns, imported.turns, strict=True):
        assert got.tools_bytes == traced.tools_bytes and got.instructions_bytes == 0
        if not websockets:  # the whole context each time, as the import has it
            assert (got.carried_items, len(got.input)) == (traced.carried_items, len(traced.input))
            first = 1 if got.index == 0 else 0  # the instructions, whose text Codex edits
            assert [i.bytes for i in got.input[first:]] == [i.bytes for i in traced.input[first:]]
            assert got.body_bytes is not None and traced.body_bytes is not None
            assert _within_2_percent(got.body_bytes, traced.body_bytes)

    # Both traces replayed over both transports at 100 sessions a transport: every task
    # done, each traced session by half of them.
    summary, turns = _replay(tmp_path, [*sorted(record.glob("*.jsonl")), out])
    transport = "ws" if websockets else "http"
    for name in ("http", "ws"):
        for traced, session in enumerate((recorded, imported)):
            replayed = _by_session(turns, name, traced)
            assert len(replayed) >= USERS // 2
            sent = [t for t in session.turns if name == "ws" or t.kind != "warmup"]
            assert {len(bodies) for bodies in replayed} == {len(sent)}

    # The recording replayed over its own transport: every request the size Codex sent.
    expected = [t.body_bytes or 0 for t in recorded.turns]
    for bodies in _by_session(turns, transport, 0):
        assert all(map(_within_2_percent, bodies, expected)), (bodies, expected)
    fidelity = summary["workload"]["fidelity"][transport]
    assert fidelity["turns"] >= USERS // 2 * len(expected)
    assert fidelity["max_rel_diff"] <= 0.02

    # The imported trace over the same transport: each model request the size Codex sent;
    # over WebSocket the first one holds what Codex sent in its warm-up and first request.
    expected = [t.body_bytes or 0 for t in model_turns]
    if websockets:
        (warmup,) = [t for t in recorded.turns if t.kind == "warmup"]
        expected[0] += warmup.input_bytes + len(warmup.input)
    for bodies in _by_session(turns, transport, 1):
        assert all(map(_within_2_percent, bodies, expected)), (bodies, expected)
