"""The client half of a turn with plain bytes: marks, results, errors, Chat streams."""

from __future__ import annotations

import orjson

from rig.protocol.client import (
    FIRST_DELTA,
    FIRST_EVENT,
    TERMINAL,
    ChatStreamReader,
    ResponsesStreamReader,
    chat_body,
    error_result,
    responses_body,
)
from rig.protocol.sniff import stream_id
from rig.protocol.sse import encode_event

COMPLETED = {
    "type": "response.completed",
    "response": {
        "id": "resp_1",
        "output": [
            {"type": "function_call", "call_id": "c1", "name": "read_file", "arguments": "{}"}
        ],
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 3,
        },
    },
}


def _events(*events: dict) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


CREATED, DELTA = {"type": "response.created"}, {"type": "response.output_text.delta", "delta": "hi"}


def test_sse_marks_the_first_event_the_first_delta_and_the_terminal() -> None:
    reader = ResponsesStreamReader()
    created, delta, done = (encode_event(e) for e in (CREATED, DELTA, COMPLETED))
    assert reader.feed_sse(created[:5]) == 0  # half a message: nothing yet
    assert reader.feed_sse(created[5:]) == FIRST_EVENT
    assert reader.feed_sse(delta + delta) == FIRST_DELTA
    assert reader.feed_sse(done) == TERMINAL
    result = reader.result()
    assert (result.status, result.response_id, result.input_tokens, result.cached_tokens) == (
        "ok",
        "resp_1",
        10,
        4,
    )
    assert result.output[0]["call_id"] == "c1"


def test_websocket_messages_after_the_terminal_are_left_for_the_next_turn() -> None:
    reader = ResponsesStreamReader()
    stale = orjson.dumps({"type": "error", "error": {"code": "websocket_connection_limit_reached"}})
    messages = [*_events(CREATED, DELTA, COMPLETED), stale]
    assert reader.feed_messages(messages) == FIRST_EVENT | FIRST_DELTA | TERMINAL
    assert reader.leftover == [stale]
    assert reader.body_bytes == sum(len(m) for m in messages[:3])


def test_a_stream_without_a_terminal_event_is_an_error() -> None:
    reader = ResponsesStreamReader()
    reader.feed_messages(_events(CREATED))
    assert reader.result().status == "error"


def test_a_websocket_error_event_with_429_is_a_rate_limit_with_its_details() -> None:
    event = {
        "type": "error",
        "status": 429,
        "error": {
            "type": "inflight",
            "code": "rate_limit_exceeded",
            "message": "x",
            "headers": {"retry-after-ms": "1500"},
        },
    }
    reader = ResponsesStreamReader()
    assert reader.feed_message(orjson.dumps(event)) == FIRST_EVENT | TERMINAL
    result = reader.result()
    assert result.status == "rate_limited" and result.rate_limit is not None
    assert (result.rate_limit.limit, result.rate_limit.retry_after_s) == ("inflight", 1.5)


def test_an_http_error_answer_becomes_a_result() -> None:
    body = orjson.dumps({"error": {"message": "nope", "code": "previous_response_not_found"}})
    result = error_result(400, body)
    assert (result.status, result.error_code, result.error) == (
        "error",
        "previous_response_not_found",
        "HTTP 400: nope",
    )
    assert (
        error_result(502, b"<html>bad gateway</html>").error == "HTTP 502: <html>bad gateway</html>"
    )
    limited = error_result(429, b"", {"retry-after": "3"}, default_limit="connections")
    assert limited.status == "rate_limited" and limited.rate_limit is not None
    assert (limited.rate_limit.limit, limited.rate_limit.retry_after_s) == ("connections", 3.0)


def test_a_chat_stream_accumulates_text_and_tool_calls_into_responses_items() -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"index": 0, "delta": {"content": "Let me "}}]},
        {"choices": [{"index": 0, "delta": {"content": "look."}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c9",
                                "function": {"name": "read_file", "arguments": ""},
                            }
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"path":'}}]},
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"a"}'}}]},
                }
            ]
        },
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 20,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        },
    ]
    reader = ChatStreamReader()
    marks = [reader.feed_sse(b"data: " + orjson.dumps(c) + b"\n\n") for c in chunks]
    assert marks[0] == FIRST_EVENT and marks[1] == FIRST_DELTA and not any(marks[2:])
    assert reader.result().status == "error"  # no [DONE] yet
    assert reader.feed_sse(b"data: [DONE]\n\n") == TERMINAL
    result = reader.result()
    assert result.output == [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}],
        },
        {
            "type": "function_call",
            "call_id": "c9",
            "name": "read_file",
            "arguments": '{"path":"a"}',
        },
    ]
    assert (result.input_tokens, result.output_tokens) == (20, 5)


def test_bodies() -> None:
    items = [{"role": "user", "content": "hi"}]
    full = responses_body(model="m", instructions="i", tools=[], store=False, input=items)
    assert full["include"] == ["reasoning.encrypted_content"] and "previous_response_id" not in full
    chained = responses_body(
        model="m", instructions="i", tools=[], store=True, input=[], previous_response_id="r1",
        metadata={"scenario": "s"},
    )  # fmt: skip
    assert chained["previous_response_id"] == "r1" and "include" not in chained
    chat = chat_body(model="m", instructions="i", tools=[], transcript=items)
    assert chat["messages"] == [
        {"role": "system", "content": "i"},
        {"role": "user", "content": "hi"},
    ]


def test_stream_id_is_read_from_the_end_of_an_event() -> None:
    assert stream_id(b'{"type":"response.created","sequence_number":0,"stream_id":"s3"}') == "s3"
    assert stream_id(b'{"type":"x","stream_id":"s1","other":{"stream_id":"s2"}}') == "s1"
    assert stream_id(b'{"type":"x","delta":"\\"stream_id\\":\\"s9\\"}"}') is None
    assert stream_id(b'{"type":"error"}') is None
