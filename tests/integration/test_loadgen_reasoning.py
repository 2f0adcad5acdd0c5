"""A reasoning model's encrypted thoughts: carried by stateless clients, kept by the server
for continuations."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.records import RecordTags, TurnRecord
from rig.workload.scenarios import builtin_scenarios
from tests.servers import start_mock

SCENARIO = builtin_scenarios()["fix_failing_test"]


@pytest.fixture(scope="module")
def reasoning_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    preset = tmp_path_factory.mktemp("preset") / "thinker.yaml"
    preset.write_text("name: thinker\nreasoning_tokens: 150\n")
    process, url = start_mock("--preset", str(preset))
    yield url
    process.stop()


def _turns(url: str, transport: str) -> list[TurnRecord]:
    records: list = []
    config = SessionConfig(
        transport,
        SCENARIO,
        Target.from_url(url),
        RecordTags("t", SCENARIO.name, transport, "mock"),
        time_scale=0,
    )
    session = AgentSession(config, records.append)
    try:
        assert session.run_task().ok
    finally:
        session.close()
    return [r for r in records if isinstance(r, TurnRecord)]


def test_the_sdk_reads_reasoning_items_and_usage(reasoning_mock: str) -> None:
    with openai.OpenAI(base_url=reasoning_mock, api_key="k") as client:
        response = client.responses.create(
            model="mock-agent",
            input="Explain the fix",
            store=False,
            include=["reasoning.encrypted_content"],
        )
    assert response.output[0].type == "reasoning" and response.output[0].encrypted_content
    assert response.usage.output_tokens_details.reasoning_tokens > 0


def test_stateless_http_resends_the_reasoning_and_continuations_do_not(reasoning_mock: str) -> None:
    http = _turns(reasoning_mock, "http")
    ws = _turns(reasoning_mock, "ws")
    assert len(http) == len(ws)
    # Each HTTP request carries every earlier turn's encrypted reasoning (~0.8 KB each):
    # its growth per turn exceeds the WebSocket's new items by at least that much.
    growth = (http[-1].body_bytes_sent - http[0].body_bytes_sent) / (len(http) - 1)
    assert growth > 800
    ws_late = [t.body_bytes_sent for t in ws[1:]]
    assert max(ws_late) < http[-1].body_bytes_sent / 3
    # The same conversation either way: the model thought and said the same amount.
    assert sum(t.output_tokens for t in http) == sum(t.output_tokens for t in ws)
