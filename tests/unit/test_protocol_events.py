"""Streamed events and response objects, checked against the official SDK's types."""

from __future__ import annotations

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.responses_server_event import ResponsesServerEvent
from pydantic import TypeAdapter

from rig.protocol.errors import (
    InvalidRequestError,
    PreviousResponseNotFoundError,
    error_body,
    ws_error_event,
)
from rig.protocol.events import ResponseStream, usage_object
from rig.protocol.requests import parse_create_request
from rig.protocol.tokens import split_tokens

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)
WS_EVENT = TypeAdapter(ResponsesServerEvent)

REQUEST = parse_create_request(
    {
        "model": "mock-agent",
        "instructions": "Be brief.",
        "input": "Fix the failing test",
        "tools": [{"type": "function", "name": "read_file", "parameters": {"type": "object"}}],
        "store": False,
    }
)


def _events(stream_id: str | None = None) -> list[dict]:
    stream = ResponseStream(REQUEST, stream_id=stream_id)
    events = [stream.created(), stream.in_progress()]
    events += stream.reasoning("ZW5jcnlwdGVk")
    events += stream.message(split_tokens("I'll read the test first."))
    events += stream.function_call("read_file", split_tokens('{"path": "src/a.ts"}'))
    events.append(stream.completed(usage_object(100, 0, 20)))
    return events


def test_every_event_parses_as_the_sdk_stream_event_union() -> None:
    for event in _events():
        parsed = STREAM_EVENT.validate_python(orjson.loads(orjson.dumps(event)))
        assert parsed.type == event["type"]


def test_every_event_parses_as_a_websocket_server_event_and_echoes_the_lane() -> None:
    for event in _events(stream_id="lane-7"):
        parsed = WS_EVENT.validate_python(event)
        assert parsed.stream_id == "lane-7"


def test_sequence_numbers_count_from_zero_without_gaps() -> None:
    assert [e["sequence_number"] for e in _events()] == list(range(len(_events())))


def test_type_is_the_first_key_of_every_event() -> None:
    for event in _events():
        assert orjson.dumps(event).startswith(b'{"type":"')


def test_deltas_spell_the_done_text_and_the_final_items() -> None:
    events = _events()
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    args = "".join(
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    )
    assert text == "I'll read the test first."
    assert args == '{"path": "src/a.ts"}'
    final = Response.model_validate(events[-1]["response"])
    assert final.status == "completed"
    assert final.output[0].type == "reasoning"
    assert final.output[0].encrypted_content == "ZW5jcnlwdGVk"
    assert final.output[1].content[0].text == text
    assert final.output[2].arguments == args
    assert final.output[2].name == "read_file"
    assert final.usage.total_tokens == 120


def test_output_indexes_follow_item_order() -> None:
    added = [e for e in _events() if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1, 2]
    assert [e["item"]["type"] for e in added] == ["reasoning", "message", "function_call"]


def test_obfuscation_pads_deltas_and_can_be_disabled() -> None:
    stream = ResponseStream(REQUEST)
    padded = [e for e in stream.message(["ab", "cdef"]) if e["type"].endswith(".delta")]
    assert all((len(e["delta"]) + len(e["obfuscation"])) % 16 == 0 for e in padded)
    plain = ResponseStream(REQUEST, obfuscate=False)
    assert all("obfuscation" not in e for e in plain.message(["ab"]))


def test_created_echoes_request_settings() -> None:
    created = Response.model_validate(_events()[0]["response"])
    assert created.status == "in_progress"
    assert created.instructions == "Be brief."
    assert created.store is False
    assert created.tools[0].name == "read_file"


def test_failed_event_carries_the_error() -> None:
    stream = ResponseStream(REQUEST)
    event = stream.failed(InvalidRequestError("boom", code="server_error"))
    parsed = STREAM_EVENT.validate_python(event)
    assert parsed.response.status == "failed"
    assert parsed.response.error.message == "boom"


def test_http_error_body_has_the_openai_shape() -> None:
    body = error_body(PreviousResponseNotFoundError("resp_x"))
    assert body == {
        "error": {
            "message": "Previous response with id 'resp_x' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


@pytest.mark.parametrize("stream_id", [None, "lane"])
def test_ws_error_event_parses_as_the_sdk_ws_error(stream_id: str | None) -> None:
    event = ws_error_event(PreviousResponseNotFoundError("resp_x"), stream_id=stream_id)
    parsed = WS_EVENT.validate_python(event)
    assert parsed.type == "error"
    assert parsed.status == 400
    assert parsed.error.code == "previous_response_not_found"
    assert parsed.stream_id == stream_id


@pytest.mark.parametrize(
    "choice",
    [
        "none",
        "required",
        {"type": "function", "name": "read_file"},
        {"type": "custom", "name": "apply_patch"},
    ],
)
def test_the_response_echoes_the_tool_choice_as_asked(choice: object) -> None:
    request = parse_create_request({"model": "m", "input": "hi", "tool_choice": choice})
    response = ResponseStream(request).created()["response"]
    assert response["tool_choice"] == choice
    assert Response.model_validate(response).tool_choice is not None
