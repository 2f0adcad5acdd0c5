"""The OpenAI Agents SDK (``openai-agents``), unmodified, running whole agent loops against
a real mock, and through ``rig gateway`` in front of it, over HTTP, SSE (a streamed run)
and its WebSocket model: an agent offering a subset of the rig's seven tools, and an agent
whose tools have names of its own. Every run ends with a final output; the scripted model
never calls a tool the agent lacks (the SDK would raise ``ModelBehaviorError``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    Model,
    OpenAIResponsesModel,
    OpenAIResponsesWSModel,
    RunConfig,
    RunContextWrapper,
    Runner,
    function_tool,
)
from openai import AsyncOpenAI

from rig.workload.corpus import Corpus
from rig.workload.simulator import ToolSimulator
from rig.workload.tools import INSTRUCTIONS, TOOLS
from tests.servers import server_stats, start_gateway, start_mock

MAX_TURNS = 40
"""Above every scenario's turn range: a run that needs more has gone wrong."""

SUBSET = ("read_file", "search", "run_tests")
"""Three of the rig's seven tools (the issue's failing case offered three)."""


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    process, url = start_mock("--preset", "instant")
    yield url
    process.stop()


@pytest.fixture(scope="module")
def gateway_url(mock_url: str) -> Iterator[str]:
    """``rig gateway`` in front of the mock (a stateless upstream to it)."""
    process, url = start_gateway(mock_url)
    yield url
    process.stop()


@pytest.fixture(params=["mock", "gateway"])
def target(request: pytest.FixtureRequest) -> str:
    """The URL the agent talks to: the mock, or the gateway in front of it."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


def _http_model(url: str) -> Model:
    return OpenAIResponsesModel("mock-agent", AsyncOpenAI(base_url=url, api_key="sk-test"))


def _ws_model(url: str) -> Model:
    client = AsyncOpenAI(
        base_url=url, api_key="sk-test", websocket_base_url=url.replace("http://", "ws://", 1)
    )
    return OpenAIResponsesWSModel("mock-agent", client)


MODELS: dict[str, tuple[Callable[[str], Model], bool]] = {
    "http": (_http_model, False),
    "sse": (_http_model, True),
    "ws": (_ws_model, True),
}
"""Transport -> (the model for a mock URL, whether the run streams)."""


def _rig_tools(names: tuple[str, ...], calls: list[str]) -> list[FunctionTool]:
    """The rig's tools of these names, run against the tool simulator's workspace."""
    simulator = ToolSimulator(Corpus.load("webapp"))

    def invoker(name: str) -> Callable[[RunContextWrapper[Any], str], Any]:
        async def invoke(context: RunContextWrapper[Any], arguments: str) -> str:
            calls.append(name)
            return simulator.run(name, json.loads(arguments or "{}")).output

        return invoke

    return [
        FunctionTool(
            name=tool["name"],
            description=tool["description"],
            params_json_schema=tool["parameters"],
            on_invoke_tool=invoker(tool["name"]),
            strict_json_schema=False,
        )
        for tool in TOOLS
        if tool["name"] in names
    ]


def _own_tools(calls: list[str]) -> list[FunctionTool]:
    """Tools of a support agent: names and schemas the rig has never seen."""

    @function_tool
    def lookup_order(order_id: str) -> str:
        """Find an order by its id."""
        calls.append("lookup_order")
        return json.dumps({"order_id": order_id, "status": "shipped", "eta_days": 2})

    @function_tool
    def get_weather(city: str, unit: str = "celsius") -> str:
        """Current weather for a city."""
        calls.append("get_weather")
        return json.dumps({"city": city, "temperature": 21, "unit": unit})

    return [lookup_order, get_weather]


async def _run(agent: Agent[Any], prompt: str, streamed: bool, chained: bool = False) -> Any:
    config = RunConfig(tracing_disabled=True)
    options: dict[str, Any] = {"max_turns": MAX_TURNS, "run_config": config}
    if chained:  # each turn continues the last response: only the new items are sent
        options["auto_previous_response_id"] = True
    if not streamed:
        return await Runner.run(agent, prompt, **options)
    result = Runner.run_streamed(agent, prompt, **options)
    async for _ in result.stream_events():
        pass
    return result


def _play(
    url: str, transport: str, tools: list[FunctionTool], prompt: str, chained: bool = False
) -> Any:
    make_model, streamed = MODELS[transport]
    agent = Agent(name="agent", instructions=INSTRUCTIONS, model=make_model(url), tools=tools)
    return asyncio.run(_run(agent, prompt, streamed, chained))


@pytest.mark.parametrize("transport", sorted(MODELS))
def test_an_agent_with_a_subset_of_the_rigs_tools_finishes_its_task(
    target: str, transport: str
) -> None:
    calls: list[str] = []
    result = _play(target, transport, _rig_tools(SUBSET, calls), "Fix the failing test.")
    assert isinstance(result.final_output, str) and result.final_output
    assert calls, "the model played the task through the agent's tools"
    assert set(calls) <= set(SUBSET)


@pytest.mark.parametrize("transport", sorted(MODELS))
def test_an_agent_with_tools_of_its_own_names_gets_an_answer(target: str, transport: str) -> None:
    calls: list[str] = []
    result = _play(target, transport, _own_tools(calls), "Where is my order 1234?")
    assert isinstance(result.final_output, str) and result.final_output
    assert calls and set(calls) <= {"lookup_order", "get_weather"}


@pytest.mark.parametrize("transport", sorted(MODELS))
def test_an_agent_without_tools_gets_an_answer(target: str, transport: str) -> None:
    result = _play(target, transport, [], "Say hello.")
    assert isinstance(result.final_output, str) and result.final_output


@pytest.mark.parametrize("transport", sorted(MODELS))
def test_a_chaining_agent_continues_from_the_gateways_state(
    gateway_url: str, transport: str
) -> None:
    """``auto_previous_response_id``: each turn names the last response and sends only the
    new items; the gateway finds every previous response (in the WebSocket's conversation,
    or in its store over HTTP) and re-sends the whole context upstream."""
    before = server_stats(gateway_url)
    calls: list[str] = []
    result = _play(
        gateway_url, transport, _rig_tools(SUBSET, calls), "Fix the failing test.", chained=True
    )
    after = server_stats(gateway_url)
    assert isinstance(result.final_output, str) and result.final_output and calls
    turns = after["responses_completed"] - before["responses_completed"]
    hits = sum(after[k] - before[k] for k in ("hits_connection", "hits_checkpoint"))
    assert turns > 1 and hits == turns - 1  # every turn but the first continued
    assert after["misses_not_found"] == before["misses_not_found"]
    sent = after["client_bytes_in"] - before["client_bytes_in"]
    resent = after["upstream_bytes_out"] - before["upstream_bytes_out"]
    assert sent < resent
