"""Patches as agents write them: unified diffs and ``*** Begin Patch`` envelopes.

Hunks are located by their content (context and removed lines), not by the
line numbers in ``@@`` headers, because models routinely get those wrong and
harnesses tolerate it. A patch applies to every file or to none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rig.errors import RigError
from rig.workload.corpus import Corpus

__all__ = ["FilePatch", "Hunk", "PatchError", "apply_patch", "parse_patch"]

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")
_NO_VALID_PATCHES = 'error: No valid patches in input (allow with "--allow-empty")'


class PatchError(RigError, ValueError):
    """A patch cannot be parsed or does not apply; the message reads like git's."""


@dataclass(frozen=True)
class Hunk:
    """One change: ``old`` lines (context and removed) become ``new`` lines."""

    old: tuple[str, ...]
    new: tuple[str, ...]
    line: int | None = None
    anchor: str | None = None


@dataclass(frozen=True)
class FilePatch:
    """The changes a patch makes to one file."""

    path: str
    op: Literal["update", "add", "delete"]
    hunks: tuple[Hunk, ...] = ()
    move_to: str | None = None


def parse_patch(text: str) -> list[FilePatch]:
    """Parse a unified diff or an apply_patch envelope; raises PatchError."""
    lines = text.replace("\r\n", "\n").split("\n")
    if any(line.strip() == "*** Begin Patch" for line in lines[:5]):
        patches = _parse_envelope(lines)
    else:
        patches = _parse_unified(lines)
    if not patches:
        raise PatchError(_NO_VALID_PATCHES)
    return patches


def apply_patch(corpus: Corpus, text: str) -> list[tuple[str, str]]:
    """Apply a patch to ``corpus``; returns ``(status, path)`` pairs, status one of A/M/D.

    Raises PatchError, leaving the corpus unchanged, if any part does not apply.
    """
    patches = parse_patch(text)
    staged: dict[str, str | None] = {}
    changes: list[tuple[str, str]] = []

    def current(path: str) -> str | None:
        return staged[path] if path in staged else corpus.files.get(path)

    for file_patch in patches:
        path = corpus.normalize(file_patch.path)
        if path is None or path == "":
            raise PatchError(f"error: {file_patch.path}: outside the repository")
        content = current(path)
        if file_patch.op == "add":
            if content is not None:
                raise PatchError(f"error: {path}: already exists in working directory")
            staged[path] = _join(list(file_patch.hunks[0].new) if file_patch.hunks else [], True)
            changes.append(("A", path))
            continue
        if content is None:
            raise PatchError(f"error: {path}: No such file or directory")
        if file_patch.op == "delete":
            staged[path] = None
            changes.append(("D", path))
            continue
        staged[path] = _apply_hunks(path, content, file_patch.hunks)
        if file_patch.move_to:
            target = corpus.normalize(file_patch.move_to)
            if not target:
                raise PatchError(f"error: {file_patch.move_to}: outside the repository")
            staged[target], staged[path] = staged[path], None
            changes.extend([("D", path), ("A", target)])
        else:
            changes.append(("M", path))

    for path, content in staged.items():
        if content is None:
            corpus.delete(path)
        else:
            corpus.write(path, content)
    return changes


# -- parsing -----------------------------------------------------------------


def _strip_prefix(path: str) -> str:
    path = path.split("\t", 1)[0].strip()
    if path.startswith(("a/", "b/")):
        return path[2:]
    return path


def _parse_unified(lines: list[str]) -> list[FilePatch]:
    patches: list[FilePatch] = []
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines)):
            i += 1
            continue
        if not lines[i + 1].startswith("+++ "):
            i += 1
            continue
        old_path = _strip_prefix(lines[i][4:])
        new_path = _strip_prefix(lines[i + 1][4:])
        i += 2
        hunks: list[Hunk] = []
        while i < len(lines) and lines[i].startswith("@@"):
            match = _HUNK_HEADER.match(lines[i])
            start = int(match.group(1)) if match else None
            i += 1
            old: list[str] = []
            new: list[str] = []
            while i < len(lines) and not _ends_unified_hunk(lines, i):
                _add_hunk_line(lines[i], old, new)
                i += 1
            _trim_trailing_blank_context(old, new)
            hunks.append(Hunk(tuple(old), tuple(new), start))
        if old_path == "/dev/null":
            patches.append(FilePatch(new_path, "add", tuple(hunks)))
        elif new_path == "/dev/null":
            patches.append(FilePatch(old_path, "delete"))
        elif hunks:
            move_to = new_path if new_path != old_path else None
            patches.append(FilePatch(old_path, "update", tuple(hunks), move_to))
    return patches


def _ends_unified_hunk(lines: list[str], i: int) -> bool:
    line = lines[i]
    if line.startswith(("@@", "diff --git ")):
        return True
    return line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _add_hunk_line(line: str, old: list[str], new: list[str]) -> None:
    if line.startswith("\\"):  # "\ No newline at end of file"
        return
    if line.startswith("+"):
        new.append(line[1:])
    elif line.startswith("-"):
        old.append(line[1:])
    else:  # context; models often drop the leading space of blank lines
        text = line[1:] if line.startswith(" ") else line
        old.append(text)
        new.append(text)


def _trim_trailing_blank_context(old: list[str], new: list[str]) -> None:
    # The final newline of a patch text reads as one blank context line.
    while old and new and old[-1] == "" and new[-1] == "":
        old.pop()
        new.pop()


def _parse_envelope(lines: list[str]) -> list[FilePatch]:
    patches: list[FilePatch] = []
    i = 0
    while i < len(lines) and lines[i].strip() != "*** Begin Patch":
        i += 1
    i += 1
    while i < len(lines):
        line = lines[i]
        if line.strip() == "*** End Patch":
            break
        if line.startswith("*** Add File: "):
            path = line[len("*** Add File: ") :].strip()
            i += 1
            content: list[str] = []
            while i < len(lines) and not lines[i].startswith("***"):
                content.append(lines[i][1:] if lines[i].startswith("+") else lines[i])
                i += 1
            if content and content[-1] == "":
                content.pop()
            patches.append(FilePatch(path, "add", (Hunk((), tuple(content)),)))
        elif line.startswith("*** Delete File: "):
            patches.append(FilePatch(line[len("*** Delete File: ") :].strip(), "delete"))
            i += 1
        elif line.startswith("*** Update File: "):
            path = line[len("*** Update File: ") :].strip()
            i += 1
            move_to = None
            if i < len(lines) and lines[i].startswith("*** Move to: "):
                move_to = lines[i][len("*** Move to: ") :].strip()
                i += 1
            hunks, i = _parse_envelope_hunks(lines, i)
            if not hunks:
                raise PatchError(f"error: {path}: update without any hunk")
            patches.append(FilePatch(path, "update", tuple(hunks), move_to))
        elif line.strip():
            raise PatchError(f"error: invalid patch line {i + 1}: {line!r}")
        else:
            i += 1
    return patches


def _parse_envelope_hunks(lines: list[str], i: int) -> tuple[list[Hunk], int]:
    hunks: list[Hunk] = []
    anchor: str | None = None
    old: list[str] = []
    new: list[str] = []

    def flush() -> None:
        nonlocal old, new
        _trim_trailing_blank_context(old, new)
        if old or new:
            hunks.append(Hunk(tuple(old), tuple(new), anchor=anchor))
        old, new = [], []

    while i < len(lines) and not lines[i].startswith("*** "):
        line = lines[i]
        if line.startswith("@@"):
            flush()
            anchor = line[2:].strip() or None
        elif line.strip() == "*** End of File":
            pass
        else:
            _add_hunk_line(line, old, new)
        i += 1
    flush()
    return hunks, i


# -- applying ----------------------------------------------------------------


def _split(content: str) -> tuple[list[str], bool]:
    trailing_newline = content.endswith("\n")
    lines = content.split("\n")
    if trailing_newline:
        lines.pop()
    return lines, trailing_newline


def _join(lines: list[str], trailing_newline: bool) -> str:
    text = "\n".join(lines)
    return text + "\n" if trailing_newline and lines else text


def _apply_hunks(path: str, content: str, hunks: tuple[Hunk, ...]) -> str:
    lines, trailing_newline = _split(content)
    position = 0
    for hunk in hunks:
        if not hunk.old:
            insert_at = len(lines) if hunk.line is None else min(max(hunk.line - 1, 0), len(lines))
            lines[insert_at:insert_at] = hunk.new
            position = insert_at + len(hunk.new)
            continue
        start = position
        if hunk.anchor:
            anchor_at = _find(lines, (hunk.anchor,), position, loose=True)
            if anchor_at is not None:
                start = anchor_at
        at = _find(lines, hunk.old, start)
        if at is None:
            at = _find(lines, hunk.old, 0)
        if at is None:
            at = _find(lines, hunk.old, 0, loose=True)
        if at is None:
            line = hunk.line or 1
            raise PatchError(
                f"error: patch failed: {path}:{line}\nerror: {path}: patch does not apply"
            )
        lines[at : at + len(hunk.old)] = hunk.new
        position = at + len(hunk.new)
    return _join(lines, trailing_newline)


def _find(lines: list[str], block: tuple[str, ...], start: int, loose: bool = False) -> int | None:
    def same(a: str, b: str) -> bool:
        return a.strip() == b.strip() if loose else a.rstrip() == b.rstrip()

    last = len(lines) - len(block)
    for at in range(start, last + 1):
        if all(same(lines[at + k], block[k]) for k in range(len(block))):
            return at
    return None
