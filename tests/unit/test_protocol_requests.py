"""Request validation: every bad body becomes the API's error with the right param."""

from __future__ import annotations

import pytest

from rig.protocol.errors import InvalidRequestError
from rig.protocol.requests import (
    MAX_JSON_DEPTH,
    normalize_input,
    parse_create_request,
    parse_json_object,
)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "hi"}, "model", "missing_required_parameter"),
        ({"model": 5}, "model", "invalid_type"),
        ({"model": "m", "input": 5}, "input", "invalid_type"),
        ({"model": "m", "input": [{"type": "bogus"}]}, "input[0].type", "invalid_value"),
        (
            {"model": "m", "input": [{"role": "robot", "content": "x"}]},
            "input[0].role",
            "invalid_value",
        ),
        (
            {"model": "m", "input": [{"role": "user"}]},
            "input[0].content",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]},
            "input[0].output",
            "missing_required_parameter",
        ),
        ({"model": "m", "max_output_tokens": "5"}, "max_output_tokens", "invalid_type"),
        ({"model": "m", "max_output_tokens": 0}, "max_output_tokens", "invalid_value"),
        ({"model": "m", "store": "yes"}, "store", "invalid_type"),
        ({"model": "m", "stream": 1}, "stream", "invalid_type"),
        ({"model": "m", "tools": [{"type": "web_search"}]}, "tools[0].type", "invalid_value"),
        (
            {"model": "m", "tools": [{"type": "function"}]},
            "tools[0].name",
            "missing_required_parameter",
        ),
        ({"model": "m", "metadata": {"k": 1}}, "metadata.k", "invalid_type"),
        ({"model": "m", "temperature": 3}, "temperature", "invalid_value"),
        ({"model": "m", "previous_response_id": 7}, "previous_response_id", "invalid_type"),
        ({"model": "m", "parallel_tool_calls": "no"}, "parallel_tool_calls", "invalid_type"),
    ],
)
def test_invalid_bodies_name_the_parameter(body: dict, param: str, code: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_create_request(body)
    error = caught.value
    assert error.status == 400
    assert error.param == param
    assert error.code == code
    assert param in error.message


def test_metadata_is_limited_to_sixteen_pairs() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_create_request({"model": "m", "metadata": {str(i): "v" for i in range(17)}})
    assert caught.value.param == "metadata"


@pytest.mark.parametrize("raw", [b"{", b"", b"nul", b'{"model": "m",}'])
def test_malformed_json_is_an_invalid_json_error(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_object(raw)
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize("raw", [b"[]", b"3", b'"text"', b"null"])
def test_a_body_that_is_not_an_object_is_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_object(raw)
    assert caught.value.code == "invalid_type"


def test_unknown_top_level_fields_are_tolerated() -> None:
    request = parse_create_request({"model": "m", "prompt_cache_key": "k", "truncation": "auto"})
    assert request.model == "m"


def test_string_input_is_one_user_message() -> None:
    request = parse_create_request({"model": "m", "input": "hello"})
    assert normalize_input(request) == [{"type": "message", "role": "user", "content": "hello"}]


def test_normalize_flattens_content_parts_and_keeps_order() -> None:
    request = parse_create_request(
        {
            "model": "m",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "fix "},
                        {"type": "input_text", "text": "it"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Reading.", "annotations": []}],
                },
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "read_file",
                    "arguments": "{}",
                    "id": "fc_1",
                },
                {"type": "function_call_output", "call_id": "c1", "output": "file"},
            ],
        }
    )
    assert normalize_input(request) == [
        {"type": "message", "role": "user", "content": "fix it"},
        {"type": "message", "role": "assistant", "content": "Reading."},
        {"type": "function_call", "call_id": "c1", "name": "read_file", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "file"},
    ]


def _nested(depth: int) -> bytes:
    """An object nested ``depth`` levels (the outer object is level 1)."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_json_at_the_depth_limit_is_accepted() -> None:
    assert parse_json_object(_nested(MAX_JSON_DEPTH))["a"]
    assert parse_json_object(_nested(MAX_JSON_DEPTH).decode())["a"]


@pytest.mark.parametrize("depth", [65, 126, 255, 1000, 1025, 5000])
def test_json_beyond_the_depth_limit_is_refused_as_too_deep(depth: int) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_object(_nested(depth))
    assert caught.value.code == "json_too_deep"
    assert caught.value.status == 400


def test_depth_counts_lists_inside_wide_bodies() -> None:
    wide = (
        b'{"input": [' + b",".join([b"[1]"] * 200) + b'], "deep": ' + b"[" * 70 + b"]" * 70 + b"}"
    )
    with pytest.raises(InvalidRequestError):
        parse_json_object(wide)
    assert (
        len(parse_json_object(b'{"input": [' + b",".join([b"[1]"] * 200) + b"]}")["input"]) == 200
    )
