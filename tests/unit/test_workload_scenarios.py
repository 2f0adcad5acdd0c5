"""Specification of scenario files: built-ins, tasks, and every validation error a user can meet."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.workload.scenarios import (
    Scenario,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    make_task,
)
from rig.workload.tools import TOOL_NAMES

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
BUILTIN_DIR = Path(__file__).resolve().parents[2] / "rig" / "workload" / "scenarios"

PUBLISHED_RANGES = {
    "fix_failing_test": ((10, 15), (12, 17)),
    "add_search_feature": ((5, 15), (4, 21)),
    "refactor_api_layer": ((6, 11), (10, 20)),
}


@functools.cache
def _builtin_raw(name: str) -> dict[str, Any]:
    return yaml.load((BUILTIN_DIR / f"{name}.yaml").read_text(), Loader=_LOADER)


def builtin_raw(name: str = "fix_failing_test") -> dict[str, Any]:
    return copy.deepcopy(_builtin_raw(name))


def write(tmp_path: Path, raw: object, name: str = "my_task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.dump(raw, Dumper=_DUMPER, sort_keys=False))
    return path


# -- built-ins ------------------------------------------------------------------------


def test_the_three_published_scenarios_are_built_in() -> None:
    scenarios = builtin_scenarios()
    assert set(scenarios) == set(PUBLISHED_RANGES)
    for name, (turns, tool_calls) in PUBLISHED_RANGES.items():
        assert scenarios[name].turns == turns
        assert scenarios[name].tool_calls == tool_calls


def test_builtin_steps_use_only_agent_tools() -> None:
    for scenario in builtin_scenarios().values():
        tools = {step.tool for phase in scenario.phases for step in phase.steps}
        assert tools <= TOOL_NAMES
        assert [phase.name for phase in scenario.phases][-1] == "verify"


def test_load_by_name_and_by_path_agree(tmp_path: Path) -> None:
    copied = tmp_path / "copy.yaml"
    copied.write_text((BUILTIN_DIR / "refactor_api_layer.yaml").read_text())
    by_path = load_scenario(copied)
    by_name = load_scenario("refactor_api_layer")
    assert by_path.phases == by_name.phases
    assert by_path.source == str(copied)


def test_an_edited_copy_loads_with_its_changes(tmp_path: Path) -> None:
    raw = builtin_raw()
    raw["name"] = "quick_fix"
    raw["turns"] = [3, 4]
    raw["tool_calls"] = [4, 6]
    raw["phases"][0]["min_calls"] = 0
    scenario = load_scenario(write(tmp_path, raw))
    assert (scenario.name, scenario.turns, scenario.tool_calls) == ("quick_fix", (3, 4), (4, 6))


# -- tasks ----------------------------------------------------------------------------


def test_make_task_is_deterministic() -> None:
    scenario = load_scenario("fix_failing_test")
    assert make_task(scenario, 7, seed=1) == make_task(scenario, 7, seed=1)


def test_make_task_varies_with_session_and_seed() -> None:
    scenario = load_scenario("fix_failing_test")
    prompts = {make_task(scenario, index, seed=0).prompt for index in range(200)}
    assert len(prompts) >= 190
    assert make_task(scenario, 0, seed=0) != make_task(scenario, 0, seed=1)


def test_prompts_carry_a_ticket_and_have_realistic_sizes() -> None:
    for scenario in builtin_scenarios().values():
        for index in range(20):
            task = make_task(scenario, index)
            assert task.scenario == scenario.name
            assert re.search(r"\bTT-\d{3,4}\b", task.prompt)
            assert 200 <= len(task.prompt.encode()) <= 500


def test_scenario_recognises_its_own_prompts() -> None:
    scenarios = builtin_scenarios()
    task = make_task(scenarios["add_search_feature"], 3)
    assert scenarios["add_search_feature"].matches_prompt(task.prompt)
    assert not scenarios["fix_failing_test"].matches_prompt(task.prompt)


# -- validation errors ------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Mutation:
    """A mutation that sets raw[a][b]... (keys split on '.', integers as list indexes)."""

    def mutate(raw: dict[str, Any]) -> dict[str, Any]:
        target: Any = raw
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        return raw

    return mutate


def _delete(key: str) -> Mutation:
    def mutate(raw: dict[str, Any]) -> dict[str, Any]:
        del raw[key]
        return raw

    return mutate


def _bad_patch(raw: dict[str, Any]) -> dict[str, Any]:
    step = raw["phases"][2]["steps"][0]
    step["arguments"]["patch"] = step["arguments"]["patch"].replace(
        "pad2(date.getUTCMonth());", "nope();"
    )
    return raw


def _duplicate_phase(raw: dict[str, Any]) -> dict[str, Any]:
    raw["phases"][1]["name"] = raw["phases"][0]["name"]
    return raw


def _high_floors(raw: dict[str, Any]) -> dict[str, Any]:
    raw["phases"][0]["min_calls"] = 6
    raw["phases"][1]["min_calls"] = 6
    return raw


def _small_pool(raw: dict[str, Any]) -> dict[str, Any]:
    for phase in raw["phases"]:
        phase["steps"] = phase["steps"][:3]
    return raw


VALIDATION_ERRORS: list[tuple[str, Mutation, str]] = [
    ("top-level list", lambda raw: [raw], "file: expected a mapping of fields at the top level"),
    ("unknown field", _set("turn", [1, 2]), "turn: unknown field; remove it or use one of name,"),
    ("missing turns", _delete("turns"), "turns: missing; add turns: [min, max] model responses"),
    ("missing prompts", _delete("prompts"), "prompts: missing; add prompts:"),
    ("missing phases", _delete("phases"), "phases: missing; add phases:"),
    ("missing final answers", _delete("final_answers"), "final_answers: missing; add"),
    ("name not identifier", _set("name", "Fix It"), "name: 'Fix It' is not an identifier"),
    ("title not text", _set("title", 42), "title: expected a non-empty string, got int"),
    ("turns not a pair", _set("turns", [10]), "turns: expected [min, max] as two integers"),
    (
        "turns reversed",
        _set("turns", [16, 15]),
        "turns: min 16 > max 15; set turns: [min, max] with 1 <= min <= max",
    ),
    ("turns zero", _set("turns", [0, 15]), "turns: min 0 < 1"),
    (
        "tool_calls below turns",
        _set("tool_calls", [12, 13]),
        "tool_calls: max 13 < turns max 15 - 1; every turn but the final answer makes at least one call; set tool_calls max >= 14",
    ),
    (
        "tool_calls min unreachable",
        _set("tool_calls", [28, 40]),
        "tool_calls: min 28 > (turns min 10 - 1) x max_parallel 3 = 27",
    ),
    (
        "tool_calls max unreachable",
        _set("tool_calls", [12, 43]),
        "tool_calls: max 43 is not reachable: (turns max 15 - 1) x max_parallel 3 = 42",
    ),
    ("max_parallel zero", _set("max_parallel", 0), "max_parallel: expected an integer >= 1, got 0"),
    (
        "prompts empty",
        _set("prompts", []),
        "prompts: expected a non-empty list of strings, got list",
    ),
    (
        "prompt placeholder",
        _set("prompts.0", "Fix {issue} please"),
        "prompts[0]: unknown placeholder {issue}; use only {ticket}",
    ),
    (
        "answer placeholder",
        _set("final_answers.1", "Done: {summary}"),
        "final_answers[1]: unknown placeholder {summary}; use only {changes}, {tests}, {ticket}",
    ),
    ("answer stray brace", _set("final_answers.0", "Done {ticket"), "final_answers[0]: bad braces"),
    ("unknown corpus", _set("corpus", "mobile_app"), "corpus: unknown corpus 'mobile_app'"),
    (
        "phases not a list",
        _set("phases", {"explore": []}),
        "phases: expected a non-empty list of phases, got dict",
    ),
    (
        "phase unknown field",
        _set("phases.0.calls", 3),
        "phases[0].calls: unknown field; use only name, weight, min_calls, steps",
    ),
    ("duplicate phase", _duplicate_phase, "phases[1].name: duplicate phase 'explore'"),
    (
        "negative weight",
        _set("phases.1.weight", -1),
        "phases[1].weight: expected a number >= 0, got -1",
    ),
    ("no steps", _set("phases.3.steps", []), "phases[3].steps: expected a non-empty list of steps"),
    ("min_calls above steps", _set("phases.2.min_calls", 5), "phases[2].min_calls: 5 > 3 steps"),
    (
        "unknown tool",
        _set("phases.0.steps.1.tool", "grep"),
        "phases[0].steps[1].tool: 'grep' is not one of the agent's tools; use one of apply_patch, list_dir,",
    ),
    (
        "arguments not a mapping",
        _set("phases.0.steps.1.arguments", "src"),
        "phases[0].steps[1].arguments: expected a mapping, got text 'src'",
    ),
    (
        "required argument missing",
        _set("phases.1.steps.0.arguments", {"start_line": 3}),
        "phases[1].steps[0].arguments: missing 'path', which read_file requires",
    ),
    (
        "unknown argument",
        _set("phases.0.steps.1.arguments", {"path": "src", "depth": 2}),
        "phases[0].steps[1].arguments.depth: list_dir has no argument 'depth'",
    ),
    (
        "path not in corpus",
        _set("phases.1.steps.1.arguments.path", "src/util/formatDate.ts"),
        "phases[1].steps[1].arguments.path: 'src/util/formatDate.ts' is not in corpus 'webapp'",
    ),
    (
        "patch does not apply",
        _bad_patch,
        "phases[2].steps[0].arguments.patch: does not apply to corpus 'webapp' (error: patch failed: src/utils/formatDate.ts:17",
    ),
    (
        "text missing",
        _set("phases.0.steps.1.text", None),
        "phases[0].steps[1].text: expected text or a list of variants, got nothing",
    ),
    (
        "required not a bool",
        _set("phases.0.steps.1.required", "yes"),
        "phases[0].steps[1].required: expected true or false, got 'yes'",
    ),
    (
        "empty summary",
        _set("phases.2.steps.0.summary", " "),
        "phases[2].steps[0].summary: expected text, got an empty string",
    ),
    (
        "pool too small",
        _small_pool,
        "phases: 12 steps in all phases but tool_calls max is 17; a plan uses each step at most once; add steps or lower tool_calls max",
    ),
    (
        "floors above minimum",
        _high_floors,
        "phases: the phases need at least 14 calls (min_calls and required steps) "
        "but tool_calls min is 12",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "message"),
    [pytest.param(mutation, message, id=case) for case, mutation, message in VALIDATION_ERRORS],
)
def test_validation_error_names_file_field_and_fix(
    tmp_path: Path, mutation: Mutation, message: str
) -> None:
    path = write(tmp_path, mutation(builtin_raw()))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nturns: [1, 2\ntitle: y\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: line \d+: invalid YAML"):
        load_scenario(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.yaml: no such file; give the path"):
        load_scenario(tmp_path / "nope.yaml")


def test_unknown_builtin_name_lists_the_built_ins() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario("fix_everything")
    assert str(info.value) == (
        "fix_everything: no built-in scenario of that name; use one of add_search_feature, "
        "fix_failing_test, refactor_api_layer, or the path of a .yaml file"
    )


def test_scenario_is_hashable_and_frozen() -> None:
    scenario: Scenario = load_scenario("fix_failing_test")
    assert hash(scenario) == hash(load_scenario("fix_failing_test"))
    with pytest.raises(AttributeError):
        scenario.name = "other"  # type: ignore[misc]
