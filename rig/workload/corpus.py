"""Project corpus: the files of a small repository that simulated agents work on.

A corpus is a directory of real files shipped as package data
(``rig/workload/corpus/<name>/``) plus a small metadata file
(``rig/workload/corpus/<name>.yaml``) naming the corpus's known defects, which
the tool simulator needs to produce consistent test output.
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from rig.errors import RigError

__all__ = [
    "DEFAULT_CORPUS",
    "Corpus",
    "CorpusError",
    "Defect",
    "GrepHit",
    "available_corpora",
]

_ANCHORS = re.compile(r"[$^]|\\[AZ]")
"""Line anchors in a grep pattern (``^``, ``$``, ``\\A``, ``\\Z``): such a pattern is
matched line by line only."""

DEFAULT_CORPUS = "webapp"

_PACKAGE = "rig.workload"
_CORPUS_DIR = "corpus"
_DEFECT_FIELDS = (
    "file",
    "marker",
    "test_file",
    "test",
    "assertion",
    "matcher",
    "expected",
    "received",
)


class CorpusError(RigError, ValueError):
    """A corpus does not exist or its metadata file is invalid."""


@dataclass(frozen=True)
class Defect:
    """A known bug: while ``marker`` is in ``file``, the test ``test`` fails."""

    file: str
    marker: str
    test_file: str
    test: str
    assertion: str
    matcher: str
    expected: str
    received: str


@dataclass(frozen=True)
class GrepHit:
    """One line matching a search: ``path:line:text``."""

    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.text}"


@dataclass(eq=False)
class Corpus:
    """The files of one repository, keyed by posix path relative to its root.

    ``Corpus.load()`` gives a fresh copy each time, so a tool simulator can
    write to its corpus without affecting other sessions.
    """

    name: str
    files: dict[str, str]
    root: str = "/workspace/project"
    package: str = "project@0.0.0"
    defects: tuple[Defect, ...] = ()
    git_log: tuple[str, ...] = ()
    _dirs: frozenset[str] | None = field(default=None, init=False, repr=False)

    # -- loading -------------------------------------------------------------

    @classmethod
    def load(cls, name: str = DEFAULT_CORPUS) -> Corpus:
        """Load a built-in corpus by name, or a corpus directory by path."""
        pristine = _load_cached(name)
        return pristine.copy()

    def copy(self) -> Corpus:
        """An independent copy whose files can be changed."""
        return Corpus(
            self.name, dict(self.files), self.root, self.package, self.defects, self.git_log
        )

    # -- paths ---------------------------------------------------------------

    def normalize(self, path: str) -> str | None:
        """Repository-relative posix path, or None if it points outside the repository.

        Accepts ``./src/App.tsx``, ``src/App.tsx/``, ``src\\App.tsx`` and absolute
        paths under :attr:`root`. The repository root itself is ``""``.
        """
        text = path.strip().replace("\\", "/")
        if text in ("", ".", "./", "/workspace", self.root, self.root + "/"):
            return ""
        if text.startswith(self.root + "/"):
            text = text[len(self.root) + 1 :]
        elif text.startswith("/"):
            return None
        norm = posixpath.normpath(text)
        if norm == ".":
            return ""
        if norm == ".." or norm.startswith("../"):
            return None
        return norm

    @property
    def dirs(self) -> frozenset[str]:
        """Every directory that holds a file, including the root ``""``."""
        if self._dirs is None:
            dirs = {""}
            for path in self.files:
                parent = posixpath.dirname(path)
                while parent and parent not in dirs:
                    dirs.add(parent)
                    parent = posixpath.dirname(parent)
            self._dirs = frozenset(dirs)
        return self._dirs

    def is_file(self, path: str) -> bool:
        """True if ``path`` (already normalized) is a file."""
        return path in self.files

    def is_dir(self, path: str) -> bool:
        """True if ``path`` (already normalized) is a directory."""
        return path in self.dirs

    # -- queries -------------------------------------------------------------

    def read(self, path: str) -> str:
        """The text of a file; raises FileNotFoundError or IsADirectoryError."""
        norm = self.normalize(path)
        if norm is not None and norm in self.files:
            return self.files[norm]
        if norm is not None and self.is_dir(norm):
            raise IsADirectoryError(path)
        raise FileNotFoundError(path)

    def list_dir(self, path: str = "", recursive: bool = False) -> list[str]:
        """Entries of a directory, sorted, directories with a trailing ``/``.

        Recursive listings give paths relative to ``path``. Raises
        FileNotFoundError or NotADirectoryError.
        """
        norm = self.normalize(path)
        if norm is None:
            raise FileNotFoundError(path)
        if norm in self.files:
            raise NotADirectoryError(path)
        if not self.is_dir(norm):
            raise FileNotFoundError(path)
        prefix = f"{norm}/" if norm else ""
        entries: set[str] = set()
        for file_path in self.files:
            if not file_path.startswith(prefix):
                continue
            rest = file_path[len(prefix) :]
            if recursive:
                entries.add(rest)
                parts = rest.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    entries.add("/".join(parts[:depth]) + "/")
            else:
                head, sep, _ = rest.partition("/")
                entries.add(head + "/" if sep else head)
        return sorted(entries, key=lambda entry: (entry.rstrip("/").lower(), entry))

    def walk(self, path: str = "", glob: str | None = None) -> Iterator[str]:
        """Files under ``path`` (a file or a directory), optionally filtered by a glob."""
        norm = self.normalize(path)
        if norm is None:
            return
        patterns = expand_braces(glob) if glob else []
        for file_path in sorted(self.files):
            if norm and file_path != norm and not file_path.startswith(norm + "/"):
                continue
            if patterns and not any(_glob_match(file_path, p) for p in patterns):
                continue
            yield file_path

    def grep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        ignore_case: bool = False,
    ) -> list[GrepHit]:
        """Lines matching ``pattern`` (a regex; a literal if it is not a valid one).

        Raises FileNotFoundError if ``path`` does not exist.
        """
        norm = self.normalize(path or "")
        if norm is None or not (norm in self.files or self.is_dir(norm)):
            raise FileNotFoundError(path)
        flags = re.IGNORECASE if ignore_case else 0
        try:
            regex = re.compile(pattern, flags)
        except re.error:
            regex = re.compile(re.escape(pattern), flags)
        # A file the pattern cannot match as a whole is skipped without splitting it into
        # lines: one scan in C instead of a Python loop over every line. Patterns with
        # anchors are matched per line only, since a whole-text scan reads them otherwise.
        whole = None if _ANCHORS.search(pattern) else regex
        hits = []
        for file_path in self.walk(norm, glob):
            text = self.files[file_path]
            if whole is not None and not whole.search(text):
                continue
            for number, line in enumerate(text.splitlines(), start=1):
                if regex.search(line):
                    hits.append(GrepHit(file_path, number, line))
        return hits

    # -- changes -------------------------------------------------------------

    def write(self, path: str, content: str) -> None:
        """Create or replace a file (``path`` already normalized)."""
        if path not in self.files:
            self._dirs = None
        self.files[path] = content

    def delete(self, path: str) -> None:
        """Remove a file (``path`` already normalized); a missing file is ignored."""
        if self.files.pop(path, None) is not None:
            self._dirs = None


def expand_braces(pattern: str) -> list[str]:
    """Shell brace expansion, one level: ``*.{ts,tsx}`` -> ``*.ts``, ``*.tsx``."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    expanded: list[str] = []
    for option in match.group(1).split(","):
        expanded.extend(expand_braces(head + option + tail))
    return expanded


def _glob_match(path: str, pattern: str) -> bool:
    pattern = pattern.removeprefix("./")
    if "/" not in pattern:
        return fnmatch.fnmatchcase(posixpath.basename(path), pattern)
    if fnmatch.fnmatchcase(path, pattern):
        return True
    # "src/**/*.ts" should also match "src/x.ts"
    return "**/" in pattern and fnmatch.fnmatchcase(path, pattern.replace("**/", ""))


def available_corpora() -> list[str]:
    """Names of the built-in corpora."""
    base = resources.files(_PACKAGE).joinpath(_CORPUS_DIR)
    return sorted(entry.name for entry in base.iterdir() if entry.is_dir())


@functools.lru_cache(maxsize=8)
def _load_cached(name: str) -> Corpus:
    path = Path(name)
    if ("/" in name or "\\" in name or name.startswith(".")) and path.is_dir():
        meta = path.with_name(path.name + ".yaml")
        return _build(path.name, path, meta if meta.is_file() else None)
    base = resources.files(_PACKAGE).joinpath(_CORPUS_DIR)
    directory = base.joinpath(name)
    if not name or not directory.is_dir():
        known = ", ".join(available_corpora())
        raise CorpusError(
            f"unknown corpus {name!r}; use one of: {known}, or the path of a directory"
        )
    meta_file = base.joinpath(f"{name}.yaml")
    return _build(name, directory, meta_file if meta_file.is_file() else None)


def _build(name: str, directory: Traversable, meta_file: Traversable | None) -> Corpus:
    files = dict(_read_tree(directory, ""))
    if not files:
        raise CorpusError(f"corpus {name!r} has no files ({directory})")
    meta = _read_meta(name, meta_file) if meta_file is not None else {}
    raw_defects = meta.get("defects") or []
    if not isinstance(raw_defects, list):
        raise CorpusError(f"{name}.yaml: defects: expected a list of mappings (one per defect)")
    defects = tuple(_parse_defect(name, i, raw) for i, raw in enumerate(raw_defects))
    git_log = meta.get("git_log") or []
    if not isinstance(git_log, list) or not all(isinstance(line, str) for line in git_log):
        raise CorpusError(f"{name}.yaml: git_log: expected a list of strings (one per commit)")
    corpus = Corpus(
        name=name,
        files=files,
        root=str(meta.get("root") or f"/workspace/{name}"),
        package=str(meta.get("package") or f"{name}@0.0.0"),
        defects=defects,
        git_log=tuple(git_log),
    )
    for i, defect in enumerate(defects):
        if defect.marker not in files.get(defect.file, ""):
            raise CorpusError(
                f"{name}.yaml: defects[{i}].marker: {defect.marker!r} is not in {defect.file}; "
                "copy the buggy text exactly from the file"
            )
    return corpus


def _read_tree(directory: Traversable, prefix: str) -> Iterable[tuple[str, str]]:
    for entry in directory.iterdir():
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _read_tree(entry, path + "/")
        else:
            yield path, entry.read_text(encoding="utf-8")


def _read_meta(name: str, meta_file: Traversable) -> Mapping[str, object]:
    try:
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CorpusError(f"{name}.yaml: invalid YAML: {exc}") from exc
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise CorpusError(f"{name}.yaml: expected a mapping at the top level")
    return meta


def _parse_defect(name: str, index: int, raw: object) -> Defect:
    if not isinstance(raw, dict):
        raise CorpusError(f"{name}.yaml: defects[{index}]: expected a mapping")
    missing = [key for key in _DEFECT_FIELDS if not isinstance(raw.get(key), str)]
    if missing:
        raise CorpusError(
            f"{name}.yaml: defects[{index}]: missing or non-string {', '.join(missing)}; "
            f"each defect needs {', '.join(_DEFECT_FIELDS)}"
        )
    return Defect(**{key: raw[key] for key in _DEFECT_FIELDS})
