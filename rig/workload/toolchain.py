"""Simulated Node toolchain over a corpus: jest runs and tsc checks, in their own output formats.

Results follow the session's copy of the files: a known defect fails its test
until an edit removes the defect's marker; a test suite or module that imports
a file that does not exist fails the way jest and tsc report it.

What is read from one file (its imports, exports, tests) depends on its text alone, so
it is memoised on the text: every session shares the corpus's unedited files, and each
``run_jest`` or ``typecheck`` would otherwise rerun the regexes over all of them.
"""

from __future__ import annotations

import functools
import posixpath
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rig.workload.corpus import Corpus, Defect

__all__ = [
    "JestCase",
    "JestRun",
    "TypeCheck",
    "discover_tests",
    "jest_suites",
    "run_jest",
    "typecheck",
]

# Mirrors testMatch in the corpus's jest.config.js: **/__tests__/**/*.test.ts?(x)
_TEST_FILE = re.compile(r"(^|/)__tests__/(.+/)?[^/]+\.test\.tsx?$")
_SOURCE_FILE = re.compile(r"\.(ts|tsx)$")
_RESOLVE_SUFFIXES = ("", ".ts", ".tsx", ".js", ".jsx", ".json", "/index.ts", "/index.tsx")
_BLOCK = re.compile(r"""^(\s*)(describe|it|test)(\.each)?\(\s*(['"`])(.*?)\4""")
_EACH_START = re.compile(r"""^(\s*)(it|test)\.each\(\s*\[\s*$""")
_EACH_END = re.compile(r"""^\s*\]\)\(\s*(['"`])(.*?)\1""")
_QUOTED = re.compile(r"""'([^']*)'|"([^"]*)"|(-?\d+(?:\.\d+)?)""")
_IMPORT = re.compile(
    r"""^\s*(?:import\s+(?:type\s+)?(?P<clause>[^'";]*?)\s+from\s+|import\s+|export\s+[^'";]*?\s+from\s+)"""
    r"""(?P<q>['"])(?P<spec>[^'"]+)(?P=q)""",
    re.MULTILINE,
)
_EXPORT_DECL = re.compile(
    r"^export\s+(?:declare\s+)?(?:default\s+)?(?:async\s+)?"
    r"(?:function\*?|const|let|var|class|interface|type|enum|abstract\s+class)\s+(\w+)",
    re.MULTILINE,
)
_EXPORT_LIST = re.compile(r"^export\s+(?:type\s+)?\{([^}]*)\}", re.MULTILINE)
_CROSS, _CHECK, _SKIP = "\u2715", "\u2713", "\u25cb"
_SUMMARY_THRESHOLD = 20
"""Jest repeats the failures at the end only when more suites than this ran (its default)."""
_SEP = " \u203a "  # jest joins describe and test names with a single right angle quote
_MEMO_FILES = 4096
"""File texts whose analysis is kept (least recently used dropped): the corpus's files
plus the edited versions of the sessions working at once."""


@dataclass(frozen=True)
class JestCase:
    """One test found in a test file: its describe path, title and line."""

    describes: tuple[str, ...]
    title: str
    line: int

    @property
    def full_name(self) -> str:
        """The name jest prints after a failure bullet: describe names and title."""
        return _SEP.join((*self.describes, self.title))


@dataclass(frozen=True)
class JestRun:
    """The result of one simulated jest invocation."""

    output: str
    exit_code: int
    failed: int
    passed: int
    skipped: int
    failed_names: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Tests counted in the summary line."""
        return self.failed + self.passed + self.skipped


@dataclass(frozen=True)
class TypeCheck:
    """The result of one simulated ``tsc --noEmit``."""

    output: str
    exit_code: int
    errors: tuple[str, ...] = field(default=())


def jest_suites(corpus: Corpus) -> list[str]:
    """Test files (suites) jest would run, sorted."""
    return sorted(path for path in corpus.files if _TEST_FILE.search(path))


def discover_tests(source: str) -> list[JestCase]:
    """Tests in a jest test file, in order, including each row of ``it.each`` tables.

    Nesting is read from indentation, which holds for formatted code.
    """
    return list(_discovered(source))


@functools.lru_cache(maxsize=_MEMO_FILES)
def _discovered(source: str) -> tuple[JestCase, ...]:
    cases: list[JestCase] = []
    stack: list[tuple[int, str]] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        each = _EACH_START.match(line)
        if each:
            indent = len(each.group(1))
            stack = [entry for entry in stack if entry[0] < indent]
            rows: list[list[str]] = []
            start = i + 1
            i += 1
            while i < len(lines) and not _EACH_END.match(lines[i]):
                values = [
                    next(v for v in m.groups() if v is not None) for m in _QUOTED.finditer(lines[i])
                ]
                if values:
                    rows.append(values)
                i += 1
            end = _EACH_END.match(lines[i]) if i < len(lines) else None
            template = end.group(2) if end else "%s"
            describes = tuple(name for _, name in stack)
            for offset, row in enumerate(rows):
                cases.append(JestCase(describes, _printf(template, row), start + offset + 1))
            i += 1
            continue
        block = _BLOCK.match(line)
        if block:
            indent, kind, name = len(block.group(1)), block.group(2), block.group(5)
            stack = [entry for entry in stack if entry[0] < indent]
            if kind == "describe":
                stack.append((indent, name))
            else:
                cases.append(JestCase(tuple(n for _, n in stack), name, i + 1))
        i += 1
    return tuple(cases)


def _printf(template: str, values: Sequence[str]) -> str:
    parts = iter(values)
    return re.sub(r"%[sdpi]", lambda _: next(parts, ""), template)


# -- module resolution -----------------------------------------------------------


def _resolve(corpus: Corpus, importer: str, spec: str) -> str | None:
    files = corpus.files
    for candidate in _candidates(importer, spec):
        if candidate in files:
            return candidate
    return None


@functools.lru_cache(maxsize=_MEMO_FILES)
def _candidates(importer: str, spec: str) -> tuple[str, ...]:
    """The paths ``spec`` imported from ``importer`` may resolve to, in order."""
    base = posixpath.normpath(posixpath.join(posixpath.dirname(importer), spec))
    return tuple(base + suffix for suffix in _RESOLVE_SUFFIXES)


@dataclass(frozen=True, slots=True)
class _Import:
    """One relative import statement of a module."""

    line: int
    column: int
    """Where the specifier starts on its line (0-based, as tsc's message gives it)."""
    clause: str
    spec: str


@functools.lru_cache(maxsize=_MEMO_FILES)
def _imports(source: str) -> tuple[_Import, ...]:
    """Relative imports, in order."""
    found = []
    lines: list[str] | None = None
    for match in _IMPORT.finditer(source):
        spec = match.group("spec")
        if spec.startswith("."):
            line = source.count("\n", 0, match.start("spec")) + 1
            if lines is None:
                lines = source.splitlines()
            column = lines[line - 1].find(spec) if line <= len(lines) else 0
            found.append(_Import(line, column, match.group("clause") or "", spec))
    return tuple(found)


def _missing_module(corpus: Corpus, path: str) -> tuple[str, int, str] | None:
    """First unresolvable relative import reachable from ``path``: (importer, line, spec)."""
    seen: set[str] = set()
    pending = [path]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        for found in _imports(corpus.files.get(current, "")):
            target = _resolve(corpus, current, found.spec)
            if target is None:
                if found.spec.endswith((".css", ".less")):
                    continue  # mapped to identity-obj-proxy
                return current, found.line, found.spec
            if _SOURCE_FILE.search(target):
                pending.append(target)
    return None


@functools.lru_cache(maxsize=_MEMO_FILES)
def _exported_names(source: str) -> frozenset[str] | None:
    """Names a module exports; None if it re-exports ``*`` and so cannot be known."""
    if re.search(r"^export\s+\*", source, re.MULTILINE):
        return None
    names = set(_EXPORT_DECL.findall(source))
    for group in _EXPORT_LIST.findall(source):
        for item in group.split(","):
            item = item.strip().removeprefix("type ").strip()
            if item:
                names.add(item.split(" as ")[-1].strip())
    if re.search(r"^export\s+default\b", source, re.MULTILINE):
        names.add("default")
    return frozenset(names)


@functools.lru_cache(maxsize=_MEMO_FILES)
def _imported_names(clause: str) -> tuple[str, ...]:
    return tuple(_clause_names(clause))


def _clause_names(clause: str) -> list[str]:
    names: list[str] = []
    clause = clause.strip()
    if not clause or clause.startswith("*"):
        return names
    default, _, rest = clause.partition("{")
    default = default.strip().rstrip(",").strip()
    if default and not default.startswith("type "):
        names.append("default")
    if rest:
        for item in rest.rstrip("}").split(","):
            item = item.strip().removeprefix("type ").strip()
            if item:
                names.append(item.split(" as ")[0].strip())
    return names


# -- tsc ---------------------------------------------------------------------------


def typecheck(corpus: Corpus) -> TypeCheck:
    """``tsc --noEmit``: unresolvable relative imports and missing named exports."""
    errors: list[str] = []
    for path in sorted(corpus.files):
        if not (path.startswith("src/") and _SOURCE_FILE.search(path)):
            continue
        for found in _imports(corpus.files[path]):
            line, column, spec = found.line, found.column, found.spec
            target = _resolve(corpus, path, spec)
            if target is None:
                if spec.endswith((".css", ".less")):
                    continue
                errors.append(
                    f"{path}({line},{column}): error TS2307: Cannot find module '{spec}' "
                    "or its corresponding type declarations."
                )
                continue
            exported = _exported_names(corpus.files[target])
            if exported is None:
                continue
            for name in _imported_names(found.clause):
                if name not in exported:
                    message = (
                        f"Module '\"{spec}\"' has no default export."
                        if name == "default"
                        else f"Module '\"{spec}\"' has no exported member '{name}'."
                    )
                    code = "TS1192" if name == "default" else "TS2305"
                    errors.append(f"{path}({line},{column}): error {code}: {message}")
    if not errors:
        return TypeCheck("", 0)
    files = sorted({error.split("(", 1)[0] for error in errors})
    if len(errors) == 1:
        first_line = errors[0].split("(", 1)[1].split(",", 1)[0]
        footer = f"Found 1 error in {files[0]}:{first_line}"
    else:
        footer = f"Found {len(errors)} errors in {len(files)} file{'s' if len(files) > 1 else ''}."
    output = "\n".join(errors) + f"\n\n{footer}\n"
    return TypeCheck(output, 2, tuple(errors))


# -- jest --------------------------------------------------------------------------


@dataclass
class _Suite:
    path: str
    outcomes: list[tuple[JestCase, str]]  # outcome: passed | failed | skipped
    failures: list[str]  # rendered "●" blocks
    crashed: bool = False

    @property
    def status(self) -> str:
        if self.crashed or any(o == "failed" for _, o in self.outcomes):
            return "FAIL"
        return "PASS"

    @property
    def ran(self) -> bool:
        return self.crashed or any(o != "skipped" for _, o in self.outcomes)


def run_jest(
    corpus: Corpus,
    path_patterns: Sequence[str] = (),
    name_pattern: str | None = None,
    duration_s: float = 3.0,
    seed: int = 0,
    verbose: bool = False,
) -> JestRun:
    """Run jest over the corpus as it is now; ``duration_s`` is the wall time to report.

    Like jest's default reporter: each test is listed when one suite runs or ``verbose``
    is set, and the failures are repeated at the end only for runs of more than 20 suites.
    """
    rng = random.Random(seed)
    files = jest_suites(corpus)
    selected = [path for path in files if _path_selected(corpus, path, path_patterns)]
    if not selected:
        return _no_tests_found(corpus, files, path_patterns)
    name_regex = _compile(name_pattern) if name_pattern else None
    suites = [_run_suite(corpus, path, name_regex) for path in selected]

    verbose = verbose or sum(1 for suite in suites if suite.ran) == 1
    out: list[str] = []
    for suite in sorted(suites, key=lambda s: (not s.ran, s.path)):
        if not suite.ran:
            continue
        out.append(f"{suite.status} {suite.path}")
        if verbose:
            out.extend(_verbose_tree(suite, rng))
            out.append("")
        for block in suite.failures:
            out.append(block)
    failing = [suite for suite in suites if suite.status == "FAIL"]
    if failing and len(suites) > _SUMMARY_THRESHOLD:
        out.append("Summary of all failing tests")
        for suite in failing:
            out.append(f"FAIL {suite.path}")
            out.extend(suite.failures)
        out.append("")

    if out and out[-1]:
        out.append("")  # the summary is set off by a blank line
    outcomes = [outcome for suite in suites for _, outcome in suite.outcomes]
    failed, passed = outcomes.count("failed"), outcomes.count("passed")
    skipped = outcomes.count("skipped")
    suites_failed = len(failing)
    suites_ran = sum(1 for s in suites if s.ran)
    suites_skipped = len(suites) - suites_ran
    out.append(
        "Test Suites: "
        + _counts(
            suites_failed, suites_ran - suites_failed, suites_skipped, len(suites), suites_ran
        )
    )
    out.append("Tests:       " + _counts(failed, passed, skipped, len(outcomes), None))
    out.append("Snapshots:   0 total")
    out.append(f"Time:        {max(duration_s - 0.4, 0.5):.3f} s")
    out.append(_ran_line(path_patterns, name_pattern))
    exit_code = 1 if failing else 0
    failed_names = tuple(
        case.full_name
        for suite in suites
        for case, outcome in suite.outcomes
        if outcome == "failed"
    )
    return JestRun("\n".join(out) + "\n", exit_code, failed, passed, skipped, failed_names)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(pattern), re.IGNORECASE)


def _path_selected(corpus: Corpus, path: str, patterns: Sequence[str]) -> bool:
    if not patterns:
        return True
    absolute = f"{corpus.root}/{path}"
    for pattern in patterns:
        cleaned = pattern.strip().removeprefix("./")
        if not cleaned:
            return True
        if cleaned in path or _compile(cleaned).search(absolute):
            return True
    return False


def _run_suite(corpus: Corpus, path: str, name_regex: re.Pattern[str] | None) -> _Suite:
    missing = _missing_module(corpus, path)
    if missing is not None:
        return _Suite(path, [], [_suite_crash(corpus, path, *missing)], crashed=True)
    cases = discover_tests(corpus.files[path])
    active = {
        d.test: d
        for d in corpus.defects
        if d.test_file == path and d.marker in corpus.files.get(d.file, "")
    }
    outcomes: list[tuple[JestCase, str]] = []
    failures: list[str] = []
    for case in cases:
        if name_regex is not None and not name_regex.search(case.full_name):
            outcomes.append((case, "skipped"))
        elif case.full_name in active:
            outcomes.append((case, "failed"))
            failures.append(_failure_block(corpus, path, case, active[case.full_name]))
        else:
            outcomes.append((case, "passed"))
    return _Suite(path, outcomes, failures)


def _verbose_tree(suite: _Suite, rng: random.Random) -> list[str]:
    lines: list[str] = []
    printed: tuple[str, ...] = ()
    for case, outcome in suite.outcomes:
        for depth, name in enumerate(case.describes):
            if printed[: depth + 1] != case.describes[: depth + 1]:
                lines.append("  " * (depth + 1) + name)
        printed = case.describes
        indent = "  " * (len(case.describes) + 1)
        if outcome == "skipped":
            lines.append(f"{indent}{_SKIP} skipped {case.title}")
            continue
        mark = _CHECK if outcome == "passed" else _CROSS
        millis = rng.choice((0, 0, 1, 2, 3, 5, 12)) if outcome == "passed" else rng.randint(3, 9)
        timing = f" ({millis} ms)" if millis else ""
        lines.append(f"{indent}{mark} {case.title}{timing}")
    return lines


def _code_frame(source_lines: list[str], line: int, column: int) -> list[str]:
    first, last = max(line - 2, 1), min(line + 3, len(source_lines))
    width = len(str(last))
    frame = []
    for number in range(first, last + 1):
        text = source_lines[number - 1]
        gutter = f"{number:>{width}} |"
        marker = "    > " if number == line else "      "
        frame.append(f"{marker}{gutter}{' ' + text if text else ''}")
        if number == line:
            frame.append(f"      {' ' * width} |{' ' * column}^")
    return frame


def _failure_block(corpus: Corpus, path: str, case: JestCase, defect: Defect) -> str:
    lines = [
        f"  \u25cf {case.full_name}",
        "",
        f"    {defect.matcher}",
        "",
        f"    Expected: {defect.expected}",
        f"    Received: {defect.received}",
        "",
    ]
    source_lines = corpus.files[path].splitlines()
    where = next(
        (
            n
            for n, text in enumerate(source_lines, 1)
            if defect.assertion in text and n >= case.line
        ),
        None,
    )
    if where is not None:
        column = source_lines[where - 1].index(defect.assertion) + 1
        lines.extend(_code_frame(source_lines, where, column))
        lines.append("")
        frame_name = defect.assertion.split("(", 1)[0].strip(".") or "<anonymous>"
        lines.append(f"      at Object.{frame_name} ({path}:{where}:{column})")
    else:
        lines.append(f"      at Object.<anonymous> ({path}:{case.line}:1)")
    lines.append("")
    return "\n".join(lines)


def _suite_crash(corpus: Corpus, path: str, importer: str, line: int, spec: str) -> str:
    lines = [
        "  \u25cf Test suite failed to run",
        "",
        f"    Cannot find module '{spec}' from '{importer}'",
        "",
    ]
    if importer != path:
        lines.extend(["    Require stack:", f"      {importer}", f"      {path}", ""])
    source_lines = corpus.files[importer].splitlines()
    if 0 < line <= len(source_lines):
        lines.extend(_code_frame(source_lines, line, 1))
        lines.append("")
    lines.append(
        "      at Resolver._throwModNotFoundError "
        "(node_modules/jest-resolve/build/resolver.js:427:11)"
    )
    lines.append(f"      at Object.<anonymous> ({importer}:{line}:1)")
    lines.append("")
    return "\n".join(lines)


def _counts(failed: int, passed: int, skipped: int, total: int, ran: int | None) -> str:
    parts = []
    if failed:
        parts.append(f"{failed} failed")
    if skipped:
        parts.append(f"{skipped} skipped")
    if passed:
        parts.append(f"{passed} passed")
    if ran is not None and skipped:
        parts.append(f"{ran} of {total} total")
    else:
        parts.append(f"{total} total")
    return ", ".join(parts)


def _ran_line(path_patterns: Sequence[str], name_pattern: str | None) -> str:
    text = "Ran all test suites"
    patterns = [p for p in path_patterns if p.strip()]
    if patterns:
        text += " matching " + "|".join(f"/{p}/i" for p in patterns)
    if name_pattern:
        text += f' with tests matching "{name_pattern}"'
    return text + "."


def _no_tests_found(corpus: Corpus, files: list[str], patterns: Sequence[str]) -> JestRun:
    pattern = "|".join(patterns)
    sources = sum(1 for path in corpus.files if path.startswith("src/"))
    output = (
        "No tests found, exiting with code 1\n"
        "Run with `--passWithNoTests` to exit with code 0\n"
        f"In {corpus.root}\n"
        f"  {len(corpus.files)} files checked.\n"
        f"  roots: {corpus.root}/src - {sources} matches\n"
        f"  testMatch: **/__tests__/**/*.test.ts?(x) - {len(files)} matches\n"
        f"  testPathIgnorePatterns: /node_modules/ - {len(corpus.files)} matches\n"
        "  testRegex:  - 0 matches\n"
        f"Pattern: {pattern} - 0 matches\n"
    )
    return JestRun(output, 1, 0, 0, 0)
