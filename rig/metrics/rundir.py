"""The run directory: the embedded default sink and the report's input.

Layout of ``runs/<run-id>/``:

* ``meta.json``: what was run (target, scenario, transports, users, duration, preset and
  its latency model when the target was the mock, seed, rig version);
* ``turns.jsonl``, ``tasks.jsonl``, ``ratelimits.jsonl``, ``health.jsonl``: one record
  per line (:mod:`rig.metrics.records`);
* ``summary.json`` and ``report.html``: derived, rebuilt by ``rig report RUN_DIR``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson

from rig.errors import RigError
from rig.metrics.records import (
    HealthRecord,
    RateLimitRecord,
    Record,
    TaskRecord,
    TurnRecord,
    record_from_dict,
    record_to_json,
)

__all__ = ["RunDirectory", "RunDirectoryError", "new_run_id"]

_FILES = {
    "turn": "turns.jsonl",
    "task": "tasks.jsonl",
    "ratelimit": "ratelimits.jsonl",
    "rig": "health.jsonl",
}
_TYPES: dict[str, type[Record]] = {
    cls.kind: cls for cls in (TurnRecord, TaskRecord, RateLimitRecord, HealthRecord)
}
_R = TypeVar("_R", bound=Record)


class RunDirectoryError(RigError, ValueError):
    """A run directory is missing, incomplete or holds a malformed line."""


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id such as ``20261121-101500-3fa2``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class RunDirectory:
    """Writes and reads one run's records."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._handles: dict[str, BinaryIO] = {}

    @classmethod
    def create(
        cls, parent: str | os.PathLike[str], run_id: str, meta: dict[str, Any]
    ) -> RunDirectory:
        """Make ``parent/run_id`` and write its ``meta.json``."""
        directory = cls(Path(parent) / run_id)
        directory.path.mkdir(parents=True, exist_ok=False)
        directory.write_json("meta.json", {"run_id": run_id, **meta})
        return directory

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``name`` (atomically: a temp file renamed into place)."""
        target = self.path / name
        temp = target.with_suffix(target.suffix + ".tmp")
        temp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        temp.replace(target)
        return target

    def read_json(self, name: str) -> Any:
        """Read ``name``; a clear error when it is missing or malformed."""
        path = self.path / name
        try:
            return orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise RunDirectoryError(f"{path}: missing; is {self.path} a run directory?") from None
        except orjson.JSONDecodeError as exc:
            raise RunDirectoryError(f"{path}: not valid JSON: {exc}") from None

    def append(self, records: Iterable[Record]) -> int:
        """Append records to their files; return how many were written."""
        count = 0
        for record in records:
            handle = self._handles.get(record.kind)
            if handle is None:
                handle = self._handles[record.kind] = open(self.path / _FILES[record.kind], "ab")  # noqa: SIM115
            handle.write(record_to_json(record) + b"\n")
            count += 1
        return count

    def flush(self) -> None:
        """Push buffered lines to the files."""
        for handle in self._handles.values():
            handle.flush()

    def close(self) -> None:
        """Flush and close the record files."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def records(self, kind: str) -> Iterator[Record]:
        """Every record of ``kind`` (``turn``, ``task``, ``ratelimit``, ``rig``), in order."""
        return self._read(_TYPES[kind])

    def turns(self) -> list[TurnRecord]:
        """All turn records."""
        return list(self._read(TurnRecord))

    def tasks(self) -> list[TaskRecord]:
        """All task records."""
        return list(self._read(TaskRecord))

    def ratelimits(self) -> list[RateLimitRecord]:
        """All rate-limit records."""
        return list(self._read(RateLimitRecord))

    def health(self) -> list[HealthRecord]:
        """All load-generator health records."""
        return list(self._read(HealthRecord))

    def _read(self, cls: type[_R]) -> Iterator[_R]:
        """The records of ``cls``'s file, each checked to be a ``cls`` (a line of another
        kind there is as malformed as a line that does not parse)."""
        path = self.path / _FILES[cls.kind]
        if not path.exists():
            return
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = record_from_dict(orjson.loads(line))
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise RunDirectoryError(f"{path}:{number}: malformed record: {exc}") from None
                if not isinstance(record, cls):
                    raise RunDirectoryError(
                        f"{path}:{number}: a {record.kind!r} record; "
                        f"this file holds {cls.kind!r} records"
                    )
                yield record
