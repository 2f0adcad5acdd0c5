"""Every tool type the Responses API defines, sent by the official SDK to a real mock:
accepted over HTTP, SSE and WebSocket, echoed, validated like the API, and never called
unless the mock models it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.sdk import until_done
from tests.tool_catalog import ALL_TOOLS, HOSTED_AND_CLIENT_TOOLS, HOSTED_TOOLS, WEATHER

CALL_TYPES = {
    "function_call",
    "custom_tool_call",
    "local_shell_call",
    "shell_call",
    "apply_patch_call",
    "web_search_call",
    "file_search_call",
    "computer_call",
    "mcp_call",
    "code_interpreter_call",
    "image_generation_call",
}


@pytest.fixture
def client(mock_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=mock_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def _calls(response: Any) -> list[Any]:
    return [item for item in response.output if item.type in CALL_TYPES]


def test_every_tool_type_is_accepted_and_echoed(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="mock-agent", input="What is new today?", tools=ALL_TOOLS
    )
    assert response.status == "completed"
    assert [tool.type for tool in response.tools] == [tool["type"] for tool in ALL_TOOLS]
    namespace = next(tool for tool in response.tools if tool.type == "namespace")
    assert [member.name for member in namespace.tools] == ["search_docs", "raw_query"]


def test_with_only_hosted_tools_nothing_is_called(client: openai.OpenAI) -> None:
    """The scripted model does not model hosted tools: it answers in text instead."""
    response = client.responses.create(
        model="mock-agent", input="What is new today?", tools=HOSTED_TOOLS
    )
    assert response.status == "completed"
    assert _calls(response) == []
    assert response.output_text


def test_among_hosted_tools_only_the_offered_function_is_called(client: openai.OpenAI) -> None:
    tools = [*HOSTED_TOOLS[:4], WEATHER, *HOSTED_TOOLS[4:]]
    stream = client.responses.create(
        model="mock-agent", input="Weather in Paris?", tools=tools, stream=True
    )
    events = list(stream)
    assert events[-1].type == "response.completed"
    calls = _calls(events[-1].response)
    assert calls and {call.type for call in calls} == {"function_call"}
    assert {call.name for call in calls} == {"get_weather"}


def test_every_tool_type_is_accepted_over_websocket(client: openai.OpenAI) -> None:
    with client.responses.connect() as connection:
        connection.response.create(
            model="mock-agent", input="What is new today?", tools=ALL_TOOLS, store=False
        )
        done = until_done(connection)
    assert done.type == "response.completed"
    assert len(done.response.tools) == len(ALL_TOOLS)


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "web_browser"}, "tools[4].type"),
        ({"type": "custom", "name": "p", "format": {"type": "json"}}, "tools[4].format.type"),
        ({"type": "namespace", "name": "n", "description": "d", "tools": [{"type": "shell"}]},
         "tools[4].tools[0].type"),
        ({"type": "file_search"}, "tools[4].vector_store_ids"),
    ],
)  # fmt: skip
def test_a_wrong_tool_shape_is_the_apis_400(
    client: openai.OpenAI, tool: dict[str, Any], param: str
) -> None:
    tools = [*HOSTED_AND_CLIENT_TOOLS[:4], tool]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="mock-agent", input="hi", tools=tools)
    assert caught.value.status_code == 400
    assert caught.value.param == param
    with client.responses.connect() as connection:
        connection.response.create(model="mock-agent", input="hi", tools=tools, store=False)
        event = until_done(connection)
    assert event.type == "error"
    assert event.error.param == param


def test_a_freeform_tool_call_and_its_output_continue_the_conversation(
    client: openai.OpenAI,
) -> None:
    """Codex over HTTP resends the whole conversation, its custom tool calls included."""
    response = client.responses.create(
        model="mock-agent",
        tools=ALL_TOOLS,
        input=[
            {"role": "user", "content": "Fix the failing test"},
            {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch",
             "input": "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch\n"},
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Success."},
        ],
    )  # fmt: skip
    assert response.status == "completed"
    unanswered = [
        {"role": "user", "content": "Fix the failing test"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "x"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="mock-agent", tools=ALL_TOOLS, input=unanswered)
    assert "call_2" in caught.value.message


def _offered(tools: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(call item type, name) of every call these tools allow."""
    allowed: set[tuple[str, str]] = set()
    for tool in tools:
        members = tool["tools"] if tool["type"] == "namespace" else [tool]
        for member in members:
            if member["type"] == "function":
                allowed.add(("function_call", member["name"]))
            elif member["type"] == "custom":
                allowed.add(("custom_tool_call", member["name"]))
        if tool["type"] in ("local_shell", "shell", "apply_patch"):
            allowed.add((f"{tool['type']}_call", ""))
    return allowed


@pytest.mark.parametrize(
    "prompt", ["Fix the failing test", "Weather in Paris?", "Add a search box", "hello"]
)
def test_with_every_tool_type_only_offered_client_tools_are_called(
    client: openai.OpenAI, prompt: str
) -> None:
    response = client.responses.create(model="mock-agent", input=prompt, tools=ALL_TOOLS)
    assert response.status == "completed"
    allowed = _offered(ALL_TOOLS)
    for call in _calls(response):
        assert (call.type, getattr(call, "name", "")) in allowed, call
