"""Specification of tool dialects: the scripted model plays through the tools it is offered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import pytest

from rig.conversation import MemoryStore
from rig.mock.engine import TurnEngine
from rig.mock.latency import LatencyModel
from rig.protocol.requests import parse_create_request
from rig.workload.dialects import Edit, Toolbox
from rig.workload.policy import ModelPolicy, ToolCall
from rig.workload.tools import TOOLS

CODEX_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "exec_command",
        "parameters": {
            "type": "object",
            "properties": {"cmd": {"type": "string"}, "yield_time_ms": {"type": "number"}},
            "required": ["cmd"],
        },
    },
    {"type": "function", "name": "view_image", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
    {"type": "custom", "name": "apply_patch", "description": "Edit files.",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
    {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.", "tools": []},
    {"type": "web_search", "external_web_access": False},
]  # fmt: skip

CALC = "def add(a, b):\n    return a - b\n"
PYTEST_FAILING = (
    "F                                                                        [100%]\n"
    "=================================== FAILURES ===================================\n"
    "___________________________________ test_add ___________________________________\n"
    "    def test_add():\n>       assert add(2, 3) == 5\n"
    "E       assert -1 == 5\nE        +  where -1 = add(2, 3)\n\n"
    "tests/test_calc.py:5: AssertionError\n"
    "=========================== short test summary info ============================\n"
    "FAILED tests/test_calc.py::test_add - assert -1 == 5\n1 failed in 0.03s\n"
)


def user(text: str) -> dict[str, str]:
    return {"type": "message", "role": "user", "content": text}


class Workspace:
    """A Codex-like client: runs the model's shell commands and patches on a fake repo."""

    def __init__(self) -> None:
        self.files = {"src/calc.py": CALC, "tests/test_calc.py": "from src.calc import add\n"}
        self.patches: list[str] = []

    def run(self, command: str) -> str:
        if command.startswith("find "):
            return "".join(f"./{path}\n" for path in sorted(self.files))
        if "pytest" in command:
            if "a + b" in self.files["src/calc.py"]:
                return "Process exited with code 0\nOutput:\n.\n1 passed in 0.01s\n"
            return "Process exited with code 1\nOutput:\n" + PYTEST_FAILING
        if command.startswith("sed -n"):
            return "Process exited with code 0\nOutput:\n" + self.files[command.split()[-1]]
        if command.startswith("apply_patch <<'RIG_PATCH'\n"):  # Codex intercepts these
            return self.apply(command.partition("\n")[2].removesuffix("RIG_PATCH"))
        if command.startswith("cat > "):
            head, _, body = command.partition("\n")
            self.files[head.split()[2]] = body.removesuffix("RIG_EOF")
            return "Process exited with code 0\nOutput:\n"
        if command.startswith("grep"):
            return "./src/calc.py:1:def add(a, b):\n"
        return "Process exited with code 0\nOutput:\n"

    def apply(self, patch: str) -> str:
        self.patches.append(patch)
        lines = patch.splitlines()
        path = lines[1].removeprefix("*** Update File: ")
        old = [line[1:] for line in lines[3:-1] if line[:1] in " -"]
        new = [line[1:] for line in lines[3:-1] if line[:1] in " +"]
        text = self.files[path]
        if "\n".join(old) not in text:
            return "apply_patch verification failed"
        self.files[path] = text.replace("\n".join(old), "\n".join(new))
        return f"Success. Updated the following files:\nM {path}\n"


def play(
    policy: ModelPolicy,
    tools: Sequence[Mapping[str, Any]],
    execute: Callable[[ToolCall], str],
    prompt: str = "Fix the failing test",
    limit: int = 40,
    **rules: Any,
) -> tuple[list[dict[str, Any]], list[ToolCall], str]:
    """Drive the policy like a client; return the transcript, every call and the answer."""
    transcript: list[dict[str, Any]] = [user("<environment_context>cwd</environment_context>"),
                                        user(prompt)]  # fmt: skip
    calls: list[ToolCall] = []
    for turn_index in range(limit):
        turn = policy.next_turn(transcript, tools, **rules)
        if turn.text:
            transcript.append({"type": "message", "role": "assistant", "content": turn.text})
        if turn.is_final:
            return transcript, calls, turn.text or ""
        for k, call in enumerate(turn.tool_calls):
            calls.append(call)
            call_id = f"call_{turn_index}_{k}"
            transcript.append({"type": "function_call", "call_id": call_id, "name": call.name,
                               "arguments": call.arguments})  # fmt: skip
            transcript.append({"type": "function_call_output", "call_id": call_id,
                               "output": execute(call)})  # fmt: skip
    raise AssertionError("the task never ended")


def codex_executor(workspace: Workspace) -> Callable[[ToolCall], str]:
    def execute(call: ToolCall) -> str:
        if call.kind == "custom":
            assert call.name == "apply_patch"
            return workspace.apply(call.arguments)
        assert (call.kind, call.name) == ("function", "exec_command")
        return workspace.run(orjson.loads(call.arguments)["cmd"])

    return execute


def test_codex_tools_are_recognised_and_hosted_tools_left_alone() -> None:
    toolbox = Toolbox.from_tools(CODEX_TOOLS)
    run, edit = toolbox.get("run"), toolbox.get("edit")
    assert run is not None and (run.name, run.dialect) == ("exec_command", "codex")
    assert edit is not None and (edit.tool_type, edit.name) == ("custom", "apply_patch")
    assert toolbox.offered == {"exec_command", "view_image", "apply_patch"}


def test_codex_session_fixes_the_failing_test_from_what_its_tools_return() -> None:
    policy = ModelPolicy(default_scenario="fix_failing_test")
    workspace = Workspace()
    _, calls, answer = play(policy, CODEX_TOOLS, codex_executor(workspace))
    assert {(c.kind, c.name) for c in calls} == {("function", "exec_command"),
                                                 ("custom", "apply_patch")}  # fmt: skip
    assert workspace.patches == [
        "*** Begin Patch\n*** Update File: src/calc.py\n@@\n def add(a, b):\n"
        "-    return a - b\n+    return a + b\n*** End Patch\n"
    ]
    assert workspace.files["src/calc.py"] == "def add(a, b):\n    return a + b\n"
    plan = policy.plan("Fix the failing test")
    assert len(calls) + 1 <= plan.total_turns
    assert "1 passed" in answer and "src/calc.py" in answer


def test_the_play_is_a_function_of_the_transcript() -> None:
    policy = ModelPolicy(default_scenario="fix_failing_test")
    transcript, _, _ = play(policy, CODEX_TOOLS, codex_executor(Workspace()))
    midway = transcript[: len(transcript) // 2]
    while midway[-1]["type"] != "function_call_output":
        midway.pop()
    again = ModelPolicy(default_scenario="fix_failing_test")
    assert again.next_turn(midway, CODEX_TOOLS) == policy.next_turn(midway, CODEX_TOOLS)


def test_a_short_turn_budget_keeps_the_test_run_and_the_edit() -> None:
    policy = ModelPolicy(default_scenario="add_search_feature", seed=3)
    prompt = next(
        p for p in (f"task {i}" for i in range(200))
        if policy.plan(p).total_turns <= 6
    )  # fmt: skip
    workspace = Workspace()
    _, calls, _ = play(policy, CODEX_TOOLS, codex_executor(workspace), prompt=prompt)
    assert len(calls) + 1 <= policy.plan(prompt).total_turns
    assert any("pytest" in c.arguments for c in calls)


def test_apply_patch_as_a_function_gets_the_patch_as_its_input() -> None:
    tools = [
        CODEX_TOOLS[0],
        {
            "type": "function",
            "name": "apply_patch",
            "parameters": {
                "type": "object",
                "properties": {"input": {"type": "string"}},
                "required": ["input"],
            },
        },
    ]
    toolbox = Toolbox.from_tools(tools)
    call = toolbox.edit(Edit("a.py", "x = 1\n", "x = 2\n", "changed x"))
    assert call is not None and call.kind == "function" and call.name == "apply_patch"
    assert orjson.loads(call.arguments)["input"].startswith(
        "*** Begin Patch\n*** Update File: a.py"
    )


def test_a_shell_alone_edits_with_codex_apply_patch_through_the_shell() -> None:
    toolbox = Toolbox.from_tools(CODEX_TOOLS[:1])
    call = toolbox.edit(Edit("a.py", "x = 1\n", "x = 2\n", "changed x"))
    assert call is not None and call.name == "exec_command"
    assert orjson.loads(call.arguments)["cmd"].startswith("apply_patch <<'RIG_PATCH'\n*** Begin")


def test_function_tools_of_their_own_names_are_used_by_their_schemas() -> None:
    tools = [
        {"type": "function", "name": "run_shell", "description": "Run a command", "parameters": {
            "type": "object", "properties": {"command": {"type": "string"},
                                             "timeout": {"type": "integer"}},
            "required": ["command", "timeout"]}},
        {"type": "function", "name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    ]  # fmt: skip
    workspace = Workspace()

    def execute(call: ToolCall) -> str:
        assert call.name == "run_shell"
        arguments = orjson.loads(call.arguments)
        assert set(arguments) == {"command", "timeout"}
        return workspace.run(arguments["command"])

    _, calls, answer = play(ModelPolicy(default_scenario="fix_failing_test"), tools, execute)
    assert calls and answer
    assert any(orjson.loads(c.arguments)["command"].startswith("cat > src/calc.py") for c in calls)
    assert workspace.files["src/calc.py"] == "def add(a, b):\n    return a + b\n"
    assert "1 passed" in answer


def test_a_subset_of_the_rig_tools_calls_only_those() -> None:
    offered = [tool for tool in TOOLS if tool["name"] in {"read_file", "list_dir", "search"}]
    _, calls, answer = play(ModelPolicy(), offered, lambda call: "ok", prompt="fix it TT-1")
    assert calls and {c.name for c in calls} <= {"read_file", "list_dir", "search"}
    assert answer


@pytest.mark.parametrize("parallel", [True, False])
def test_parallel_tool_calls_false_makes_one_call_a_turn(parallel: bool) -> None:
    policy = ModelPolicy(seed=1)
    prompt = next(
        f"task {i}" for i in range(200)
        if any(len(t.steps) > 1 for t in policy.plan(f"task {i}").turns)
    )  # fmt: skip
    transcript = [user(prompt)]
    most = 0
    for index in range(30):
        turn = policy.next_turn(transcript, TOOLS, parallel_tool_calls=parallel)
        if turn.is_final:
            break
        most = max(most, len(turn.tool_calls))
        for k, call in enumerate(turn.tool_calls):
            transcript.append({"type": "function_call", "call_id": f"c{index}{k}",
                               "name": call.name, "arguments": call.arguments})  # fmt: skip
            transcript.append({"type": "function_call_output", "call_id": f"c{index}{k}",
                               "output": "ok"})  # fmt: skip
    assert (most == 1) if not parallel else (most > 1)


def test_tool_choice_none_answers_without_calls() -> None:
    turn = ModelPolicy().next_turn([user("fix it")], TOOLS, tool_choice="none")
    assert turn.is_final and turn.text


def test_tool_choice_required_calls_a_tool_even_when_the_task_is_done() -> None:
    policy = ModelPolicy(default_scenario="fix_failing_test")
    transcript, _, _ = play(policy, CODEX_TOOLS, codex_executor(Workspace()))
    done = transcript[:-1]  # before the final answer
    assert policy.next_turn(done, CODEX_TOOLS).is_final
    forced = policy.next_turn(done, CODEX_TOOLS, tool_choice="required")
    assert len(forced.tool_calls) >= 1
    assert forced.tool_calls[0].name in {"exec_command", "view_image", "apply_patch"}


@pytest.mark.parametrize(
    ("choice", "name", "kind"),
    [
        ({"type": "function", "name": "view_image"}, "view_image", "function"),
        ({"type": "custom", "name": "apply_patch"}, "apply_patch", "custom"),
        ({"type": "function", "name": "exec_command"}, "exec_command", "function"),
    ],
)
def test_a_named_tool_choice_calls_that_tool(choice: dict[str, str], name: str, kind: str) -> None:
    turn = ModelPolicy().next_turn([user("fix it")], CODEX_TOOLS, tool_choice=choice)
    assert [(c.name, c.kind) for c in turn.tool_calls] == [(name, kind)]


def test_the_mock_streams_a_custom_tool_call_with_its_input() -> None:
    engine = TurnEngine(ModelPolicy(), LatencyModel(), MemoryStore(), seed=1)
    request = parse_create_request(
        {"model": "m", "input": "fix it", "tools": CODEX_TOOLS,
         "tool_choice": {"type": "custom", "name": "apply_patch"}}
    )  # fmt: skip

    async def go() -> list[dict[str, Any]]:
        turn = await engine.prepare(request, body_bytes=100)
        events = [event for _, event in turn.timed_events()]
        stored = await engine.finish(turn)
        assert stored.transcript[-1]["call_type"] == "custom_tool_call"
        return events

    events = asyncio.run(go())
    kinds = [e["type"] for e in events]
    assert "response.custom_tool_call_input.delta" in kinds
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    item = events[-1]["response"]["output"][-1]
    assert item["type"] == "custom_tool_call" and item["name"] == "apply_patch"
    assert item["input"] == done["input"]


def test_the_local_shell_tool_gets_local_shell_calls_with_an_argv() -> None:
    workspace = Workspace()

    def execute(call: ToolCall) -> str:
        assert (call.kind, call.name) == ("local_shell", "local_shell")
        argv = orjson.loads(call.arguments)
        assert argv[:2] == ["bash", "-lc"]
        return workspace.run(argv[2])

    tools = [{"type": "local_shell"}]
    _, _, answer = play(ModelPolicy(default_scenario="fix_failing_test"), tools, execute)
    assert workspace.files["src/calc.py"] == "def add(a, b):\n    return a + b\n"
    assert "1 passed" in answer

    engine = TurnEngine(ModelPolicy(), LatencyModel(), MemoryStore(), seed=1)
    request = parse_create_request({"model": "m", "input": "fix it", "tools": tools})

    async def go() -> dict[str, Any]:
        turn = await engine.prepare(request, body_bytes=100)
        events = [event for _, event in turn.timed_events()]
        stored = await engine.finish(turn)
        assert stored.transcript[-1]["call_type"] == "local_shell_call"
        return events[-1]["response"]["output"][-1]

    item = asyncio.run(go())
    assert item["type"] == "local_shell_call"
    assert item["action"]["type"] == "exec" and item["action"]["command"][:2] == ["bash", "-lc"]
