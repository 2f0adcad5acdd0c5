"""Specification of the scripted model policy, driven in a loop with the tool simulator."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from rig.workload.corpus import Corpus
from rig.workload.policy import (
    ModelPolicy,
    ModelTurn,
    UnknownScenarioError,
    count_model_turns,
    example_arguments,
)
from rig.workload.scenarios import Phase, Scenario, Step, builtin_scenarios, make_task
from rig.workload.simulator import ToolSimulator
from rig.workload.tools import INSTRUCTIONS, TOOLS

SCENARIOS = builtin_scenarios()


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.load()


@pytest.fixture(scope="module")
def policy() -> ModelPolicy:
    return ModelPolicy(seed=0)


def user(text: str) -> dict[str, str]:
    return {"type": "message", "role": "user", "content": text}


@dataclass
class Session:
    """What a tiny agent loop saw: the transcript and per-turn sizes."""

    transcript: list[dict[str, str]]
    turns: int = 0
    tool_calls: int = 0
    model_output_bytes: list[int] = field(default_factory=list)
    tool_output_bytes: list[int] = field(default_factory=list)
    full_request_bytes: list[int] = field(default_factory=list)
    incremental_request_bytes: list[int] = field(default_factory=list)


def wire_item(item: Mapping[str, str], index: int) -> dict[str, Any]:
    """The item as a stateless client resends it (ids and content parts included)."""
    if item["type"] == "message" and item["role"] == "user":
        return {**item, "content": [{"type": "input_text", "text": item["content"]}]}
    if item["type"] == "message":
        return {
            "type": "message",
            "id": f"msg_{index:048x}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": item["content"], "annotations": []}],
        }
    if item["type"] == "function_call":
        return {**item, "id": f"fc_{index:048x}", "status": "completed"}
    return dict(item)


def request_bytes(items: Sequence[Mapping[str, str]], offset: int, previous: str | None) -> int:
    body: dict[str, Any] = {
        "model": "gpt-5.4",
        "instructions": INSTRUCTIONS,
        "tools": TOOLS,
        "input": [wire_item(item, offset + i) for i, item in enumerate(items)],
        "store": False,
    }
    if previous is not None:
        # Instructions and tools stay: the API carries neither over to a continuation.
        body["previous_response_id"] = previous
    return len(orjson.dumps(body))


def drive(
    policy: ModelPolicy,
    corpus: Corpus,
    prompt: str,
    metadata: Mapping[str, str] | None = None,
    max_turns: int = 40,
) -> Session:
    """Play the client: run the policy's calls through the simulator until a final answer."""
    session = Session(transcript=[user(prompt)])
    simulator = ToolSimulator(corpus)
    new_from = 0
    for turn_index in range(max_turns):
        transcript = session.transcript
        session.full_request_bytes.append(request_bytes(transcript, 0, None))
        previous = f"resp_{turn_index:032x}" if turn_index else None
        new_items = transcript[new_from:] if turn_index else transcript
        session.incremental_request_bytes.append(request_bytes(new_items, new_from, previous))
        turn = policy.next_turn(transcript, TOOLS, metadata)
        session.turns += 1
        if turn.text:
            transcript.append({"type": "message", "role": "assistant", "content": turn.text})
        if turn.is_final:
            return session
        session.model_output_bytes.append(
            len((turn.text or "").encode())
            + sum(len(c.arguments.encode()) for c in turn.tool_calls)
        )
        ids = [f"call_{turn_index}_{k}" for k in range(len(turn.tool_calls))]
        for call_id, call in zip(ids, turn.tool_calls, strict=True):
            transcript.append(
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                }
            )
        new_from = len(transcript)
        outputs = 0
        for call_id, call in zip(ids, turn.tool_calls, strict=True):
            result = simulator.run(call.name, call.arguments)
            outputs += len(result.output.encode())
            transcript.append(
                {"type": "function_call_output", "call_id": call_id, "output": result.output}
            )
        session.tool_calls += len(turn.tool_calls)
        session.tool_output_bytes.append(outputs)
    raise AssertionError(f"no final answer after {max_turns} turns")


# -- plans ------------------------------------------------------------------------------


def test_plan_is_deterministic_under_seed_and_prompt() -> None:
    prompt = make_task(SCENARIOS["fix_failing_test"], 0).prompt
    assert ModelPolicy(seed=1).plan(prompt) == ModelPolicy(seed=1).plan(prompt)


def test_plan_changes_with_seed_or_prompt() -> None:
    scenario = SCENARIOS["refactor_api_layer"]
    first, second = make_task(scenario, 0).prompt, make_task(scenario, 1).prompt
    assert ModelPolicy(seed=1).plan(first) != ModelPolicy(seed=2).plan(first)
    assert ModelPolicy(seed=1).plan(first) != ModelPolicy(seed=1).plan(second)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_plans_stay_in_range_and_vary_over_200_prompts(policy: ModelPolicy, name: str) -> None:
    scenario = SCENARIOS[name]
    plans = [policy.plan(make_task(scenario, index).prompt, name) for index in range(200)]
    turns = [plan.total_turns for plan in plans]
    calls = [plan.tool_calls for plan in plans]
    (t_min, t_max), (c_min, c_max) = scenario.turns, scenario.tool_calls
    assert t_min <= min(turns) <= max(turns) <= t_max
    assert c_min <= min(calls) <= max(calls) <= c_max
    assert min(turns) == t_min
    assert max(turns) >= t_max - 1
    assert max(calls) - min(calls) >= (c_max - c_min) // 2
    assert len(set(turns)) >= 5
    assert len(set(calls)) >= 5


def test_every_tool_turn_has_one_to_max_parallel_calls(policy: ModelPolicy) -> None:
    parallel_turns = 0
    for scenario in SCENARIOS.values():
        for index in range(50):
            plan = policy.plan(make_task(scenario, index).prompt, scenario.name)
            assert all(1 <= len(turn.steps) <= scenario.max_parallel for turn in plan.turns)
            parallel_turns += sum(len(turn.steps) > 1 for turn in plan.turns)
    assert parallel_turns > 100


def test_parallel_calls_prefer_reads_within_a_phase() -> None:
    def step(tool: str, path: str) -> Step:
        return Step(tool, orjson.dumps({"path": path}).decode(), ("text",), required=True)

    scenario = Scenario(
        name="tiny",
        title="Tiny",
        description="Two reads and two edits in three tool turns.",
        prompts=("Do it ({ticket}).",),
        turns=(4, 4),
        tool_calls=(4, 4),
        phases=(
            Phase("explore", (step("read_file", "a.ts"), step("read_file", "b.ts"))),
            Phase("edit", (step("write_file", "a.ts"), step("write_file", "b.ts"))),
        ),
        final_answers=("Done.",),
    )
    policy = ModelPolicy(scenarios={"tiny": scenario})
    for index in range(20):
        plan = policy.plan(f"Do it (T-{index}).")
        assert [[s.tool for s in turn.steps] for turn in plan.turns] == [
            ["read_file", "read_file"],
            ["write_file"],
            ["write_file"],
        ]


def test_plans_follow_the_phase_order(policy: ModelPolicy) -> None:
    scenario = SCENARIOS["fix_failing_test"]
    order = [phase.name for phase in scenario.phases]
    plan = policy.plan(make_task(scenario, 5).prompt, scenario.name)
    phases = [order.index(turn.phase) for turn in plan.turns]
    assert phases == sorted(phases)
    assert plan.turns[0].steps[0].tool == "run_tests"
    assert plan.turns[-1].phase == "verify"


# -- the agent loop ---------------------------------------------------------------------


SESSIONS_PER_SCENARIO = 40


@pytest.fixture(scope="module")
def driven(policy: ModelPolicy, corpus: Corpus) -> dict[str, list[tuple[str, Session]]]:
    """Sessions per scenario, each as (first prompt, what the loop saw)."""
    result: dict[str, list[tuple[str, Session]]] = {}
    for name, scenario in SCENARIOS.items():
        prompts = [make_task(scenario, i).prompt for i in range(SESSIONS_PER_SCENARIO)]
        result[name] = [(prompt, drive(policy, corpus, prompt)) for prompt in prompts]
    return result


@pytest.fixture(scope="module")
def sessions(driven: dict[str, list[tuple[str, Session]]]) -> list[Session]:
    return [session for runs in driven.values() for _, session in runs]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_driven_sessions_finish_within_the_scenario_ranges(
    policy: ModelPolicy, driven: dict[str, list[tuple[str, Session]]], name: str
) -> None:
    scenario = SCENARIOS[name]
    for prompt, session in driven[name]:
        plan = policy.plan(prompt)
        assert scenario.turns[0] <= session.turns <= scenario.turns[1]
        assert scenario.tool_calls[0] <= session.tool_calls <= scenario.tool_calls[1]
        assert (session.turns, session.tool_calls) == (plan.total_turns, plan.tool_calls)


def test_scripted_calls_never_hit_a_harness_error(sessions: list[Session]) -> None:
    for session in sessions:
        for item in session.transcript:
            if item["type"] == "function_call_output":
                assert not item["output"].startswith(("Error", "error", "ENOENT")), item["output"]
                assert "Test suite failed to run" not in item["output"]


def test_a_whole_session_is_reproducible(corpus: Corpus) -> None:
    prompt = make_task(SCENARIOS["add_search_feature"], 11).prompt
    first = drive(ModelPolicy(seed=4), corpus, prompt)
    again = drive(ModelPolicy(seed=4), corpus, prompt)
    other = drive(ModelPolicy(seed=5), corpus, prompt)
    assert first.transcript == again.transcript
    assert first.transcript != other.transcript


def test_fix_scenario_ends_with_passing_tests(policy: ModelPolicy, corpus: Corpus) -> None:
    session = drive(policy, corpus, make_task(SCENARIOS["fix_failing_test"], 2).prompt)
    outputs = [i["output"] for i in session.transcript if i["type"] == "function_call_output"]
    test_runs = [output for output in outputs if "Tests:" in output]
    assert "1 failed" in test_runs[0]
    assert "failed" not in test_runs[-1]
    final = session.transcript[-1]["content"]
    assert "src/utils/formatDate.ts" in final
    assert "I ran" in final and "passed" in final


def test_text_reacts_to_a_failing_test_run(policy: ModelPolicy, corpus: Corpus) -> None:
    session = drive(policy, corpus, make_task(SCENARIOS["fix_failing_test"], 0).prompt)
    second_message = [i for i in session.transcript if i.get("role") == "assistant"][1]
    assert second_message["content"].startswith(
        "The test run reports 1 failed: formatDate \u203a toISODate \u203a pads single-digit "
        'months and days (expected "2024-03-05", received "2024-02-05").'
    )


def test_final_answer_calls_a_remaining_failure_unrelated(
    policy: ModelPolicy, corpus: Corpus
) -> None:
    session = drive(policy, corpus, make_task(SCENARIOS["refactor_api_layer"], 0).prompt)
    final = session.transcript[-1]["content"]
    assert "1 failed" in final
    assert "in code this change does not touch" in final


def test_final_answer_names_the_ticket(policy: ModelPolicy, corpus: Corpus) -> None:
    task = make_task(SCENARIOS["add_search_feature"], 4)
    ticket = task.prompt.split("TT-", 1)[1].split()[0].strip(":?,.")
    session = drive(policy, corpus, task.prompt)
    assert f"TT-{ticket}" in session.transcript[-1]["content"]


# -- turns from the transcript --------------------------------------------------------


def test_dropping_context_restarts_the_plan(policy: ModelPolicy, corpus: Corpus) -> None:
    prompt = make_task(SCENARIOS["fix_failing_test"], 1).prompt
    first = policy.next_turn([user(prompt)], TOOLS)
    session = drive(policy, corpus, prompt)
    midway = session.transcript[: len(session.transcript) // 2]
    assert policy.next_turn(midway, TOOLS) != first
    assert policy.next_turn([user(prompt)], TOOLS) == first


def test_a_run_of_model_items_counts_as_one_turn() -> None:
    transcript = [
        user("hi"),
        {"type": "message", "role": "assistant", "content": "Reading."},
        {"type": "function_call", "call_id": "a", "name": "read_file", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "read_file", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "a", "output": "x"},
        {"type": "function_call_output", "call_id": "b", "output": "y"},
        {"type": "function_call", "call_id": "c", "name": "run_tests", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "z"},
    ]
    assert count_model_turns(transcript) == 2


def test_after_the_plan_every_request_gets_a_final_answer(
    policy: ModelPolicy, corpus: Corpus
) -> None:
    session = drive(policy, corpus, make_task(SCENARIOS["refactor_api_layer"], 3).prompt)
    again = policy.next_turn([*session.transcript, user("thanks!")], TOOLS)
    assert again.is_final
    assert again.text


# -- scenario selection -------------------------------------------------------------------


def test_metadata_selects_the_scenario() -> None:
    policy = ModelPolicy(seed=0)
    prompt = make_task(SCENARIOS["fix_failing_test"], 0).prompt
    plan = policy.plan(prompt, "add_search_feature")
    assert plan.scenario == "add_search_feature"
    turn = policy.next_turn([user(prompt)], TOOLS, {"scenario": "add_search_feature"})
    assert [c.arguments for c in turn.tool_calls] == [s.arguments for s in plan.turns[0].steps]


def test_mixed_picks_the_scenario_whose_prompt_it_is() -> None:
    policy = ModelPolicy(seed=0)
    for scenario in SCENARIOS.values():
        assert policy.scenario_for(make_task(scenario, 9).prompt).name == scenario.name


def test_mixed_plays_what_a_foreign_prompt_asks_for_else_the_fallback() -> None:
    # Not a hash of the prompt: "fix the failing test" never plays the search feature.
    policy = ModelPolicy(seed=0)
    chosen = {policy.scenario_for(f"please do task number {i}").name for i in range(60)}
    assert chosen == {"fix_failing_test"}
    assert policy.scenario_for("add a search box").name == "add_search_feature"


def test_default_scenario_applies_without_metadata() -> None:
    policy = ModelPolicy(default_scenario="refactor_api_layer")
    assert policy.scenario_for(make_task(SCENARIOS["fix_failing_test"], 0).prompt).name == (
        "refactor_api_layer"
    )


def test_unknown_scenario_in_metadata_is_a_client_error(policy: ModelPolicy) -> None:
    with pytest.raises(UnknownScenarioError) as info:
        policy.next_turn([user("fix it")], TOOLS, {"scenario": "fix_everything"})
    assert info.value.param == "metadata.scenario"
    assert str(info.value) == (
        "unknown scenario 'fix_everything'; set metadata.scenario to one of "
        "add_search_feature, fix_failing_test, refactor_api_layer or 'mixed'"
    )


def test_unknown_default_scenario_is_rejected_up_front() -> None:
    with pytest.raises(UnknownScenarioError, match="'nope'"):
        ModelPolicy(default_scenario="nope")


def test_custom_scenarios_replace_the_built_ins() -> None:
    only: dict[str, Scenario] = {"fix_failing_test": SCENARIOS["fix_failing_test"]}
    policy = ModelPolicy(scenarios=only)
    assert policy.scenario_for("anything at all").name == "fix_failing_test"


# -- generic fallback ---------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the weather for a location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["location", "unit"],
    },
}


def test_foreign_tools_get_a_call_with_synthesized_arguments(policy: ModelPolicy) -> None:
    turn = policy.next_turn([user("What's the weather in Paris?")], [WEATHER_TOOL])
    assert turn.text is None
    (call,) = turn.tool_calls
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"location": "San Francisco, CA", "unit": "celsius"}


def test_chat_completions_style_tools_work_too(policy: ModelPolicy) -> None:
    chat_tool = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    turn = policy.next_turn([user("look it up")], [chat_tool])
    assert turn.tool_calls[0].name == "lookup"
    assert turn.tool_calls[0].arguments == "{}"


def test_after_the_tool_output_the_answer_mentions_it(policy: ModelPolicy) -> None:
    transcript = [
        user("What's the weather in Paris?"),
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "Sunny, 22 C"},
    ]
    turn = policy.next_turn(transcript, [WEATHER_TOOL])
    assert turn.is_final
    assert "get_weather returned: Sunny, 22 C" in (turn.text or "")


def test_without_tools_the_reply_addresses_the_last_user_message(policy: ModelPolicy) -> None:
    transcript = [user("first"), {"type": "message", "role": "assistant", "content": "ok"}]
    turn: ModelTurn = policy.next_turn([*transcript, user("Say hello in French")], [])
    assert turn.is_final
    assert 'You said: "Say hello in French"' in (turn.text or "")


def test_example_arguments_cover_schema_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "number"},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "options": {
                "type": "object",
                "properties": {"x": {"type": "integer"}},
                "required": ["x"],
            },
            "maybe": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "optional": {"type": "string"},
        },
        "required": ["count", "flag", "tags", "options", "maybe"],
    }
    assert example_arguments(schema) == {
        "count": 1,
        "flag": True,
        "tags": ["example"],
        "options": {"x": 1},
        "maybe": "example",
    }


# -- sizes that make the bandwidth figures come out right ---------------------------------


def test_full_context_request_grows_from_2_kb_to_about_10x_by_turn_9(
    sessions: list[Session],
) -> None:
    turn0 = [s.full_request_bytes[0] for s in sessions]
    turn9 = [s.full_request_bytes[9] for s in sessions if len(s.full_request_bytes) > 9]
    assert 1_800 <= min(turn0) <= max(turn0) <= 3_000
    assert len(turn9) >= 40
    assert 8 * statistics.median(turn0) <= statistics.median(turn9) <= 14 * statistics.median(turn0)


def test_incremental_requests_stay_at_2_to_4_kb(sessions: list[Session]) -> None:
    later = [size for s in sessions for size in s.incremental_request_bytes[1:]]
    assert 2_000 <= statistics.median(later) <= 4_000
    assert sum(2_000 <= size <= 4_000 for size in later) / len(later) >= 0.6


def test_model_output_per_turn_is_mostly_100_to_400_tokens(sessions: list[Session]) -> None:
    sizes = [size for s in sessions for size in s.model_output_bytes]
    assert 400 <= statistics.median(sizes) <= 1_600
    assert sum(400 <= size <= 1_600 for size in sizes) / len(sizes) >= 0.6


def test_tool_output_per_turn_is_typically_0_5_to_2_kb(sessions: list[Session]) -> None:
    # Harness-sized: line ranges, a few search hits, jest's default reporter.
    assert 500 <= statistics.median(s for x in sessions for s in x.tool_output_bytes) <= 2_000


def test_final_answers_are_0_6_to_1_5_kb(sessions: list[Session]) -> None:
    sizes = [len(s.transcript[-1]["content"].encode()) for s in sessions]
    assert min(sizes) >= 600
    assert max(sizes) <= 1_500


def test_first_prompts_are_200_to_500_bytes(sessions: list[Session]) -> None:
    sizes = [len(s.transcript[0]["content"].encode()) for s in sessions]
    assert min(sizes) >= 200
    assert max(sizes) <= 500
