"""Warm-ups on a real mock: ``generate: false`` (WebSocket mode, as Codex opens each
session) and ``prompt_cache_options.prewarm`` (HTTP) prepare a conversation the next
request continues, answer created-then-completed with no output and zero usage, and are
counted as ``warmups``, never as model turns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.servers import start_mock
from tests.tool_catalog import WEATHER


@pytest.fixture
def mock() -> Iterator[str]:
    """A mock of its own: the tests read its ``/stats``."""
    process, url = start_mock("--preset", "instant")
    yield url
    process.stop()


def _stats(url: str) -> dict[str, Any]:
    return httpx.get(url.removesuffix("/v1") + "/stats").json()


def _events_until_done(connection: Any) -> list[Any]:
    events = []
    for event in connection:
        events.append(event)
        if event.type in ("response.completed", "response.failed", "error"):
            return events
    raise AssertionError("connection closed before a terminal event")


def test_generate_false_over_websocket_prepares_the_conversation(mock: str) -> None:
    with (
        openai.OpenAI(base_url=mock, api_key="sk-test", max_retries=0) as client,
        client.responses.connect() as connection,
    ):
        connection.response.create(
            model="mock-agent",
            input="Weather in Paris?",
            tools=[WEATHER],
            store=False,
            generate=False,
        )
        warmup = _events_until_done(connection)
        assert [event.type for event in warmup] == ["response.created", "response.completed"]
        done = warmup[-1].response
        assert done.output == []
        assert (done.usage.input_tokens, done.usage.output_tokens) == (0, 0)
        connection.response.create(
            model="mock-agent",
            previous_response_id=done.id,
            input=[],
            tools=[WEATHER],
            store=False,
        )
        turn = _events_until_done(connection)[-1]
    assert turn.type == "response.completed"
    assert turn.response.previous_response_id == done.id
    # The warm-up's conversation was continued: the model answers its question.
    assert [item.name for item in turn.response.output if item.type == "function_call"] == [
        "get_weather"
    ]
    stats = _stats(mock)
    assert (stats["warmups"], stats["responses_completed"], stats["turns"]) == (1, 1, 1)


def test_prewarm_over_http_is_a_warmup_too(mock: str) -> None:
    with openai.OpenAI(base_url=mock, api_key="sk-test", max_retries=0) as client:
        warmup = client.responses.create(
            model="mock-agent",
            input="Say hello",
            prompt_cache_options={"prewarm": True},
        )
        assert warmup.status == "completed" and warmup.output == []
        assert warmup.usage.total_tokens == 0
        events = list(
            client.responses.create(
                model="mock-agent",
                input="Say hello",
                stream=True,
                prompt_cache_options={"prewarm": True},
            )
        )
        assert [event.type for event in events] == ["response.created", "response.completed"]
        turn = client.responses.create(
            model="mock-agent", previous_response_id=warmup.id, input="And goodbye"
        )
    assert turn.output_text
    stats = _stats(mock)
    assert (stats["warmups"], stats["responses_completed"], stats["turns"]) == (2, 1, 1)


def test_generate_over_http_is_not_a_websocket_field(mock: str) -> None:
    """``generate`` belongs to WebSocket mode's ``response.create``; over HTTP it is an
    unknown field, tolerated like any other, and the response is generated."""
    with openai.OpenAI(base_url=mock, api_key="sk-test", max_retries=0) as client:
        response = client.responses.create(
            model="mock-agent", input="Say hello", extra_body={"generate": False}
        )
    assert response.output_text
    assert _stats(mock)["warmups"] == 0


def test_a_warmup_charges_no_tokens_to_the_rate_limits() -> None:
    """Its usage is zero, and the token limit charges what usage reports."""
    process, url = start_mock("--preset", "instant", "--tpm", "200")
    try:
        long_prompt = "Please read the whole repository first. " * 100  # ~1,000 tokens
        warmup = httpx.post(
            url + "/responses",
            json={
                "model": "mock-agent",
                "input": long_prompt,
                "prompt_cache_options": {"prewarm": True},
            },
        )
        assert warmup.status_code == 200, warmup.text
        assert warmup.headers["x-ratelimit-remaining-tokens"] == "200"
        charged = httpx.post(url + "/responses", json={"model": "mock-agent", "input": long_prompt})
        assert charged.status_code == 429
    finally:
        process.stop()
