"""The scripted model working in a client's real workspace through the client's own tools.

When a client runs the tools itself against a real repository (Codex CLI executes shell
commands and applies patches), the scenario's scripted calls would name files that do not
exist. The model then plays the task from what it observes instead: it lists the files,
runs the tests the listing suggests, reads the failing test and the code under test
(found from the test output, a search and the listing), changes that code with a patch
built from the lines it read, runs the tests again, reviews the diff and answers with what
it did and what the last test run said.

The play is a fixed order of slots; each is skipped when what it needs is unknown or no
offered tool can do it. Like the rest of the policy it keeps no state between requests:
the transcript's earlier calls are replayed slot by slot against their outputs, so the
next slot is a pure function of the transcript. Slots beyond the turn budget are dropped
by priority (running the tests and the edit first).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rig.workload.dialects import Edit, Toolbox, ToolCall, dialect_data

__all__ = ["WorkspaceFacts", "past_tool_turns", "workspace_answer", "workspace_turn"]

SLOTS = ("list", "test", "read_test", "search", "read_source", "edit", "retest", "review")
_PRIORITY = ("test", "read_source", "edit", "retest", "list", "search", "read_test", "review")

_CODEX_OUTPUT = re.compile(r"^(?:.*\n){0,8}?Output:\n", re.MULTILINE)
_EXIT_CODE = re.compile(r"(?:Process exited with code|Exit code:?|exit code)\s*(\d+)")
_PATH_LINE = re.compile(r"^\.?/?([\w@.\-+]+(?:/[\w@.\-+]+)*)$")
_TEST_FILE = re.compile(
    r"(^|/)(test_[^/]*\.py|[^/]*_test\.(py|go)|[^/]*\.(test|spec)\.[jt]sx?)$|(^|/)(tests?|__tests__)/"
)
_PYTEST_FAILED = re.compile(r"^FAILED (\S+?)::(\S+)(?: - (.*))?$", re.MULTILINE)
_PYTEST_SUMMARY = re.compile(
    r"^=*\s*((?:\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|warnings?)(?:, )?)+)"
    r" in [\d.]+s",
    re.MULTILINE,
)
_PYTEST_ASSERT = re.compile(r"^E\s+assert (.+?) == (.+)$", re.MULTILINE)
_PYTEST_WHERE = re.compile(r"^E\s+\+\s+where (.+?) = (\w+)\((.*)\)$", re.MULTILINE)
_JEST_FAIL = re.compile(r"^FAIL (\S+)", re.MULTILINE)
_JEST_SUMMARY = re.compile(r"^Tests:\s+(.+)$", re.MULTILINE)
_JEST_EXPECTED = re.compile(r"^\s+Expected: (.+)$\n^\s+Received: (.+)$", re.MULTILINE)
_GO_FAIL = re.compile(r"^\s*(\S+_test\.go):\d+:", re.MULTILINE)
_FRAME = re.compile(r"^(\S+\.(?:py|[jt]sx?|go|rs)):(\d+)", re.MULTILINE)
_PY_IMPORT = re.compile(r"^\s*from ([\w.]+) import ([\w, ]+)", re.MULTILINE)
_JS_IMPORT = re.compile(r"^\s*import \{?\s*(\w+)[^;]*? from ['\"]([^'\"]+)['\"]", re.MULTILINE)
_SEARCH_HIT = re.compile(r"^\.?/?([^:\n]+):(\d+):(.*)$", re.MULTILINE)
_DEFINITION = r"(?:def|function|func|fn|class|const|let|var)\s+{name}\b"
_RETURN_BINARY = re.compile(r"^(\s*return\s+)(\w+)\s*([-+*])\s*(\w+)(\s*;?\s*)$")
_SIGNATURE = r"(?:def|function|func|fn)\s+{name}\s*\(([^)]*)\)"


def tool_output(text: str) -> str:
    """The command's own output in a tool result (Codex prefixes a header)."""
    match = _CODEX_OUTPUT.match(text)
    return text[match.end() :] if match and "Output:\n" in text[:400] else text


@dataclass
class WorkspaceFacts:
    """What the model has learnt about the workspace so far."""

    prompt: str = ""
    files: list[str] | None = None
    test_command: str | None = None
    first_test: str | None = None
    last_test: str | None = None
    failing_file: str | None = None
    failing_test: str | None = None
    expected: str | None = None
    received: str | None = None
    call: tuple[str, str] | None = None
    symbol: str | None = None
    test_text: str | None = None
    source_path: str | None = None
    source_text: str | None = None
    edit: Edit | None = None
    edit_output: str | None = None
    reviewed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def source_files(self) -> list[str]:
        """Listed files that are code, not tests."""
        code = re.compile(r"\.(py|[jt]sx?|go|rs|rb|java)$")
        return [f for f in self.files or () if code.search(f) and not _TEST_FILE.search(f)]


def _test_command(files: Sequence[str]) -> str | None:
    names = {path.rsplit("/", 1)[-1] for path in files}
    for runner in dialect_data().test_runners:
        if names & set(runner.get("files", ())):
            return str(runner["command"])
        pattern = runner.get("pattern")
        if pattern and any(re.search(pattern, path) for path in files):
            return str(runner["command"])
    return None


def _summary(output: str) -> str | None:
    """A test run's one-line result ("1 failed, 2 passed"), if it printed one."""
    for pattern in (_PYTEST_SUMMARY, _JEST_SUMMARY):
        matches = pattern.findall(output)
        if matches:
            return str(matches[-1]).strip().rstrip(",")
    if re.search(r"^(ok|PASS)\b", output, re.MULTILINE) and "FAIL" not in output:
        return "all tests passed"
    if re.search(r"^(--- )?FAIL\b", output, re.MULTILINE):
        return "tests failed"
    return None


def _failed(output: str) -> bool:
    summary = _summary(output) or ""
    if re.search(r"\d+ failed|\d+ errors?|tests failed", summary):
        return True
    code = _EXIT_CODE.search(output)
    return bool(code and code.group(1) != "0") and not summary


def _absorb_test(facts: WorkspaceFacts, output: str) -> None:
    if facts.first_test is None:
        facts.first_test = output
        failed = _PYTEST_FAILED.search(output)
        if failed:
            facts.failing_file, facts.failing_test = failed.group(1), failed.group(2)
        elif jest := _JEST_FAIL.search(output):
            facts.failing_file = jest.group(1)
        elif go := _GO_FAIL.search(output):
            facts.failing_file = go.group(1)
        if assertion := _PYTEST_ASSERT.search(output):
            facts.received, facts.expected = assertion.group(1).strip(), assertion.group(2).strip()
        elif expected := _JEST_EXPECTED.search(output):
            facts.expected, facts.received = expected.group(1).strip(), expected.group(2).strip()
        if where := _PYTEST_WHERE.search(output):
            facts.symbol = where.group(2)
            facts.call = (where.group(2), where.group(3))
        elif facts.failing_test and facts.failing_test.startswith("test_"):
            facts.symbol = facts.failing_test[5:].split("[", 1)[0] or None
        for path, _ in _FRAME.findall(output):
            if not _TEST_FILE.search(path) and facts.source_path is None:
                facts.source_path = path.lstrip("./")
    facts.last_test = output


def _module_file(facts: WorkspaceFacts, module: str) -> str | None:
    """The listed file a test imports ``module`` from (Python dotted or JS relative)."""
    wanted = module.lstrip("./").replace(".", "/") if "/" not in module else module.lstrip("./")
    for path in facts.source_files:
        stem = path.rsplit(".", 1)[0]
        if stem == wanted or (stem.endswith("/" + wanted.rsplit("/", 1)[-1]) and wanted in stem):
            return path
    return None


def _absorb_test_file(facts: WorkspaceFacts, text: str) -> None:
    facts.test_text = text
    for module, names in _PY_IMPORT.findall(text):
        first = names.split(",")[0].strip()
        if facts.symbol is None and first:
            facts.symbol = first
        if facts.source_path is None:
            facts.source_path = _module_file(facts, module)
    for name, module in _JS_IMPORT.findall(text):
        if facts.symbol is None:
            facts.symbol = name
        if facts.source_path is None:
            facts.source_path = _module_file(facts, module)


def _absorb_search(facts: WorkspaceFacts, output: str) -> None:
    if not facts.symbol:
        return
    definition = re.compile(_DEFINITION.format(name=re.escape(facts.symbol)))
    for path, _, text in _SEARCH_HIT.findall(output):
        if definition.search(text) and not _TEST_FILE.search(path):
            facts.source_path = path
            return


def _guess_source(facts: WorkspaceFacts) -> str | None:
    """The code a failing test most likely covers: same stem, else the only source file."""
    sources = facts.source_files
    if facts.failing_file:
        stem = facts.failing_file.rsplit("/", 1)[-1].split(".", 1)[0]
        stem = re.sub(r"^test_|_test$", "", stem)
        for path in sources:
            if path.rsplit("/", 1)[-1].split(".", 1)[0] == stem:
                return path
    return sources[0] if len(sources) == 1 else None


def _comment_prefix(path: str) -> str:
    return "#" if path.endswith((".py", ".sh", ".rb", ".toml", ".yaml", ".yml")) else "//"


def _numbers(text: str) -> list[float] | None:
    try:
        return [float(part) for part in text.split(",")] if text.strip() else None
    except ValueError:
        return None


def _operator_fix(facts: WorkspaceFacts, lines: list[str], start: int) -> tuple[int, str] | None:
    """A swapped arithmetic operator in ``symbol``'s return line that makes the failing
    call give the expected value: (line index, fixed line)."""
    if facts.call is None or facts.expected is None or facts.symbol is None:
        return None
    signature = re.search(_SIGNATURE.format(name=re.escape(facts.symbol)), lines[start])
    args = _numbers(facts.call[1])
    expected = _numbers(facts.expected)
    if signature is None or args is None or expected is None or len(expected) != 1:
        return None
    params = [p.strip().split(":")[0].split("=")[0].strip() for p in signature.group(1).split(",")]
    if len(params) != len(args):
        return None
    values = dict(zip(params, args, strict=True))
    for index in range(start + 1, min(len(lines), start + 15)):
        match = _RETURN_BINARY.match(lines[index])
        if not match:
            continue
        head, left, operator, right, tail = match.groups()
        if left not in values or right not in values:
            return None
        for candidate in "+-*":
            if candidate == operator:
                continue
            a, b = values[left], values[right]
            result = a + b if candidate == "+" else a - b if candidate == "-" else a * b
            if result == expected[0]:
                return index, f"{head}{left} {candidate} {right}{tail}"
        return None
    return None


def _make_edit(facts: WorkspaceFacts) -> Edit | None:
    """The change to the code under test: an operator fix when the failure shows one,
    else a note on the definition the task is about."""
    if facts.source_path is None or facts.source_text is None:
        return None
    text = facts.source_text
    lines = text.splitlines()
    if not lines:
        return None
    start = 0
    if facts.symbol:
        definition = re.compile(_DEFINITION.format(name=re.escape(facts.symbol)))
        start = next((i for i, line in enumerate(lines) if definition.search(line)), 0)
    newline = "\n" if text.endswith("\n") else ""
    fix = _operator_fix(facts, lines, start)
    if fix is not None:
        index, fixed = fix
        after = [*lines[:index], fixed, *lines[index + 1 :]]
        summary = (
            f"fixed the arithmetic in `{facts.symbol}` ({lines[index].strip()} -> {fixed.strip()})"
        )
        return Edit(facts.source_path, text, "\n".join(after) + newline, summary)
    indent = re.match(r"\s*", lines[start]).group(0)  # type: ignore[union-attr]
    if facts.failing_test and facts.expected is not None:
        reason = f"{facts.failing_test} expects {facts.expected}, got {facts.received}"
    else:
        reason = " ".join(facts.prompt.split())[:80] or "follow-up from the scripted review"
    note = f"{indent}{_comment_prefix(facts.source_path)} TODO: {reason}"
    after = [*lines[:start], note, *lines[start:]]
    subject = f"`{facts.symbol}`" if facts.symbol else facts.source_path
    summary = f"marked {subject} for follow-up ({reason})"
    return Edit(facts.source_path, text, "\n".join(after) + newline, summary)


@dataclass(frozen=True)
class _Move:
    slot: str
    call: ToolCall
    text: str


def _move(slot: str, facts: WorkspaceFacts, toolbox: Toolbox) -> _Move | None:
    """The call this slot makes now, or None to skip it."""
    data = dialect_data()
    commands, texts = data.commands, data.texts
    call: ToolCall | None
    if slot == "list":
        call = toolbox.act("list", ".", commands["list"])
        return _Move(slot, call, texts["list"]) if call else None
    if slot in ("test", "retest"):
        if slot == "retest" and facts.edit is None:
            return None
        command = facts.test_command
        binding = toolbox.get("test")
        if binding is not None:
            call = binding.value(None)
            command = command or binding.name
        elif command is not None:
            call = toolbox.shell(command)
        else:
            return None
        return _Move(slot, call, texts[slot].format(command=command)) if call else None
    if slot == "read_test":
        path = facts.failing_file
        if path is None or facts.failing_file == facts.source_path:
            return None
        call = toolbox.act("read", path, commands["read"].format(path=shlex.quote(path)))
        return _Move(slot, call, texts[slot].format(path=path)) if call else None
    if slot == "search":
        if not facts.symbol or facts.source_path is not None:
            return None
        pattern = facts.symbol
        call = toolbox.act(
            "search", pattern, commands["search"].format(pattern=shlex.quote(pattern))
        )
        return _Move(slot, call, texts[slot].format(symbol=pattern)) if call else None
    if slot == "read_source":
        path = facts.source_path or _guess_source(facts)
        if path is None:
            return None
        facts.source_path = path
        call = toolbox.act("read", path, commands["read"].format(path=shlex.quote(path)))
        return _Move(slot, call, texts[slot].format(path=path)) if call else None
    if slot == "edit":
        edit = _make_edit(facts)
        if edit is None:
            return None
        call = toolbox.edit(edit)
        if call is None:
            return None
        facts.edit = edit
        return _Move(slot, call, texts[slot].format(path=edit.path))
    if slot == "review":
        if facts.edit is None:
            return None
        call = toolbox.shell(commands["review"])
        return _Move(slot, call, texts[slot]) if call else None
    return None


def _absorb(slot: str, facts: WorkspaceFacts, output: str) -> None:
    text = tool_output(output)
    if slot == "list":
        files = []
        for line in text.splitlines():
            match = _PATH_LINE.match(line.strip())
            if match:
                files.append(match.group(1))
        facts.files = files
        facts.test_command = _test_command(files)
    elif slot in ("test", "retest"):
        _absorb_test(facts, text)
    elif slot == "read_test":
        _absorb_test_file(facts, text)
    elif slot == "search":
        _absorb_search(facts, text)
    elif slot == "read_source":
        facts.source_text = text
    elif slot == "edit":
        facts.edit_output = text
    elif slot == "review":
        facts.reviewed = True


def _active(budget: int) -> set[str]:
    return set(_PRIORITY[: max(0, budget)])


def _next_move(
    facts: WorkspaceFacts, toolbox: Toolbox, after: int, active: set[str]
) -> tuple[int, _Move] | None:
    for index in range(after + 1, len(SLOTS)):
        slot = SLOTS[index]
        if slot not in active:
            continue
        move = _move(slot, facts, toolbox)
        if move is not None:
            return index, move
    return None


def past_tool_turns(transcript: Sequence[Mapping[str, Any]], start: int) -> list[list[str]]:
    """The outputs of each tool-calling model turn after ``transcript[start]``, in order."""
    turns: list[list[str]] = []
    outputs: dict[str, str] = {}
    for item in transcript[start:]:
        if item.get("type") == "function_call_output":
            outputs[str(item.get("call_id"))] = _text(item.get("output"))
    in_turn = False
    for item in transcript[start:]:
        kind = item.get("type", "message")
        if kind == "function_call":
            if not in_turn:
                turns.append([])
            in_turn = True
            turns[-1].append(outputs.get(str(item.get("call_id")), ""))
        elif kind == "message" and item.get("role") == "assistant":
            in_turn = in_turn or False
        else:
            in_turn = False
    return turns


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return "".join(str(part.get("text", "")) for part in value if isinstance(part, Mapping))
    return ""


def _replay(
    prompt: str, past: list[list[str]], toolbox: Toolbox, budget: int
) -> tuple[WorkspaceFacts, _Move | None, str | None]:
    """Replay the earlier turns: the facts, the next move (None when done) and the slot
    the last turn played."""
    facts = WorkspaceFacts(prompt=prompt)
    active = _active(budget)
    position, last = -1, None
    for outputs in past:
        found = _next_move(facts, toolbox, position, active)
        if found is None:
            return facts, None, last
        position, move = found
        last = move.slot
        _absorb(move.slot, facts, outputs[0] if outputs else "")
    if len(past) >= budget:
        return facts, None, last
    found = _next_move(facts, toolbox, position, active)
    return facts, (found[1] if found else None), last


def _observation(facts: WorkspaceFacts, last_slot: str | None) -> str | None:
    if last_slot in ("test", "retest") and facts.last_test is not None:
        summary = _summary(facts.last_test)
        if summary is None:
            return "The test command did not print a summary I recognise."
        detail = f" ({facts.failing_test})" if facts.failing_test and last_slot == "test" else ""
        return f"The tests report {summary}{detail}."
    if last_slot == "list" and facts.files is not None:
        return f"The repository has {len(facts.files)} files."
    if last_slot == "edit" and facts.edit_output is not None:
        ok = not re.search(r"fail|error|not apply|verification", facts.edit_output, re.IGNORECASE)
        return "The patch applied." if ok else "The patch did not apply."
    return None


def workspace_turn(
    prompt: str,
    transcript: Sequence[Mapping[str, Any]],
    start: int,
    toolbox: Toolbox,
    tool_turns: int,
) -> tuple[str | None, ToolCall | None, WorkspaceFacts]:
    """The next call of the play (text, call), or (None, None, facts) when it is done.

    ``start`` indexes the task's prompt in ``transcript``; ``tool_turns`` is the most
    tool-calling turns the task may take.
    """
    past = past_tool_turns(transcript, start)
    facts, move, last = _replay(prompt, past, toolbox, tool_turns)
    if move is None:
        return None, None, facts
    observation = _observation(facts, last)
    text = " ".join(part for part in (observation, move.text) if part)
    return text, move.call, facts


def workspace_answer(facts: WorkspaceFacts) -> str:
    """The final answer: what was found, changed and verified."""
    parts: list[str] = []
    if facts.first_test is not None:
        first = _summary(facts.first_test) or "no summary"
        failing = f", failing {facts.failing_test}" if facts.failing_test else ""
        if facts.expected is not None:
            failing += f" (expected {facts.expected}, got {facts.received})"
        parts.append(f"I ran `{facts.test_command or 'the tests'}` first: {first}{failing}.")
    if facts.edit is not None:
        applied = facts.edit_output is not None and not re.search(
            r"fail|error|not apply|verification", facts.edit_output, re.IGNORECASE
        )
        if applied:
            parts.append(f"In `{facts.edit.path}` I {facts.edit.summary}.")
        else:
            parts.append(f"My patch to `{facts.edit.path}` did not apply, so nothing changed.")
    else:
        parts.append("I did not change any files.")
    if facts.last_test is not None and facts.last_test is not facts.first_test:
        last = _summary(facts.last_test) or "no summary"
        verdict = "still fail" if _failed(facts.last_test) else "pass"
        parts.append(f"After the change the tests {verdict}: {last}.")
    elif facts.first_test is None:
        parts.append("I could not run the tests with the tools available.")
    return " ".join(parts)
