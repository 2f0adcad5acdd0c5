"""Request validation: every bad body becomes the API's error with the right param."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from rig.protocol.errors import InvalidRequestError
from rig.protocol.requests import (
    MAX_JSON_DEPTH,
    TOOL_TYPES,
    normalize_input,
    parse_create_request,
    parse_json_object,
)
from tests.tool_catalog import ALL_TOOLS


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
        ({"model": "m", "tools": [{"type": "web_browser"}]}, "tools[0].type", "invalid_value"),
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


# -- tool types ------------------------------------------------------------------------


def _openai_tool_types() -> set[str]:
    from openai.types.responses import ToolParam

    kinds: set[str] = set()
    for definition in typing.get_args(ToolParam):
        kinds.update(typing.get_args(typing.get_type_hints(definition)["type"]))
    return kinds


def test_every_tool_type_of_the_openai_package_is_known() -> None:
    assert set(TOOL_TYPES) == _openai_tool_types()
    assert {tool["type"] for tool in ALL_TOOLS} == _openai_tool_types()


def test_every_tool_type_is_accepted_and_kept_in_order() -> None:
    request = parse_create_request({"model": "m", "input": "hi", "tools": ALL_TOOLS})
    assert [tool.type for tool in request.tools or ()] == [tool["type"] for tool in ALL_TOOLS]


@pytest.mark.parametrize(
    ("tool", "param", "code"),
    [
        ({"type": "web_browser"}, "tools[1].type", "invalid_value"),
        ({"name": "f"}, "tools[1].type", "missing_required_parameter"),
        ({"type": "custom"}, "tools[1].name", "missing_required_parameter"),
        (
            {"type": "custom", "name": "p", "format": {"type": "json"}},
            "tools[1].format.type",
            "invalid_value",
        ),
        (
            {
                "type": "custom",
                "name": "p",
                "format": {"type": "grammar", "syntax": "ebnf", "definition": "x"},
            },
            "tools[1].format.syntax",
            "invalid_value",
        ),
        (
            {"type": "custom", "name": "p", "format": {"type": "grammar", "syntax": "lark"}},
            "tools[1].format.definition",
            "missing_required_parameter",
        ),
        (
            {"type": "namespace", "name": "n", "description": "d", "tools": [{"type": "mcp"}]},
            "tools[1].tools[0].type",
            "invalid_value",
        ),
        (
            {"type": "namespace", "name": "n", "tools": []},
            "tools[1].description",
            "missing_required_parameter",
        ),
        (
            {"type": "namespace", "name": "n", "description": "d", "tools": [{"type": "function"}]},
            "tools[1].tools[0].name",
            "missing_required_parameter",
        ),
        ({"type": "file_search"}, "tools[1].vector_store_ids", "missing_required_parameter"),
        (
            {"type": "web_search", "search_context_size": "huge"},
            "tools[1].search_context_size",
            "invalid_value",
        ),
        (
            {
                "type": "computer_use_preview",
                "display_width": "1024",
                "display_height": 768,
                "environment": "mac",
            },
            "tools[1].display_width",
            "invalid_type",
        ),
        ({"type": "mcp"}, "tools[1].server_label", "missing_required_parameter"),
        (
            {"type": "code_interpreter", "container": {"type": "manual"}},
            "tools[1].container.type",
            "invalid_value",
        ),
        ({"type": "code_interpreter"}, "tools[1].container", "missing_required_parameter"),
        (
            {"type": "image_generation", "partial_images": 9},
            "tools[1].partial_images",
            "invalid_value",
        ),
        ({"type": "tool_search", "execution": "remote"}, "tools[1].execution", "invalid_value"),
    ],
)
def test_a_wrong_tool_shape_names_its_parameter(
    tool: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_create_request({"model": "m", "tools": [ALL_TOOLS[0], tool]})
    assert (caught.value.param, caught.value.code) == (param, code)
    assert f"'{param}'" in caught.value.message


def test_a_wrong_tool_type_lists_the_supported_types() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_create_request({"model": "m", "tools": [{"type": "web_browser"}]})
    assert "'namespace'" in caught.value.message and "'local_shell'" in caught.value.message


# -- input items of client-run tools ---------------------------------------------------


def test_calls_of_client_run_tools_normalise_to_call_and_output_pairs() -> None:
    request = parse_create_request(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "fix it"},
                {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch",
                 "input": "*** Begin Patch\n*** End Patch\n", "id": "ctc_1"},
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done"},
                {"type": "local_shell_call", "call_id": "c2", "id": "lsh_1", "status": "completed",
                 "action": {"type": "exec", "command": ["ls"], "env": {}}},
                {"type": "local_shell_call_output", "id": "c2", "output": "a.py"},
                {"type": "shell_call", "call_id": "c3", "action": {"commands": ["pytest -q"]}},
                {"type": "shell_call_output", "call_id": "c3",
                 "output": [{"stdout": "1 failed", "stderr": "",
                             "outcome": {"type": "exit", "exit_code": 1}}]},
                {"type": "apply_patch_call", "call_id": "c4", "status": "completed",
                 "operation": {"type": "update_file", "path": "a.py", "diff": "@@\n-a\n+b\n"}},
                {"type": "apply_patch_call_output", "call_id": "c4", "status": "completed"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed",
                 "action": {"type": "search", "query": "x"}},
                {"type": "item_reference", "id": "msg_1"},
            ],
        }
    )  # fmt: skip
    items = normalize_input(request)
    assert [(i["type"], i.get("call_type"), i.get("call_id")) for i in items] == [
        ("message", None, None),
        ("function_call", "custom_tool_call", "c1"),
        ("function_call_output", "custom_tool_call_output", "c1"),
        ("function_call", "local_shell_call", "c2"),
        ("function_call_output", "local_shell_call_output", "c2"),
        ("function_call", "shell_call", "c3"),
        ("function_call_output", "shell_call_output", "c3"),
        ("function_call", "apply_patch_call", "c4"),
        ("function_call_output", "apply_patch_call_output", "c4"),
    ]
    assert items[1]["name"] == "apply_patch" and items[1]["arguments"].startswith("*** Begin")
    assert items[3]["name"] == "local_shell" and '"ls"' in items[3]["arguments"]
    assert items[6]["output"] == "1 failed"
    assert '"update_file"' in items[7]["arguments"] and items[8]["output"] == "completed"


@pytest.mark.parametrize(
    ("item", "param", "code"),
    [
        ({"type": "custom_tool_call", "call_id": "c", "name": "p"}, "input[0].input",
         "missing_required_parameter"),
        ({"type": "local_shell_call", "call_id": "c", "action": {"type": "exec", "command": "ls"}},
         "input[0].action.command", "invalid_type"),
        ({"type": "apply_patch_call", "call_id": "c", "status": "completed",
          "operation": {"type": "rename_file", "path": "a"}},
         "input[0].operation.type", "invalid_value"),
        ({"type": "web_search"}, "input[0].type", "invalid_value"),
    ],
)  # fmt: skip
def test_a_wrong_tool_item_names_its_parameter(item: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_create_request({"model": "m", "input": [item]})
    assert (caught.value.param, caught.value.code) == (param, code)
