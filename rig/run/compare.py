"""``rig compare``: every chosen transport side by side in one Locust run, then the verdict.

Without ``--target-url`` it starts the mock provider as a child process (the embedded
default). ``--target gateway`` measures a gateway: without ``--target-url`` it starts the
mock as the stateless upstream and ``rig gateway`` in front of it, both child processes,
runs the transports through the gateway and a direct twin of each straight to the mock
(``--direct-url``: the same sessions under the same load, for the gateway's added TTFT),
and samples the gateway's ``/stats`` (and the mock's) before, during and after the run
into the run directory's ``gateway.json``; with ``--target-url`` (a deployed gateway) it
samples the ``/stats`` of each of its URLs, and runs twins only if given ``--direct-url``.

It runs Locust in this process (a local runner, the same users and listeners as the
locustfile), prints progress, waits for in-flight tasks at the end, renders
summary.json and report.html into the run directory, prints the comparison table and the
summary's warnings (a saturated load generator, failed turns, InfluxDB points dropped),
and evaluates ``--check`` thresholds (``rig.points_dropped==0`` fails a run whose sink
lost points).

Exit codes: 0 all good; 1 a check failed; 2 bad usage; 3 the target was unreachable or
every session failed.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from rig.metrics.influx_config import InfluxConfig, InfluxConfigError
from rig.options import GATEWAY, RunOptions
from rig.run.gateway_stats import StatsWatch
from rig.run.ports import free_port
from rig.run.workers import LocalWorkers, WorkersError, resolve_processes

__all__ = ["EXIT_CHECK_FAILED", "EXIT_TARGET", "EXIT_USAGE", "run_compare"]

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_TARGET = 3


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


def run_compare(
    options: RunOptions,
    out: TextIO = sys.stdout,
    *,
    spawn_rate: float = 0.0,
    progress_s: float = 5.0,
) -> int:
    """Run the comparison; return the process exit code. ``spawn_rate`` 0: all users
    within about five seconds."""
    from rig.loadgen.link import link_mix
    from rig.loadgen.options import parse_transports
    from rig.loadgen.target import Target, TargetError
    from rig.mock.latency import PresetError, load_preset
    from rig.report import CheckError, parse_check
    from rig.run.gateway_process import GatewayProcess
    from rig.run.mock_process import MockProcess, MockProcessError

    def fail(code: int, message: str) -> int:
        print(f"rig compare: {message}", file=sys.stderr)
        return code

    try:
        checks = [parse_check(text) for text in options.check]
        transports = parse_transports(options.transports)
        link_mix(options.link, options.links)  # LinkError (a ValueError): --link with --links
        if options.target_url is None:
            latency = load_preset(options.preset)
        else:
            Target.from_url(options.target_url, api_key_env=options.api_key_env or None)
        if options.direct_url or options.direct_transports:
            twins = parse_transports(options.direct_transports or transports)
            if not set(twins) <= set(transports):
                raise ValueError(
                    f"--direct-transports {options.direct_transports!r}: a twin of a transport "
                    f"not run; choose from --transports {','.join(transports)}"
                )
        if options.direct_url:
            Target.from_url(options.direct_url)
    except (CheckError, ValueError, PresetError, TargetError) as exc:
        return fail(EXIT_USAGE, str(exc))
    if options.users < 1 or options.duration <= 0:
        return fail(EXIT_USAGE, "--users and --duration must be positive")
    if options.target_url is not None and options.quota.given():
        return fail(EXIT_USAGE, "--rpm/--tpm/... configure the embedded mock; drop --target-url")
    problem = _check_sink(InfluxConfig.from_options(options))
    if problem:
        return fail(EXIT_USAGE, problem)

    gateway = options.target == GATEWAY
    if gateway and options.target_url is None and options.direct_url:
        return fail(EXIT_USAGE, "--direct-url is the embedded mock with --target gateway; drop it")
    run = _Comparison(options, checks, transports, out, spawn_rate, progress_s)
    if options.target_url is not None:
        # Of several URLs, one that answers is enough: the others are failed over.
        endpoints = Target.from_url(options.target_url).endpoints
        problems = [(e, _reachable(e.host, e.port)) for e in endpoints]
        down = [(e, problem) for e, problem in problems if problem]
        if len(down) == len(endpoints):
            causes = "; ".join(f"{e.base_url}: {problem}" for e, problem in down)
            return fail(EXIT_TARGET, f"target {options.target_url} is unreachable: {causes}")
        for endpoint, problem in down:
            print(f"warning: target URL {endpoint.base_url} is unreachable: {problem}", file=out)
        watch = None
        if gateway:
            watch = StatsWatch([e.base_url for e, problem in problems if problem is None])
        return run(options.target_url, None, watch=watch)
    mock_args = ["--preset", options.preset, "--seed", str(options.seed)]
    mock_args += options.quota.mock_argv()
    try:
        with MockProcess(mock_args) as mock:
            print(f"embedded mock at {mock.base_url} (preset {options.preset})", file=out)
            if not gateway:
                return run(mock.base_url, latency.as_dict())
            with GatewayProcess(mock.base_url) as proxy:
                print(f"embedded gateway at {proxy.base_url} (upstream {mock.base_url})", file=out)
                watch = StatsWatch([proxy.base_url], upstream_url=mock.base_url)
                return run(
                    proxy.base_url,
                    latency.as_dict(),
                    watch=watch,
                    direct_url=mock.base_url,
                    target_name=GATEWAY,
                )
    except MockProcessError as exc:
        return fail(EXIT_TARGET, str(exc))


class _Comparison:
    """One comparison run against a target that is up."""

    def __init__(
        self,
        options: RunOptions,
        checks: list[Any],
        transports: list[str],
        out: TextIO,
        spawn_rate: float,
        progress_s: float,
    ):
        self.options = options
        self.checks = checks
        self.transports = transports
        self.out = out
        self.spawn_rate = spawn_rate
        self.progress_s = progress_s

    def __call__(
        self,
        target_url: str,
        latency_model: dict[str, Any] | None,
        *,
        watch: StatsWatch | None = None,
        direct_url: str | None = None,
        target_name: str | None = None,
    ) -> int:
        """Run against ``target_url`` (the embedded mock's ``latency_model``, or ``None``);
        ``watch``: the gateway's ``/stats`` to sample; ``direct_url``: the direct twins'
        URL (else ``--direct-url``)."""
        from locust.env import Environment
        from locust.event import Events
        from locust.runners import LocalRunner, MasterRunner

        from rig.fdlimit import raise_open_files_limit
        from rig.loadgen.options import parse_transports
        from rig.locust.plugin import LocustRun, user_classes
        from rig.metrics.rundir import RunDirectory, new_run_id
        from rig.report import ReportError, evaluate, render_run, render_table
        from rig.report.gateway import GATEWAY_FILE

        options, transports, out = self.options, self.transports, self.out
        raise_open_files_limit()  # one socket per session
        run_id = new_run_id()
        direct_url = direct_url or options.direct_url
        twins = parse_transports(options.direct_transports or transports) if direct_url else []
        total = options.users * (len(transports) + len(twins))
        rate = self.spawn_rate or max(1.0, total / 5)
        if target_name is None:
            target_name = "mock" if latency_model is not None else urlsplit(target_url).hostname
        run_options = options.replace(
            target_url=target_url,
            transports=",".join(transports),
            direct_url=direct_url or "",
            direct_transports=",".join(twins),
            users_per_transport=options.users,
            run_id=run_id,
            target_name=target_name or "",
        )
        # A fresh set of events and user classes: nothing of an earlier run in this
        # process (listeners, class attributes) reaches this one.
        environment = Environment(
            user_classes=list(user_classes(transports)),
            events=Events(),
            stop_timeout=options.stop_timeout,
        )
        embedded = 0 if latency_model is None else 2 if target_name == GATEWAY else 1
        processes = resolve_processes(options.processes, embedded_servers=embedded)
        workers: LocalWorkers | contextlib.nullcontext[None] = contextlib.nullcontext()
        runner: LocalRunner | MasterRunner
        if processes == 1:
            runner = environment.create_local_runner()
        else:
            master_port = free_port()
            runner = environment.create_master_runner("127.0.0.1", master_port)
            log_dir = Path(options.out) / f".{run_id}-workers"
            workers = LocalWorkers(processes, master_port, run_options, log_dir)
        extra_meta: dict[str, Any] = {"users": total, "processes": processes}
        if latency_model is not None:
            extra_meta.update(
                preset=options.preset,
                latency_model=latency_model,
                mock_limits=options.quota.mock_argv(),
            )
        if watch is not None:
            extra_meta["gateway"] = {"url": target_url, "embedded": latency_model is not None}
            watch.begin()
        run = LocustRun.attach(environment, run_options, extra_meta=extra_meta)
        direct = f" and {', '.join(twins)} direct to {direct_url}" if twins else ""
        spread = f" in {processes} worker processes" if processes > 1 else ""
        print(
            f"run {run_id}: {options.users} user(s) x {', '.join(transports)} for "
            f"{options.duration:g}s against {target_url}{direct}{spread}",
            file=out,
        )
        try:
            with workers:
                if isinstance(workers, LocalWorkers):
                    workers.wait_ready(runner)
                self._drive(environment, runner, run, total, rate, watch)
        except WorkersError as exc:
            runner.quit()
            run.detach()
            print(f"rig compare: {exc}", file=sys.stderr)
            return EXIT_TARGET
        finally:
            if isinstance(workers, LocalWorkers):
                _keep_logs(workers.log_dir, Path(options.out) / run_id / "workers")

        run_dir = Path(options.out) / run_id
        if watch is not None and run_dir.is_dir():
            watch.finish()
            observed = watch.observed(embedded=latency_model is not None)
            RunDirectory(run_dir).write_json(GATEWAY_FILE, observed)
            for error in watch.errors[:3]:
                print(f"warning: gateway /stats unreadable: {error}", file=out)
        try:
            rendered = render_run(run_dir)
        except ReportError as exc:
            print(f"rig compare: {exc}", file=sys.stderr)
            return EXIT_TARGET
        summary = rendered.summary
        print("", file=out)
        print(render_table(summary), file=out)  # with the report's warnings
        print(f"\nrun directory: {run_dir}\nreport: {rendered.report_path}", file=out)
        if options.json_path:
            shutil.copyfile(rendered.summary_path, options.json_path)
        completed = sum((figures.get("tasks") or 0) for figures in summary["transports"].values())
        if completed == 0:
            first_error = _first_error(run_dir)
            print(f"rig compare: every session failed: {first_error}", file=sys.stderr)
            return EXIT_TARGET
        failed = 0
        for result in evaluate(self.checks, summary):
            mark = "ok  " if result.passed else "FAIL"
            print(f"check {mark} {result.message}", file=out)
            failed += not result.passed
        return EXIT_CHECK_FAILED if failed else 0

    def _drive(
        self,
        environment: Any,
        runner: Any,
        run: Any,
        users: int,
        rate: float,
        watch: StatsWatch | None,
    ) -> None:
        """Start ``users``, show progress for the run's duration, stop them (waiting for
        tasks in flight) and end the run, which closes its run directory."""
        import gevent
        from locust.runners import MasterRunner

        options, out = self.options, self.out
        runner.start(users, spawn_rate=rate)
        started = time.monotonic()
        sample = watch.sample if watch is not None else None
        progress = gevent.spawn(_progress, environment, run, started, self.progress_s, out, sample)
        gevent.sleep(options.duration)
        if watch is not None:
            watch.sample()  # at full load, before sessions stop
        print("duration reached: waiting for tasks in flight to finish", file=out)
        if isinstance(runner, MasterRunner):
            # Straight to quit: each worker stops its users (tasks in flight finish), sends
            # its last records, which the master awaits (rig.locust.plugin), and exits. A
            # "stop" message first would hold every worker for --stop-timeout after it.
            runner.quit()
        else:
            runner.stop()
            runner.quit()
        progress.kill()
        environment.events.quitting.fire(environment=environment, reverse=True)


def _keep_logs(source: Path, destination: Path) -> None:
    """The workers' logs into the run directory (left where they are if it has none)."""
    if source.is_dir() and destination.parent.is_dir():
        shutil.move(str(source), str(destination))


def _first_error(run_dir: Path) -> str:
    from rig.metrics.rundir import RunDirectory

    for turn in RunDirectory(run_dir).turns():
        if turn.error:
            return turn.error
    return "no turn completed"


def _progress(
    environment: Any,
    run: Any,
    started: float,
    every_s: float,
    out: TextIO,
    sample: Callable[[], None] | None = None,
) -> None:
    """Every ``every_s``: sessions, turns and failures by transport, and each load
    generator process's sessions, scheduling lag and CPU (its latest health sample)."""
    import gevent

    while True:
        gevent.sleep(every_s)
        if sample is not None:
            sample()
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
        line = f"[{time.monotonic() - started:5.0f}s] {users} users | {cells}"
        health = run.relay.latest_health
        processes = " | ".join(
            f"{'' if worker == 'local' else worker + ' '}{record.users} users, "
            f"lag p99 {record.lag_ms_p99:.0f} ms, CPU {record.cpu_percent:.0f}%"
            + (" SATURATED" if record.saturated else "")
            for worker, record in sorted(health.items())
        )
        if processes:
            line += f"\n        {processes}"
        print(line, file=out, flush=True)
