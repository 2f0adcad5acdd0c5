"""The run directory: records round-trip through their own files, each read back as its
own type, and a line that does not belong is an error naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.metrics.records import HealthRecord, RateLimitRecord, RecordTags, TaskRecord, TurnRecord
from rig.metrics.rundir import RunDirectory, RunDirectoryError

TAGS = RecordTags(run="r1", scenario="s", transport="http", target="mock")
TURN = TurnRecord(
    tags=TAGS, session="a", turn=0, ts=1.0, bytes_sent=10, bytes_recv=20, body_bytes_sent=5,
    body_bytes_recv=15, ttfb_ms=1.0, ttft_ms=2.0, turn_ms=3.0, input_tokens=1,
    cached_tokens=0, output_tokens=1, tool_calls=0, status="ok",
)  # fmt: skip
TASK = TaskRecord(
    tags=TAGS, session="a", ts=1.0, task_ms=9.0, turns=1, bytes_sent=10, bytes_recv=20,
    tool_calls=0, ok=True,
)  # fmt: skip
HIT = RateLimitRecord(tags=TAGS, ts=1.0, limit="requests", retry_after_ms=5.0, remaining=0)
HEALTH = HealthRecord(
    tags=TAGS, ts=1.0, users=1, turns_per_s=1.0, cpu_percent=1.0, lag_ms_p99=1.0,
    lag_ms_max=1.0, saturated=False, points_written=0, points_dropped=0,
)  # fmt: skip


def written(tmp_path: Path) -> RunDirectory:
    run = RunDirectory.create(tmp_path, "r1", {"scenario": "s"})
    assert run.append([TURN, TASK, HIT, HEALTH, TURN]) == 5
    run.close()
    return run


def test_each_kind_reads_back_from_its_own_file_as_its_own_type(tmp_path: Path) -> None:
    run = RunDirectory(written(tmp_path).path)
    assert run.turns() == [TURN, TURN]
    assert run.tasks() == [TASK]
    assert run.ratelimits() == [HIT]
    assert run.health() == [HEALTH]
    assert list(run.records("turn")) == [TURN, TURN]
    assert list(run.records("rig")) == [HEALTH]


def test_a_kind_never_written_reads_as_no_records(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "r1", {})
    assert run.tasks() == []
    assert list(run.records("ratelimit")) == []


def test_a_record_of_another_kind_in_a_file_is_an_error_naming_file_and_line(
    tmp_path: Path,
) -> None:
    run = written(tmp_path)
    tasks_line = (run.path / "tasks.jsonl").read_bytes()
    with open(run.path / "turns.jsonl", "ab") as handle:
        handle.write(tasks_line)
    with pytest.raises(RunDirectoryError, match=r"turns\.jsonl:3: a 'task' record; this file"):
        run.turns()
    with pytest.raises(RunDirectoryError, match=r"turns\.jsonl:3: a 'task' record"):
        list(run.records("turn"))
