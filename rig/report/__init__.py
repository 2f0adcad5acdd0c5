"""The run's report: summary.json for pipelines, report.html for people.

``render_run(RUN_DIR)`` reads a run directory (:mod:`rig.metrics.rundir`), writes both files
into it and returns them; ``rig report`` and ``rig compare`` call it. Thresholds for CI are
:mod:`rig.report.checks`; the terminal table is :mod:`rig.report.table`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.metrics.rundir import RunDirectory, RunDirectoryError
from rig.report.checks import Check, CheckResult, evaluate, parse_check
from rig.report.errors import CheckError, ReportError
from rig.report.html import render_html
from rig.report.projection import project
from rig.report.summary import build_summary, summarize
from rig.report.table import render_table

__all__ = [
    "REPORT_FILE",
    "SUMMARY_FILE",
    "Check",
    "CheckError",
    "CheckResult",
    "RenderedRun",
    "ReportError",
    "build_summary",
    "evaluate",
    "parse_check",
    "project",
    "render_html",
    "render_run",
    "render_table",
    "summarize",
]

SUMMARY_FILE = "summary.json"
"""The summary's file name inside the run directory."""
REPORT_FILE = "report.html"
"""The report's file name inside the run directory."""


@dataclass(frozen=True, slots=True)
class RenderedRun:
    """What :func:`render_run` wrote, and the summary it wrote."""

    summary_path: Path
    report_path: Path
    summary: dict[str, Any]


def render_run(path: str | os.PathLike[str]) -> RenderedRun:
    """Write ``summary.json`` and ``report.html`` into the run directory ``path``.

    Raises :class:`ReportError` (naming the file and what to do) when ``path`` is not a
    run directory, a record file is malformed, or the run recorded no turns.
    """
    run = RunDirectory(path)
    summary = build_summary(run)
    try:
        page = render_html(summary, run)
    except RunDirectoryError as exc:
        raise ReportError(str(exc)) from exc
    summary_path = run.write_json(SUMMARY_FILE, summary)
    report_path = run.path / REPORT_FILE
    temp = report_path.with_name(REPORT_FILE + ".tmp")
    temp.write_text(page, encoding="utf-8")
    temp.replace(report_path)
    return RenderedRun(summary_path=summary_path, report_path=report_path, summary=summary)
