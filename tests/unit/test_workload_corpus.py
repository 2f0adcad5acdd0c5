"""Specification of the project corpus, the tool definitions and the simulated toolchain."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from rig.workload import toolchain
from rig.workload.corpus import Corpus, CorpusError, available_corpora
from rig.workload.toolchain import discover_tests, jest_suites, run_jest, typecheck
from rig.workload.tools import INSTRUCTIONS, TOOL_NAMES, TOOLS, chat_tools


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.load()


# -- corpus --------------------------------------------------------------------------


def test_webapp_is_a_realistic_small_repository(corpus: Corpus) -> None:
    sizes = [len(text.encode()) for text in corpus.files.values()]
    assert 50_000 <= sum(sizes) <= 100_000
    assert len([p for p in corpus.files if p.startswith("src/components/")]) >= 6
    for path in ("package.json", "tsconfig.json", "jest.config.js", "README.md", "src/App.tsx"):
        assert path in corpus.files
    assert all(size <= 4_096 for size in sizes)


def test_corpus_is_listed_as_built_in() -> None:
    assert "webapp" in available_corpora()


def test_unknown_corpus_names_the_known_ones() -> None:
    with pytest.raises(CorpusError, match=r"unknown corpus 'nope'.*webapp"):
        Corpus.load("nope")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("defects: 3\n", r"mine\.yaml: defects: expected a list of mappings"),
        ("defects: [x]\n", r"mine\.yaml: defects\[0\]: expected a mapping"),
        ("git_log: 3\n", r"mine\.yaml: git_log: expected a list of strings"),
    ],
)
def test_a_malformed_corpus_yaml_names_the_file_and_field(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.ts").write_text("export {};\n")
    (tmp_path / "mine.yaml").write_text(yaml_text)
    with pytest.raises(CorpusError, match=message):
        Corpus.load(str(tmp_path / "mine"))


def test_load_gives_independent_copies() -> None:
    first, second = Corpus.load(), Corpus.load()
    first.write("src/new.ts", "export {};\n")
    assert "src/new.ts" not in second.files


def test_read_accepts_relative_dotted_and_absolute_paths(corpus: Corpus) -> None:
    text = corpus.files["src/App.tsx"]
    assert corpus.read("./src/App.tsx") == text
    assert corpus.read(f"{corpus.root}/src/App.tsx") == text
    assert corpus.read("src/components/../App.tsx") == text


def test_read_rejects_missing_files_directories_and_escapes(corpus: Corpus) -> None:
    with pytest.raises(FileNotFoundError):
        corpus.read("src/missing.ts")
    with pytest.raises(IsADirectoryError):
        corpus.read("src/api")
    with pytest.raises(FileNotFoundError):
        corpus.read("../etc/passwd")


def test_list_dir_shows_directories_with_a_slash(corpus: Corpus) -> None:
    assert corpus.list_dir("src/api") == ["client.ts", "projects.ts", "tasks.ts", "types.ts"]
    assert "utils/" in corpus.list_dir("src")


def test_grep_finds_lines_with_glob_and_brace_expansion(corpus: Corpus) -> None:
    hits = corpus.grep("toISODate", "src", "*.{ts,tsx}")
    assert {hit.path for hit in hits} == {
        "src/utils/formatDate.ts",
        "src/__tests__/formatDate.test.ts",
    }
    assert str(hits[0]).startswith(f"{hits[0].path}:{hits[0].line}:")


def test_grep_treats_an_invalid_regex_as_a_literal(corpus: Corpus) -> None:
    assert corpus.grep("toISODate(", "src/utils")[0].path == "src/utils/formatDate.ts"


def test_the_known_defect_is_present_in_the_corpus(corpus: Corpus) -> None:
    (defect,) = corpus.defects
    assert defect.marker in corpus.files[defect.file]
    assert defect.test_file in jest_suites(corpus)


# -- toolchain -----------------------------------------------------------------------


def test_discover_tests_expands_each_tables_and_nesting() -> None:
    source = (
        "describe('outer', () => {\n"
        "  it('first', () => {});\n"
        "  describe('inner', () => {\n"
        "    it.each([\n"
        "      ['a', 1],\n"
        "      ['b', 2],\n"
        "    ])('%s is %s', () => {});\n"
        "  });\n"
        "  test('last', () => {});\n"
        "});\n"
    )
    names = [case.full_name for case in discover_tests(source)]
    assert names == [
        "outer \u203a first",
        "outer \u203a inner \u203a a is 1",
        "outer \u203a inner \u203a b is 2",
        "outer \u203a last",
    ]


def test_jest_on_the_pristine_corpus_reports_the_one_defect(corpus: Corpus) -> None:
    run = run_jest(corpus)
    assert run.exit_code == 1
    assert run.failed == 1
    assert run.failed_names == (corpus.defects[0].test,)
    assert "FAIL src/__tests__/formatDate.test.ts" in run.output
    assert f"Tests:       1 failed, {run.passed} passed, {run.total} total" in run.output


def test_typecheck_is_clean_on_the_pristine_corpus(corpus: Corpus) -> None:
    assert typecheck(corpus).exit_code == 0


def test_typecheck_reports_a_missing_module() -> None:
    corpus = Corpus.load()
    corpus.delete("src/components/Header.tsx")
    check = typecheck(corpus)
    assert check.exit_code == 2
    assert "src/App.tsx(6,24): error TS2307: Cannot find module './components/Header'" in (
        check.output
    )


def test_typecheck_reports_a_missing_named_export() -> None:
    corpus = Corpus.load()
    corpus.write("src/utils/classNames.ts", "export function classes(): string { return ''; }\n")
    assert any("has no exported member 'cx'" in error for error in typecheck(corpus).errors)


def test_memoised_file_analysis_agrees_with_a_fresh_one_after_edits() -> None:
    corpus = Corpus.load()
    pristine = (typecheck(corpus), run_jest(corpus, verbose=True))  # memoises every file
    test_file = corpus.defects[0].test_file
    corpus.write(
        "src/utils/classNames.ts",
        "import { gone } from './gone';\nexport function classes(): string { return gone; }\n",
    )
    corpus.write(
        test_file,
        corpus.files[test_file] + "\nit('was added by the agent', () => expect(1).toBe(1));\n",
    )
    memoised = (typecheck(corpus), run_jest(corpus, verbose=True))
    for memo in (
        toolchain._imports,
        toolchain._exported_names,
        toolchain._imported_names,
        toolchain._discovered,
        toolchain._candidates,
    ):
        memo.cache_clear()
    fresh = (typecheck(corpus), run_jest(corpus, verbose=True))
    assert memoised == fresh
    assert memoised != pristine
    assert "was added by the agent" in memoised[1].output
    assert "Cannot find module './gone'" in memoised[0].output


# -- tool definitions ----------------------------------------------------------------


def test_instructions_and_tools_come_to_about_two_kilobytes() -> None:
    size = len(orjson.dumps(INSTRUCTIONS)) + len(orjson.dumps(TOOLS))
    assert 1_800 <= size <= 2_400


def test_tools_are_responses_api_function_tools() -> None:
    for tool in TOOLS:
        assert tool["type"] == "function"
        assert tool["strict"] is False
        assert tool["parameters"]["type"] == "object"
        assert set(tool["parameters"]["required"]) <= set(tool["parameters"]["properties"])
    assert (
        {tool["name"] for tool in TOOLS}
        == TOOL_NAMES
        == {
            "read_file",
            "list_dir",
            "search",
            "write_file",
            "apply_patch",
            "run_tests",
            "run_command",
        }
    )


def test_chat_tools_converts_to_chat_completions_format() -> None:
    converted = chat_tools(TOOLS)
    assert converted[0] == {
        "type": "function",
        "function": {
            "name": TOOLS[0]["name"],
            "description": TOOLS[0]["description"],
            "parameters": TOOLS[0]["parameters"],
        },
    }
    assert len(converted) == len(TOOLS)


def test_chat_tools_drops_non_function_tools_and_keeps_chat_ones() -> None:
    chat_tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert chat_tools([{"type": "web_search"}, chat_tool]) == [chat_tool]


@pytest.mark.parametrize(
    "pattern",
    ["useState", "export function", r"^import", r"\)$", r"\Aimport", "fetch.*Tasks", r"(?<!.)const",
     r"describe\(", "no such text anywhere", r"\s+return"],
)  # fmt: skip
def test_grep_finds_exactly_the_lines_a_line_by_line_search_finds(
    corpus: Corpus, pattern: str
) -> None:
    regex = re.compile(pattern)
    expected = [
        (path, number, line)
        for path in corpus.walk("", None)
        for number, line in enumerate(corpus.files[path].splitlines(), start=1)
        if regex.search(line)
    ]
    got = [(hit.path, hit.line, hit.text) for hit in corpus.grep(pattern)]
    assert got == expected
