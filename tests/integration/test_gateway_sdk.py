"""The official openai SDK through the gateway, with the mock as its stateless upstream."""

from __future__ import annotations

import concurrent.futures
import json
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.misbehaving import NEVER, MisbehavingServer
from tests.sdk import check_rate_limit_passes_through, until_done
from tests.servers import ManagedProcess, free_port, server_stats, start_gateway, start_mock

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    process, url = start_mock("--preset", "instant")
    yield url
    process.stop()


@pytest.fixture(scope="module")
def gateway(upstream: str) -> Iterator[str]:
    process, url = start_gateway(upstream)
    yield url
    process.stop()


@pytest.fixture(scope="module")
def chat_gateway(upstream: str) -> Iterator[str]:
    process, url = start_gateway(upstream, "--dialect", "chat")
    yield url
    process.stop()


def _sdk(url: str, key: str = "sk-gateway-client-1") -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def _calls(response) -> list:
    return [item for item in response.output if item.type == "function_call"]


def test_http_json_and_continuation_from_the_gateways_state(gateway: str) -> None:
    with _sdk(gateway) as client:
        first = client.responses.create(
            model="mock-agent", input="Weather in Oslo?", tools=[WEATHER], store=True
        )
        assert first.status == "completed"
        (call,) = _calls(first)
        assert "location" in json.loads(call.arguments)
        second = client.responses.create(
            model="mock-agent",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"t": 1}'}],
            tools=[WEATHER],
            store=True,
        )
        assert second.previous_response_id == first.id
        assert second.output_text and not _calls(second)
        # The stateless upstream saw the whole conversation: its input counts the first turn.
        assert second.usage.input_tokens > first.usage.input_tokens
        assert client.responses.retrieve(second.id).output_text == second.output_text
        client.responses.delete(second.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(second.id)


def test_sse_stream_is_the_documented_event_sequence(gateway: str) -> None:
    with _sdk(gateway) as client:
        events = list(
            client.responses.create(
                model="mock-agent", input="Weather in Paris?", tools=[WEATHER], stream=True
            )
        )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == events[-1].response.output[-1].arguments


def test_websocket_session_sends_only_new_items_while_the_upstream_gets_everything(
    gateway: str, upstream: str
) -> None:
    with _sdk(gateway) as client, client.responses.connect() as connection:
        connection.response.create(
            model="mock-agent", input="Weather in Rome?", tools=[WEATHER], store=False
        )
        previous = until_done(connection)
        assert previous.type == "response.completed"
        upstream_before = server_stats(upstream)["bytes_in"]
        client_before = server_stats(gateway)["client_bytes_in"]
        grew = []
        sent = []
        for turn in range(3):
            calls = _calls(previous.response)
            items = [
                {"type": "function_call_output", "call_id": c.call_id, "output": '{"t": 21}'}
                for c in calls
            ] or [{"role": "user", "content": f"and now step {turn}"}]
            connection.response.create(
                model="mock-agent",
                previous_response_id=previous.response.id,
                input=items,
                tools=[WEATHER],
                store=False,
            )
            event = until_done(connection)
            assert event.type == "response.completed", event
            assert event.response.previous_response_id == previous.response.id
            assert event.response.usage.input_tokens > previous.response.usage.input_tokens
            upstream_now = server_stats(upstream)["bytes_in"]
            client_now = server_stats(gateway)["client_bytes_in"]
            grew.append(upstream_now - upstream_before)
            sent.append(client_now - client_before)
            upstream_before, client_before, previous = upstream_now, client_now, event
    # Every turn the upstream received the full context (growing); the client sent only
    # its new items (small and not growing with the conversation).
    assert grew[0] < grew[1] < grew[2]
    assert all(s < g for s, g in zip(sent, grew, strict=True))
    assert max(sent) < 2 * min(sent) + 200
    assert server_stats(gateway)["hits_connection"] >= 3


def test_websocket_warm_up_prepares_state_without_an_upstream_call(gateway: str) -> None:
    with _sdk(gateway) as client, client.responses.connect() as connection:
        before = server_stats(gateway)["upstream_requests"]
        connection.response.create(
            model="mock-agent",
            input=[{"role": "user", "content": "Weather in Rome?"}],
            tools=[WEATHER],
            store=False,
            generate=False,
        )
        warm = until_done(connection)
        assert warm.type == "response.completed" and warm.response.output == []
        assert server_stats(gateway)["upstream_requests"] == before
        connection.response.create(
            model="mock-agent", previous_response_id=warm.response.id, input=[], store=False
        )
        answer = until_done(connection)
        assert answer.type == "response.completed" and answer.response.output


def test_websocket_errors_are_error_events_on_a_connection_that_stays_open(gateway: str) -> None:
    with _sdk(gateway) as client, client.responses.connect() as connection:
        connection.response.create(
            model="mock-agent", previous_response_id="resp_gone", input="x", store=False
        )
        event = until_done(connection)
        assert event.type == "error" and event.error.code == "previous_response_not_found"
        connection.response.create(model="mock-agent", input="x", store=False)
        assert until_done(connection).type == "response.completed"
    assert server_stats(gateway)["misses_not_found"] >= 1


def test_ownership_another_key_gets_not_found_over_http_and_websocket(gateway: str) -> None:
    with _sdk(gateway, "sk-owner-aaaa-0001") as owner:
        created = owner.responses.create(model="mock-agent", input="secret plan", store=True)
    with _sdk(gateway, "sk-other-bbbb-0002") as other:
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(created.id)
        with pytest.raises(openai.BadRequestError) as caught:
            other.responses.create(
                model="mock-agent", previous_response_id=created.id, input="go on"
            )
        assert caught.value.code == "previous_response_not_found"
        with other.responses.connect() as connection:
            connection.response.create(
                model="mock-agent", previous_response_id=created.id, input="go on"
            )
            event = until_done(connection)
            assert event.type == "error" and event.error.code == "previous_response_not_found"


def test_chat_dialect_end_to_end_the_client_cannot_tell(chat_gateway: str, upstream: str) -> None:
    chats_before = server_stats(upstream)["chat_completions"]
    with _sdk(chat_gateway) as client:
        events = list(
            client.responses.create(
                model="mock-agent", input="Weather in Lima?", tools=[WEATHER], stream=True
            )
        )
        types = [e.type for e in events]
        assert types[:2] == ["response.created", "response.in_progress"]
        assert types[-1] == "response.completed"
        assert [e.sequence_number for e in events] == list(range(len(events)))
        first = events[-1].response
        (call,) = _calls(first)
        assert call.name == "get_weather" and "location" in json.loads(call.arguments)
        with client.responses.connect() as connection:
            connection.response.create(
                model="mock-agent", input="Weather in Lima?", tools=[WEATHER], store=False
            )
            opened = until_done(connection)
            (call,) = _calls(opened.response)
            connection.response.create(
                model="mock-agent",
                previous_response_id=opened.response.id,
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "19C"}],
                tools=[WEATHER],
                store=False,
            )
            answer = until_done(connection)
            assert answer.type == "response.completed", answer
            assert answer.response.output_text and not _calls(answer.response)
            assert answer.response.usage.input_tokens > opened.response.usage.input_tokens
    assert server_stats(upstream)["chat_completions"] == chats_before + 3


def test_upstream_429_passes_through_with_retry_after() -> None:
    mock, upstream_url = start_mock("--preset", "instant", "--rpm", "1")
    gateway, url = start_gateway(upstream_url)
    try:
        with _sdk(url) as client:
            check_rate_limit_passes_through(client)
        assert server_stats(url)["upstream_rate_limited"] == 2
    finally:
        gateway.stop()
        mock.stop()


def test_an_upstream_that_is_down_gives_the_apis_error_shape() -> None:
    gateway, url = start_gateway(f"http://127.0.0.1:{free_port()}/v1")
    try:
        answer = httpx.post(url + "/responses", json={"model": "m", "input": "hi"})
        assert answer.status_code == 502
        error = answer.json()["error"]
        assert error["type"] == "server_error" and error["code"] == "upstream_error"
        with _sdk(url) as client, client.responses.connect() as connection:
            connection.response.create(model="mock-agent", input="hi", store=False)
            event = until_done(connection)
            assert event.type == "error" and event.status == 502
            connection.response.create(model="mock-agent", input="again", store=False)
            assert until_done(connection).type == "error"  # the connection stayed open
    finally:
        gateway.stop()
    assert "Traceback" not in "".join(gateway.output)


def _sse_head() -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CREATED = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
    b'"response":{"id":"resp_x","object":"response","status":"in_progress","output":[]}}\n\n'
)


@pytest.mark.parametrize(
    ("reply", "close", "status", "code"),
    [
        # A 500 from the upstream: the client's 502, the upstream's fault named.
        (b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\n\r\n{}", False, 502,
         "upstream_error"),
        # The upstream never answers: a 504 after --upstream-timeout.
        (NEVER, False, 504, "upstream_timeout"),
    ],
)  # fmt: skip
def test_an_upstream_failing_before_its_stream_is_the_apis_error(
    reply: object, close: bool, status: int, code: str
) -> None:
    with MisbehavingServer(lambda _: reply, close_after=close) as upstream:  # type: ignore[arg-type,return-value]
        gateway, url = start_gateway(upstream.url, "--upstream-timeout", "1")
        try:
            answer = httpx.post(url + "/responses", json={"model": "m", "input": "hi"}, timeout=30)
            assert answer.status_code == status
            assert answer.json()["error"]["code"] == code
            with _sdk(url) as client, client.responses.connect() as connection:
                connection.response.create(model="mock-agent", input="hi", store=False)
                event = until_done(connection)
                assert event.type == "error" and event.status == status
                assert event.error.code == code
            assert server_stats(url)["upstream_errors"] == 2
        finally:
            gateway.stop()
    assert "Traceback" not in "".join(gateway.output)


def test_an_upstream_that_breaks_mid_stream_ends_the_response_with_an_error_event() -> None:
    # The stream starts (response.created reaches the client), then the upstream hangs up.
    with MisbehavingServer(lambda _: _sse_head() + _chunk(CREATED), close_after=True) as up:
        gateway, url = start_gateway(up.url)
        try:
            with _sdk(url) as client, client.responses.connect() as connection:
                connection.response.create(model="mock-agent", input="hi", store=False)
                first = next(iter(connection))
                assert first.type == "response.created"
                event = until_done(connection)
                assert event.type == "error" and event.status == 502
                assert event.error.code == "upstream_error"
                # Nothing was recorded: continuing the broken response is refused.
                connection.response.create(
                    model="mock-agent", previous_response_id="resp_x", input="go on"
                )
                refused = until_done(connection)
                assert refused.type == "error"
                assert refused.error.code == "previous_response_not_found"
            streamed = httpx.post(
                url + "/responses", json={"model": "m", "input": "hi", "stream": True}, timeout=30
            )
            assert streamed.status_code == 200
            assert b"event: error" in streamed.content
            assert b"upstream_error" in streamed.content
        finally:
            gateway.stop()
    assert "Traceback" not in "".join(gateway.output)


def test_calls_beyond_an_upstreams_max_in_flight_wait_their_turn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with MisbehavingServer(lambda _: NEVER) as upstream:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            f"upstreams:\n  - base_url: {upstream.url}\n    max_in_flight: 1\n    timeout_s: 5\n"
        )
        port = free_port()
        gateway = ManagedProcess(
            [sys.executable, "-m", "rig", "gateway", "--port", str(port), "--config", str(config)],
            "rig gateway listening on",
        )
        gateway.wait_ready()
        url = f"http://127.0.0.1:{port}/v1"
        try:
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                calls = [
                    pool.submit(
                        httpx.post, url + "/responses", json={"model": "m", "input": "hi"},
                        timeout=60,
                    )
                    for _ in range(2)
                ]  # fmt: skip
                deadline = time.monotonic() + 10
                while server_stats(url)["in_flight"] < 2:
                    assert time.monotonic() < deadline, "the calls never reached the gateway"
                    time.sleep(0.02)
                # Both admitted, one upstream call open: the other waits for its slot.
                assert len(upstream.requests) == 1
                answers = [call.result() for call in calls]
            assert [a.status_code for a in answers] == [504, 504]
            assert len(upstream.requests) == 2  # the second went once the first ended
        finally:
            gateway.stop()
