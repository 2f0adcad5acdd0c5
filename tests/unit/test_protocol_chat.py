"""Chat Completions: validation, normalisation and chunks, against the SDK's types."""

from __future__ import annotations

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from rig.protocol.chat import (
    ChatStream,
    chat_completion,
    chat_usage,
    normalize_messages,
    parse_chat_request,
    responses_tools,
)
from rig.protocol.errors import InvalidRequestError
from rig.protocol.transcript import chat_messages, chat_tools, items_from_chat, tools_from_chat

BODY = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Fix it"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "file text"},
    ],
    "tools": [
        {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}
    ],
}


def test_messages_normalise_to_transcript_items() -> None:
    items = normalize_messages(parse_chat_request(BODY))
    assert items == [
        {"type": "message", "role": "system", "content": "Be brief."},
        {"type": "message", "role": "user", "content": "Fix it"},
        {"type": "function_call", "call_id": "c1", "name": "read_file", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "file text"},
    ]
    assert responses_tools(parse_chat_request(BODY))[0]["name"] == "read_file"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"},
            "max_tokens",
        ),
    ],
)
def test_bad_chat_bodies_are_named(body: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_chat_request(body)
    assert caught.value.param == param


def test_chunks_parse_as_sdk_chunks() -> None:
    stream = ChatStream("m")
    chunks = [
        stream.role(),
        stream.content("Hi"),
        stream.tool_call_start(0, "call_1", "read_file"),
        stream.tool_call_arguments(0, "{}"),
        stream.finish("tool_calls"),
        stream.usage(chat_usage(10, 0, 3)),
    ]
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert parsed[1].choices[0].delta.content == "Hi"
    assert parsed[2].choices[0].delta.tool_calls[0].function.name == "read_file"
    assert parsed[4].choices[0].finish_reason == "tool_calls"
    assert parsed[5].usage.total_tokens == 13 and parsed[5].choices == []
    assert len({c.id for c in parsed}) == 1


def test_completion_parses_as_sdk_completion() -> None:
    done = ChatCompletion.model_validate(
        chat_completion("m", None, [("call_1", "read_file", "{}")], chat_usage(5, 0, 2))
    )
    assert done.choices[0].finish_reason == "tool_calls"
    assert done.choices[0].message.tool_calls[0].id == "call_1"


TRANSCRIPT = [
    {"type": "message", "role": "user", "content": "Fix it"},
    {"type": "message", "role": "assistant", "content": "Looking."},
    {"type": "function_call", "call_id": "c1", "name": "read_file", "arguments": "{}"},
    {"type": "function_call", "call_id": "c2", "name": "grep", "arguments": '{"q":"x"}'},
    {"type": "function_call_output", "call_id": "c1", "output": "file text"},
    {"type": "function_call_output", "call_id": "c2", "output": "no match"},
    {"type": "message", "role": "assistant", "content": "Done."},
]


def test_transcript_items_round_trip_through_chat_messages() -> None:
    messages = chat_messages("Be brief.", TRANSCRIPT)
    assert messages[2]["tool_calls"][1]["id"] == "c2"  # text and calls: one assistant message
    back = items_from_chat(messages)
    assert back == [{"type": "message", "role": "system", "content": "Be brief."}, *TRANSCRIPT]
    # The server's side reads the same messages the same way.
    request = parse_chat_request({"model": "m", "messages": messages})
    assert normalize_messages(request) == back


def test_function_tools_round_trip_through_chat_tools() -> None:
    tools = [
        {
            "type": "function",
            "name": "read_file",
            "description": "d",
            "parameters": {"type": "object"},
        }
    ]
    assert tools_from_chat(chat_tools(tools)) == tools
    request = parse_chat_request(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": chat_tools(tools)}
    )
    assert responses_tools(request) == tools
