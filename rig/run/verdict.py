"""The end of a Locust-driven run: summary.json, report.html and the ``--check`` verdict.

The packaged locustfile hands :func:`report_at_end` to the Locust integration, which calls
it when a local runner or the master has closed the run directory. It sets Locust's exit
code: 1 when a check failed, 3 when there was nothing to report. ``rig compare`` and
``rig capacity`` render and judge their runs themselves, with their tables.
"""

from __future__ import annotations

import logging

import orjson
from locust.env import Environment

from rig.locust.plugin import LocustRun
from rig.report import ReportError, evaluate, render_run

__all__ = ["EXIT_CHECK_FAILED", "EXIT_NOTHING_TO_REPORT", "report_at_end"]

log = logging.getLogger("rig.run")

EXIT_CHECK_FAILED = 1
EXIT_NOTHING_TO_REPORT = 3


def report_at_end(environment: Environment, run: LocustRun) -> None:
    """Render the run directory, print the summary if asked, judge the checks."""
    if run.relay.run is None:
        return
    run_dir = run.relay.run.path
    try:
        rendered = render_run(run_dir)
    except ReportError as exc:
        log.error("rig: no report: %s", exc)
        environment.process_exit_code = EXIT_NOTHING_TO_REPORT
        return
    log.info("run directory %s: summary.json and report.html written", run_dir)
    for warning in rendered.summary.get("warnings") or ():
        log.warning("rig: %s", warning)
    if run.options.summary_stdout:
        print(orjson.dumps(rendered.summary, option=orjson.OPT_SORT_KEYS).decode(), flush=True)
    failed = 0
    for result in evaluate(run.checks, rendered.summary):
        (log.info if result.passed else log.error)(
            "check %s %s", "ok" if result.passed else "FAIL", result.message
        )
        failed += not result.passed
    if failed:
        environment.process_exit_code = EXIT_CHECK_FAILED
