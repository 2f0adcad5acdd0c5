"""Choosing the scenario a free-form task prompt asks for: its templates, then its keywords
(data in the scenario files), then the fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rig.workload.policy import ModelPolicy
from rig.workload.scenarios import (
    FALLBACK_SCENARIO,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    make_task,
    scenario_for_prompt,
)

SCENARIOS = builtin_scenarios()


def test_every_builtin_scenario_has_keywords() -> None:
    assert all(scenario.keywords for scenario in SCENARIOS.values())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_prompt_made_from_a_template_plays_its_scenario(name: str) -> None:
    for index in range(10):
        assert scenario_for_prompt(make_task(SCENARIOS[name], index).prompt, SCENARIOS) == name


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("fix the failing test", "fix_failing_test"),
        ("CI is RED since this morning, the date test FAILS", "fix_failing_test"),
        ("add a search feature", "add_search_feature"),
        ("Implement free-text search for tasks", "add_search_feature"),
        ("refactor the api layer", "refactor_api_layer"),
        ("Clean up the duplicated fetch code (tech debt)", "refactor_api_layer"),
    ],
)
def test_a_free_form_prompt_plays_the_scenario_with_most_keywords(prompt: str, name: str) -> None:
    assert scenario_for_prompt(prompt, SCENARIOS) == name


def test_keywords_match_whole_words_only() -> None:
    # "red" is a keyword of fix_failing_test; "required" and "bred" are not "red".
    assert SCENARIOS["fix_failing_test"].keyword_hits("required fields, bred") == 0
    assert SCENARIOS["fix_failing_test"].keyword_hits("the build is red.") == 1


def test_a_prompt_naming_no_task_plays_the_fallback() -> None:
    assert scenario_for_prompt("hello there", SCENARIOS) == FALLBACK_SCENARIO
    without = {k: v for k, v in SCENARIOS.items() if k != FALLBACK_SCENARIO}
    assert scenario_for_prompt("hello there", without) == sorted(without)[0]


def test_a_tie_goes_to_the_first_by_name() -> None:
    assert scenario_for_prompt("search fails", SCENARIOS) == "add_search_feature"


def test_metadata_then_the_policys_default_then_the_prompt() -> None:
    prompt = "fix the failing test"
    mixed = ModelPolicy(SCENARIOS)
    fixed = ModelPolicy(SCENARIOS, default_scenario="refactor_api_layer")
    assert mixed.scenario_for(prompt).name == "fix_failing_test"
    assert fixed.scenario_for(prompt).name == "refactor_api_layer"
    chosen = {"scenario": "add_search_feature"}
    assert fixed.scenario_for(prompt, chosen).name == "add_search_feature"
    assert fixed.scenario_for(prompt, {"scenario": "mixed"}).name == "fix_failing_test"


def _builtin_raw() -> dict:
    path = Path(__file__).parents[2] / "rig/workload/scenarios/fix_failing_test.yaml"
    return yaml.safe_load(path.read_text())


def test_a_scenario_without_keywords_loads(tmp_path: Path) -> None:
    raw = _builtin_raw()
    del raw["keywords"]
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_scenario(path).keywords == ()


@pytest.mark.parametrize(
    ("keywords", "where"),
    [("search", "keywords"), (["ok", ""], "keywords[1]"), ([3], "keywords[0]")],
)
def test_bad_keywords_name_the_field(tmp_path: Path, keywords: object, where: str) -> None:
    raw = _builtin_raw()
    raw["keywords"] = keywords
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert where in str(caught.value)
