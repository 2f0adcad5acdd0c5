"""Tool simulator: answers a coding agent's tool calls from a corpus, the way a harness would.

One simulator per agent session: writes and patches change that session's
copy of the corpus, and later reads, searches, test runs and ``git diff`` see
them. Any call a model can make gets an answer and never an exception: unknown
tools, bad JSON and missing files produce the error text a real harness would
send back. Durations are simulated wall times, deterministic under the seed.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from rig.errors import RigError
from rig.workload.corpus import Corpus
from rig.workload.patch import PatchError, apply_patch
from rig.workload.toolchain import run_jest, typecheck
from rig.workload.tools import TOOL_NAMES

__all__ = ["MAX_OUTPUT_BYTES", "ToolResult", "ToolSimulator"]

MAX_OUTPUT_BYTES = 8192
"""Outputs longer than this are cut, as agent harnesses do, with a marker saying so."""

_MAX_SEARCH_HITS = 50
_MAX_HIT_CHARS = 200
_MAX_SNIPPET_LINES = 30

# Simulated wall time per tool, seconds (low, high).
_DURATIONS: dict[str, tuple[float, float]] = {
    "read_file": (0.005, 0.030),
    "list_dir": (0.003, 0.015),
    "search": (0.020, 0.080),
    "write_file": (0.005, 0.020),
    "apply_patch": (0.010, 0.040),
    "run_tests": (1.5, 6.0),
    "run_command": (0.2, 3.0),
}
_ERROR_DURATION = (0.001, 0.004)

_NPM_INSTALL = (
    "\nup to date, audited 612 packages in 2s\n\n"
    "98 packages are looking for funding\n  run `npm fund` for details\n\n"
    "found 0 vulnerabilities\n"
)
_GIT_CLEAN = (
    "On branch main\nYour branch is up to date with 'origin/main'.\n\n"
    "nothing to commit, working tree clean\n"
)

# Argument names real models use for the same thing, first one canonical.
_ALIASES: dict[str, tuple[str, ...]] = {
    "path": (
        "path",
        "file_path",
        "filepath",
        "filename",
        "file",
        "target_file",
        "relative_path",
        "dir",
        "directory",
        "dir_path",
        "folder",
    ),
    "start_line": ("start_line", "offset", "line_start", "from_line", "start", "line"),
    "end_line": ("end_line", "line_end", "to_line", "end"),
    "limit": ("limit", "max_lines", "num_lines", "lines"),
    "pattern": ("pattern", "query", "regex", "search", "q", "term", "text"),
    "glob": ("glob", "include", "file_pattern", "files", "file_glob"),
    "ignore_case": ("ignore_case", "case_insensitive", "-i", "i"),
    "content": ("content", "contents", "file_text", "text", "data", "new_content", "code", "body"),
    "patch": ("patch", "diff", "input", "patch_text", "changes", "unified_diff"),
    "command": ("command", "cmd", "script", "shell", "command_line", "commandLine", "args", "argv"),
    "test_path": (
        "path",
        "test_path",
        "file",
        "files",
        "pattern",
        "testPathPattern",
        "target",
        "tests",
    ),
    "test_name": ("test_name", "name", "testNamePattern", "grep", "filter", "t", "test"),
    "recursive": ("recursive", "recurse", "all"),
}


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returned to the model, and how long it took."""

    output: str
    duration_s: float
    ok: bool


# A tool implementation: parsed arguments and the call's RNG -> (output, ok, duration_s).
_Handler = Callable[[dict[str, Any], random.Random], tuple[str, bool, float]]


class _ToolError(RigError):
    """A tool call the harness refuses; the message goes back to the model."""


class ToolSimulator:
    """Runs one agent session's tool calls against its own copy of a corpus."""

    def __init__(self, corpus: Corpus, seed: int = 0) -> None:
        self.workspace = corpus.copy()
        self._baseline = dict(corpus.files)
        self._seed = seed
        self._calls = 0
        self._handlers: dict[str, _Handler] = {
            "read_file": self._read_file,
            "list_dir": self._list_dir,
            "search": self._search,
            "write_file": self._write_file,
            "apply_patch": self._apply_patch,
            "run_tests": self._run_tests,
            "run_command": self._run_command,
        }

    def changed_files(self) -> dict[str, str]:
        """Files that differ from the corpus: path -> A (added), M (modified) or D (deleted)."""
        status = {}
        for path, content in self.workspace.files.items():
            if path not in self._baseline:
                status[path] = "A"
            elif self._baseline[path] != content:
                status[path] = "M"
        for path in self._baseline:
            if path not in self.workspace.files:
                status[path] = "D"
        return dict(sorted(status.items()))

    def run(self, name: str, arguments: str | Mapping[str, Any] | None) -> ToolResult:
        """Run one tool call; never raises."""
        self._calls += 1
        rng = self._rng(name, arguments)
        handler = self._handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(TOOL_NAMES))
            return _error(f"Error: unknown tool {name!r}. Available tools: {known}", rng)
        try:
            args = _parse_arguments(arguments)
            output, ok, duration = handler(args, rng)
        except _ToolError as exc:
            return _error(f"Error: {exc}", rng)
        except Exception as exc:  # a harness reports a crashing tool to the model, never raises
            return _error(f"Error: {name} failed: {type(exc).__name__}: {exc}", rng)
        return ToolResult(_cap(output), round(duration, 4), ok)

    # -- helpers ---------------------------------------------------------------

    def _rng(self, name: str, arguments: object) -> random.Random:
        text = arguments if isinstance(arguments, str) else repr(arguments)
        digest = hashlib.blake2b(
            f"{self._seed}\x00{self._calls}\x00{name}\x00{text}".encode(), digest_size=8
        ).digest()
        return random.Random(int.from_bytes(digest, "big"))

    def _path(
        self, args: dict[str, Any], required: bool = True, default: str = ""
    ) -> tuple[str, str | None]:
        """The path argument as given and normalized (None if outside the repository)."""
        raw = _get(args, "path")
        if raw is None or raw == "":
            if required:
                raise _ToolError("missing required argument 'path'")
            raw = default
        if not isinstance(raw, str):
            raise _ToolError(f"argument 'path' must be a string, got {type(raw).__name__}")
        return raw, self.workspace.normalize(raw)

    # -- tools -----------------------------------------------------------------

    def _read_file(self, args: dict[str, Any], rng: random.Random) -> tuple[str, bool, float]:
        raw, path = self._path(args)
        duration = rng.uniform(*_DURATIONS["read_file"])
        if path is None or (path not in self.workspace.files and not self.workspace.is_dir(path)):
            return f"ENOENT: no such file or directory, open '{raw}'", False, duration
        if path not in self.workspace.files:
            return f"EISDIR: illegal operation on a directory, read '{raw}'", False, duration
        lines = self.workspace.files[path].splitlines()
        if not lines:
            return "(empty file)", True, duration
        start = _int(_get(args, "start_line"), 1)
        end = _int(_get(args, "end_line"), 0)
        limit = _int(_get(args, "limit"), 0)
        start = max(start, 1)
        if start > len(lines):
            return (
                f"Error: start_line {start} is past the end of {path} ({len(lines)} lines)",
                False,
                duration,
            )
        if end <= 0:
            end = start + limit - 1 if limit > 0 else len(lines)
        end = min(max(end, start), len(lines))
        out: list[str] = []
        size = 0
        shown_end = start - 1
        for number in range(start, end + 1):
            row = f"{number:>6}\t{lines[number - 1]}"
            if size + len(row) + 1 > MAX_OUTPUT_BYTES - 200:
                break
            out.append(row)
            size += len(row) + 1
            shown_end = number
        if shown_end < end:
            out.append(
                f"... [truncated: showing lines {start}-{shown_end} of {len(lines)}; "
                "use start_line/end_line to read the rest]"
            )
        elif start > 1 or end < len(lines):
            out.append(f"... [lines {start}-{end} of {len(lines)}]")
        return "\n".join(out), True, duration

    def _list_dir(self, args: dict[str, Any], rng: random.Random) -> tuple[str, bool, float]:
        raw, _ = self._path(args, required=False, default=".")
        recursive = _bool(_get(args, "recursive"))
        duration = rng.uniform(*_DURATIONS["list_dir"])
        try:
            entries = self.workspace.list_dir(raw, recursive=recursive)
        except NotADirectoryError:
            return f"ENOTDIR: not a directory, scandir '{raw}'", False, duration
        except FileNotFoundError:
            return f"ENOENT: no such file or directory, scandir '{raw}'", False, duration
        return "\n".join(entries), True, duration

    def _search(self, args: dict[str, Any], rng: random.Random) -> tuple[str, bool, float]:
        pattern = _get(args, "pattern")
        if not isinstance(pattern, str) or not pattern:
            raise _ToolError("missing required argument 'pattern'")
        raw, _ = self._path(args, required=False, default=".")
        glob = _get(args, "glob")
        glob = glob if isinstance(glob, str) and glob else None
        duration = rng.uniform(*_DURATIONS["search"])
        try:
            hits = self.workspace.grep(pattern, raw, glob, _bool(_get(args, "ignore_case")))
        except FileNotFoundError:
            return f"rg: {raw}: No such file or directory (os error 2)", False, duration
        if not hits:
            return "No matches found.", True, duration
        lines = [str(hit)[:_MAX_HIT_CHARS] for hit in hits[:_MAX_SEARCH_HITS]]
        if len(hits) > _MAX_SEARCH_HITS:
            lines.append(f"... [{len(hits) - _MAX_SEARCH_HITS} more matches; narrow the search]")
        return "\n".join(lines), True, duration

    def _write_file(self, args: dict[str, Any], rng: random.Random) -> tuple[str, bool, float]:
        raw, path = self._path(args)
        content = _get(args, "content")
        if content is None:
            raise _ToolError("missing required argument 'content'")
        if not isinstance(content, str):
            raise _ToolError(f"argument 'content' must be a string, got {type(content).__name__}")
        duration = rng.uniform(*_DURATIONS["write_file"])
        if not path:
            return f"EACCES: permission denied, open '{raw}'", False, duration
        if self.workspace.is_dir(path):
            return f"EISDIR: illegal operation on a directory, open '{raw}'", False, duration
        if any(self.workspace.is_file(parent) for parent in _parents(path)):
            return f"ENOTDIR: not a directory, open '{raw}'", False, duration
        before = self.workspace.files.get(path)
        self.workspace.write(path, content)
        size = len(content.encode())
        if before is None:
            return f"Created {path} ({size} bytes)", True, duration
        snippet = _edited_snippet(path, before, content, max_lines=_MAX_SNIPPET_LINES)
        return f"Overwrote {path} ({size} bytes)\n\n{snippet}", True, duration

    def _apply_patch(self, args: dict[str, Any], rng: random.Random) -> tuple[str, bool, float]:
        patch = _get(args, "patch")
        if not isinstance(patch, str) or not patch.strip():
            raise _ToolError("missing required argument 'patch'")
        duration = rng.uniform(*_DURATIONS["apply_patch"])
        try:
            changes = apply_patch(self.workspace, patch)
        except PatchError as exc:
            return str(exc), False, duration
        # What Codex's apply_patch answers: the files and how they changed, no contents
        # (the model wrote the hunks itself; it reads the file again if it needs more).
        listing = "".join(f"{status} {path}\n" for status, path in changes)
        return f"Success. Updated the following files:\n{listing}", True, duration

    def _run_tests(self, args: dict[str, Any], rng: random.Random) -> tuple[str, bool, float]:
        raw = _get(args, "test_path")
        patterns = _string_list(raw)
        name = _get(args, "test_name")
        name = name if isinstance(name, str) and name else None
        output, code, duration = self._jest(patterns, name, rng)
        return output, code == 0, duration

    def _jest(
        self, patterns: list[str], name: str | None, rng: random.Random, verbose: bool = False
    ) -> tuple[str, int, float]:
        low, high = _DURATIONS["run_tests"]
        # One suite starts jest and ts-jest (the floor); the whole suite takes longer.
        duration = rng.uniform(low, low + 1.0) if patterns else rng.uniform(high / 2, high)
        result = run_jest(
            self.workspace, patterns, name, duration, seed=rng.getrandbits(32), verbose=verbose
        )
        return result.output, result.exit_code, duration

    def _run_command(self, args: dict[str, Any], rng: random.Random) -> tuple[str, bool, float]:
        command = _get(args, "command")
        if isinstance(command, list) and all(isinstance(part, str) for part in command):
            command = shlex.join(command)
        if not isinstance(command, str) or not command.strip():
            raise _ToolError("missing required argument 'command'")
        output, code, duration = self._shell(command.strip(), rng)
        text = f"Exit code: {code}\nWall time: {duration:.1f} seconds\nOutput:\n{output}"
        return text, code == 0, duration

    # -- shell -----------------------------------------------------------------

    def _shell(self, command: str, rng: random.Random) -> tuple[str, int, float]:
        """A few commands agents run, chained with && and piped into head/tail/grep/wc."""
        total_duration = 0.0
        outputs: list[str] = []
        code = 0
        for part in _split_and(command):
            stages = [stage.strip() for stage in part.split("|")]
            output, code, duration = self._simple_command(stages[0], rng)
            for stage in stages[1:]:
                output = _filter(stage, output)
            outputs.append(output)
            total_duration += duration
            if code != 0:
                break
        return "".join(outputs), code, total_duration

    def _simple_command(self, command: str, rng: random.Random) -> tuple[str, int, float]:
        # Every command pays the harness's process start-up (the 0.2 s floor).
        low = _DURATIONS["run_command"][0]
        quick = rng.uniform(low, low * 2.5)
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            return f"bash: syntax error: {exc}\n", 2, quick
        argv = [arg for arg in argv if not re.fullmatch(r"\d?>&?\d?|2>&1", arg)]
        if not argv:
            return "", 0, quick
        program, rest = argv[0], argv[1:]
        if program == "cd":
            target = rest[0] if rest else "."
            norm = self.workspace.normalize(target)
            if norm == "" or (norm is not None and self.workspace.is_dir(norm)):
                return "", 0, quick
            return f"bash: cd: {target}: No such file or directory\n", 1, quick
        if program in ("npm", "yarn", "pnpm", "npx"):
            return self._package_manager(program, rest, rng)
        if program in ("jest", "tsc", "eslint", "vitest"):
            return self._package_manager("npx", argv, rng)
        if program == "git":
            return self._git(rest), 0, rng.uniform(low, low * 2)
        if program in (
            "ls",
            "tree",
            "find",
            "cat",
            "head",
            "tail",
            "wc",
            "grep",
            "rg",
            "sed",
            "pwd",
            "echo",
        ):
            output, code = self._coreutil(program, rest)
            return output, code, quick
        if program in ("node", "python", "python3") and rest[:1] == ["--version"]:
            version = "v20.11.1" if program == "node" else "Python 3.11.7"
            return version + "\n", 0, quick
        if program in ("rm", "mkdir", "touch", "mv", "cp"):
            return self._file_command(program, rest), 0, quick
        return f"bash: {program}: command not found\n", 127, rng.uniform(low, low * 1.2)

    def _package_manager(
        self, program: str, argv: list[str], rng: random.Random
    ) -> tuple[str, int, float]:
        package = self.workspace.package
        if program == "npx":
            tool, args = (argv[0], argv[1:]) if argv else ("", [])
            if tool == "jest":
                return self._jest_command(args, rng, header=None)
            if tool == "tsc":
                check = typecheck(self.workspace)
                return check.output, check.exit_code, rng.uniform(1.8, 3.0)
            if tool == "eslint":
                return "", 0, rng.uniform(1.0, 2.5)
            return "npm ERR! could not determine executable to run\n", 1, rng.uniform(0.5, 1.0)
        args = argv[1:] if argv[:1] == ["run"] else argv
        script, extra = (args[0], args[1:]) if args else ("", [])
        if program == "npm" and script in ("--version", "-v"):
            return "10.2.4\n", 0, rng.uniform(0.1, 0.3)
        if script in ("test", "t"):
            extra = extra[1:] if extra[:1] == ["--"] else extra
            header = f"\n> {package} test\n> jest{' ' + shlex.join(extra) if extra else ''}\n\n"
            return self._jest_command(extra, rng, header=header)
        if script in ("typecheck", "build", "lint"):
            scripts = {
                "typecheck": "tsc --noEmit",
                "build": "tsc --noEmit && vite build",
                "lint": "eslint 'src/**/*.{ts,tsx}'",
            }
            header = f"\n> {package} {script}\n> {scripts[script]}\n\n"
            if script == "lint":
                return header, 0, rng.uniform(1.2, 2.8)
            check = typecheck(self.workspace)
            if check.exit_code or script == "typecheck":
                return header + check.output, check.exit_code, rng.uniform(1.8, 3.0)
            return header + self._vite_build(rng), 0, rng.uniform(2.4, 3.0)
        if script in ("install", "i", "ci"):
            return _NPM_INSTALL, 0, rng.uniform(1.5, 3.0)
        return (
            f'npm ERR! Missing script: "{script}"\n\nTo see a list of scripts, run:\n  npm run\n',
            1,
            rng.uniform(0.2, 0.4),
        )

    def _jest_command(
        self, args: list[str], rng: random.Random, header: str | None
    ) -> tuple[str, int, float]:
        patterns: list[str] = []
        name: str | None = None
        verbose = "--verbose" in args
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in ("-t", "--testNamePattern") and i + 1 < len(args):
                name = args[i + 1]
                i += 2
                continue
            if arg.startswith("--testNamePattern="):
                name = arg.split("=", 1)[1]
            elif arg.startswith("--testPathPattern="):
                patterns.append(arg.split("=", 1)[1])
            elif not arg.startswith("-"):
                patterns.append(arg)
            i += 1
        output, code, duration = self._jest(patterns, name, rng, verbose)
        return (header or "") + output, code, duration

    def _vite_build(self, rng: random.Random) -> str:
        modules = sum(
            1
            for p in self.workspace.files
            if p.startswith("src/") and not p.startswith("src/__tests__/")
        )
        kilobytes = (
            142.0
            + sum(len(c) for p, c in self.workspace.files.items() if p.startswith("src/")) / 5000
        )
        return (
            "vite v5.1.4 building for production...\n"
            "transforming...\n"
            f"\u2713 {modules + 31} modules transformed.\n"
            "rendering chunks...\n"
            "computing gzip size...\n"
            "dist/index.html                   0.46 kB \u2502 gzip:  0.30 kB\n"
            "dist/assets/index-4f8a2c1e.css    1.79 kB \u2502 gzip:  0.71 kB\n"
            f"dist/assets/index-b3d9e0a7.js   {kilobytes:.2f} kB \u2502 "
            f"gzip: {kilobytes / 3.1:.2f} kB\n"
            f"\u2713 built in {rng.uniform(1.2, 2.2):.2f}s\n"
        )

    def _git(self, args: list[str]) -> str:
        sub = args[0] if args else ""
        changed = self.changed_files()
        if sub == "status":
            if not changed:
                return _GIT_CLEAN
            if "-s" in args or "--short" in args or "--porcelain" in args:
                return "".join(
                    f"{' M' if s == 'M' else ' D' if s == 'D' else '??'} {p}\n"
                    for p, s in changed.items()
                )
            lines = ["On branch main", "Your branch is up to date with 'origin/main'.", ""]
            tracked = [(p, s) for p, s in changed.items() if s != "A"]
            if tracked:
                lines += [
                    "Changes not staged for commit:",
                    '  (use "git add <file>..." to update what will be committed)',
                    "",
                ]
                lines += [f"\t{'modified' if s == 'M' else 'deleted'}:   {p}" for p, s in tracked]
                lines.append("")
            added = [p for p, s in changed.items() if s == "A"]
            if added:
                lines += [
                    "Untracked files:",
                    '  (use "git add <file>..." to include in what will be committed)',
                ]
                lines += [f"\t{p}" for p in added]
                lines.append("")
            lines.append('no changes added to commit (use "git add" and/or "git commit -a")')
            return "\n".join(lines) + "\n"
        if sub == "diff":
            paths = [
                self.workspace.normalize(a) for a in args[1:] if not a.startswith("-") and a != "--"
            ]
            stat = "--stat" in args
            out = []
            for path, status in changed.items():
                if status == "A" or (paths and path not in paths):
                    continue
                before = self._baseline.get(path, "").splitlines(keepends=True)
                after = self.workspace.files.get(path, "").splitlines(keepends=True)
                if stat:
                    inserted = deleted = 0
                    for line in difflib.unified_diff(before, after, n=0):
                        if line.startswith("+") and not line.startswith("+++"):
                            inserted += 1
                        elif line.startswith("-") and not line.startswith("---"):
                            deleted += 1
                    out.append(f" {path} | {inserted + deleted} {'+' * inserted}{'-' * deleted}\n")
                    continue
                out.append(f"diff --git a/{path} b/{path}\n")
                out.extend(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}"))
            return "".join(out)
        if sub == "log":
            count = next((int(a[1:]) for a in args if re.fullmatch(r"-\d+", a)), None)
            if "-n" in args and args.index("-n") + 1 < len(args):
                count = _int(args[args.index("-n") + 1], count or 0) or count
            return "".join(line + "\n" for line in self.workspace.git_log[:count])
        if sub == "branch":
            return "* main\n"
        return ""

    def _coreutil(self, program: str, args: list[str]) -> tuple[str, int]:
        flags = [a for a in args if a.startswith("-") and not a.lstrip("-").isdigit()]
        operands = [a for a in args if not a.startswith("-") or a.lstrip("-").isdigit()]
        if program == "pwd":
            return self.workspace.root + "\n", 0
        if program == "echo":
            return " ".join(args) + "\n", 0
        if program in ("ls", "tree", "find"):
            target = next((a for a in operands if not a.startswith("*")), ".")
            if program == "find":
                return self._find(target, args)
            try:
                entries = self.workspace.list_dir(
                    target, recursive=program == "tree" or "-R" in flags
                )
            except NotADirectoryError:
                return target + "\n", 0
            except FileNotFoundError:
                return f"ls: cannot access '{target}': No such file or directory\n", 2
            if any("l" in f for f in flags if not f.startswith("--")):
                return self._long_listing(target, entries), 0
            return "\n".join(entries) + "\n", 0
        if program in ("grep", "rg"):
            if not operands:
                return "Usage: grep [OPTION]... PATTERNS [FILE]...\n", 2
            pattern, paths = operands[0], operands[1:] or ["."]
            ignore_case = any("i" in f for f in flags if not f.startswith("--"))
            hits = []
            for target in paths:
                try:
                    hits.extend(self.workspace.grep(pattern, target, None, ignore_case))
                except FileNotFoundError:
                    return f"{program}: {target}: No such file or directory\n", 2
            if not hits:
                return "", 1
            return "\n".join(str(h)[:_MAX_HIT_CHARS] for h in hits[:_MAX_SEARCH_HITS]) + "\n", 0
        # cat, head, tail, wc, sed: one file operand (the last non-numeric one)
        count = 10
        for i, arg in enumerate(args):
            if arg == "-n" and i + 1 < len(args) and args[i + 1].lstrip("-+").isdigit():
                count = int(args[i + 1].lstrip("-+"))
            elif re.fullmatch(r"-\d+", arg):
                count = int(arg[1:])
        files = [
            a for a in operands if not a.lstrip("-+").isdigit() and not re.fullmatch(r"\d+,\d+p", a)
        ]
        if not files:
            return f"{program}: missing file operand\n", 1
        target = files[-1]
        try:
            content = self.workspace.read(target)
        except IsADirectoryError:
            return f"{program}: {target}: Is a directory\n", 1
        except FileNotFoundError:
            return f"{program}: {target}: No such file or directory\n", 1
        lines = content.splitlines()
        if program == "cat":
            return content, 0
        if program == "head":
            return "\n".join(lines[:count]) + "\n", 0
        if program == "tail":
            return "\n".join(lines[-count:]) + "\n", 0
        if program == "wc":
            return f"{len(lines)} {target}\n", 0
        window = next(
            (re.fullmatch(r"(\d+),(\d+)p", a) for a in operands if re.fullmatch(r"\d+,\d+p", a)),
            None,
        )
        if window:
            first, last = int(window.group(1)), int(window.group(2))
            return "\n".join(lines[first - 1 : last]) + "\n", 0
        return content, 0

    def _find(self, target: str, args: list[str]) -> tuple[str, int]:
        path = self.workspace.normalize(target)
        if path is None or not (self.workspace.is_file(path) or self.workspace.is_dir(path)):
            return f"find: '{target}': No such file or directory\n", 1
        name_glob = None
        if "-name" in args and args.index("-name") + 1 < len(args):
            name_glob = args[args.index("-name") + 1]
        if target.startswith("/"):
            prefix = self.workspace.root + "/"
        elif target in (".", "./"):
            prefix = "./"
        else:
            prefix = ""
        found = [prefix + file_path for file_path in self.workspace.walk(path, name_glob)]
        return "".join(line + "\n" for line in found), 0

    def _long_listing(self, target: str, entries: list[str]) -> str:
        base = self.workspace.normalize(target) or ""
        lines = [f"total {len(entries) * 4}"]
        for entry in entries:
            path = f"{base}/{entry.rstrip('/')}" if base else entry.rstrip("/")
            if entry.endswith("/"):
                lines.append(f"drwxr-xr-x  2 agent agent  4096 Mar  5 09:12 {entry.rstrip('/')}")
            else:
                size = len(self.workspace.files.get(path, "").encode())
                lines.append(f"-rw-r--r--  1 agent agent {size:>5} Mar  5 09:12 {entry}")
        return "\n".join(lines) + "\n"

    def _file_command(self, program: str, args: list[str]) -> str:
        operands = [self.workspace.normalize(a) for a in args if not a.startswith("-")]
        operands_ok = [p for p in operands if p]
        if program == "rm":
            for path in operands_ok:
                for file_path in [
                    p for p in self.workspace.files if p == path or p.startswith(path + "/")
                ]:
                    self.workspace.delete(file_path)
        elif program == "touch":
            for path in operands_ok:
                if path not in self.workspace.files:
                    self.workspace.write(path, "")
        elif program in ("mv", "cp") and len(operands_ok) == 2:
            source, target = operands_ok
            if source in self.workspace.files:
                self.workspace.write(target, self.workspace.files[source])
                if program == "mv":
                    self.workspace.delete(source)
        return ""


def _edited_snippet(
    path: str, before: str, after: str, context: int = 3, max_lines: int | None = None
) -> str:
    """The edited regions of a file with line numbers, as harnesses show after an edit."""
    old_lines, new_lines = before.splitlines(), after.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    regions: list[tuple[int, int]] = []
    for tag, _, _, start, end in matcher.get_opcodes():
        if tag == "equal":
            continue
        low, high = max(start - context, 0), min(max(end, start + 1) + context, len(new_lines))
        if regions and low <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(high, regions[-1][1]))
        else:
            regions.append((low, high))
    shown: list[str] = []
    for low, high in regions:
        shown.extend(f"{number + 1:>6}\t{new_lines[number]}" for number in range(low, high))
        shown.append("   ...")
    shown.pop()
    if max_lines is not None and len(shown) > max_lines:
        shown = [*shown[:max_lines], "   ..."]
    return f"{path} after the edit:\n" + "\n".join(shown)


def _error(message: str, rng: random.Random) -> ToolResult:
    return ToolResult(message, round(rng.uniform(*_ERROR_DURATION), 4), False)


def _cap(output: str) -> str:
    data = output.encode()
    if len(data) <= MAX_OUTPUT_BYTES:
        return output
    kept = data[: MAX_OUTPUT_BYTES - 120].decode(errors="ignore")
    kept = kept[: kept.rfind("\n") + 1] if "\n" in kept else kept
    return (
        kept + f"... [output truncated: {len(data)} bytes, showing the first {len(kept.encode())}]"
    )


def _parse_arguments(arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if arguments is None:
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if not isinstance(arguments, str | bytes):
        raise _ToolError(f"arguments must be a JSON object, got {type(arguments).__name__}")
    if not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise _ToolError(f"could not parse tool arguments as JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise _ToolError(f"tool arguments must be a JSON object, got {type(parsed).__name__}")
    return parsed


def _get(args: dict[str, Any], key: str) -> Any:
    for alias in _ALIASES.get(key, (key,)):
        if alias in args and args[alias] is not None:
            return args[alias]
    return None


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return default


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(item) for item in value if str(item).strip()]
    return []


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _split_and(command: str) -> list[str]:
    parts = [part.strip() for part in re.split(r"&&|;", command)]
    return [part for part in parts if part]


def _filter(stage: str, output: str) -> str:
    """Apply a pipeline stage (head, tail, grep, wc -l) to an output; others pass through."""
    try:
        argv = shlex.split(stage)
    except ValueError:
        return output
    if not argv:
        return output
    program, args = argv[0], argv[1:]
    lines = output.splitlines()
    count = 10
    for i, arg in enumerate(args):
        if arg == "-n" and i + 1 < len(args) and args[i + 1].isdigit():
            count = int(args[i + 1])
        elif re.fullmatch(r"-\d+", arg):
            count = int(arg[1:])
    if program == "head":
        return "\n".join(lines[:count]) + "\n"
    if program == "tail":
        return "\n".join(lines[-count:]) + "\n"
    if program == "wc":
        return f"{len(lines)}\n"
    if program in ("grep", "rg"):
        patterns = [a for a in args if not a.startswith("-")]
        if not patterns:
            return output
        flags = re.IGNORECASE if any("i" in a for a in args if a.startswith("-")) else 0
        try:
            regex = re.compile(patterns[0], flags)
        except re.error:
            regex = re.compile(re.escape(patterns[0]), flags)
        return "".join(line + "\n" for line in lines if regex.search(line))
    return output
