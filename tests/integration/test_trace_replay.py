"""Trace replay against a real mock: the shipped ``codex`` trace over ``http`` and ``ws``.

Each replayed request must have the traced request body's size for the same transport
(within 2%), and the mock must answer with the traced output items.
"""

from __future__ import annotations

import pytest

from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
from rig.traces import load_trace
from rig.workload.scenarios import builtin_scenarios

SCENARIO = builtin_scenarios()["fix_failing_test"]
TRACE = load_trace("codex")
SESSIONS = 4
"""Simulated sessions per transport: each of the eight traced sessions at least once
over the two transports together (round robin by session index)."""


def _replay(url: str, transport: str) -> list[list]:
    runs = []
    for index in range(SESSIONS):
        records: list = []
        config = SessionConfig(
            transport=transport,
            scenario=SCENARIO,
            target=Target.from_url(url),
            tags=RecordTags("test", "trace:codex", transport, "mock"),
            time_scale=0.0,
            trace=TRACE,
        )
        session = AgentSession(config, records.append, session_index=index)
        try:
            session.run_task()
        finally:
            session.close()
        runs.append(records)
    return runs


@pytest.fixture(scope="module")
def replays(mock_url: str) -> dict[str, list[list]]:
    return {transport: _replay(mock_url, transport) for transport in ("http", "ws")}


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_every_traced_session_replays_to_its_end(replays: dict, transport: str) -> None:
    for index, records in enumerate(replays[transport]):
        (task,) = [r for r in records if isinstance(r, TaskRecord)]
        traced = TRACE.sessions[index % len(TRACE.sessions)]
        assert task.ok, task.error
        sent = [t for t in traced.turns if transport == "ws" or t.kind != "warmup"]
        assert task.turns == len(sent)


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_request_bodies_match_the_trace_within_2_percent(replays: dict, transport: str) -> None:
    compared = []
    for records in replays[transport]:
        for turn in records:
            if isinstance(turn, TurnRecord) and turn.traced_body_bytes:
                compared.append((turn.body_bytes_sent, turn.traced_body_bytes))
    assert len(compared) >= 2 * 6  # two traced sessions of this transport, 6+ turns each
    worst = max(abs(sent - traced) / traced for sent, traced in compared)
    assert worst <= 0.02, compared


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_the_mock_answers_with_the_traced_tool_calls(replays: dict, transport: str) -> None:
    for index, records in enumerate(replays[transport]):
        traced = TRACE.sessions[index % len(TRACE.sessions)]
        turns = [r for r in records if isinstance(r, TurnRecord)]
        sent = [t for t in traced.turns if transport == "ws" or t.kind != "warmup"]
        # A turn record counts function calls (custom tool calls are answered, not counted).
        expected = [sum(c.type == "function_call" for c in t.tool_calls) for t in sent]
        assert [t.tool_calls for t in turns] == expected
