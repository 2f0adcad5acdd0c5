"""Locust integration: agent users per transport, the rig's options, records to one place.

A locustfile calls :func:`install`, which hooks two of Locust's events:

* ``init_command_line_parser``: the rig's options (:mod:`rig.options`), shown in
  ``--help`` and the web UI;
* ``init``: a new :class:`LocustRun` for the environment, which keeps only the users of
  ``--transports``, sets their counts and listens to ``test_start``/``test_stop``/
  ``quitting`` for that run only (the record relay, the health monitor, the sink).

Everything a run holds lives on its :class:`LocustRun`, created per run and detached at
its end: nothing is module-level, so two runs in one process share nothing.

Each Locust user is one :class:`~rig.loadgen.session.AgentSession` running tasks in a
loop; the user classes are built from the transport registry (:func:`user_classes`).
With ``--direct-url`` each transport of ``--direct-transports`` also gets a twin user
class on the :data:`DIRECT` route: the same sessions (paired with the target's by index),
sent straight to that URL (the upstream behind a gateway) and tagged ``target=direct``,
so one run measures what the target adds under the same load.
Every turn is also fired as a Locust ``request`` event (type = transport, name =
transport and turn bucket), so Locust's own statistics, CSV and HTML report work as
usual. Records go to the run directory: written directly by a local runner or the
master; a worker ships them to the master in batches (custom message ``rig_records``),
so a distributed run produces the same run directory as a local one. What happens with
the run directory at the end (report, verdict) is the caller's: ``on_end``.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import gevent
from locust import LoadTestShape, User, task
from locust.env import Environment
from locust.event import Events
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from rig import __version__
from rig.collector import settle
from rig.errors import RigError
from rig.loadgen import registry
from rig.loadgen.backoff import (
    RetryPolicy,
    StreamPolicy,
    TaskBackoff,
    parse_retry_policy,
    parse_task_backoff,
)
from rig.loadgen.health import HealthMonitor
from rig.loadgen.link import DIRECT as DIRECT_LINK
from rig.loadgen.link import LinkMix, link_mix
from rig.loadgen.options import (
    RECORDED,
    TracedWorkload,
    parse_transports,
    parse_weights,
    parse_workload,
    resolve_scenarios,
    turn_bucket,
)
from rig.loadgen.registry import TransportContext
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.influx import InfluxSink
from rig.metrics.influx_config import InfluxConfig
from rig.metrics.records import (
    HealthRecord,
    RecordTags,
    TurnRecord,
    record_from_dict,
    record_to_dict,
)
from rig.metrics.rundir import RunDirectory, new_run_id
from rig.options import RunOptions, add_arguments
from rig.report import Check, parse_check
from rig.workload.scenarios import Scenario
from rig.workload.shapes import Shape, ShapeError, parse_shape

__all__ = [
    "DIRECT",
    "AgentUser",
    "LocustRun",
    "RecordRelay",
    "install",
    "run_of",
    "turn_bucket",
    "user_classes",
]

log = logging.getLogger("rig.loadgen")

DIRECT = "direct"
"""The route of a direct twin: its user class's ``route`` and its records' ``target`` tag."""

RECORDS_MESSAGE = "rig_records"
BATCH_INTERVAL_S = 1.0


class RecordRelay:
    """Gets every record of this process to the run directory, wherever that is."""

    def __init__(self, environment: Environment, options: RunOptions):
        self.environment = environment
        self.options = options
        self.runner = environment.runner
        self.pending: list[dict[str, Any]] = []
        self.run: RunDirectory | None = None
        self.turns = 0
        self.finals: set[str] = set()
        self.meta: dict[str, Any] = {}
        self._shipper: gevent.Greenlet | None = None
        self.enabled = options.sink != "none"
        self.sink_counts: dict[str, tuple[int, int]] = {}
        """Points written and dropped by each process's InfluxDB sink (at its end)."""
        self.latest_health: dict[str, HealthRecord] = {}
        """Each load-generator process's latest health sample, by its ``worker`` tag
        (``local``, or ``w0``, ``w1``... on the master): the progress line's."""

    @property
    def is_worker(self) -> bool:
        return isinstance(self.runner, WorkerRunner)

    def open(self, run_id: str, meta: dict[str, Any]) -> None:
        """Create the run directory (local runner or master)."""
        if self.enabled and not self.is_worker and self.run is None:
            self.run = RunDirectory.create(self.options.out, run_id, meta)
            log.info("run directory %s", self.run.path)

    def __call__(self, record: Any) -> None:
        if isinstance(record, TurnRecord):
            self.turns += 1
        elif isinstance(record, HealthRecord):
            self.latest_health[record.tags.worker] = record
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
        assert self.runner is not None
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
        for record in records:
            if isinstance(record, HealthRecord):
                self.latest_health[record.tags.worker] = record
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
                    "kind": self.options.sink,
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


RunEnded = Callable[[Environment, "LocustRun"], None]
"""Called when a run ends on the process that holds its run directory (a local runner or
the master), after the directory is closed: the orchestration's report and verdict."""


class LocustRun:
    """Everything one run of the rig in one Locust environment holds: its options, the
    scenarios and target, the record relay, the health monitor, the InfluxDB sink, the
    transports' shared context. Created when the run starts (:meth:`attach`), kept on the
    environment, and detached from its events when the run ends, so a second run in the
    same process starts from nothing."""

    def __init__(
        self,
        environment: Environment,
        options: RunOptions,
        *,
        extra_meta: dict[str, Any] | None = None,
        on_end: RunEnded | None = None,
    ):
        self.environment = environment
        self.options = options
        self.extra_meta = dict(extra_meta or {})
        """Added to meta.json (``rig compare``: the embedded mock's preset and quota)."""
        self.on_end = on_end
        self.attachments: dict[str, Any] = {}
        """What the orchestration keeps for this run between its hooks (the gateway's
        ``/stats`` watch)."""
        self.transports = parse_transports(options.transports)
        self.scenarios: list[Scenario] = resolve_scenarios(options.scenario)
        self.workload: TracedWorkload | None = parse_workload(options.workload)
        """The trace every session replays (``--workload trace:...``), or ``None``: the
        scenarios' tasks."""
        self._workload_value = options.workload
        self.started = time.monotonic()
        """When the run started (again at test start): ``--arrivals recorded`` counts from it."""
        self.target = Target.from_url(
            options.target_url or "",
            model=options.model,
            name=options.target_name or None,
            api_key_env=options.api_key_env or None,
        )
        self.direct: Target | None = None
        """Where the direct twins go (``--direct-url``), or ``None``: no twins."""
        self.direct_transports: list[str] = []
        if options.direct_url:
            self.direct = Target.from_url(
                options.direct_url,
                model=options.model,
                name=DIRECT,
                api_key_env=options.api_key_env or None,
            )
            self.direct_transports = (
                parse_transports(options.direct_transports)
                if options.direct_transports
                else list(self.transports)
            )
            extra = set(self.direct_transports) - set(self.transports)
            if extra:
                raise ValueError(
                    f"--direct-transports {options.direct_transports!r}: "
                    f"{', '.join(sorted(extra))} not in --transports {options.transports!r}"
                )
        self.weights = parse_weights(options.transport_weights, self.transports)
        self.checks: list[Check] = [parse_check(text) for text in options.check]
        self.retry: RetryPolicy = parse_retry_policy(options.retry_policy)
        self.task_backoff: TaskBackoff = parse_task_backoff(options.task_backoff)
        self.links: LinkMix = link_mix(options.link, options.links)
        """Each session's emulated link (``--link``/``--links``; ``direct``: none)."""
        self.context = TransportContext(options.transport_options)
        """What the run's transports share (option values, pooled connections)."""
        self.run_id = options.run_id
        self.counters: dict[str, itertools.count[int]] = {}
        self.relay = RecordRelay(environment, options)
        self.monitor: HealthMonitor | None = None
        self.influx: InfluxSink | None = None
        self.influx_backlog: list[Any] | None = None
        """Records made while the InfluxDB sink is being checked at start."""
        self.influx_deadline: float | None = None
        """When the sink's final attempt must end (``time.monotonic()``): set when the
        test stops, shared by the flush then and the close at quitting, so the two
        together wait at most ``--influx-final-flush``."""
        self._listeners: list[tuple[Any, Callable[..., None]]] = []
        self._settled = False

    @classmethod
    def attach(
        cls,
        environment: Environment,
        options: RunOptions,
        *,
        extra_meta: dict[str, Any] | None = None,
        on_end: RunEnded | None = None,
    ) -> LocustRun:
        """Start a run in ``environment``: choose and weigh its users, install the load
        shape, open the InfluxDB sink, listen to the environment's events.

        Bad options raise :class:`~rig.errors.RigError` (or ``ValueError``), naming them.
        """
        run = cls(environment, options, extra_meta=extra_meta, on_end=on_end)
        run._choose_users()
        if options.shape and not isinstance(environment.runner, WorkerRunner):
            if options.users_per_transport > 0:
                raise ShapeError("--shape sets the session count; drop --users-per-transport")
            shape = RigShape(parse_shape(options.shape))
            shape.runner = environment.runner
            environment.shape_class = shape
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            runner.register_message(RECORDS_MESSAGE, run.relay.receive)
            # The workers take the master's options with their first spawn job: a run id
            # made here is every worker's too, so their InfluxDB points carry the master's.
            run.run_id = run.run_id or new_run_id()
            if environment.parsed_options is not None:
                environment.parsed_options.run_id = run.run_id
        setattr(environment, _ATTRIBUTE, run)
        events = environment.events
        for hook, listener in (
            (events.test_start, run._on_test_start),
            (events.test_stop, run._on_test_stop),
            (events.spawning_complete, run._on_spawned),
            (events.quitting, run._on_quitting),
        ):
            hook.add_listener(listener)
            run._listeners.append((hook, listener))
        run._open_influx()
        return run

    def _choose_users(self) -> None:
        environment = self.environment
        chosen = [
            c
            for c in environment.user_classes
            if _transport_of(c) in self.transports and not _route_of(c)
        ] or user_classes(self.transports)
        # The twins: the environment's own (a locustfile may define them), else new ones.
        twins = {
            _transport_of(c): c
            for c in environment.user_classes
            if _route_of(c) == DIRECT and _transport_of(c) in self.direct_transports
        }
        for twin in user_classes(
            [name for name in self.direct_transports if name not in twins], route=DIRECT
        ):
            twins[twin.transport] = twin
        # Each twin next to its cell: Locust spawns in this order, so both start together.
        environment.user_classes[:] = [
            user
            for cell in chosen
            for user in (cell, twins.get(_transport_of(cell)))
            if user is not None
        ]
        for user in environment.user_classes:
            user.weight = self.weights.get(_transport_of(user), 1)
            user.fixed_count = max(0, self.options.users_per_transport)

    def _open_influx(self) -> None:
        config = InfluxConfig.from_options(self.options)
        if config is None:
            return
        # The check below waits on the network, and a worker's runner may take its first
        # spawn job meanwhile: records made before the sink exists wait in a backlog.
        self.influx_backlog = []
        sink = InfluxSink.from_config(config)  # InfluxConfigError: fail before the test
        sink.start()
        for record in self.influx_backlog:
            sink(record)
        self.influx, self.influx_backlog = sink, None

    def emit(self, record: Any) -> None:
        """Every record of this process: to the run directory's relay and to InfluxDB."""
        self.relay(record)
        if self.influx is not None:
            self.influx(record)
        elif self.influx_backlog is not None:
            self.influx_backlog.append(record)

    def session_config(
        self, transport: str, worker_index: int, route: str = ""
    ) -> tuple[SessionConfig, int]:
        """The next session of ``transport`` (on ``route``: ``""`` the run's target,
        :data:`DIRECT` its direct twin), and its index.

        A counter per transport and route pairs the cells: user k of every transport, and
        of its direct twin, gets the same scenario and the same tasks, so cells differ only
        in how they talk and where to.
        """
        target = self.target
        if route == DIRECT:
            if self.direct is None:
                raise RigError(f"a direct twin of {transport} without --direct-url")
            target = self.direct
        key = f"{transport} {route}" if route else transport
        counter = self.counters.setdefault(key, itertools.count())
        index = next(counter) + 1_000_000 * worker_index
        scenario = self.scenarios[index % len(self.scenarios)]
        worker = f"w{worker_index}" if self.relay.is_worker else "local"
        link = self.links.pick(index, self.options.seed)  # the same for user k of each cell
        if not registry.spec(transport).shaped:
            link = DIRECT_LINK  # connections shared by sessions of different links
        workload = self.workload
        tags = RecordTags(
            run=self.run_id,
            scenario=f"trace:{workload.name}" if workload is not None else scenario.name,
            transport=transport,
            target=target.name,
            link=link.name,
            worker=worker,
        )
        config = SessionConfig(
            transport=transport,
            scenario=scenario,
            target=target,
            tags=tags,
            seed=self.options.seed,
            time_scale=self.options.time_scale,
            timeout_s=self.options.request_timeout,
            retry=self.retry,
            task_backoff=self.task_backoff,
            link=link,
            stream=StreamPolicy(
                idle_timeout_s=self.options.stream_idle_timeout,
                retries=self.options.stream_retries,
                ws_fallback=self.options.ws_fallback,
            ),
            context=self.context,  # the run's shared transport state (ws_mux's pool)
            trace=workload.trace if workload is not None else None,
            run_started=self.started if self.options.arrivals == RECORDED else None,
        )
        return config, index

    def _on_test_start(self, environment: Environment, **_: Any) -> None:
        if environment.parsed_options is not None:
            # A worker has the master's options now (its spawn job brought them).
            self.options = RunOptions.from_namespace(environment.parsed_options)
            self.links = link_mix(self.options.link, self.options.links)
            if self.options.workload != self._workload_value:  # the master's, not the worker's
                self._workload_value = self.options.workload
                self.workload = parse_workload(self.options.workload)
        self.run_id = self.options.run_id or self.run_id or new_run_id()
        self.started = time.monotonic()
        self.influx_deadline = None
        relay = self.relay
        if not relay.is_worker:
            relay.open(self.run_id, self.meta())
        relay.start_shipping()
        runner = environment.runner
        worker = f"w{runner.worker_index}" if isinstance(runner, WorkerRunner) else "local"
        tags = RecordTags(
            run=self.run_id,
            scenario=self.options.scenario,
            transport="all",
            target=self.target.name,
            worker=worker,
        )
        if not isinstance(runner, MasterRunner):
            influx = self.influx
            self.monitor = HealthMonitor(
                tags,
                self.emit,
                users=lambda: runner.user_count if runner is not None else 0,
                turns=lambda: relay.turns,
                points=lambda: influx.counts() if influx is not None else (0, 0),
            )
            self.monitor.start()

    def _on_spawned(self, **_: Any) -> None:
        """Every user spawned: settle the garbage collector (``--gc``), so full collections
        neither walk what the spawn built nor stop the sessions often. Once a run: a shape
        completes a spawn at every step, and a collection each time would pause every
        session in the middle of the measurement."""
        if not self._settled and not isinstance(self.environment.runner, MasterRunner):
            self._settled = True
            settle(self.options.gc)

    def _on_test_stop(self, environment: Environment, **_: Any) -> None:
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            _collect_finals(runner, self.relay, self.options.influx_final_flush)
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        counts = None
        if self.influx is not None and not isinstance(runner, MasterRunner):
            # The final attempt, then the final figures: what it could not send by the
            # deadline is counted dropped before the counts are taken and relayed.
            self.influx.finish(timeout_s=self._influx_time_left())
            counts = self.influx.counts()
            if counts[1]:
                log.warning(
                    "InfluxDB: %d of %d points dropped (last error: %s); the run directory "
                    "has every record",
                    counts[1],
                    sum(counts),
                    self.influx.last_error or "buffer full",
                )
        self.relay.stop_shipping(sink=counts)
        if isinstance(runner, WorkerRunner) and hasattr(runner, "_send_stats"):
            # Users have stopped: report the last requests now. Otherwise a worker's
            # requests since its last 3 s stats report can miss the master's statistics
            # (the master forgets a worker once it reports stopped and never asks it for
            # a final report).
            runner._send_stats()

    def _on_quitting(self, environment: Environment, **_: Any) -> None:
        relay = self.relay
        influx, self.influx = self.influx, None
        try:
            if not relay.is_worker:
                expected = 0
                if isinstance(environment.runner, MasterRunner):
                    expected = max(len(environment.runner.clients), len(relay.finals))
                relay.close(expected_workers=expected)
                if influx is not None and relay.meta:
                    influx.write_run(self.run_id, relay.meta)
                if self.on_end is not None and relay.run is not None:
                    self.on_end(environment, self)
            if influx is not None:
                influx.close(timeout_s=self._influx_time_left())
        finally:
            self.detach()

    def _influx_time_left(self) -> float:
        """What is left of the sink's one final wait (``--influx-final-flush``), starting
        it on first use: the flush when the test stops and the close at quitting share it."""
        if self.influx_deadline is None:
            self.influx_deadline = time.monotonic() + self.options.influx_final_flush
        return max(0.0, self.influx_deadline - time.monotonic())

    def detach(self) -> None:
        """Stop listening to the environment's events and close what the run shares."""
        for hook, listener in self._listeners:
            hook.remove_listener(listener)
        self._listeners.clear()
        self.context.close()
        if getattr(self.environment, _ATTRIBUTE, None) is self:
            delattr(self.environment, _ATTRIBUTE)

    def meta(self) -> dict[str, Any]:
        """What was run, for meta.json (never a key)."""
        options = self.options
        return {
            "target": self.target.name,
            "target_url": options.target_url,
            "scenario": f"trace:{self.workload.name}" if self.workload else options.scenario,
            "workload": self.workload.describe() if self.workload is not None else None,
            "transports": self.transports,
            "users": getattr(self.environment.parsed_options, "num_users", None),
            "users_per_transport": options.users_per_transport or None,
            "shape": options.shape or None,
            "capacity_criteria": {
                "max_rate_limited": options.max_rate_limited,
                "ttft_slo_ms": options.ttft_slo_ms,
            },
            "retry_policy": options.retry_policy,
            "gc": options.gc,
            "links": self.links.names,
            "stream_idle_timeout_s": options.stream_idle_timeout,
            "stream_retries": options.stream_retries,
            "ws_fallback": options.ws_fallback,
            "transport_options": options.transport_options,
            "seed": options.seed,
            "time_scale": options.time_scale,
            "arrivals": options.arrivals,
            "model": options.model,
            "direct": {
                "target": DIRECT,
                "url": options.direct_url,
                "transports": self.direct_transports,
            }
            if self.direct is not None
            else None,
            "started_at": time.time(),
            "rig_version": __version__,
            "pid": os.getpid(),
            **self.extra_meta,
        }


_ATTRIBUTE = "rig_run"
"""The environment's attribute holding its :class:`LocustRun`."""


def run_of(environment: Environment) -> LocustRun:
    """The run going on in ``environment``."""
    run = getattr(environment, _ATTRIBUTE, None)
    if not isinstance(run, LocustRun):
        raise RuntimeError("no rig run in this Locust environment (is the plugin installed?)")
    return run


def _collect_finals(runner: MasterRunner, relay: RecordRelay, final_flush_s: float) -> None:
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
    deadline = time.monotonic() + (runner.environment.stop_timeout or 0) + final_flush_s + 5
    waiting = {client.id for client in pending}
    while waiting - relay.finals and time.monotonic() < deadline:
        gevent.sleep(0.05)


class AgentUser(User):
    """One simulated coding agent; :func:`user_classes` makes one subclass per transport
    (and per route)."""

    abstract = True
    transport: ClassVar[str] = ""
    route: ClassVar[str] = ""
    """``""``: the run's target; :data:`DIRECT`: the direct twin (``--direct-url``)."""

    def on_start(self) -> None:
        runner = self.environment.runner
        run = run_of(self.environment)
        config, index = run.session_config(
            self.transport, getattr(runner, "worker_index", 0), self.route
        )
        self.agent = AgentSession(config, self._record, session_index=index)
        self._emit = run.emit

    def _record(self, record: Any) -> None:
        if isinstance(record, TurnRecord):
            failed = record.status in ("error", "timeout", "rate_limited")
            cell = f"{self.transport} {self.route}" if self.route else self.transport
            self.environment.events.request.fire(
                request_type=cell,
                name=f"{cell} turn {turn_bucket(record.turn)}",
                response_time=record.turn_ms,
                response_length=record.bytes_recv,
                response=None,
                context={"ttft_ms": record.ttft_ms, "bytes_sent": record.bytes_sent},
                exception=RuntimeError(record.error or record.status) if failed else None,
            )
        self._emit(record)

    def on_stop(self) -> None:
        self.agent.close()

    def wait_time(self) -> float:
        """Locust's wait between tasks: the session's back-off after a failed task (0
        otherwise); a stop interrupts it at once."""
        return self.agent.next_task_delay()

    @task
    def run_task(self) -> None:
        """One agent task, start to final answer."""
        self.agent.run_task()


def _transport_of(user: type[User]) -> str:
    return getattr(user, "transport", "")


def _route_of(user: type[User]) -> str:
    return getattr(user, "route", "")


def user_classes(
    transports: Iterable[str] | None = None, *, route: str = ""
) -> list[type[AgentUser]]:
    """New Locust user classes, one per registered transport (or per name in
    ``transports``): class name ``spec.user_class``, attribute ``transport``. On the
    :data:`DIRECT` route: ``spec.user_class`` + ``Direct``, attribute ``route``."""
    chosen = registry.names() if transports is None else tuple(transports)
    classes: list[type[AgentUser]] = []
    for name in chosen:
        spec = registry.spec(name)
        attributes = {
            "transport": spec.name,
            "route": route,
            "__doc__": spec.summary + (f" ({route} twin)" if route else ""),
            "__module__": __name__,
        }
        class_name = spec.user_class + route.title()
        classes.append(type(class_name, (AgentUser,), attributes))
    return classes


def install(events: Events, *, on_end: RunEnded | None = None) -> None:
    """Hook the rig into Locust's ``events`` (a locustfile calls this once): its options
    on Locust's parser, and at ``init`` a new :class:`LocustRun` for the environment.
    ``on_end`` runs when a run ends (the packaged locustfile: report and verdict)."""

    def add_locust_arguments(parser: Any, **_: Any) -> None:
        add_arguments(parser, "locust", locust=True)

    def start_run(environment: Environment, **_: Any) -> None:
        parsed = environment.parsed_options
        if parsed is None or not hasattr(parsed, "transports"):
            return
        try:
            LocustRun.attach(environment, RunOptions.from_namespace(parsed), on_end=on_end)
        except (RigError, ValueError) as exc:
            # Fail at start, naming the problem, rather than losing the run's metrics.
            log.error("rig: %s", exc)
            raise SystemExit(2) from None

    events.init_command_line_parser.add_listener(add_locust_arguments)
    events.init.add_listener(start_run)
