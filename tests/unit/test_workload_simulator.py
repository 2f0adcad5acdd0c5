"""Specification of the tool simulator: harness-like answers to any tool call, never an exception."""

from __future__ import annotations

import orjson
import pytest

from rig.workload.corpus import Corpus
from rig.workload.simulator import MAX_OUTPUT_BYTES, ToolSimulator

FIX_PATCH = """\
--- a/src/utils/formatDate.ts
+++ b/src/utils/formatDate.ts
@@ -19,3 +19,3 @@
   const year = date.getUTCFullYear();
-  const month = pad2(date.getUTCMonth());
+  const month = pad2(date.getUTCMonth() + 1);
   const day = pad2(date.getUTCDate());
"""


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.load()


@pytest.fixture
def sim(corpus: Corpus) -> ToolSimulator:
    return ToolSimulator(corpus, seed=3)


def call(sim: ToolSimulator, name: str, **arguments: object):
    return sim.run(name, orjson.dumps(arguments).decode())


# -- errors a harness returns --------------------------------------------------------


def test_unknown_path_reads_like_node(sim: ToolSimulator) -> None:
    result = call(sim, "read_file", path="src/utils/missing.ts")
    assert not result.ok
    assert result.output == "ENOENT: no such file or directory, open 'src/utils/missing.ts'"


def test_unknown_directory_and_search_path(sim: ToolSimulator) -> None:
    assert call(sim, "list_dir", path="lib").output.startswith("ENOENT: no such file or directory")
    assert "No such file or directory" in call(sim, "search", pattern="x", path="lib").output


def test_unknown_tool_lists_the_available_ones(sim: ToolSimulator) -> None:
    result = sim.run("delete_everything", "{}")
    assert not result.ok
    assert result.output.startswith("Error: unknown tool 'delete_everything'. Available tools:")
    assert "read_file" in result.output


def test_bad_json_arguments_are_an_error_string(sim: ToolSimulator) -> None:
    result = sim.run("read_file", '{"path": "src/App.tsx"')
    assert not result.ok
    assert result.output.startswith("Error: could not parse tool arguments as JSON")


def test_non_object_arguments_are_an_error_string(sim: ToolSimulator) -> None:
    assert sim.run("read_file", '["src/App.tsx"]').output == (
        "Error: tool arguments must be a JSON object, got list"
    )


def test_missing_required_argument(sim: ToolSimulator) -> None:
    assert sim.run("read_file", "{}").output == "Error: missing required argument 'path'"


def test_reading_a_directory_is_eisdir(sim: ToolSimulator) -> None:
    assert call(sim, "read_file", path="src").output.startswith("EISDIR")


def test_never_raises_on_odd_input(sim: ToolSimulator) -> None:
    odd_calls = [
        ("read_file", None),
        ("read_file", "   "),
        ("read_file", {"path": 42}),
        ("write_file", {"path": "src", "content": "x"}),
        ("write_file", {"path": "src/App.tsx/child.ts", "content": "x"}),
        ("write_file", {"path": "../outside.ts", "content": "x"}),
        ("apply_patch", {"patch": "not a patch"}),
        ("run_command", {"command": "echo 'unterminated"}),
        ("run_command", {"command": ["ls", "-la"]}),
        ("run_tests", {"path": 5}),
        ("search", {"pattern": "(unclosed"}),
        ("", ""),
    ]
    for name, arguments in odd_calls:
        result = sim.run(name, arguments)
        assert isinstance(result.output, str)
        assert result.output


# -- argument names models actually use -----------------------------------------------


@pytest.mark.parametrize("key", ["path", "file_path", "filename", "filepath"])
def test_path_argument_variants(sim: ToolSimulator, key: str) -> None:
    result = sim.run("read_file", {key: "src/hooks/useDebounce.ts"})
    assert result.ok
    assert "export function useDebounce" in result.output


@pytest.mark.parametrize("key", ["pattern", "query", "regex"])
def test_search_pattern_variants(sim: ToolSimulator, key: str) -> None:
    result = sim.run("search", {key: "useDebounce", "path": "src/hooks"})
    assert result.output.startswith("src/hooks/useDebounce.ts:")


@pytest.mark.parametrize("key", ["command", "cmd"])
def test_command_variants(sim: ToolSimulator, key: str) -> None:
    assert sim.run("run_command", {key: "pwd"}).output.endswith("/workspace/task-tracker\n")


def test_read_file_numbers_lines_and_honours_a_range(sim: ToolSimulator) -> None:
    result = call(sim, "read_file", path="src/utils/formatDate.ts", start_line=18, end_line=20)
    lines = result.output.splitlines()
    assert lines[0] == "    18\texport function toISODate(date: Date): string {"
    assert lines[2] == "    20\t  const month = pad2(date.getUTCMonth());"
    assert lines[-1].startswith("... [lines 18-20 of")


def test_long_outputs_are_truncated_with_a_marker(sim: ToolSimulator) -> None:
    sim.run("write_file", {"path": "src/big.ts", "content": "const x = 1;\n" * 2_000})
    result = call(sim, "read_file", path="src/big.ts")
    assert len(result.output.encode()) <= MAX_OUTPUT_BYTES
    assert "[truncated: showing lines 1-" in result.output


def test_search_output_is_grep_style(sim: ToolSimulator) -> None:
    output = call(sim, "search", pattern="getUTCMonth", path="src/utils").output
    assert (
        output.splitlines()[0]
        == "src/utils/formatDate.ts:20:  const month = pad2(date.getUTCMonth());"
    )


def test_search_without_hits(sim: ToolSimulator) -> None:
    result = call(sim, "search", pattern="graphql", path="src")
    assert result.ok
    assert result.output == "No matches found."


# -- jest, consistent with the session's edits -----------------------------------------


def test_jest_fails_until_the_bug_is_patched(sim: ToolSimulator) -> None:
    failing = call(sim, "run_tests")
    assert not failing.ok
    assert "FAIL src/__tests__/formatDate.test.ts" in failing.output
    assert "\u25cf formatDate \u203a toISODate \u203a pads single-digit months and days" in (
        failing.output
    )
    assert 'Expected: "2024-03-05"' in failing.output
    assert 'Received: "2024-02-05"' in failing.output
    assert "at Object.toBe (src/__tests__/formatDate.test.ts:" in failing.output
    assert "Tests:       1 failed, 37 passed, 38 total" in failing.output

    patched = call(sim, "apply_patch", patch=FIX_PATCH)
    assert patched.ok
    assert patched.output.startswith(
        "Success. Updated the following files:\nM src/utils/formatDate.ts"
    )

    passing = call(sim, "run_tests")
    assert passing.ok
    assert "Tests:       38 passed, 38 total" in passing.output
    assert "FAIL" not in passing.output


def test_jest_lists_each_test_only_when_one_suite_runs(sim: ToolSimulator) -> None:
    one = call(sim, "run_tests", path="src/__tests__/formatDate.test.ts").output
    assert "\u2715 pads single-digit months and days" in one
    assert "\u2713 parses a calendar date as midnight UTC" in one

    suite = call(sim, "run_tests").output
    assert "PASS src/__tests__/sortTasks.test.ts\n" in suite
    assert "\u2713" not in suite  # passing tests are not listed: jest's default reporter
    assert suite.count("\u25cf formatDate") == 1  # no failure summary under 20 suites
    assert "Summary of all failing tests" not in suite
    assert "\n\nTest Suites: 1 failed, 6 passed, 7 total\n" in suite


def test_apply_patch_answers_like_codex_without_file_contents(sim: ToolSimulator) -> None:
    result = call(sim, "apply_patch", patch=FIX_PATCH)
    assert result.ok
    assert result.output == "Success. Updated the following files:\nM src/utils/formatDate.ts\n"


def test_jest_passes_after_the_file_is_rewritten(sim: ToolSimulator, corpus: Corpus) -> None:
    fixed = corpus.files["src/utils/formatDate.ts"].replace(
        "pad2(date.getUTCMonth())", "pad2(date.getUTCMonth() + 1)"
    )
    assert call(sim, "write_file", path="src/utils/formatDate.ts", content=fixed).ok
    assert call(sim, "run_tests", path="formatDate").ok


def test_a_patch_that_does_not_apply_reads_like_git(sim: ToolSimulator) -> None:
    call(sim, "apply_patch", patch=FIX_PATCH)
    again = call(sim, "apply_patch", patch=FIX_PATCH)
    assert not again.ok
    assert again.output.endswith("error: src/utils/formatDate.ts: patch does not apply")


def test_new_test_files_are_run_and_missing_imports_fail_the_suite(sim: ToolSimulator) -> None:
    test_source = (
        "import { SearchBox } from '../components/SearchBox';\n\n"
        "describe('SearchBox', () => {\n"
        "  it('exists', () => {\n"
        "    expect(SearchBox).toBeDefined();\n"
        "  });\n"
        "});\n"
    )
    call(sim, "write_file", path="src/__tests__/SearchBox.test.tsx", content=test_source)
    crashed = call(sim, "run_tests", path="SearchBox")
    assert "Test suite failed to run" in crashed.output
    assert "Cannot find module '../components/SearchBox'" in crashed.output

    call(
        sim,
        "write_file",
        path="src/components/SearchBox.tsx",
        content="export const SearchBox = 1;\n",
    )
    passed = call(sim, "run_tests", path="SearchBox")
    assert passed.ok
    assert "\u2713 exists" in passed.output


def test_sessions_do_not_share_edits(corpus: Corpus) -> None:
    first, second = ToolSimulator(corpus), ToolSimulator(corpus)
    call(first, "apply_patch", patch=FIX_PATCH)
    assert not call(second, "run_tests").ok
    assert "pad2(date.getUTCMonth())" in corpus.files["src/utils/formatDate.ts"]


def test_unmatched_test_path_is_no_tests_found(sim: ToolSimulator) -> None:
    result = call(sim, "run_tests", path="does-not-exist")
    assert not result.ok
    assert result.output.startswith("No tests found, exiting with code 1")


# -- shell commands ----------------------------------------------------------------------


def test_npm_test_runs_jest_with_the_npm_header(sim: ToolSimulator) -> None:
    output = call(sim, "run_command", command="npm test").output
    assert output.startswith("Exit code: 1\nWall time: ")
    assert "> task-tracker@0.4.2 test\n> jest" in output
    assert "Tests:       1 failed" in output


def test_git_status_and_diff_follow_the_edits(sim: ToolSimulator) -> None:
    assert "nothing to commit" in call(sim, "run_command", command="git status").output
    call(sim, "apply_patch", patch=FIX_PATCH)
    assert (
        "modified:   src/utils/formatDate.ts"
        in call(sim, "run_command", command="git status").output
    )
    diff = call(sim, "run_command", command="git diff").output
    assert "+  const month = pad2(date.getUTCMonth() + 1);" in diff


def test_pipelines_and_chains(sim: ToolSimulator) -> None:
    output = call(
        sim, "run_command", command="cd /workspace/task-tracker && npm test 2>&1 | tail -5"
    ).output
    assert output.splitlines()[-1] == "Ran all test suites."
    assert len(output.splitlines()) == 3 + 5


def test_unknown_command_is_127(sim: ToolSimulator) -> None:
    result = call(sim, "run_command", command="cargo build")
    assert not result.ok
    assert result.output.startswith("Exit code: 127")
    assert "bash: cargo: command not found" in result.output


def test_typecheck_command_is_quiet_when_clean(sim: ToolSimulator) -> None:
    result = call(sim, "run_command", command="npx tsc --noEmit")
    assert result.ok
    assert result.output.endswith("Output:\n")


# -- durations ----------------------------------------------------------------------------


def test_durations_are_deterministic_under_the_seed(corpus: Corpus) -> None:
    calls = [
        ("read_file", '{"path":"src/App.tsx"}'),
        ("run_tests", "{}"),
        ("search", '{"pattern":"x"}'),
    ]

    def durations(seed: int) -> list[float]:
        sim = ToolSimulator(corpus, seed=seed)
        return [sim.run(name, arguments).duration_s for name, arguments in calls]

    assert durations(1) == durations(1)
    assert durations(1) != durations(2)


@pytest.mark.parametrize(
    ("name", "arguments", "low", "high"),
    [
        ("read_file", {"path": "src/App.tsx"}, 0.005, 0.030),
        ("search", {"pattern": "useState"}, 0.020, 0.080),
        ("run_tests", {}, 1.5, 6.0),
        ("run_tests", {"path": "formatDate"}, 1.5, 6.0),
        ("run_command", {"command": "npx tsc --noEmit"}, 0.2, 3.0),
        ("run_command", {"command": "git status"}, 0.2, 3.0),
        ("run_command", {"command": "ls src"}, 0.2, 3.0),
    ],
)
def test_durations_are_in_the_tool_ranges(
    corpus: Corpus, name: str, arguments: dict, low: float, high: float
) -> None:
    for seed in range(20):
        duration = ToolSimulator(corpus, seed=seed).run(name, arguments).duration_s
        assert low <= duration <= high
