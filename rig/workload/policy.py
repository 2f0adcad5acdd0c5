"""Scripted model policy: what the mock LLM answers, turn by turn, for a simulated coding task.

The policy is stateless between requests: every call gets the full transcript
the server reconstructed and decides from it alone. The plan for a task is a
pure function of (seed, scenario, first user message), so it is the same on
every request and every server replica; the turn to play is the number of
model turns already in the transcript. A client that loses context therefore
gets the plan's first turn again, which makes the mistake visible.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from rig.errors import RigError
from rig.workload.dialects import Toolbox, ToolCall, example_arguments, tool_name
from rig.workload.dialects_workspace import workspace_answer, workspace_turn
from rig.workload.scenarios import (
    Phase,
    Scenario,
    Step,
    builtin_scenarios,
    scenario_for_prompt,
)
from rig.workload.tools import TOOL_NAMES

__all__ = [
    "MIXED",
    "ModelPolicy",
    "ModelTurn",
    "Plan",
    "PlannedTurn",
    "ToolCall",
    "UnknownScenarioError",
    "count_model_turns",
    "example_arguments",
]

MIXED = "mixed"
"""Scenario name meaning: choose per task from the first user message."""

_EDIT_TOOLS = frozenset({"write_file", "apply_patch"})
_PARALLEL_TOOLS = frozenset({"read_file", "list_dir", "search"})
_FAILED_OUTPUT = re.compile(r"^(error|Error|ENOENT|EISDIR|ENOTDIR|EACCES)\b")
_TESTS_LINE = re.compile(r"^Tests:\s+(.+)$", re.MULTILINE)
_FAILED_COUNT = re.compile(r"(\d+) failed")
_BULLET = re.compile(r"^\s+\u25cf (.+)$", re.MULTILINE)
_FAIL_SUITE = re.compile(r"^FAIL (\S+)", re.MULTILINE)
_EXPECTED = re.compile(r"^\s+Expected: (.+)$\n^\s+Received: (.+)$", re.MULTILINE)
_TICKET = re.compile(r"\b[A-Z][A-Z0-9]*-\d+\b")
_NUMBERED_LINE = re.compile(r"^\s*(\d+)\t", re.MULTILINE)
_EXPORT_NAME = re.compile(
    r"^\s*\d+\texport\s+(?:default\s+)?(?:async\s+)?(?:function|const|class|interface|type|enum)\s+(\w+)",
    re.MULTILINE,
)
_SEARCH_HIT = re.compile(r"^([^:\n]+):\d+:", re.MULTILINE)
_PATCH_PATHS = re.compile(
    r"^(?:\+\+\+ (?:b/)?|\*\*\* (?:Update|Add|Delete) File: )(\S+)", re.MULTILINE
)


class UnknownScenarioError(RigError, ValueError):
    """A request named a scenario the policy does not know (a client error: HTTP 400)."""

    param = "metadata.scenario"

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"unknown scenario {name!r}; set metadata.scenario to one of "
            f"{', '.join(self.known)} or {MIXED!r}"
        )


@dataclass(frozen=True)
class ModelTurn:
    """What the model says in one response: optional text and tool calls (none = final answer)."""

    text: str | None
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def is_final(self) -> bool:
        """True if this response ends the task."""
        return not self.tool_calls


@dataclass(frozen=True)
class PlannedTurn:
    """One tool-calling response of a plan: its phase, its calls and what the model says."""

    phase: str
    steps: tuple[Step, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """What the scripted model does over a whole task: tool turns, then the final answer."""

    scenario: str
    turns: tuple[PlannedTurn, ...]
    final_answer: str

    @property
    def total_turns(self) -> int:
        """Model responses in the task, including the final answer."""
        return len(self.turns) + 1

    @property
    def tool_calls(self) -> int:
        """Tool calls in the task."""
        return sum(len(turn.steps) for turn in self.turns)


def _prompt_digest(prompt: str) -> bytes:
    """16 bytes standing for ``prompt`` in the plan caches."""
    return hashlib.blake2b(prompt.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class ModelPolicy:
    """Decides the next model response from the transcript, following a per-task plan."""

    def __init__(
        self,
        scenarios: Mapping[str, Scenario] | None = None,
        default_scenario: str = MIXED,
        seed: int = 0,
        plan_cache_size: int = 4096,
        on_evict: Callable[[int], None] | None = None,
    ) -> None:
        self.scenarios: dict[str, Scenario] = dict(
            builtin_scenarios() if scenarios is None else scenarios
        )
        if not self.scenarios:
            raise ValueError("ModelPolicy needs at least one scenario")
        self._names = tuple(sorted(self.scenarios))
        if default_scenario != MIXED and default_scenario not in self.scenarios:
            raise UnknownScenarioError(default_scenario, self._names)
        self.default_scenario = default_scenario
        self.seed = seed
        self.plan_cache_size = plan_cache_size
        self.on_evict = on_evict
        """Told of plan-cache evictions (the mock counts them in ``/stats``)."""
        self.plan_cache_evictions = 0
        # Keyed by a digest of the prompt, never the prompt: an entry's size does not
        # grow with the prompt (a client may send megabytes), so the count bounds bytes.
        self._plans: OrderedDict[tuple[str, bytes], Plan] = OrderedDict()
        self._mixed: OrderedDict[bytes, str] = OrderedDict()

    # -- public API --------------------------------------------------------------------

    def next_turn(
        self,
        transcript: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        metadata: Mapping[str, str] | None = None,
        *,
        tool_choice: Any = None,
        parallel_tool_calls: bool = True,
    ) -> ModelTurn:
        """The next model response for this conversation, calling only offered tools.

        The tools decide how the task is played: the rig's seven tools play the
        scenario's scripted calls against the rig's simulated repository (some of them:
        the scripted calls of those offered); a client's own coding tools (Codex CLI's
        shell and ``apply_patch``, or function tools recognised by their schemas) play
        it in the client's real workspace from what the tools return; other tools get
        a generic call and answer. ``tool_choice`` (``none``, ``required``, a named or
        an allowed set of tools) and ``parallel_tool_calls=False`` are honoured.

        Raises UnknownScenarioError if ``metadata["scenario"]`` names an unknown scenario.
        """
        requested = _requested_scenario(metadata)
        if requested is not None and requested != MIXED and requested not in self.scenarios:
            raise UnknownScenarioError(requested, self._names)
        allowed = _allowed_tools(tools, tool_choice)
        if tool_choice == "none":
            allowed = []
        turn = self._decide(transcript, allowed, metadata)
        return _honour(turn, allowed, tool_choice, parallel_tool_calls, transcript)

    def _decide(
        self,
        transcript: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        metadata: Mapping[str, str] | None,
    ) -> ModelTurn:
        if _offers_rig_tools(tools):
            # The rig's own agent: the scripted plan, exactly as the load generator expects.
            prompt = _first_user_message(transcript)
            scenario = self.scenario_for(prompt, metadata)
            plan = self._plan_cached(scenario.name, prompt)
            step = count_model_turns(transcript)
            if step < len(plan.turns):
                return self._tool_turn(plan.turns[step], transcript)
            return ModelTurn(_final_answer(plan, scenario, prompt, transcript))
        toolbox = Toolbox.from_tools(tools)
        if not toolbox.bindings:
            return _generic_turn(transcript, tools)
        prompt, start = _task_prompt(transcript)
        scenario = self.scenario_for(prompt, metadata)
        plan = self._plan_cached(scenario.name, prompt)
        if toolbox.dialects == {"rig"}:
            return self._subset_turn(plan, scenario, prompt, transcript, toolbox)
        if not toolbox.can_work:
            return _generic_turn(transcript, tools)
        text, call, facts = workspace_turn(prompt, transcript, start, toolbox, plan.total_turns - 1)
        if call is None:
            return ModelTurn(workspace_answer(facts))
        return ModelTurn(text, (call,))

    def _subset_turn(
        self,
        plan: Plan,
        scenario: Scenario,
        prompt: str,
        transcript: Sequence[Mapping[str, Any]],
        toolbox: Toolbox,
    ) -> ModelTurn:
        """Some of the rig's tools: the plan's calls of the offered ones, turn by turn."""
        offered = {binding.name for binding in toolbox.bindings}
        turns = []
        for planned in plan.turns:
            kept = [i for i, step in enumerate(planned.steps) if step.tool in offered]
            if kept:
                turns.append(
                    PlannedTurn(
                        planned.phase,
                        tuple(planned.steps[i] for i in kept),
                        tuple(planned.texts[i] for i in kept),
                    )
                )
        step = count_model_turns(transcript)
        if step < len(turns):
            return self._tool_turn(turns[step], transcript)
        return ModelTurn(_final_answer(plan, scenario, prompt, transcript))

    def scenario_for(self, prompt: str, metadata: Mapping[str, str] | None = None) -> Scenario:
        """The scenario a task plays: ``metadata["scenario"]``, else the mock's
        ``--scenario``, else (both ``mixed``) the one the prompt asks for in its own words,
        else the fallback (:func:`rig.workload.scenarios.scenario_for_prompt`)."""
        name = _requested_scenario(metadata) or self.default_scenario
        if name == MIXED:
            return self.scenarios[self._mixed_cached(prompt)]
        if name not in self.scenarios:
            raise UnknownScenarioError(name, self._names)
        return self.scenarios[name]

    def plan(self, prompt: str, scenario: str | None = None) -> Plan:
        """The plan for a task with this first user message (cached)."""
        chosen = self.scenario_for(prompt, {"scenario": scenario} if scenario else None)
        return self._plan_cached(chosen.name, prompt)

    # -- planning ----------------------------------------------------------------------

    def _remember(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        cache[key] = value
        if len(cache) > self.plan_cache_size:
            cache.popitem(last=False)
            self.plan_cache_evictions += 1
            if self.on_evict is not None:
                self.on_evict(1)

    def _plan_cached(self, scenario_name: str, prompt: str) -> Plan:
        key = (scenario_name, _prompt_digest(prompt))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make_plan(scenario_name, prompt)
            self._remember(self._plans, key, plan)
        else:
            self._plans.move_to_end(key)
        return plan

    def _mixed_cached(self, prompt: str) -> str:
        key = _prompt_digest(prompt)
        name = self._mixed.get(key)
        if name is None:
            name = self._mixed_choice(prompt)
            self._remember(self._mixed, key, name)
        else:
            self._mixed.move_to_end(key)
        return name

    def _mixed_choice(self, prompt: str) -> str:
        """The scenario ``prompt`` asks for (its templates, else its keywords, else the
        fallback)."""
        return scenario_for_prompt(prompt, self.scenarios)

    def _make_plan(self, scenario_name: str, prompt: str) -> Plan:
        scenario = self.scenarios[scenario_name]
        rng = random.Random(_hash_int("plan", self.seed, scenario_name, prompt))
        (t_min, t_max), (c_min, c_max) = scenario.turns, scenario.tool_calls
        parallel = scenario.max_parallel
        turns = _draw_turns(rng, t_min, t_max)
        tool_turns = turns - 1
        low, high = max(c_min, tool_turns), min(c_max, tool_turns * parallel)
        calls = rng.randint(low, high) if tool_turns > 0 else 0
        counts = _allocate(scenario.phases, calls, rng)
        sequence: list[tuple[str, Step]] = []
        for phase, count in zip(scenario.phases, counts, strict=True):
            sequence.extend((phase.name, step) for step in _select(phase, count, rng))
        groups = _group(sequence, tool_turns, parallel, rng) if sequence else []
        planned = tuple(
            PlannedTurn(
                phase=group[0][0],
                steps=tuple(step for _, step in group),
                texts=tuple(rng.choice(step.texts) for _, step in group),
            )
            for group in groups
        )
        return Plan(scenario_name, planned, rng.choice(scenario.final_answers))

    # -- responding --------------------------------------------------------------------

    def _tool_turn(
        self, planned: PlannedTurn, transcript: Sequence[Mapping[str, Any]]
    ) -> ModelTurn:
        observation = _observe(transcript)
        text = " ".join(part for part in (observation, *planned.texts) if part)
        calls = tuple(ToolCall(step.tool, step.arguments) for step in planned.steps)
        return ModelTurn(text or None, calls)


# -- planning helpers ------------------------------------------------------------------


def _hash_int(*parts: object) -> int:
    text = "\x00".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _draw_turns(rng: random.Random, low: int, high: int) -> int:
    """A turn count in [low, high], skewed low (mode at the first quarter of the range).

    Published agent runs average near the low end of their ranges (8-11 turns for
    tasks of 5-15); a long tail of harder sessions reaches the maximum.
    """
    if low == high:
        return low
    mode = low + (high - low) / 4
    value = round(rng.triangular(low - 0.5, high + 0.5, mode))
    return min(max(value, low), high)


def _allocate(phases: Sequence[Phase], calls: int, rng: random.Random) -> list[int]:
    """Calls per phase: each phase's floor, the rest spread by weight up to its step count."""
    counts = [phase.floor for phase in phases]
    extra = calls - sum(counts)
    while extra > 0:
        open_phases = [i for i, phase in enumerate(phases) if counts[i] < len(phase.steps)]
        if not open_phases:
            break
        weights = [phases[i].weight for i in open_phases]
        if sum(weights) <= 0:
            weights = [1.0] * len(open_phases)
        counts[rng.choices(open_phases, weights)[0]] += 1
        extra -= 1
    return counts


def _select(phase: Phase, count: int, rng: random.Random) -> list[Step]:
    """The required steps and a random sample of the others, in file order."""
    required = [i for i, step in enumerate(phase.steps) if step.required]
    optional = [i for i, step in enumerate(phase.steps) if not step.required]
    chosen = required + rng.sample(optional, max(0, min(count - len(required), len(optional))))
    return [phase.steps[i] for i in sorted(chosen)]


def _min_groups(sizes: Sequence[int], parallel: int) -> int:
    """Fewest turns that can hold these call groups in order without splitting any."""
    groups, current = 0, parallel
    for size in sizes:
        if current + size > parallel:
            groups += 1
            current = 0
        current += size
    return groups


def _merge_tier(merged: list[tuple[str, Step]]) -> int:
    """How natural it is to make these calls in one response; lower is more natural.

    Parallel reads within a phase first, then other calls within a phase, then
    reads across phases, then several edits at once, and an edit together with a
    later phase's calls last.
    """
    tools = {step.tool for _, step in merged}
    same_phase = len({phase for phase, _ in merged}) == 1
    if same_phase and tools <= _PARALLEL_TOOLS:
        return 0
    if same_phase and not tools & _EDIT_TOOLS:
        return 1
    if not tools & _EDIT_TOOLS:
        return 2
    if same_phase:
        return 3
    return 4


def _group(
    sequence: list[tuple[str, Step]], target: int, parallel: int, rng: random.Random
) -> list[list[tuple[str, Step]]]:
    """Split the calls into ``target`` turns, preferring parallel reads within one phase."""
    groups = [[item] for item in sequence]
    while len(groups) > target:
        options: list[tuple[int, int]] = []
        for i in range(len(groups) - 1):
            merged = groups[i] + groups[i + 1]
            if len(merged) > parallel:
                continue
            sizes = [len(g) for g in groups[:i]] + [len(merged)] + [len(g) for g in groups[i + 2 :]]
            if _min_groups(sizes, parallel) > target:
                continue
            options.append((_merge_tier(merged), i))
        best = min(tier for tier, _ in options)
        i = rng.choice([index for tier, index in options if tier == best])
        groups[i : i + 2] = [groups[i] + groups[i + 1]]
    return groups


# -- transcript helpers ----------------------------------------------------------------


def count_model_turns(transcript: Sequence[Mapping[str, Any]]) -> int:
    """Model responses in a transcript: runs of assistant messages and function calls."""
    turns = 0
    in_model_turn = False
    for item in transcript:
        kind = item.get("type", "message")
        is_model = kind in ("function_call", "reasoning") or (
            kind == "message" and item.get("role") == "assistant"
        )
        if is_model and not in_model_turn:
            turns += 1
        in_model_turn = is_model
    return turns


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def _first_user_message(transcript: Sequence[Mapping[str, Any]]) -> str:
    for item in transcript:
        if item.get("type", "message") == "message" and item.get("role") == "user":
            return _content_text(item.get("content"))
    return ""


def _task_prompt(transcript: Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    """The task: the last user message before the model's first turn (a client such as
    Codex sends its environment context as an earlier user message), and its index."""
    prompt, index = "", 0
    for i, item in enumerate(transcript):
        kind = item.get("type", "message")
        if kind == "function_call" or (kind == "message" and item.get("role") == "assistant"):
            break
        if kind == "message" and item.get("role") == "user":
            prompt, index = _content_text(item.get("content")), i
    return prompt, index


def _offers_rig_tools(tools: Sequence[Mapping[str, Any]]) -> bool:
    """Whether all seven of the rig's tools are offered as function tools."""
    names = {tool_name(tool) for tool in tools if tool.get("type", "function") == "function"}
    return names >= TOOL_NAMES


def _choice_names(tool_choice: Any) -> set[str] | None:
    """Tool names a ``tool_choice`` object restricts calls to (None: no restriction)."""
    if not isinstance(tool_choice, Mapping):
        return None
    kind = tool_choice.get("type")
    if kind in ("function", "custom"):
        name = tool_choice.get("name")
        if name is None and isinstance(tool_choice.get("function"), Mapping):
            name = tool_choice["function"].get("name")  # Chat Completions' shape
        return {str(name)}
    if kind == "allowed_tools":
        return {
            str(name)
            for tool in tool_choice.get("tools") or ()
            if isinstance(tool, Mapping)
            for name in [tool_name(tool) or tool.get("type")]
            if name
        }
    if isinstance(kind, str):
        return {kind}  # a hosted or typed tool (local_shell, web_search...)
    return None


def _allowed_tools(tools: Sequence[Mapping[str, Any]], tool_choice: Any) -> list[Mapping[str, Any]]:
    names = _choice_names(tool_choice)
    if names is None:
        return list(tools)
    return [
        tool
        for tool in tools
        if (tool_name(tool) or tool.get("type")) in names or tool.get("type") in names
    ]


def _offered_call(call: ToolCall, tools: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``call`` is a call of one of ``tools``, of the right kind."""
    for tool in tools:
        kind = tool.get("type", "function")
        if call.kind == "local_shell" and kind == "local_shell":
            return True
        if kind == call.kind and tool_name(tool) == call.name:
            return True
    return False


def _forced_call(tools: Sequence[Mapping[str, Any]]) -> ToolCall | None:
    """A call of the first callable tool, for a ``tool_choice`` that demands one."""
    for tool in tools:
        kind = tool.get("type", "function")
        name = tool_name(tool)
        if kind == "function" and name:
            spec = tool["function"] if isinstance(tool.get("function"), Mapping) else tool
            parameters = spec.get("parameters")
            schema = parameters if isinstance(parameters, Mapping) else {}
            return ToolCall(name, orjson.dumps(example_arguments(schema)).decode())
        if kind == "custom" and name:
            return ToolCall(name, "example", "custom")
        if kind == "local_shell":
            return ToolCall("local_shell", '["bash","-lc","git status --short"]', "local_shell")
    return None


def _honour(
    turn: ModelTurn,
    tools: Sequence[Mapping[str, Any]],
    tool_choice: Any,
    parallel_tool_calls: bool,
    transcript: Sequence[Mapping[str, Any]],
) -> ModelTurn:
    """``turn`` within the request's rules: only offered tools, at most one call without
    parallel tool calls, none for ``tool_choice="none"``, at least one when required."""
    calls = tuple(call for call in turn.tool_calls if _offered_call(call, tools))
    if not parallel_tool_calls and len(calls) > 1:
        calls = (max(calls, key=_call_weight),)
    must_call = tool_choice == "required" or (
        isinstance(tool_choice, Mapping)
        and (tool_choice.get("type") != "allowed_tools" or tool_choice.get("mode") == "required")
    )
    if must_call and not calls:
        forced = Toolbox.from_tools(tools).shell("git status --short") or _forced_call(tools)
        calls = (forced,) if forced is not None else ()
    if calls == turn.tool_calls:
        return turn
    text = turn.text
    if not calls and not text:
        text = _generic_turn(transcript, []).text
    return ModelTurn(text, calls)


def _call_weight(call: ToolCall) -> int:
    """Which call to keep when only one may be made: edits, then tests, then the rest."""
    if call.name in _EDIT_TOOLS or call.kind == "custom":
        return 3
    if call.name == "run_tests":
        return 2
    return 1


def _requested_scenario(metadata: Mapping[str, str] | None) -> str | None:
    if not metadata:
        return None
    value = metadata.get("scenario")
    return str(value) if value else None


def _calls_by_id(transcript: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {
        str(item.get("call_id")): item for item in transcript if item.get("type") == "function_call"
    }


def _recent_outputs(
    transcript: Sequence[Mapping[str, Any]],
) -> list[tuple[str, str, str]]:
    """``(tool, arguments, output)`` for the outputs after the last model turn."""
    calls = _calls_by_id(transcript)
    recent: list[tuple[str, str, str]] = []
    for item in reversed(transcript):
        kind = item.get("type", "message")
        if kind == "function_call_output":
            call = calls.get(str(item.get("call_id")), {})
            recent.append(
                (str(call.get("name", "")), str(call.get("arguments", "")), _output_text(item))
            )
        elif kind == "function_call" or (kind == "message" and item.get("role") == "assistant"):
            break
    recent.reverse()
    return recent


def _output_text(item: Mapping[str, Any]) -> str:
    output = item.get("output")
    return output if isinstance(output, str) else _content_text(output)


def _edited_paths(transcript: Sequence[Mapping[str, Any]]) -> list[str]:
    """Files changed by successful write_file / apply_patch calls, in order."""
    outputs = {
        str(item.get("call_id")): _output_text(item)
        for item in transcript
        if item.get("type") == "function_call_output"
    }
    paths: list[str] = []
    for call_id, call in _calls_by_id(transcript).items():
        if call.get("name") not in _EDIT_TOOLS:
            continue
        output = outputs.get(call_id)
        if output is None or _FAILED_OUTPUT.match(output):
            continue
        for path in _paths_of_edit(str(call.get("name")), str(call.get("arguments", ""))):
            if path not in paths:
                paths.append(path)
    return paths


def _paths_of_edit(name: str, arguments: str) -> list[str]:
    try:
        args = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(args, dict):
        return []
    if name == "write_file":
        path = args.get("path") or args.get("file_path") or args.get("filename")
        return [str(path)] if path else []
    patch = args.get("patch") or args.get("diff") or args.get("input") or ""
    return [p for p in _PATCH_PATHS.findall(str(patch)) if p != "/dev/null"]


def _tests_summary(output: str) -> str | None:
    """The text after ``Tests:`` in jest output ("1 failed, 37 passed, 38 total"), if any."""
    if "Tests:" not in output:
        return None
    match = _TESTS_LINE.search(output)
    return match.group(1).strip() if match else None


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.split(".", 1)[0].lower()


def _jest_failures(output: str) -> list[str]:
    return [name for name in _BULLET.findall(output) if name != "Test suite failed to run"]


def _unrelated(output: str, edited: Sequence[str]) -> bool:
    """True if the failing suites test none of the edited files."""
    if not edited:
        return False
    edited_stems = {_stem(path) for path in edited}
    failing = {_stem(path) for path in _FAIL_SUITE.findall(output)}
    return bool(failing) and not failing & edited_stems


def _observe(transcript: Sequence[Mapping[str, Any]]) -> str | None:
    """A sentence or two reacting to the tool outputs the model just received."""
    notes: list[str] = []
    edited: list[str] | None = None
    for name, arguments, output in _recent_outputs(transcript):
        summary = _tests_summary(output)
        if summary is not None:
            failed = _FAILED_COUNT.search(summary)
            if failed:
                names = _jest_failures(output)
                detail = f": {names[0]}" if names else ""
                expected = _EXPECTED.search(output)
                if expected:
                    detail += f" (expected {expected.group(1)}, received {expected.group(2)})"
                note = f"The test run reports {failed.group(0)}{detail}."
                edited = _edited_paths(transcript) if edited is None else edited
                if _unrelated(output, edited):
                    note += " That test covers code I have not touched, so it is unrelated."
                notes.append(note)
            else:
                notes.append(f"The tests pass ({summary}).")
        elif "Test suite failed to run" in output:
            notes.append("A test suite fails to run because a module cannot be found.")
        elif "error TS" in output:
            count = output.count("error TS")
            notes.append(f"tsc reports {count} type error{'s' if count != 1 else ''}.")
        elif "patch does not apply" in output or output.startswith("error: "):
            notes.append("The patch did not apply, so the file differs from what I expected.")
        elif "ENOENT" in output or "No such file or directory" in output:
            path = _argument_path(arguments)
            notes.append(f"{path or 'That path'} does not exist.")
        elif output.startswith("Error:"):
            first_line = output.splitlines()[0][:120]
            notes.append(f"The {name or 'tool'} call failed ({first_line}).")
        else:
            description = _describe_output(name, arguments, output)
            if description:
                notes.append(description)
    return " ".join(notes[:3]) or None


def _describe_output(name: str, arguments: str, output: str) -> str | None:
    """What a successful read, search, listing or edit showed, in one sentence."""
    path = _argument_path(arguments)
    if name == "read_file" and _NUMBERED_LINE.match(output):
        numbers = _NUMBERED_LINE.findall(output)
        exports = list(dict.fromkeys(_EXPORT_NAME.findall(output)))
        where = f"{path} (lines {numbers[0]}-{numbers[-1]})" if path else "The file"
        if exports:
            more = len(exports) - 6
            shown = ", ".join(exports[:6]) + (f" and {more} more" if more > 0 else "")
            return f"{where} exports {shown}."
        return f"I've read {where}."
    if name == "search" and _SEARCH_HIT.match(output):
        hits = _SEARCH_HIT.findall(output)
        files = list(dict.fromkeys(hits))
        shown = ", ".join(files[:3]) + (" and others" if len(files) > 3 else "")
        matches = f"{len(hits)} match{'es' if len(hits) != 1 else ''}"
        in_files = f"{len(files)} file{'s' if len(files) != 1 else ''}"
        return f"The search found {matches} in {in_files} ({shown})."
    if name == "list_dir" and output and "\n" in output:
        entries = output.splitlines()
        shown = ", ".join(entries[:8]) + (" and more" if len(entries) > 8 else "")
        return f"{path or 'The directory'} has {len(entries)} entries: {shown}."
    if name == "apply_patch" and output.startswith("Success."):
        files = re.findall(r"^[AMD] (\S+)$", output, re.MULTILINE)
        return f"The patch applied cleanly to {', '.join(files)}." if files else None
    if name == "write_file" and output.startswith(("Created", "Overwrote")):
        return f"{output.split(' (', 1)[0]}."
    exit_code = re.match(r"Exit code: (\d+)", output)
    if exit_code and exit_code.group(1) != "0":
        return f"The command exited with code {exit_code.group(1)}."
    return None


def _argument_path(arguments: str) -> str | None:
    try:
        args = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None
    if isinstance(args, dict):
        path = args.get("path") or args.get("file_path")
        return str(path) if path else None
    return None


# -- final answer ----------------------------------------------------------------------


def _final_answer(
    plan: Plan, scenario: Scenario, prompt: str, transcript: Sequence[Mapping[str, Any]]
) -> str:
    ticket_match = _TICKET.search(prompt)
    ticket = ticket_match.group(0) if ticket_match else "the task"
    return plan.final_answer.format(
        ticket=ticket,
        changes=_changes(scenario, transcript),
        tests=_test_outcome(transcript),
    ).strip()


def _changes(scenario: Scenario, transcript: Sequence[Mapping[str, Any]]) -> str:
    """A bullet per successful edit: the scenario step's summary, or the files it touched."""
    summaries = {
        (step.tool, step.arguments): step.summary
        for phase in scenario.phases
        for step in phase.steps
        if step.summary
    }
    outputs = {
        str(item.get("call_id")): _output_text(item)
        for item in transcript
        if item.get("type") == "function_call_output"
    }
    bullets: list[str] = []
    for call_id, call in _calls_by_id(transcript).items():
        name, arguments = str(call.get("name")), str(call.get("arguments", ""))
        if name not in _EDIT_TOOLS:
            continue
        output = outputs.get(call_id)
        if output is None or _FAILED_OUTPUT.match(output):
            continue
        summary = summaries.get((name, arguments))
        if summary:
            bullet = f"- {' '.join(summary.split())}"
        else:
            paths = ", ".join(f"`{path}`" for path in _paths_of_edit(name, arguments))
            bullet = f"- Updated {paths or 'files'}."
        if bullet not in bullets:
            bullets.append(bullet)
    return "\n".join(bullets) if bullets else "- No files were changed."


def _test_outcome(transcript: Sequence[Mapping[str, Any]]) -> str:
    """One or two sentences on the last test run (and type check), for the final answer."""
    last_tests: str | None = None
    typecheck_ok: bool | None = None
    calls = _calls_by_id(transcript)
    for item in transcript:
        if item.get("type") != "function_call_output":
            continue
        output = _output_text(item)
        if "Tests:" in output or "Test suite failed to run" in output:
            last_tests = output
        arguments = str(calls.get(str(item.get("call_id")), {}).get("arguments", ""))
        if "tsc" in arguments or "typecheck" in arguments:
            typecheck_ok = "error TS" not in output
    if last_tests is None:
        sentence = "I did not get a test run to complete, so please run `npm test` before merging."
    else:
        summary = _tests_summary(last_tests) or "a suite failed to run"
        scope = "the affected tests" if "matching /" in last_tests else "the full test suite"
        failures = _jest_failures(last_tests)
        if not _FAILED_COUNT.search(summary) and "Test suite failed to run" not in last_tests:
            sentence = f"I ran {scope}: {summary}."
        elif _unrelated(last_tests, _edited_paths(transcript)):
            name = failures[0] if failures else "one suite"
            sentence = (
                f"I ran {scope}: {summary}. The remaining failure ({name}) is in code this "
                "change does not touch, so it predates it and should get its own ticket."
            )
        else:
            name = failures[0] if failures else "a suite that fails to run"
            sentence = (
                f"I ran {scope}: {summary}. It still fails ({name}), so this needs another look "
                "before merging."
            )
    if typecheck_ok is True:
        sentence += " `tsc --noEmit` reports no type errors."
    elif typecheck_ok is False:
        sentence += " `tsc --noEmit` still reports type errors."
    return sentence


# -- generic fallback ------------------------------------------------------------------


def _generic_turn(
    transcript: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> ModelTurn:
    """For requests that are not our coding agent's (SDK tests, other clients)."""
    last_user = max(
        (
            i
            for i, item in enumerate(transcript)
            if item.get("type", "message") == "message" and item.get("role") == "user"
        ),
        default=-1,
    )
    user_text = _content_text(transcript[last_user].get("content")) if last_user >= 0 else ""
    after = transcript[last_user + 1 :]
    outputs = [item for item in after if item.get("type") == "function_call_output"]
    if outputs:
        calls = _calls_by_id(transcript)
        parts = []
        for item in outputs:
            name = calls.get(str(item.get("call_id")), {}).get("name", "the tool")
            parts.append(f"{name} returned: {_snippet(_output_text(item), 300)}")
        return ModelTurn("Here is what I found. " + " ".join(parts))
    schemas = [schema for schema in map(_function_schema, tools) if schema is not None]
    if schemas:
        name, parameters = schemas[0]
        arguments = orjson.dumps(example_arguments(parameters)).decode()
        return ModelTurn(None, (ToolCall(name, arguments),))
    if user_text:
        return ModelTurn(
            f'You said: "{_snippet(user_text, 200)}". This is a scripted reply from the '
            "rig's mock model, which answers every request deterministically."
        )
    return ModelTurn("Hello! This is a scripted reply from the rig's mock model.")


def _function_schema(tool: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    if tool.get("type", "function") != "function":
        return None
    spec = tool["function"] if isinstance(tool.get("function"), Mapping) else tool
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        return None
    parameters = spec.get("parameters")
    return name, parameters if isinstance(parameters, Mapping) else {}


def _snippet(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"
