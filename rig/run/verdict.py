"""The end of a Locust-driven run: summary.json, report.html and the ``--check`` verdict.

The packaged locustfile hands :func:`report_at_end` to the Locust integration, which calls
it when a local runner or the master has closed the run directory. It sets Locust's exit
code: 1 when a check failed, 3 when there was nothing to report. ``rig compare`` and
``rig capacity`` render and judge their runs themselves, with their tables.
"""

from __future__ import annotations

import logging

import gevent
import orjson
from locust.env import Environment
from locust.runners import WorkerRunner

from rig.locust.plugin import LocustRun, run_of
from rig.metrics.rundir import RunDirectory
from rig.report import ReportError, evaluate, render_run
from rig.report.gateway import GATEWAY_FILE
from rig.run.gateway_stats import StatsWatch, replica_urls

__all__ = ["EXIT_CHECK_FAILED", "EXIT_NOTHING_TO_REPORT", "report_at_end", "watch_gateway"]

log = logging.getLogger("rig.run")

EXIT_CHECK_FAILED = 1
EXIT_NOTHING_TO_REPORT = 3


GATEWAY_WATCH = "gateway"
GATEWAY_SAMPLER = "gateway_sampler"
GATEWAY_SAMPLE_S = 5.0
"""Seconds between reads of the gateway's ``/stats`` during a run (its gauges: sessions
and memory at the load's peak, not only at the start and the end)."""


def _sample_every(watch: StatsWatch, every_s: float) -> None:
    while True:
        gevent.sleep(every_s)
        watch.sample()


def watch_gateway(environment: Environment) -> None:
    """At the start of a run on the master or a local runner: read the gateway's
    ``/stats`` (``--gateway-stats``, every replica) to compare with its end, and every
    :data:`GATEWAY_SAMPLE_S` until then."""
    if isinstance(environment.runner, WorkerRunner):
        return
    run = run_of(environment)
    url = run.options.gateway_stats
    if not url:
        return
    watch = StatsWatch([replica for part in url.split(",") for replica in replica_urls(part)])
    watch.begin()
    for error in watch.errors:
        log.warning("rig: gateway stats: %s", error)
    run.attachments[GATEWAY_WATCH] = watch
    run.attachments[GATEWAY_SAMPLER] = gevent.spawn(_sample_every, watch, GATEWAY_SAMPLE_S)


def report_at_end(environment: Environment, run: LocustRun) -> None:
    """Render the run directory (with the gateway's figures when watched), print the
    summary if asked, judge the checks."""
    if run.relay.run is None:
        return
    run_dir = run.relay.run.path
    watch = run.attachments.pop(GATEWAY_WATCH, None)
    sampler = run.attachments.pop(GATEWAY_SAMPLER, None)
    if sampler is not None:
        sampler.kill()
    if isinstance(watch, StatsWatch):
        watch.finish()
        for error in watch.errors:
            log.warning("rig: gateway stats: %s", error)
        RunDirectory(run_dir).write_json(GATEWAY_FILE, watch.observed(embedded=False))
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
