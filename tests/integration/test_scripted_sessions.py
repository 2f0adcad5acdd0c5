"""A scripted agent session of every scenario against the mock, over HTTP and WebSocket.

The headline shape of the published measurements, asserted on wire bytes: a stateless
HTTP request grows with every turn, a WebSocket continuation does not; and the model side
plays the same conversation either way, so the difference is the transport alone.
"""

from __future__ import annotations

from itertools import pairwise

import httpx
import pytest

from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
from rig.workload.scenarios import builtin_scenarios, make_task
from rig.workload.tools import INSTRUCTIONS, TOOLS

SCENARIOS = sorted(builtin_scenarios())


def _slope(sizes: list[int]) -> float:
    """Least-squares bytes per turn."""
    n = len(sizes)
    mean_x = (n - 1) / 2
    mean_y = sum(sizes) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(sizes))
    return num / sum((x - mean_x) ** 2 for x in range(n))


def _run(url: str, scenario_name: str, transport: str) -> tuple[TaskRecord, list[TurnRecord]]:
    scenario = builtin_scenarios()[scenario_name]
    records: list = []
    config = SessionConfig(
        transport=transport,
        scenario=scenario,
        target=Target.from_url(url),
        tags=RecordTags("test", scenario.name, transport, "mock"),
        time_scale=0.0,
    )
    session = AgentSession(config, records.append)
    try:
        task = session.run_task()
    finally:
        session.close()
    return task, [r for r in records if isinstance(r, TurnRecord)]


@pytest.fixture(scope="module", params=SCENARIOS)
def sessions(
    request: pytest.FixtureRequest, mock_url: str
) -> dict[str, tuple[TaskRecord, list[TurnRecord]]]:
    return {transport: _run(mock_url, request.param, transport) for transport in ("http", "ws")}


def test_http_requests_grow_every_turn(sessions: dict) -> None:
    sizes = [t.bytes_sent for t in sessions["http"][1]]
    assert all(later > earlier for earlier, later in pairwise(sizes)), sizes
    assert sizes[-1] > 5 * sizes[0]


def test_ws_continuations_stay_flat(sessions: dict) -> None:
    http_sizes = [t.bytes_sent for t in sessions["http"][1]]
    ws_sizes = [t.bytes_sent for t in sessions["ws"][1]]
    # No trend: the WebSocket slope is a small fraction of the HTTP slope ...
    assert abs(_slope(ws_sizes)) < 0.15 * _slope(http_sizes), (ws_sizes, http_sizes)
    # ... and no continuation is as large as the late full-context requests.
    assert max(ws_sizes) < http_sizes[-1] / 2
    assert sum(ws_sizes) < 0.5 * sum(http_sizes)


def test_both_transports_play_the_same_conversation(sessions: dict) -> None:
    (http_task, http_turns), (ws_task, ws_turns) = sessions["http"], sessions["ws"]
    scenario = builtin_scenarios()[http_turns[0].tags.scenario]
    assert http_task.ok and ws_task.ok
    assert [t.tool_calls for t in http_turns] == [t.tool_calls for t in ws_turns]
    assert [t.output_tokens for t in http_turns] == [t.output_tokens for t in ws_turns]
    low, high = scenario.turns
    assert low <= http_task.turns <= high
    low, high = scenario.tool_calls
    assert low <= http_task.tool_calls <= high


def test_usage_counts_the_whole_context_on_both_transports(sessions: dict) -> None:
    http_turns, ws_turns = sessions["http"][1], sessions["ws"][1]
    assert [t.input_tokens for t in http_turns] == [t.input_tokens for t in ws_turns]
    # A continuation holds its earlier context: cached once that is past the 1,024-token
    # minimum, and never more than the earlier context.
    for before, turn in pairwise(ws_turns):
        if before.input_tokens >= 1024:
            assert before.input_tokens <= turn.cached_tokens + 128 <= turn.input_tokens + 128


def test_a_client_that_drops_context_gets_a_detectably_wrong_conversation(mock_url: str) -> None:
    scenario = builtin_scenarios()["fix_failing_test"]
    task = make_task(scenario, 0, 0)
    body = {
        "model": "mock-agent",
        "instructions": INSTRUCTIONS,
        "tools": TOOLS,
        "store": False,
        "metadata": {"scenario": scenario.name},
    }
    with httpx.Client(base_url=mock_url, timeout=30) as http:
        first = http.post("/responses", json=dict(body, input=task.prompt)).json()
        calls = [i for i in first["output"] if i["type"] == "function_call"]
        # Only the tool outputs, no history and no previous_response_id: the API's error.
        orphan = [
            {"type": "function_call_output", "call_id": c["call_id"], "output": "x"} for c in calls
        ]
        refused = http.post("/responses", json=dict(body, input=orphan))
        assert refused.status_code == 400
        assert calls[0]["call_id"] in refused.json()["error"]["message"]
        # Only the original prompt again: the model starts over with the same first moves.
        again = http.post("/responses", json=dict(body, input=task.prompt)).json()
        again_calls = [i for i in again["output"] if i["type"] == "function_call"]
        assert [(c["name"], c["arguments"]) for c in again_calls] == [
            (c["name"], c["arguments"]) for c in calls
        ]
