"""``rig compare --links``: a run over a mix of links, broken down by link in summary.json,
the terminal table and the report, reconciled with the records."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

# Three users per transport walk a 50/50 mix by the golden ratio: both links get sessions.
MIX = "fiber=50,cable=50"
QUICK = ["--users", "3", "--duration", "5", "--time-scale", "0.02", "--preset", "fast"]


@pytest.fixture(scope="module")
def linked(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp_path = tmp_path_factory.mktemp("links")
    done = subprocess.run(
        [
            sys.executable, "-m", "rig", "compare", *QUICK, "--transports", "http,ws",
            "--links", MIX, "--out", str(tmp_path / "runs"),
        ],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    return done, run_dir


def _records(run_dir: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / name).read_text().splitlines()]


def test_by_link_counts_are_the_records_counts_and_sum_to_the_totals(linked) -> None:
    _, run_dir = linked
    summary = json.loads((run_dir / "summary.json").read_text())
    turns, tasks = _records(run_dir, "turns.jsonl"), _records(run_dir, "tasks.jsonl")
    assert summary["links"] == ["cable", "fiber"]
    by_link = summary["by_link"]
    assert set(by_link) == {"cable", "fiber"}
    turns_at = Counter((t["link"], t["transport"]) for t in turns)
    failed_at = Counter(
        (t["link"], t["transport"]) for t in turns if t["status"] in ("error", "timeout")
    )
    ok_at = Counter((t["link"], t["transport"]) for t in tasks if t["ok"])
    failed_tasks_at = Counter((t["link"], t["transport"]) for t in tasks if not t["ok"])
    for link, cells in by_link.items():
        for name, figures in cells.items():
            assert figures["turns"] == turns_at[link, name] > 0, (link, name)
            assert figures["errors"] == failed_at[link, name], (link, name)
            assert figures["tasks"] == ok_at[link, name], (link, name)
            assert figures["tasks_failed"] == failed_tasks_at[link, name], (link, name)
    assert set(by_link["cable"]) == set(by_link["fiber"]) == {"http", "ws"}
    for name, figures in summary["transports"].items():
        for count in ("tasks", "tasks_failed", "turns", "errors", "timeouts"):
            assert sum(cells[name][count] for cells in by_link.values()) == figures[count]
        assert figures["tasks"] > 0


def test_the_table_and_the_report_show_each_link(linked) -> None:
    done, run_dir = linked
    assert "links: cable, fiber (each session one; figures by link below)" in done.stdout
    assert "by link (tasks and turns of the sessions on each link):" in done.stdout
    page = (run_dir / "report.html").read_text()
    assert 'id="by-link"' in page
    assert 'data-link="cable"' in page and 'data-link="fiber"' in page
