"""Scenarios as data: what a simulated coding task asks for and which tool calls solve it.

A scenario file (YAML) gives the task's prompt templates, its range of turns and
tool calls, and phases (explore, diagnose, edit, verify...) with candidate tool
calls the scripted model draws its plan from. Copy a built-in file from
``rig/workload/scenarios/``, edit it and load it with :func:`load_scenario`;
every mistake is reported with the file, the field and what to do.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml

from rig.errors import RigError
from rig.workload.corpus import DEFAULT_CORPUS, Corpus, CorpusError
from rig.workload.patch import PatchError, apply_patch
from rig.workload.tools import TOOL_NAMES, TOOLS

__all__ = [
    "ANSWER_PLACEHOLDERS",
    "PROMPT_PLACEHOLDERS",
    "Phase",
    "Scenario",
    "ScenarioError",
    "Step",
    "Task",
    "builtin_scenarios",
    "load_scenario",
    "make_task",
    "scenario_for_prompt",
]

PROMPT_PLACEHOLDERS = frozenset({"ticket"})
"""Placeholders a prompt template may use."""

ANSWER_PLACEHOLDERS = frozenset({"ticket", "changes", "tests"})
"""Placeholders a final answer may use: the ticket, a list of changes, the test outcome."""

_PACKAGE = "rig.workload"
_SCENARIO_DIR = "scenarios"
_BUILTIN_DIR = "rig/workload/scenarios/"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELDS = {
    "name": "a short identifier such as fix_failing_test",
    "title": "a one-line title",
    "description": "a paragraph describing the task",
    "corpus": f"the corpus the task runs on (default {DEFAULT_CORPUS})",
    "ticket_prefix": "the prefix of task references in prompts (default TASK)",
    "turns": "[min, max] model responses per task, including the final answer",
    "tool_calls": "[min, max] tool calls per task in total",
    "max_parallel": "the most tool calls in one response (default 3)",
    "prompts": "a list of prompt templates",
    "keywords": "words and phrases of a free-form task prompt that ask for this task",
    "phases": "a list of phases, each with name and steps",
    "final_answers": "a list of final answer templates",
}
_REQUIRED = (
    "name",
    "title",
    "description",
    "turns",
    "tool_calls",
    "prompts",
    "phases",
    "final_answers",
)
_PHASE_FIELDS = ("name", "weight", "min_calls", "steps")
_STEP_FIELDS = ("tool", "arguments", "text", "required", "summary")
_PATH_CHECKED_TOOLS = ("read_file", "list_dir", "search")
_TOOL_SCHEMAS = {tool["name"]: tool["parameters"] for tool in TOOLS}
# libyaml's safe loader when PyYAML was built with it: same results, much faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ScenarioError(RigError, ValueError):
    """A scenario file is missing or invalid; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class Step:
    """One tool call the scripted model may make, and what it says alongside it."""

    tool: str
    arguments: str
    texts: tuple[str, ...]
    required: bool = False
    summary: str | None = None


@dataclass(frozen=True)
class Phase:
    """A stage of the task and the tool calls it offers, in the order a model would make them."""

    name: str
    steps: tuple[Step, ...]
    weight: float = 1.0
    min_calls: int = 0

    @property
    def floor(self) -> int:
        """Calls this phase always gets: its min_calls, and at least its required steps."""
        return max(self.min_calls, sum(step.required for step in self.steps))


@dataclass(frozen=True)
class Scenario:
    """A simulated coding task: prompts, size ranges, phases of candidate calls, answers."""

    name: str
    title: str
    description: str
    prompts: tuple[str, ...]
    turns: tuple[int, int]
    tool_calls: tuple[int, int]
    phases: tuple[Phase, ...]
    final_answers: tuple[str, ...]
    corpus: str = DEFAULT_CORPUS
    max_parallel: int = 3
    ticket_prefix: str = "TASK"
    source: str = ""
    keywords: tuple[str, ...] = ()
    """Lower-case words and phrases by which a free-form prompt asks for this task."""

    def matches_prompt(self, text: str) -> bool:
        """True if ``text`` was made from one of this scenario's prompt templates."""
        return any(pattern.fullmatch(text.strip()) for pattern in _prompt_patterns(self.prompts))

    def keyword_hits(self, text: str) -> int:
        """How many of this scenario's keywords ``text`` contains, as whole words."""
        return sum(1 for pattern in _keyword_patterns(self.keywords) if pattern.search(text))


FALLBACK_SCENARIO = "fix_failing_test"
"""The task a prompt plays when nothing in it names one (else the first by name)."""


def scenario_for_prompt(prompt: str, scenarios: Mapping[str, Scenario]) -> str:
    """The name of the scenario a free-form task prompt asks for: the one whose prompt
    templates made it; else the one with the most keywords in it (ties: first by name);
    else :data:`FALLBACK_SCENARIO` (or the first by name when it is not among them)."""
    names = sorted(scenarios)
    for name in names:
        if scenarios[name].matches_prompt(prompt):
            return name
    best, best_hits = None, 0
    for name in names:
        hits = scenarios[name].keyword_hits(prompt)
        if hits > best_hits:
            best, best_hits = name, hits
    if best is not None:
        return best
    return FALLBACK_SCENARIO if FALLBACK_SCENARIO in scenarios else names[0]


@dataclass(frozen=True)
class Task:
    """The first user message of one simulated session."""

    scenario: str
    prompt: str


def make_task(scenario: Scenario, session_index: int, seed: int = 0) -> Task:
    """The prompt for session ``session_index``: a template and a ticket, drawn from the seed.

    Different sessions get different prompts, hence different plans from the
    scripted model; the same arguments always give the same prompt.
    """
    digest = hashlib.blake2b(
        f"task\x00{scenario.name}\x00{session_index}\x00{seed}".encode(), digest_size=8
    ).digest()
    rng = random.Random(int.from_bytes(digest, "big"))
    template = rng.choice(scenario.prompts)
    ticket = f"{scenario.ticket_prefix}-{rng.randint(100, 9999)}"
    return Task(scenario.name, template.format(ticket=ticket).strip())


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Load a scenario from a YAML file, or a built-in one by name; raises ScenarioError."""
    text_form = str(path_or_name)
    is_path = isinstance(path_or_name, Path) or text_form.endswith((".yaml", ".yml"))
    is_path = is_path or "/" in text_form or "\\" in text_form
    if not is_path:
        if text_form not in _builtin_names():
            known = ", ".join(_builtin_names())
            raise ScenarioError(
                f"{text_form}: no built-in scenario of that name; use one of {known}, "
                "or the path of a .yaml file"
            )
        return _load_builtin(text_form)
    path = Path(path_or_name)
    if not path.is_file():
        raise ScenarioError(
            f"{path}: no such file; give the path of a scenario .yaml file "
            f"(copy one from {_BUILTIN_DIR})"
        )
    return _parse(str(path), path.read_text(encoding="utf-8"))


def builtin_scenarios() -> dict[str, Scenario]:
    """The scenarios shipped with the rig, by name."""
    return {name: _load_builtin(name) for name in _builtin_names()}


# -- loading -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _builtin_names() -> tuple[str, ...]:
    base = resources.files(_PACKAGE).joinpath(_SCENARIO_DIR)
    return tuple(
        sorted(e.name[: -len(".yaml")] for e in base.iterdir() if e.name.endswith(".yaml"))
    )


@functools.lru_cache(maxsize=16)
def _load_builtin(name: str) -> Scenario:
    resource = resources.files(_PACKAGE).joinpath(_SCENARIO_DIR).joinpath(f"{name}.yaml")
    return _parse(f"{name}.yaml", resource.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=64)
def _keyword_patterns(keywords: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """Each keyword as a whole-word, case-insensitive pattern (any whitespace between the
    words of a phrase)."""
    return tuple(
        re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, k.split())) + r"(?!\w)", re.I)
        for k in keywords
    )


@functools.lru_cache(maxsize=64)
def _prompt_patterns(prompts: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for template in prompts:
        parts = []
        for literal, field_name, _, _ in string.Formatter().parse(template.strip()):
            parts.append(re.escape(literal))
            if field_name is not None:
                parts.append(r".+?")
        patterns.append(re.compile("".join(parts), re.DOTALL))
    return tuple(patterns)


class _Checker:
    """Collects the file name so every error says where it is."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, fix: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where}: {problem}; {fix}")

    def text(self, raw: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if value is None:
            raise self.fail(where, "missing", f"add {key}: {_FIELDS.get(key, 'a string')}")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                where, f"expected a non-empty string, got {_kind(value)}", f"set {key} to text"
            )
        return value.strip()

    def int_range(self, raw: Mapping[str, Any], key: str, minimum: int) -> tuple[int, int]:
        value = raw.get(key)
        fix = f"set {key}: [min, max] with {minimum} <= min <= max"
        if value is None:
            raise self.fail(key, "missing", f"add {key}: [min, max], {_FIELDS[key]}")
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(key, f"expected [min, max] as two integers, got {value!r}", fix)
        low, high = value
        if low > high:
            raise self.fail(key, f"min {low} > max {high}", fix)
        if low < minimum:
            raise self.fail(key, f"min {low} < {minimum}", fix)
        return low, high

    def positive_int(
        self, raw: Mapping[str, Any], key: str, where: str, default: int, minimum: int
    ) -> int:
        value = raw.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(
                where,
                f"expected an integer >= {minimum}, got {value!r}",
                f"set {key} to a whole number >= {minimum}",
            )
        return value

    def templates(
        self, raw: Mapping[str, Any], key: str, allowed: frozenset[str]
    ) -> tuple[str, ...]:
        value = raw.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(
                key,
                f"expected a non-empty list of strings, got {_kind(value)}",
                f"set {key} to a list of {_FIELDS[key].split(' of ', 1)[-1]}",
            )
        templates = []
        for index, item in enumerate(value):
            where = f"{key}[{index}]"
            if not isinstance(item, str) or not item.strip():
                raise self.fail(
                    where,
                    f"expected a non-empty string, got {_kind(item)}",
                    "write the template as text",
                )
            self.placeholders(item, where, allowed)
            templates.append(item.strip() if key == "prompts" else item.strip("\n"))
        return tuple(templates)

    def keywords(self, raw: Mapping[str, Any]) -> tuple[str, ...]:
        value = raw.get("keywords", [])
        if not isinstance(value, list):
            raise self.fail(
                "keywords",
                f"expected a list of strings, got {_kind(value)}",
                "set keywords to a list of words or phrases",
            )
        keywords = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(
                    f"keywords[{index}]",
                    f"expected a non-empty string, got {_kind(item)}",
                    "write the keyword as text",
                )
            keywords.append(" ".join(item.lower().split()))
        return tuple(keywords)

    def placeholders(self, template: str, where: str, allowed: frozenset[str]) -> None:
        names = ", ".join("{" + name + "}" for name in sorted(allowed))
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise self.fail(
                where,
                f"bad braces ({exc})",
                f"write literal braces as {{{{ and }}}}; placeholders: {names}",
            ) from None
        for name in fields:
            if name not in allowed:
                raise self.fail(
                    where,
                    f"unknown placeholder {{{name}}}",
                    f"use only {names}, and write literal braces as {{{{ and }}}}",
                )


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"text {value[:30]!r}"
    return type(value).__name__


def _parse(source: str, text: str) -> Scenario:
    check = _Checker(source)
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or str(exc)
        raise check.fail(
            where, f"invalid YAML ({problem})", "fix the syntax; a YAML linter shows the exact spot"
        ) from None
    if not isinstance(raw, dict):
        raise check.fail(
            "file",
            f"expected a mapping of fields at the top level, got {_kind(raw)}",
            f"start from a built-in file in {_BUILTIN_DIR}",
        )
    for key in raw:
        if key not in _FIELDS:
            raise check.fail(
                str(key), "unknown field", f"remove it or use one of {', '.join(_FIELDS)}"
            )
    for key in _REQUIRED:
        if key not in raw:
            raise check.fail(key, "missing", f"add {key}: {_FIELDS[key]}")

    name = check.text(raw, "name", "name")
    if not _NAME.match(name):
        raise check.fail(
            "name",
            f"{name!r} is not an identifier",
            "use lowercase letters, digits and underscores, starting with a letter",
        )
    title = check.text(raw, "title", "title")
    description = check.text(raw, "description", "description")
    corpus_name = check.text(raw, "corpus", "corpus", DEFAULT_CORPUS)
    ticket_prefix = check.text(raw, "ticket_prefix", "ticket_prefix", "TASK")
    turns = check.int_range(raw, "turns", 1)
    tool_calls = check.int_range(raw, "tool_calls", 0)
    max_parallel = check.positive_int(raw, "max_parallel", "max_parallel", 3, 1)
    _check_feasible(check, turns, tool_calls, max_parallel)
    prompts = check.templates(raw, "prompts", PROMPT_PLACEHOLDERS)
    keywords = check.keywords(raw)
    final_answers = check.templates(raw, "final_answers", ANSWER_PLACEHOLDERS)

    try:
        corpus = Corpus.load(corpus_name)
    except CorpusError as exc:
        raise check.fail(
            "corpus", str(exc), "name a built-in corpus or a corpus directory"
        ) from None
    phases = _parse_phases(check, raw.get("phases"), corpus)
    _check_pool(check, phases, tool_calls)
    return Scenario(
        name=name,
        title=title,
        description=description,
        prompts=prompts,
        turns=turns,
        tool_calls=tool_calls,
        phases=phases,
        final_answers=final_answers,
        corpus=corpus_name,
        max_parallel=max_parallel,
        ticket_prefix=ticket_prefix,
        source=source,
        keywords=keywords,
    )


def _check_feasible(
    check: _Checker, turns: tuple[int, int], calls: tuple[int, int], parallel: int
) -> None:
    """Every turn count in range must admit a tool call count in range.

    Each turn but the final answer makes between 1 and max_parallel calls.
    """
    (t_min, t_max), (c_min, c_max) = turns, calls
    if c_max < t_max - 1:
        raise check.fail(
            "tool_calls",
            f"max {c_max} < turns max {t_max} - 1; every turn but the final answer "
            "makes at least one call",
            f"set tool_calls max >= {t_max - 1} or lower turns max",
        )
    if c_min > (t_min - 1) * parallel:
        raise check.fail(
            "tool_calls",
            f"min {c_min} > (turns min {t_min} - 1) x max_parallel {parallel} "
            f"= {(t_min - 1) * parallel}",
            "lower tool_calls min, raise turns min or raise max_parallel",
        )
    if c_max > (t_max - 1) * parallel:
        raise check.fail(
            "tool_calls",
            f"max {c_max} is not reachable: (turns max {t_max} - 1) x max_parallel "
            f"{parallel} = {(t_max - 1) * parallel}",
            "lower tool_calls max, raise turns max or raise max_parallel",
        )


def _parse_phases(check: _Checker, value: object, corpus: Corpus) -> tuple[Phase, ...]:
    if not isinstance(value, list) or not value:
        raise check.fail(
            "phases",
            f"expected a non-empty list of phases, got {_kind(value)}",
            "list phases such as explore, edit, verify, each with name and steps",
        )
    # Files the scenario's own edits create may be read later.
    created = _created_paths(value)
    staged = _staged_corpus(value, corpus)
    phases: list[Phase] = []
    seen: set[str] = set()
    for index, raw in enumerate(value):
        where = f"phases[{index}]"
        if not isinstance(raw, dict):
            raise check.fail(
                where, f"expected a mapping, got {_kind(raw)}", "give the phase name and steps"
            )
        for key in raw:
            if key not in _PHASE_FIELDS:
                raise check.fail(
                    f"{where}.{key}", "unknown field", f"use only {', '.join(_PHASE_FIELDS)}"
                )
        name = check.text(raw, "name", f"{where}.name")
        if name in seen:
            raise check.fail(
                f"{where}.name", f"duplicate phase {name!r}", "give each phase its own name"
            )
        seen.add(name)
        weight = raw.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise check.fail(
                f"{where}.weight",
                f"expected a number >= 0, got {weight!r}",
                "set weight to a relative share such as 1 or 2.5",
            )
        min_calls = check.positive_int(raw, "min_calls", f"{where}.min_calls", 0, 0)
        steps_raw = raw.get("steps")
        if not isinstance(steps_raw, list) or not steps_raw:
            raise check.fail(
                f"{where}.steps",
                f"expected a non-empty list of steps, got {_kind(steps_raw)}",
                "add steps, each with tool, arguments and text",
            )
        steps = tuple(
            _parse_step(check, f"{where}.steps[{i}]", step, corpus, created, staged)
            for i, step in enumerate(steps_raw)
        )
        if min_calls > len(steps):
            raise check.fail(
                f"{where}.min_calls",
                f"{min_calls} > {len(steps)} steps",
                "lower min_calls or add steps",
            )
        phases.append(Phase(name, steps, float(weight), min_calls))
    return tuple(phases)


def _parse_step(
    check: _Checker,
    where: str,
    raw: object,
    corpus: Corpus,
    created: set[str],
    staged: Corpus,
) -> Step:
    if not isinstance(raw, dict):
        raise check.fail(
            where, f"expected a mapping, got {_kind(raw)}", "give tool, arguments and text"
        )
    for key in raw:
        if key not in _STEP_FIELDS:
            raise check.fail(
                f"{where}.{key}", "unknown field", f"use only {', '.join(_STEP_FIELDS)}"
            )
    tool = raw.get("tool")
    if tool not in TOOL_NAMES:
        raise check.fail(
            f"{where}.tool",
            f"{tool!r} is not one of the agent's tools",
            f"use one of {', '.join(sorted(TOOL_NAMES))}",
        )
    arguments = raw.get("arguments", {})
    if not isinstance(arguments, dict):
        raise check.fail(
            f"{where}.arguments",
            f"expected a mapping, got {_kind(arguments)}",
            f"write the {tool} arguments as key: value pairs",
        )
    for required in _TOOL_SCHEMAS[tool].get("required", []):
        if required not in arguments:
            raise check.fail(
                f"{where}.arguments",
                f"missing {required!r}, which {tool} requires",
                f"add {required}: ...",
            )
    known = _TOOL_SCHEMAS[tool].get("properties", {})
    for key in arguments:
        if key not in known:
            raise check.fail(
                f"{where}.arguments.{key}",
                f"{tool} has no argument {key!r}",
                f"use {', '.join(known)}",
            )
    if tool in _PATH_CHECKED_TOOLS and "path" in arguments:
        path = corpus.normalize(str(arguments["path"]))
        exists = path is not None and (
            path in corpus.files or corpus.is_dir(path) or path in created
        )
        if not exists:
            raise check.fail(
                f"{where}.arguments.path",
                f"{arguments['path']!r} is not in corpus {corpus.name!r}",
                "use a path relative to the corpus root, as listed by list_dir",
            )
    if tool == "apply_patch":
        try:
            apply_patch(staged.copy(), str(arguments["patch"]))
        except PatchError as exc:
            raise check.fail(
                f"{where}.arguments.patch",
                f"does not apply to corpus {corpus.name!r} ({exc})".replace("\n", " "),
                "copy the context and removed lines exactly from the file",
            ) from None
    texts_raw = raw.get("text")
    if isinstance(texts_raw, str):
        texts_raw = [texts_raw]
    if (
        not isinstance(texts_raw, list)
        or not texts_raw
        or not all(isinstance(t, str) and t.strip() for t in texts_raw)
    ):
        raise check.fail(
            f"{where}.text",
            f"expected text or a list of variants, got {_kind(texts_raw)}",
            "write what the model says before this call",
        )
    required_flag = raw.get("required", False)
    if not isinstance(required_flag, bool):
        raise check.fail(
            f"{where}.required",
            f"expected true or false, got {required_flag!r}",
            "set required: true or remove it",
        )
    summary = raw.get("summary")
    if summary is not None and (not isinstance(summary, str) or not summary.strip()):
        raise check.fail(
            f"{where}.summary",
            f"expected text, got {_kind(summary)}",
            "describe the change in one line, or remove summary",
        )
    return Step(
        tool=tool,
        arguments=orjson.dumps(arguments).decode(),
        texts=tuple(" ".join(t.split()) for t in texts_raw),
        required=required_flag,
        summary=summary.strip() if summary else None,
    )


def _created_paths(phases: list[object]) -> set[str]:
    created = set()
    for phase in phases:
        steps = phase.get("steps") if isinstance(phase, dict) else None
        for step in steps if isinstance(steps, list) else []:
            if not isinstance(step, dict) or not isinstance(step.get("arguments"), dict):
                continue
            args = step["arguments"]
            if step.get("tool") == "write_file" and isinstance(args.get("path"), str):
                created.add(args["path"].removeprefix("./"))
            if step.get("tool") == "apply_patch" and isinstance(args.get("patch"), str):
                created.update(re.findall(r"^\*\*\* Add File: (\S+)", args["patch"], re.MULTILINE))
    return created


def _staged_corpus(phases: list[object], corpus: Corpus) -> Corpus:
    """The corpus with every write_file step applied, for checking patches against."""
    staged = corpus.copy()
    for phase in phases:
        steps = phase.get("steps") if isinstance(phase, dict) else None
        for step in steps if isinstance(steps, list) else []:
            if isinstance(step, dict) and step.get("tool") == "write_file":
                args = step.get("arguments")
                if (
                    isinstance(args, dict)
                    and isinstance(args.get("path"), str)
                    and isinstance(args.get("content"), str)
                ):
                    path = staged.normalize(args["path"])
                    if path:
                        staged.write(path, args["content"])
    return staged


def _check_pool(check: _Checker, phases: tuple[Phase, ...], tool_calls: tuple[int, int]) -> None:
    c_min, c_max = tool_calls
    pool = sum(len(phase.steps) for phase in phases)
    if pool < c_max:
        raise check.fail(
            "phases",
            f"{pool} steps in all phases but tool_calls max is {c_max}; "
            "a plan uses each step at most once",
            "add steps or lower tool_calls max",
        )
    floor = sum(phase.floor for phase in phases)
    if floor > c_min:
        raise check.fail(
            "phases",
            f"the phases need at least {floor} calls (min_calls and required steps) "
            f"but tool_calls min is {c_min}",
            "lower min_calls, mark fewer steps required, or raise tool_calls min",
        )
