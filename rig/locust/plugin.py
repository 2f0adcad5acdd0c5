"""Locust integration: agent users per transport, options, and records to one place.

Importing this module (the locustfile does) registers listeners on Locust's events:

* ``init_command_line_parser``: the rig's options, shown in ``--help`` and the web UI;
* ``init``: keeps only the users of ``--transports`` and sets their counts;
* ``test_start``/``test_stop``/``quitting``: the record relay and the health monitor.

Each Locust user is one :class:`~rig.loadgen.session.AgentSession` running tasks in a
loop. Every turn is also fired as a Locust ``request`` event (type = transport, name =
transport and turn bucket), so Locust's own statistics, CSV and HTML report work as
usual. Records go to the run directory: written directly by a local runner or the
master; a worker ships them to the master in batches (custom message ``rig_records``),
so a distributed run produces the same run directory as a local one.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import gevent
import orjson
from locust import LoadTestShape, User, events, task
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from rig import __version__
from rig.loadgen.backoff import RetryPolicy, RetryPolicyError, parse_retry_policy
from rig.loadgen.health import HealthMonitor
from rig.loadgen.options import parse_transports, parse_weights, resolve_scenarios, turn_bucket
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.loadgen.transports import DEFAULT_RETRY, TRANSPORT_NAMES
from rig.metrics.influx import InfluxSink
from rig.metrics.influx_config import InfluxConfig, InfluxConfigError, add_influx_arguments
from rig.metrics.records import RecordTags, TurnRecord, record_from_dict, record_to_dict
from rig.metrics.rundir import RunDirectory, new_run_id
from rig.report import CheckError, ReportError, evaluate, parse_check, render_run
from rig.report.capacity import DEFAULT_MAX_RATE_LIMITED, DEFAULT_TTFT_SLO_MS
from rig.workload.scenarios import Scenario
from rig.workload.shapes import Shape, ShapeError, parse_shape

__all__ = [
    "AGENT_USERS",
    "ChatAgent",
    "HttpAgent",
    "HttpChainedAgent",
    "RecordRelay",
    "WsAgent",
    "WsStoredAgent",
    "add_arguments",
    "turn_bucket",
]

log = logging.getLogger("rig.loadgen")

RECORDS_MESSAGE = "rig_records"
BATCH_INTERVAL_S = 1.0
FINAL_FLUSH_S = 30.0
"""Seconds the InfluxDB sink gets to send what is queued when the test stops."""


def add_arguments(parser: Any) -> None:
    """The rig's options on Locust's parser: in ``--help`` and in the web UI's form."""
    group = parser
    group.add_argument(
        "--target-url",
        default="http://127.0.0.1:8000/v1",
        help="base URL of the Responses API under test (default: the mock on :8000)",
    )
    group.add_argument(
        "--transports",
        default="http,ws",
        help=f"comma-separated transports to run side by side, of {', '.join(TRANSPORT_NAMES)}",
    )
    group.add_argument(
        "--scenario",
        default="mixed",
        help="scenario name or YAML file; 'mixed' cycles through the built-in ones",
    )
    group.add_argument("--seed", type=int, default=0, help="seed for tasks and tool timings")
    group.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplies simulated tool time (0 = instant tools; default 1 = real time)",
    )
    group.add_argument(
        "--sink",
        default="dir",
        choices=["dir", "influx", "influx-v1", "none"],
        help="where records go: the run directory (dir, default); also InfluxDB 2.x/3.x "
        "(influx) or 1.x (influx-v1), written by every worker; or nowhere (none)",
    )
    add_influx_arguments(group)
    group.add_argument("--out", default="runs", help="parent of run directories (default: runs)")
    group.add_argument("--run-id", default="", help="run id (default: generated)")
    group.add_argument(
        "--api-key-env",
        default="",
        help="environment variable holding the target's API key (never logged)",
        include_in_web_ui=False,
    )
    group.add_argument("--model", default="mock-agent", help="model name sent to the target")
    group.add_argument("--target-name", default="", help="label for the target in records")
    group.add_argument("--request-timeout", type=float, default=120.0, help="seconds per turn")
    group.add_argument(
        "--transport-weights",
        default="",
        help="relative user weights, e.g. http=3,ws=1 (default: equal)",
    )
    group.add_argument(
        "--check",
        action="append",
        default=[],
        help='threshold on summary.json, e.g. "ws_vs_http.bytes_sent_reduction>=0.8" '
        "(repeatable); a failed check makes the exit code 1",
    )
    group.add_argument(
        "--retry-policy",
        default="backoff",
        help="on a rate limit: backoff[:base=0.5,cap=30,attempts=8] (honours retry-after, "
        "jittered; default) | fail-fast | fixed:attempts=3,wait=1",
    )
    group.add_argument(
        "--shape",
        default="",
        help="load shape instead of -u/-r/-t: steps:users=10,every=30s,max=100 | "
        "ramp:max=200,over=5m,hold=5m | spike:base=20,max=200,at=2m,for=1m,duration=6m | "
        "soak:users=100,duration=2h",
    )
    group.add_argument(
        "--max-rate-limited",
        type=float,
        default=DEFAULT_MAX_RATE_LIMITED,
        help="with a steps shape: the knee keeps at most this share of attempts rejected",
    )
    group.add_argument(
        "--ttft-slo-ms",
        type=float,
        default=DEFAULT_TTFT_SLO_MS,
        help="with a steps shape: the knee keeps TTFT p95 within this",
    )
    group.add_argument(
        "--summary-stdout",
        action="store_true",
        default=False,
        help="at the end, print summary.json as one line to stdout (e.g. a Kubernetes job log)",
    )
    group.add_argument(
        "--users-per-transport",
        type=int,
        default=0,
        help="exact users per transport (overrides -u's weighting when > 0)",
    )


events.init_command_line_parser.add_listener(add_arguments)


class RecordRelay:
    """Gets every record of this process to the run directory, wherever that is."""

    def __init__(self, environment: Environment):
        self.environment = environment
        self.runner = environment.runner
        self.pending: list[dict[str, Any]] = []
        self.run: RunDirectory | None = None
        self.turns = 0
        self.finals: set[str] = set()
        self.meta: dict[str, Any] = {}
        self._shipper: gevent.Greenlet | None = None
        self.enabled = getattr(environment.parsed_options, "sink", "dir") != "none"
        self.sink_counts: dict[str, tuple[int, int]] = {}
        """Points written and dropped by each process's InfluxDB sink (at its end)."""

    @property
    def is_worker(self) -> bool:
        return isinstance(self.runner, WorkerRunner)

    def open(self, run_id: str, meta: dict[str, Any]) -> None:
        """Create the run directory (local runner or master)."""
        if self.enabled and not self.is_worker and self.run is None:
            out = self.environment.parsed_options.out
            self.run = RunDirectory.create(out, run_id, meta)
            log.info("run directory %s", self.run.path)

    def __call__(self, record: Any) -> None:
        if isinstance(record, TurnRecord):
            self.turns += 1
        if not self.enabled:
            return
        if self.is_worker:
            self.pending.append(record_to_dict(record))
        elif self.run is not None:
            self.run.append([record])

    def start_shipping(self) -> None:
        """On a worker: send batches to the master every second."""
        if self.is_worker and self._shipper is None:
            self._shipper = gevent.spawn(self._ship_loop)

    def _ship_loop(self) -> None:
        while True:
            gevent.sleep(BATCH_INTERVAL_S)
            self.ship()

    def ship(self, final: bool = False, sink: tuple[int, int] | None = None) -> None:
        """Send what is pending to the master (``final`` after the last record, with the
        InfluxDB sink's final counts)."""
        if not self.is_worker or (not self.pending and not final):
            return
        batch, self.pending = self.pending, []
        message: dict[str, Any] = {"records": batch, "final": final}
        if sink is not None:
            message["sink"] = list(sink)
        self.runner.send_message(RECORDS_MESSAGE, message)

    def stop_shipping(self, sink: tuple[int, int] | None = None) -> None:
        """Send the rest, marked final."""
        if self._shipper is not None:
            self._shipper.kill()
            self._shipper = None
        if self.is_worker:
            self.ship(final=True, sink=sink)
        elif sink is not None:
            self.sink_counts["local"] = sink

    def receive(self, environment: Environment | None = None, msg: Any = None, **_: Any) -> None:
        """On the master: a batch from a worker."""
        message = msg
        data = message.data or {}
        records = [record_from_dict(item) for item in data.get("records", ())]
        self.turns += sum(isinstance(r, TurnRecord) for r in records)
        if self.run is not None:
            self.run.append(records)
            self.run.flush()
        if data.get("final"):
            node = getattr(message, "node_id", "") or str(len(self.finals))
            self.finals.add(node)
            if data.get("sink"):
                written, dropped = data["sink"]
                self.sink_counts[node] = (int(written), int(dropped))

    def close(self, expected_workers: int = 0, timeout_s: float = 15.0) -> None:
        """Wait for every worker's final batch (master), then close the files."""
        deadline = time.monotonic() + timeout_s
        while len(self.finals) < expected_workers and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if len(self.finals) < expected_workers:
            log.warning(
                "%d of %d workers did not send their final records",
                expected_workers - len(self.finals),
                expected_workers,
            )
        if self.run is not None:
            meta = self.run.read_json("meta.json")
            meta["duration_s"] = round(time.time() - meta.get("started_at", time.time()), 3)
            if self.sink_counts:
                meta["sink"] = {
                    "kind": self.environment.parsed_options.sink,
                    "points_written": sum(w for w, _ in self.sink_counts.values()),
                    "points_dropped": sum(d for _, d in self.sink_counts.values()),
                }
            self.run.write_json("meta.json", meta)
            self.meta = meta
            self.run.close()


class RigShape(LoadTestShape):
    """A :mod:`rig.workload.shapes` shape as Locust's ``LoadTestShape`` (set by ``--shape``)."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = shape

    def tick(self) -> tuple[int, float] | None:
        return self.shape.tick(self.get_run_time())


class _State:
    """Per-process state of the plugin (one Locust environment per process)."""

    relay: RecordRelay | None = None
    monitor: HealthMonitor | None = None
    run_id: str = ""
    transports: list[str] = []
    scenarios: list[Scenario] = []
    target: Target | None = None
    counters: dict[str, itertools.count[int]] = {}
    sink: Callable[[Any], None] | None = None
    influx: InfluxSink | None = None
    influx_backlog: list[Any] | None = None
    """Records made while the InfluxDB sink is being checked at start."""
    extra_meta: dict[str, Any] = {}
    retry: RetryPolicy = DEFAULT_RETRY
    report_at_quit: bool = True
    """Render summary.json and report.html and evaluate ``--check`` when Locust quits
    (``rig compare`` does that itself and turns this off)."""
    checks: list[Any] = []
    """Added to meta.json by whoever runs Locust in-process (``rig compare``: the preset)."""


def _emit(record: Any) -> None:
    """Every record of this process: to the run directory's relay and to InfluxDB."""
    if STATE.relay is not None:
        STATE.relay(record)
    if STATE.influx is not None:
        STATE.influx(record)
    elif STATE.influx_backlog is not None:
        STATE.influx_backlog.append(record)


STATE = _State()


class AgentUser(User):
    """One simulated coding agent; subclasses pick the transport."""

    abstract = True
    transport = "http"

    def on_start(self) -> None:
        options = self.environment.parsed_options
        runner = self.environment.runner
        worker = (
            f"w{getattr(runner, 'worker_index', 0)}"
            if isinstance(runner, WorkerRunner)
            else "local"
        )
        # A per-transport counter pairs the cells: user k of every transport gets the same
        # scenario and the same tasks, so transports differ only in how they talk.
        counter = STATE.counters.setdefault(self.transport, itertools.count())
        index = next(counter) + 1_000_000 * getattr(runner, "worker_index", 0)
        scenario = STATE.scenarios[index % len(STATE.scenarios)]
        assert STATE.target is not None
        tags = RecordTags(
            run=STATE.run_id,
            scenario=scenario.name,
            transport=self.transport,
            target=STATE.target.name,
            worker=worker,
        )
        config = SessionConfig(
            transport=self.transport,
            scenario=scenario,
            target=STATE.target,
            tags=tags,
            seed=options.seed,
            time_scale=options.time_scale,
            timeout_s=options.request_timeout,
            retry=STATE.retry,
        )
        self.agent = AgentSession(config, self._record, session_index=index)

    def _record(self, record: Any) -> None:
        if isinstance(record, TurnRecord):
            failed = record.status in ("error", "timeout", "rate_limited")
            self.environment.events.request.fire(
                request_type=self.transport,
                name=f"{self.transport} turn {turn_bucket(record.turn)}",
                response_time=record.turn_ms,
                response_length=record.bytes_recv,
                response=None,
                context={"ttft_ms": record.ttft_ms, "bytes_sent": record.bytes_sent},
                exception=RuntimeError(record.error or record.status) if failed else None,
            )
        if STATE.sink is not None:
            STATE.sink(record)

    def on_stop(self) -> None:
        self.agent.close()

    @task
    def run_task(self) -> None:
        """One agent task, start to final answer."""
        self.agent.run_task()


class HttpAgent(AgentUser):
    """Responses API over HTTP, full context every turn."""

    transport = "http"


class HttpChainedAgent(AgentUser):
    """HTTP with ``previous_response_id`` and ``store=true``."""

    transport = "http_chained"


class WsAgent(AgentUser):
    """WebSocket mode, ``store=false``."""

    transport = "ws"


class WsStoredAgent(AgentUser):
    """WebSocket mode, ``store=true``."""

    transport = "ws_stored"


class ChatAgent(AgentUser):
    """Chat Completions, full messages every turn."""

    transport = "chat"


AGENT_USERS: dict[str, type[AgentUser]] = {
    cls.transport: cls for cls in (HttpAgent, HttpChainedAgent, WsAgent, WsStoredAgent, ChatAgent)
}


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None or not hasattr(options, "transports"):
        return
    STATE.transports = parse_transports(options.transports)
    STATE.scenarios = resolve_scenarios(options.scenario)
    STATE.target = Target.from_url(
        options.target_url,
        model=options.model,
        name=options.target_name or None,
        api_key_env=options.api_key_env or None,
    )
    chosen = {AGENT_USERS[name] for name in STATE.transports}
    environment.user_classes[:] = [cls for cls in environment.user_classes if cls in chosen] or [
        AGENT_USERS[name] for name in STATE.transports
    ]
    weights = parse_weights(options.transport_weights, STATE.transports)
    if options.shape and not isinstance(environment.runner, WorkerRunner):
        try:
            shape = parse_shape(options.shape)
        except ShapeError as exc:
            log.error("rig: %s", exc)
            raise SystemExit(2) from None
        if options.users_per_transport > 0:
            log.error("rig: --shape sets the session count; drop --users-per-transport")
            raise SystemExit(2)
        environment.shape_class = RigShape(shape)
        environment.shape_class.runner = environment.runner
    for cls in environment.user_classes:
        cls.weight = weights.get(cls.transport, 1)
        cls.fixed_count = max(0, options.users_per_transport)
    try:
        STATE.checks = [parse_check(text) for text in options.check or ()]
        STATE.retry = parse_retry_policy(options.retry_policy)
    except (CheckError, RetryPolicyError) as exc:
        log.error("rig: %s", exc)
        raise SystemExit(2) from None
    relay = STATE.relay = RecordRelay(environment)
    STATE.sink = _emit
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(RECORDS_MESSAGE, relay.receive)
        # The workers take the master's options with their first spawn job: a run id made
        # here is every worker's too, so their InfluxDB points carry the master's run.
        options.run_id = options.run_id or new_run_id()
    config = InfluxConfig.from_options(options)
    if config is not None and STATE.influx is None:
        # The check below waits on the network, and a worker's runner may take its first
        # spawn job meanwhile: records made before the sink exists wait in a backlog.
        STATE.influx_backlog = []
        try:
            sink = InfluxSink.from_config(config)
        except InfluxConfigError as exc:
            # Fail at start, naming the problem, rather than losing the run's metrics.
            log.error("rig: %s", exc)
            raise SystemExit(2) from None
        sink.start()
        for record in STATE.influx_backlog:
            sink(record)
        STATE.influx, STATE.influx_backlog = sink, None


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    relay = STATE.relay
    if relay is None:
        return
    options = environment.parsed_options
    STATE.run_id = options.run_id or STATE.run_id or new_run_id()
    if not relay.is_worker:
        relay.open(STATE.run_id, run_meta(environment))
    relay.start_shipping()
    worker = "local"
    if isinstance(environment.runner, WorkerRunner):
        worker = f"w{environment.runner.worker_index}"
    tags = RecordTags(
        run=STATE.run_id,
        scenario=options.scenario,
        transport="all",
        target=STATE.target.name if STATE.target else "",
        worker=worker,
    )
    if not isinstance(environment.runner, MasterRunner):
        STATE.monitor = HealthMonitor(
            tags,
            _emit,
            users=lambda: environment.runner.user_count if environment.runner else 0,
            turns=lambda: relay.turns,
            points=lambda: STATE.influx.counts() if STATE.influx is not None else (0, 0),
        )
        STATE.monitor.start()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner) and STATE.relay is not None:
        _collect_finals(runner, STATE.relay)
    if STATE.monitor is not None:
        STATE.monitor.stop()
        STATE.monitor = None
    counts = None
    if STATE.influx is not None and not isinstance(environment.runner, MasterRunner):
        if not STATE.influx.flush(timeout_s=FINAL_FLUSH_S):
            log.warning(
                "InfluxDB: %d points still queued after the final flush", STATE.influx.queued
            )
        counts = STATE.influx.counts()
    if STATE.relay is not None:
        STATE.relay.stop_shipping(sink=counts)
    runner = environment.runner
    if isinstance(runner, WorkerRunner) and hasattr(runner, "_send_stats"):
        # Users have stopped: report the last requests now. Otherwise a worker's requests
        # since its last 3 s stats report can miss the master's statistics (the master
        # forgets a worker once it reports stopped and never asks it for a final report).
        runner._send_stats()


def _collect_finals(runner: MasterRunner, relay: RecordRelay) -> None:
    """On the master: get every worker's final records while Locust still listens.

    A headless master at its run time (or the end of a shape) quits straight away: it tells
    the workers to quit, waits half a second and stops receiving, while each worker lets
    its users finish their tasks (``--stop-timeout``) before sending its last records.
    Here, inside that quit and before the master stops listening, the workers that have
    not sent their final batch are told to quit now, and the master waits for their final
    batches (up to the stop timeout plus the sink's final flush). After a normal stop the
    workers have already sent them, and this returns at once.
    """
    pending = [client for client in runner.clients.all if client.id not in relay.finals]
    if not pending:
        return
    for client in pending:
        runner.server.send_to_client(Message("quit", None, client.id))
    deadline = time.monotonic() + (runner.environment.stop_timeout or 0) + FINAL_FLUSH_S + 5
    waiting = {client.id for client in pending}
    while waiting - relay.finals and time.monotonic() < deadline:
        gevent.sleep(0.05)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    relay = STATE.relay
    influx, STATE.influx = STATE.influx, None
    if relay is not None and not relay.is_worker:
        expected = 0
        if isinstance(environment.runner, MasterRunner):
            expected = max(len(environment.runner.clients), len(relay.finals))
        relay.close(expected_workers=expected)
        if influx is not None and relay.meta:
            influx.write_run(STATE.run_id, relay.meta)
        if STATE.report_at_quit and relay.run is not None:
            _report(environment, relay.run.path)
    if influx is not None:
        influx.close(timeout_s=FINAL_FLUSH_S)


def _report(environment: Environment, run_dir: Any) -> None:
    """summary.json, report.html and the ``--check`` verdicts; failed checks set exit 1."""
    options = environment.parsed_options
    try:
        rendered = render_run(run_dir)
    except ReportError as exc:
        log.error("rig: no report: %s", exc)
        environment.process_exit_code = 3
        return
    log.info("run directory %s: summary.json and report.html written", run_dir)
    if options.summary_stdout:
        print(orjson.dumps(rendered.summary, option=orjson.OPT_SORT_KEYS).decode(), flush=True)
    failed = 0
    for result in evaluate(STATE.checks, rendered.summary):
        (log.info if result.passed else log.error)(
            "check %s %s", "ok" if result.passed else "FAIL", result.message
        )
        failed += not result.passed
    if failed:
        environment.process_exit_code = 1


def run_meta(environment: Environment) -> dict[str, Any]:
    """What was run, for meta.json (never a key)."""
    options = environment.parsed_options
    return {
        "target": STATE.target.name if STATE.target else "",
        "target_url": options.target_url,
        "scenario": options.scenario,
        "transports": STATE.transports,
        "users": getattr(options, "num_users", None),
        "users_per_transport": options.users_per_transport or None,
        "shape": options.shape or None,
        "capacity_criteria": {
            "max_rate_limited": options.max_rate_limited,
            "ttft_slo_ms": options.ttft_slo_ms,
        },
        "retry_policy": options.retry_policy,
        "seed": options.seed,
        "time_scale": options.time_scale,
        "model": options.model,
        "started_at": time.time(),
        "rig_version": __version__,
        "pid": os.getpid(),
        **STATE.extra_meta,
    }
