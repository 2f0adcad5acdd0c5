"""Every tool type through the gateway (the mock as its upstream): the gateway validates
requests like the mock (one validation, ``rig.protocol.requests``), so Codex-style
requests pass over HTTP and WebSocket, a continuation answering a freeform tool call is
accepted, and a wrong tool shape is the API's 400 naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.sdk import until_done
from tests.servers import start_gateway, start_mock
from tests.tool_catalog import ALL_TOOLS, HOSTED_AND_CLIENT_TOOLS


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    mock, upstream = start_mock("--preset", "instant")
    gateway, url = start_gateway(upstream)
    with openai.OpenAI(base_url=url, api_key="sk-gateway-client-1", max_retries=0) as sdk:
        yield sdk
    gateway.stop()
    mock.stop()


def test_every_tool_type_passes_the_gateway_over_http(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="mock-agent", input="Fix the failing test", tools=ALL_TOOLS
    )
    assert response.status == "completed"
    assert [tool.type for tool in response.tools] == [tool["type"] for tool in ALL_TOOLS]


def test_a_freeform_call_is_answered_through_the_gateway_over_websocket(
    client: openai.OpenAI,
) -> None:
    """The first turn of a session resent with Codex's freeform apply_patch call and its
    output, then continued on the connection."""
    with client.responses.connect() as connection:
        connection.response.create(
            model="mock-agent",
            store=False,
            tools=ALL_TOOLS,
            input=[
                {"role": "user", "content": "Fix the failing test"},
                {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch",
                 "input": "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch\n"},
                {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done!"},
            ],
        )  # fmt: skip
        first = until_done(connection)
        assert first.type == "response.completed"
        connection.response.create(
            model="mock-agent",
            store=False,
            tools=ALL_TOOLS,
            previous_response_id=first.response.id,
            input=[{"role": "user", "content": "Thanks, anything else?"}],
        )
        second = until_done(connection)
    assert second.type == "response.completed"
    assert second.response.previous_response_id == first.response.id


def test_a_wrong_tool_shape_is_the_apis_400_at_the_gateway(client: openai.OpenAI) -> None:
    tools = [*HOSTED_AND_CLIENT_TOOLS[:4], {"type": "web_browser"}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="mock-agent", input="hi", tools=tools)
    assert caught.value.param == "tools[4].type"
    with client.responses.connect() as connection:
        connection.response.create(model="mock-agent", input="hi", tools=tools, store=False)
        event = until_done(connection)
    assert event.type == "error" and event.error.param == "tools[4].type"
