"""Stored responses shared through a real redis-server by two mock processes."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import orjson
import pytest
from websockets.sync.client import connect

from rig.protocol.sniff import is_terminal
from tests.servers import start_mock


@pytest.fixture
def two_mocks(redis_url: str) -> Iterator[tuple[str, str]]:
    a, url_a = start_mock("--store", redis_url)
    b, url_b = start_mock("--store", redis_url)
    yield url_a, url_b
    a.stop()
    b.stop()


def test_a_response_stored_by_one_process_continues_on_another(two_mocks: tuple[str, str]) -> None:
    url_a, url_b = two_mocks
    with (
        openai.OpenAI(base_url=url_a, api_key="k") as a,
        openai.OpenAI(base_url=url_b, api_key="k") as b,
    ):
        first = a.responses.create(model="mock-agent", input="Plan the refactor", store=True)
        second = b.responses.create(
            model="mock-agent", previous_response_id=first.id, input="go on", store=True
        )
        assert second.previous_response_id == first.id
        assert second.usage.input_tokens > first.usage.input_tokens
        assert b.responses.retrieve(first.id).output_text == first.output_text
        b.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            a.responses.retrieve(first.id)


def test_ws_store_true_survives_a_reconnect_to_another_process(two_mocks: tuple[str, str]) -> None:
    url_a, url_b = two_mocks
    create = {"type": "response.create", "model": "mock-agent", "input": "hello", "store": True}
    with connect(url_a.replace("http", "ws") + "/responses") as ws:
        ws.send(orjson.dumps(create).decode())
        first = _terminal(ws)
    with connect(url_b.replace("http", "ws") + "/responses") as ws:
        ws.send(
            orjson.dumps(
                dict(create, input="more", previous_response_id=first["response"]["id"])
            ).decode()
        )
        second = _terminal(ws)
    assert second["type"] == "response.completed"
    assert second["response"]["usage"]["input_tokens"] > first["response"]["usage"]["input_tokens"]


def test_ws_store_false_does_not_survive_a_reconnect(two_mocks: tuple[str, str]) -> None:
    url_a, _ = two_mocks
    create = {"type": "response.create", "model": "mock-agent", "input": "hello", "store": False}
    with connect(url_a.replace("http", "ws") + "/responses") as ws:
        ws.send(orjson.dumps(create).decode())
        first = _terminal(ws)
    with connect(url_a.replace("http", "ws") + "/responses") as ws:
        ws.send(orjson.dumps(dict(create, previous_response_id=first["response"]["id"])).decode())
        event = _terminal(ws)
    assert event["type"] == "error" and event["error"]["code"] == "previous_response_not_found"


def test_unreachable_redis_fails_at_start() -> None:
    with pytest.raises(RuntimeError) as caught:
        start_mock("--store", "redis://127.0.0.1:1/0")
    assert "Connection refused" in str(caught.value) or "Error" in str(caught.value)


def _terminal(ws) -> dict:
    while True:
        event = orjson.loads(ws.recv(timeout=30))
        if is_terminal(event["type"]):
            return event


def test_ws_default_lane_is_free_once_the_terminal_event_is_sent(redis_url: str) -> None:
    """A client that waits for ``response.completed`` before its next create (as the API
    asks) is never refused as busy, though the Redis write follows on the server; and each
    continuation finds the response before it, in connection memory or the store."""
    process, url = start_mock("--store", redis_url)
    try:
        refused = []
        previous = None
        with connect(url.replace("http", "ws") + "/responses") as ws:
            for index in range(300):
                create = {"type": "response.create", "model": "m", "input": f"turn {index}"}
                create["store"] = True
                if previous is not None and index % 2:
                    create["previous_response_id"] = previous
                ws.send(orjson.dumps(create).decode())
                event = _terminal(ws)
                if event["type"] != "response.completed":
                    refused.append(event)
                    continue
                previous = event["response"]["id"]
        assert refused == []
    finally:
        process.stop()
