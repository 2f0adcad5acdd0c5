"""The official openai SDK, unmodified, against the mock provider via base_url."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.sdk import until_done
from tests.servers import start_mock

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"]},
        },
        "required": ["location"],
    },
}


@pytest.fixture
def client(mock_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=mock_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def _calls(response: openai.types.responses.Response) -> list:
    return [item for item in response.output if item.type == "function_call"]


def test_non_streaming_create_calls_the_function_tool(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="mock-agent", input="Weather in Paris?", tools=[WEATHER]
    )
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    (call,) = _calls(response)
    assert call.name == "get_weather"
    assert "location" in json.loads(call.arguments)
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


def test_streaming_create_yields_the_documented_event_sequence(client: openai.OpenAI) -> None:
    stream = client.responses.create(
        model="mock-agent", input="Weather in Paris?", tools=[WEATHER], stream=True
    )
    events = list(stream)
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == done.arguments
    assert events[-1].response.output[-1].arguments == done.arguments


def test_stream_helper_accumulates_the_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="mock-agent", input="Say hello") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text and final.output_text == text


def test_max_output_tokens_cuts_the_response_short(client: openai.OpenAI) -> None:
    full = client.responses.create(model="mock-agent", input="Explain the fix in detail")
    assert full.usage.output_tokens > 8
    cut = client.responses.create(
        model="mock-agent", input="Explain the fix in detail", max_output_tokens=8
    )
    assert cut.status == "incomplete"
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.usage.output_tokens == 8
    assert full.output_text.startswith(cut.output_text) and len(cut.output_text) < len(
        full.output_text
    )
    events = list(
        client.responses.create(
            model="mock-agent", input="Explain", max_output_tokens=8, stream=True
        )
    )
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.output[-1].status == "incomplete"


def test_chat_max_tokens_finishes_with_length(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(
        model="mock-agent", messages=[{"role": "user", "content": "Explain"}], max_tokens=5
    )
    assert done.choices[0].finish_reason == "length"
    assert done.usage.completion_tokens == 5


def test_previous_response_id_chain_with_store(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model="mock-agent", input="Weather in Oslo?", tools=[WEATHER], store=True
    )
    (call,) = _calls(first)
    second = client.responses.create(
        model="mock-agent",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": -3}'}],
        tools=[WEATHER],
        store=True,
    )
    assert second.previous_response_id == first.id
    assert not _calls(second)
    assert second.output_text
    # The server resumed the whole conversation: the second turn's input counts the first.
    assert second.usage.input_tokens > first.usage.input_tokens
    fetched = client.responses.retrieve(second.id)
    assert fetched.id == second.id and fetched.output_text == second.output_text
    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_unknown_previous_response_id_is_previous_response_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="mock-agent", previous_response_id="resp_gone", input="next")
    assert caught.value.status_code == 400
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"


def test_store_false_response_cannot_be_continued_over_http(client: openai.OpenAI) -> None:
    first = client.responses.create(model="mock-agent", input="hello", store=False)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="mock-agent", previous_response_id=first.id, input="again")
    assert caught.value.code == "previous_response_not_found"


def test_websocket_session_with_store_false(client: openai.OpenAI) -> None:
    with client.responses.connect() as connection:
        connection.response.create(
            model="mock-agent", input="Weather in Rome?", tools=[WEATHER], store=False
        )
        first = until_done(connection)
        assert first.type == "response.completed"
        (call,) = _calls(first.response)
        connection.response.create(
            model="mock-agent",
            previous_response_id=first.response.id,
            input=[
                {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}
            ],
            tools=[WEATHER],
            store=False,
        )
        second = until_done(connection)
        assert second.type == "response.completed"
        assert second.response.previous_response_id == first.response.id
        assert second.response.output_text
        # Continued from connection memory: the earlier context counts, nothing was stored.
        assert second.response.usage.input_tokens > first.response.usage.input_tokens
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.response.id)


def test_websocket_unknown_previous_response_id_is_an_error_event(client: openai.OpenAI) -> None:
    with client.responses.connect() as connection:
        connection.response.create(
            model="mock-agent", previous_response_id="resp_gone", input="x", store=False
        )
        event = until_done(connection)
        assert event.type == "error"
        assert event.error.code == "previous_response_not_found"
        assert event.status == 400
        # The documented recovery: resend the full context without previous_response_id.
        connection.response.create(model="mock-agent", input="x", store=False)
        assert until_done(connection).type == "response.completed"


def test_chat_completions_streaming_with_tools(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {k: WEATHER[k] for k in ("name", "description", "parameters")},
    }
    stream = client.chat.completions.create(
        model="mock-agent",
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        tools=[tool],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert "location" in json.loads(arguments)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["tool_calls"]
    assert chunks[-1].usage.prompt_tokens > 0


def test_chat_completions_non_streaming_answers_after_the_tool(client: openai.OpenAI) -> None:
    messages = [
        {"role": "user", "content": "Weather in Lima?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Lima"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 19}'},
    ]
    tool = {
        "type": "function",
        "function": {k: WEATHER[k] for k in ("name", "description", "parameters")},
    }
    done = client.chat.completions.create(model="mock-agent", messages=messages, tools=[tool])
    assert done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.content


@pytest.fixture(scope="module")
def keyed_mock_url() -> Iterator[str]:
    process, url = start_mock("--api-key", "sk-right-key-0001")
    yield url
    process.stop()


def test_wrong_key_is_refused_over_http_and_websocket(keyed_mock_url: str) -> None:
    with openai.OpenAI(
        base_url=keyed_mock_url, api_key="sk-wrong-key-9999", max_retries=0
    ) as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.responses.create(model="mock-agent", input="hi")
        assert caught.value.code == "invalid_api_key"
        assert "sk-wrong-key-9999" not in str(caught.value)  # never echo a secret
        with pytest.raises(Exception) as refused, wrong.responses.connect() as connection:
            connection.response.create(model="mock-agent", input="hi")
            connection.recv()
        assert "401" in str(refused.value)
    with openai.OpenAI(
        base_url=keyed_mock_url, api_key="sk-right-key-0001", max_retries=0
    ) as right:
        assert right.responses.create(model="mock-agent", input="hi").status == "completed"


def test_missing_key_is_refused(keyed_mock_url: str) -> None:
    missing = httpx.post(keyed_mock_url + "/responses", json={"model": "m", "input": "hi"})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
