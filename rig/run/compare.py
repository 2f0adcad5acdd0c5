"""``rig compare``: every chosen transport side by side in one Locust run, then the verdict.

Without ``--target-url`` it starts the mock provider as a child process (the embedded
default). It runs Locust in this process (a local runner, the same users and listeners as
the locustfile), prints progress, waits for in-flight tasks at the end, renders
summary.json and report.html into the run directory, prints the comparison table, and
evaluates ``--check`` thresholds.

Exit codes: 0 all good; 1 a check failed; 2 bad usage; 3 the target was unreachable or
every session failed.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from rig.metrics.influx_config import InfluxConfig, InfluxConfigError

__all__ = ["EXIT_CHECK_FAILED", "EXIT_TARGET", "EXIT_USAGE", "CompareOptions", "run_compare"]

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_TARGET = 3


@dataclass
class CompareOptions:
    """What ``rig compare`` was asked to do."""

    users: int = 10
    duration_s: float = 60.0
    transports: str = "http,ws"
    scenario: str = "mixed"
    target_url: str | None = None
    preset: str = "fast"
    seed: int = 0
    time_scale: float = 1.0
    spawn_rate: float = 0.0
    out: str = "runs"
    json_path: str | None = None
    checks: list[str] = field(default_factory=list)
    api_key_env: str = ""
    model: str = "mock-agent"
    stop_timeout_s: float = 300.0
    progress_s: float = 5.0
    sink_args: list[str] = field(default_factory=list)
    """Locust's ``--sink``/``--influx-*`` arguments, passed through."""
    influx: InfluxConfig | None = None
    """The InfluxDB sink those arguments configure, checked before anything starts."""
    mock_limits: list[str] = field(default_factory=list)
    """``rig mock`` quota arguments (``--rpm 600`` ...), for the embedded mock only."""


def _check_sink(config: InfluxConfig | None) -> str | None:
    """Bad InfluxDB configuration, named before anything starts (``None`` when fine)."""
    if config is None:
        return None
    from rig.metrics.influx import open_backend

    try:
        open_backend(config).close()
    except InfluxConfigError as exc:
        return str(exc)
    return None


def _reachable(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=5):
            return None
    except OSError as exc:
        return str(exc)


def run_compare(options: CompareOptions, out: TextIO = sys.stdout) -> int:
    """Run the comparison; return the process exit code."""
    from rig.loadgen.options import parse_transports
    from rig.loadgen.target import Target, TargetError
    from rig.mock.latency import PresetError, load_preset
    from rig.report import CheckError, parse_check
    from rig.run.mock_process import MockProcess, MockProcessError

    def fail(code: int, message: str) -> int:
        print(f"rig compare: {message}", file=sys.stderr)
        return code

    try:
        checks = [parse_check(text) for text in options.checks]
        transports = parse_transports(options.transports)
        if options.target_url is None:
            latency = load_preset(options.preset)
        else:
            Target.from_url(options.target_url, api_key_env=options.api_key_env or None)
    except (CheckError, ValueError, PresetError, TargetError) as exc:
        return fail(EXIT_USAGE, str(exc))
    if options.users < 1 or options.duration_s <= 0:
        return fail(EXIT_USAGE, "--users and --duration must be positive")
    if options.target_url is not None and options.mock_limits:
        return fail(EXIT_USAGE, "--rpm/--tpm/... configure the embedded mock; drop --target-url")
    problem = _check_sink(options.influx)
    if problem:
        return fail(EXIT_USAGE, problem)

    if options.target_url is not None:
        target = Target.from_url(options.target_url)
        problem = _reachable(target.host, target.port)
        if problem:
            return fail(EXIT_TARGET, f"target {options.target_url} is unreachable: {problem}")
        return _run(options, checks, transports, options.target_url, None, out)
    mock_args = ["--preset", options.preset, "--seed", str(options.seed), *options.mock_limits]
    try:
        with MockProcess(mock_args) as mock:
            print(f"embedded mock at {mock.base_url} (preset {options.preset})", file=out)
            return _run(options, checks, transports, mock.base_url, latency.as_dict(), out)
    except MockProcessError as exc:
        return fail(EXIT_TARGET, str(exc))


def _run(
    options: CompareOptions,
    checks: list[Any],
    transports: list[str],
    target_url: str,
    latency_model: dict[str, Any] | None,
    out: TextIO,
) -> int:
    import gevent
    from locust import events
    from locust.argument_parser import get_parser
    from locust.env import Environment

    from rig.fdlimit import raise_open_files_limit
    from rig.locust import plugin as locust_plugin
    from rig.metrics.rundir import new_run_id
    from rig.report import ReportError, evaluate, render_run, render_table

    raise_open_files_limit()  # one socket per session
    run_id = new_run_id()
    total = options.users * len(transports)
    rate = options.spawn_rate or max(1.0, total / 5)
    args = [
        "--headless",
        "-u", str(total),
        "-r", str(rate),
        "--target-url", target_url,
        "--transports", ",".join(transports),
        "--users-per-transport", str(options.users),
        "--scenario", options.scenario,
        "--seed", str(options.seed),
        "--time-scale", str(options.time_scale),
        "--out", options.out,
        "--run-id", run_id,
        "--model", options.model,
        "--stop-timeout", f"{max(1, round(options.stop_timeout_s))}s",
        *options.sink_args,
    ]  # fmt: skip
    if options.api_key_env:
        args += ["--api-key-env", options.api_key_env]
    args += [
        "--target-name",
        "mock" if latency_model is not None else urlsplit(target_url).hostname,
    ]
    parsed = get_parser().parse_args(args)
    classes = [locust_plugin.AGENT_USERS[name] for name in transports]
    environment = Environment(
        user_classes=list(classes),
        events=events,
        parsed_options=parsed,
        stop_timeout=options.stop_timeout_s,
    )
    runner = environment.create_local_runner()
    locust_plugin.STATE.report_at_quit = False  # rendered below, with the table and checks
    if latency_model is not None:
        locust_plugin.STATE.extra_meta = {
            "preset": options.preset,
            "latency_model": latency_model,
            "mock_limits": options.mock_limits,
        }
    events.init.fire(environment=environment, runner=runner, web_ui=None)
    print(
        f"run {run_id}: {options.users} user(s) x {', '.join(transports)} for "
        f"{options.duration_s:g}s against {target_url}",
        file=out,
    )
    runner.start(total, spawn_rate=rate)
    started = time.monotonic()
    progress = gevent.spawn(_progress, environment, started, options.progress_s, out)
    gevent.sleep(options.duration_s)
    print("duration reached: waiting for tasks in flight to finish", file=out)
    runner.stop()
    progress.kill()
    runner.quit()
    events.quitting.fire(environment=environment, reverse=True)

    run_dir = Path(options.out) / run_id
    try:
        rendered = render_run(run_dir)
    except ReportError as exc:
        print(f"rig compare: {exc}", file=sys.stderr)
        return EXIT_TARGET
    summary = rendered.summary
    print("", file=out)
    print(render_table(summary), file=out)
    print(f"\nrun directory: {run_dir}\nreport: {rendered.report_path}", file=out)
    if options.json_path:
        shutil.copyfile(rendered.summary_path, options.json_path)
    completed = sum((figures.get("tasks") or 0) for figures in summary["transports"].values())
    if completed == 0:
        first_error = _first_error(run_dir)
        print(f"rig compare: every session failed: {first_error}", file=sys.stderr)
        return EXIT_TARGET
    failed = 0
    for result in evaluate(checks, summary):
        mark = "ok  " if result.passed else "FAIL"
        print(f"check {mark} {result.message}", file=out)
        failed += not result.passed
    return EXIT_CHECK_FAILED if failed else 0


def _first_error(run_dir: Path) -> str:
    from rig.metrics.rundir import RunDirectory

    for turn in RunDirectory(run_dir).turns():
        if turn.error:
            return turn.error
    return "no turn completed"


def _progress(environment: Any, started: float, every_s: float, out: TextIO) -> None:
    import gevent

    while True:
        gevent.sleep(every_s)
        turns: dict[str, int] = defaultdict(int)
        failures: dict[str, int] = defaultdict(int)
        for (_, method), entry in environment.stats.entries.items():
            turns[method] += entry.num_requests
            failures[method] += entry.num_failures
        cells = " | ".join(
            f"{method}: {turns[method]} turns, {failures[method]} failed"
            for method in sorted(turns)
        )
        users = environment.runner.user_count if environment.runner else 0
        print(f"[{time.monotonic() - started:5.0f}s] {users} users | {cells}", file=out, flush=True)
