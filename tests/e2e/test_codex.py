"""Codex CLI plays a whole coding task against ``rig mock``, over HTTP (SSE) and WebSocket,
and over WebSocket through ``rig gateway`` in front of the mock as a stateless upstream.

The real ``codex exec`` (pinned and installed by scripts/test) runs non-interactively in
a temporary git repository holding a small Python project with a failing test, with its
default tool set. The scripted model plays the task through Codex's own tools: shell
commands through ``exec_command`` that Codex runs in the repository, and a fix through
Codex's freeform ``apply_patch`` that Codex applies to the file on disk; it decides from
what the commands print and ends with a final answer. The mock's ``/stats`` must agree
with the session Codex reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.servers import ManagedProcess, missing_tool, server_stats, start_gateway, start_mock

CODEX_VERSION = "0.171.0"
"""The version scripts/test installs (keep the two in step)."""

MODEL = "gpt-5.5"
"""A model in Codex's catalogue (`codex debug models`): Codex then offers its default
tools for it, the freeform apply_patch among them, and does not warn about the name."""

TASK = "Fix the failing test in this repository."

CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"
TESTS = (
    "from src.calc import add, sub\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_sub():\n    assert sub(5, 3) == 2\n"
)


def _codex() -> str:
    """The pinned Codex CLI: $RIG_CODEX, scripts/test's prefix, else `codex` on PATH."""
    prefix = os.environ.get("RIG_CODEX_PREFIX", str(Path.home() / ".cache/rig/codex"))
    for candidate in (os.environ.get("RIG_CODEX"), f"{prefix}/bin/codex", shutil.which("codex")):
        if candidate and os.path.exists(candidate):
            return candidate
    missing_tool(
        f"Codex CLI is not installed (scripts/test installs @openai/codex@{CODEX_VERSION})"
    )


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=rig", "-c", "user.email=rig@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _project(repo: Path) -> None:
    (repo / "src").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "src" / "__init__.py").write_text("")
    (repo / "src" / "calc.py").write_text(CALC)
    (repo / "tests" / "test_calc.py").write_text(TESTS)
    (repo / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "calculator with a failing test")


def _config(home: Path, base_url: str, websockets: bool, model: str) -> None:
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "mock"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "workspace-write"\n'
        "check_for_update_on_startup = false\n"
        "[model_providers.mock]\n"
        'name = "mock"\n'
        f'base_url = "{base_url}"\n'
        'wire_api = "responses"\n'
        'env_key = "MOCK_KEY"\n'
        f"supports_websockets = {'true' if websockets else 'false'}\n"
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
        "[analytics]\n"
        "enabled = false\n"
    )


class CodexRun(NamedTuple):
    events: list[dict[str, Any]]
    """``codex exec --json``'s events."""
    stats: dict[str, Any]
    """The mock's ``/stats`` after the run."""
    repo: Path
    gateway_stats: dict[str, Any] | None
    """The gateway's ``/stats`` after the run, when Codex went through one."""


def _run_codex(
    tmp_path: Path, websockets: bool, model: str, *mock_args: str, gateway: bool = False
) -> CodexRun:
    codex = _codex()
    repo = tmp_path / "repo"
    _project(repo)
    mock, base_url = start_mock("--preset", "instant", *mock_args)
    front: ManagedProcess | None = None
    try:
        target_url = base_url
        if gateway:
            front, target_url = start_gateway(base_url)
        home = tmp_path / "codex-home"
        _config(home, target_url, websockets, model)
        # The agent's shell as hermetic as its workspace: the interpreter running the tests
        # first on PATH, no PYTHONPATH of the rig's checkout (its tests package would meet
        # the project's), and a home of its own, so the user's shell start-up files do not
        # reach it (run without a terminal, Codex's shell sourced ~/.bashrc, whose pyenv
        # init could not rehash inside the sandbox and said so at the top of every
        # command's output, the files' contents included, and the patch then never
        # matched).
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        user_home = tmp_path / "home"
        user_home.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            "HOME": str(user_home),
            "PATH": path,
            "CODEX_HOME": str(home),
            "MOCK_KEY": "sk-mock-test",
        }
        done = subprocess.run(
            [codex, "exec", "--json", "--skip-git-repo-check", TASK],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=240,
        )
        stats = server_stats(base_url)
        gateway_stats = server_stats(target_url) if gateway else None
    finally:
        if front is not None:
            front.stop()
        mock.stop()
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return CodexRun(events, stats, repo, gateway_stats)


def _items(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == kind
    ]


@pytest.mark.parametrize("websockets", [False, True], ids=["http-sse", "websocket"])
def test_codex_fixes_a_failing_test_through_its_own_tools(tmp_path: Path, websockets: bool) -> None:
    events, stats, repo, _ = _run_codex(
        tmp_path, websockets, MODEL, "--scenario", "fix_failing_test"
    )
    model_turns = _check_the_task_done(events, repo)

    # The mock saw exactly the session Codex reports: one response per model turn, the
    # WebSocket warm-up (generate: false) counted apart, nothing refused.
    assert stats["responses_completed"] == model_turns
    assert stats["turns"] == model_turns
    assert stats["responses_failed"] == 0 and stats["errors"] == 0
    if websockets:
        assert stats["warmups"] >= 1
        assert stats["http_requests"] == 0
    else:
        assert stats["http_requests"] >= model_turns


def test_codex_works_through_the_gateway_over_websocket(tmp_path: Path) -> None:
    """Codex's WebSocket session through ``rig gateway``: the gateway answers its warm-up
    itself and continues every turn from the connection's state; the mock, a stateless
    upstream here, gets each turn once over HTTP with the whole context."""
    events, stats, repo, gateway = _run_codex(
        tmp_path, True, MODEL, "--scenario", "fix_failing_test", gateway=True
    )
    model_turns = _check_the_task_done(events, repo)
    assert gateway is not None
    assert gateway["responses_completed"] == model_turns and gateway["warmups"] >= 1
    assert gateway["hits_connection"] == model_turns  # the warm-up's id continued too
    assert gateway["errors"] == 0 and gateway["responses_failed"] == 0
    assert gateway["misses_not_found"] == 0 and gateway["upstream_errors"] == 0
    assert stats["http_requests"] == stats["responses_completed"] == model_turns
    assert stats["warmups"] == 0 and stats["errors"] == 0
    # Codex uploaded only new items; the gateway re-sent the context upstream.
    assert gateway["upstream_bytes_out"] == stats["bytes_in"]
    assert gateway["client_bytes_in"] < gateway["upstream_bytes_out"] / 2


def _check_the_task_done(events: list[dict[str, Any]], repo: Path) -> int:
    """Codex fixed the failing test through its own tools and said so; its model turns."""
    kinds = [e["type"] for e in events]
    assert "turn.failed" not in kinds and "error" not in kinds
    assert kinds[-1] == "turn.completed"
    assert not _items(events, "error"), _items(events, "error")

    # Every model response says something: a line before each call, then the answer.
    messages = _items(events, "agent_message")
    commands = _items(events, "command_execution")
    patches = _items(events, "file_change")
    model_turns = len(messages)
    assert 5 <= model_turns <= 15  # the fix_failing_test scenario's turn budget
    assert len(commands) + len(patches) >= 3
    assert commands and patches  # two kinds of tool: shell commands and apply_patch

    # The commands were real and answered from the workspace: the listing and the tests.
    assert any("pytest" in c["command"] for c in commands)
    first_test = next(c for c in commands if "pytest" in c["command"])
    assert first_test["exit_code"] != 0 and "1 failed" in first_test["aggregated_output"]

    # apply_patch changed the file on disk, and the fix makes the suite pass.
    assert all(p["status"] == "completed" for p in patches)
    assert any(ch["path"].endswith("src/calc.py") for p in patches for ch in p["changes"])
    assert (repo / "src" / "calc.py").read_text() != CALC
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert suite.returncode == 0, suite.stdout[-2000:]
    answer = messages[-1]["text"]
    assert "src/calc.py" in answer and "2 passed" in answer
    return model_turns


def test_codex_without_its_apply_patch_tool_patches_through_its_shell(tmp_path: Path) -> None:
    """A model name Codex does not know: it warns, offers no apply_patch tool, and the
    scripted model sends the patch through exec_command, which Codex applies itself. No
    --scenario: the task's own words choose fix_failing_test."""
    events, stats, repo, _ = _run_codex(tmp_path, False, "mock-agent")
    assert "turn.failed" not in [e["type"] for e in events]
    warnings = _items(events, "error")
    assert all("metadata" in w["message"] for w in warnings)  # the unknown-model warning
    patches = _items(events, "file_change")
    assert patches and all(p["status"] == "completed" for p in patches)
    assert "a + b" in (repo / "src" / "calc.py").read_text()
    messages = _items(events, "agent_message")
    assert "2 passed" in messages[-1]["text"]
    assert stats["responses_completed"] == len(messages) and stats["errors"] == 0
