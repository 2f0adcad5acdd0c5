"""``max_output_tokens`` on a real mock playing a reasoning model: the budget bounds
reasoning and visible tokens together, reasoning spends it first, and a spent budget ends
the response ``incomplete`` with the API's reason (HTTP, SSE and WebSocket)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.servers import start_mock

REASONING = 150
PROMPT = "Explain the fix in detail"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    preset = tmp_path_factory.mktemp("preset") / "thinker.yaml"
    preset.write_text(f"name: thinker\nreasoning_tokens: {REASONING}\n")
    process, url = start_mock("--preset", str(preset))
    with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk
    process.stop()


def _ws_response(client: openai.OpenAI, **create: Any) -> Any:
    with client.responses.connect() as connection:
        connection.response.create(model="mock-agent", input=PROMPT, store=False, **create)
        for event in connection:
            if event.type in ("response.completed", "response.incomplete", "error"):
                return event.response
    raise AssertionError("connection closed before a terminal event")


def _sse_response(client: openai.OpenAI, **create: Any) -> Any:
    events = list(client.responses.create(model="mock-agent", input=PROMPT, stream=True, **create))
    return events[-1].response


def _http_response(client: openai.OpenAI, **create: Any) -> Any:
    return client.responses.create(model="mock-agent", input=PROMPT, **create)


TRANSPORTS = [_http_response, _sse_response, _ws_response]


@pytest.mark.parametrize("respond", TRANSPORTS, ids=["http", "sse", "ws"])
def test_a_budget_below_the_reasoning_ends_incomplete_with_nothing_visible(
    client: openai.OpenAI, respond: Any
) -> None:
    response = respond(client, max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 16
    assert response.usage.output_tokens_details.reasoning_tokens == 16
    assert [item.type for item in response.output] == ["reasoning"]


@pytest.mark.parametrize("respond", TRANSPORTS, ids=["http", "sse", "ws"])
def test_the_visible_answer_gets_what_the_reasoning_left(
    client: openai.OpenAI, respond: Any
) -> None:
    full = respond(client)
    visible = full.usage.output_tokens - REASONING
    assert full.status == "completed" and visible > 2
    budget = REASONING + visible // 2
    cut = respond(client, max_output_tokens=budget)
    assert cut.status == "incomplete"
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.usage.output_tokens == budget
    assert cut.usage.output_tokens_details.reasoning_tokens == REASONING
    assert cut.output_text and full.output_text.startswith(cut.output_text)
    assert len(cut.output_text) < len(full.output_text)


def test_a_budget_that_fits_completes(client: openai.OpenAI) -> None:
    full = _http_response(client)
    fits = _http_response(client, max_output_tokens=full.usage.output_tokens)
    assert fits.status == "completed" and fits.incomplete_details is None
    assert fits.usage.output_tokens == full.usage.output_tokens
