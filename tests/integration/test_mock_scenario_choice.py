"""Which task a real mock plays, read from the final answer of a whole session played
through the official SDK: ``metadata.scenario``, then ``--scenario``, then the prompt's own
words, then the fallback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from rig.workload.corpus import Corpus
from rig.workload.scenarios import FALLBACK_SCENARIO, builtin_scenarios
from rig.workload.simulator import ToolSimulator
from rig.workload.tools import INSTRUCTIONS, TOOLS
from tests.servers import start_mock

SCENARIOS = builtin_scenarios()


def _answer_openings(name: str) -> tuple[str, ...]:
    """The literal text each of a scenario's final answers starts with."""
    return tuple(template.split("{", 1)[0].strip() for template in SCENARIOS[name].final_answers)


def _played(url: str, prompt: str, metadata: dict[str, str] | None = None) -> str:
    """The scenario whose final answer ends a whole task started with ``prompt``."""
    simulator = ToolSimulator(Corpus.load("webapp"))
    with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
        response = client.responses.create(
            model="mock-agent",
            instructions=INSTRUCTIONS,
            input=prompt,
            tools=TOOLS,
            metadata=metadata or {},
        )
        for _ in range(40):
            calls = [item for item in response.output if item.type == "function_call"]
            if not calls:
                break
            outputs = [
                {
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": simulator.run(call.name, json.loads(call.arguments)).output,
                }
                for call in calls
            ]
            response = client.responses.create(
                model="mock-agent",
                instructions=INSTRUCTIONS,
                previous_response_id=response.id,
                input=outputs,
                tools=TOOLS,
                metadata=metadata or {},
            )
        else:
            raise AssertionError("the task did not end within 40 turns")
    answer = response.output_text
    played = [
        name
        for name in SCENARIOS
        if any(answer.startswith(opening) for opening in _answer_openings(name))
    ]
    assert len(played) == 1, answer[:300]
    return played[0]


@pytest.fixture(scope="module")
def refactor_mock() -> Iterator[str]:
    process, url = start_mock("--preset", "instant", "--scenario", "refactor_api_layer")
    yield url
    process.stop()


def test_the_final_answers_tell_the_scenarios_apart() -> None:
    openings = [set(_answer_openings(name)) for name in SCENARIOS]
    assert all(a.isdisjoint(b) for i, a in enumerate(openings) for b in openings[i + 1 :])


@pytest.mark.parametrize(
    ("prompt", "scenario"),
    [
        ("Fix the failing test in the date helpers.", "fix_failing_test"),
        ("Please add a search feature to the task list.", "add_search_feature"),
        ("Refactor the API layer onto the shared client.", "refactor_api_layer"),
    ],
)
def test_a_free_form_prompt_plays_the_task_it_asks_for(
    mock_url: str, prompt: str, scenario: str
) -> None:
    assert _played(mock_url, prompt) == scenario


def test_a_prompt_that_names_no_task_plays_the_fallback(mock_url: str) -> None:
    assert _played(mock_url, "Hello! Can you help me with my repository?") == FALLBACK_SCENARIO


def test_metadata_scenario_comes_first(mock_url: str, refactor_mock: str) -> None:
    chosen = {"scenario": "add_search_feature"}
    assert _played(mock_url, "Fix the failing test.", chosen) == "add_search_feature"
    assert _played(refactor_mock, "Fix the failing test.", chosen) == "add_search_feature"


def test_the_mocks_scenario_comes_before_the_prompts_words(refactor_mock: str) -> None:
    assert _played(refactor_mock, "Fix the failing test.") == "refactor_api_layer"
