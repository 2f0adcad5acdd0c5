"""AgentSession: one simulated coding agent running tasks against a target.

The agent keeps its transcript, sends each turn over its transport, runs the model's tool
calls in the tool simulator, waits the simulated tool time (scaled by ``time_scale``), and
emits a :class:`~rig.metrics.records.TurnRecord` per turn and a
:class:`~rig.metrics.records.TaskRecord` per task to a sink. Replaying a trace with
recorded arrivals, its first task waits until its traced session began, counted from the
run's start. It does not import Locust: a Locust user, a plain script or a test drive it
the same way.

A WebSocket that stays open after a task closes with a handshake (8 bytes up, 4 down) when
the session closes: those bytes belong to the session's last turn, so a task's final turn
record and its task record are held while its connection stays open, and emitted when
the next task starts (unchanged) or at :meth:`AgentSession.close` (with the closing
handshake's bytes added). The records' totals then equal what crossed the sockets.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent

from rig.loadgen.backoff import (
    DEFAULT_STREAM_POLICY,
    DEFAULT_TASK_BACKOFF,
    RetryPolicy,
    StreamPolicy,
    TaskBackoff,
)
from rig.loadgen.link import Link, LinkProfile
from rig.loadgen.registry import TransportContext
from rig.loadgen.replay import TraceReplay
from rig.loadgen.target import Target
from rig.loadgen.transports import (
    DEFAULT_RETRY,
    Transport,
    TurnInput,
    TurnOutcome,
    make_transport,
)
from rig.loadgen.wire import WireCounter
from rig.metrics.records import RateLimitRecord, RecordTags, TaskRecord, TurnRecord
from rig.traces.format import Session, Trace
from rig.workload.corpus import Corpus
from rig.workload.replay import Filler, TurnBuilder
from rig.workload.scenarios import Scenario, make_task
from rig.workload.simulator import ToolSimulator
from rig.workload.tools import INSTRUCTIONS, TOOLS

__all__ = ["AgentSession", "RecordSink", "SessionConfig"]

RecordSink = Callable[[Any], None]
"""Receives every record a session produces, in order."""

_FAILED = frozenset({"error", "timeout", "rate_limited"})
STOPPED_TASK = "stopped: the run ended while the agent was running a tool"
"""The error of a task cut off between turns when its session was stopped."""


@dataclass(frozen=True)
class SessionConfig:
    """How one simulated agent behaves."""

    transport: str
    scenario: Scenario
    target: Target
    tags: RecordTags
    seed: int = 0
    time_scale: float = 1.0
    """Multiplies simulated tool time: 0 runs tools instantly, 1 in real time."""
    max_turns: int = 60
    timeout_s: float = 120.0
    send_scenario: bool = True
    """Tell the target which scenario to play (``metadata.scenario``; the mock reads it)."""
    retry: RetryPolicy = DEFAULT_RETRY
    """What to do when a rate limit refuses a turn (``--retry-policy``)."""
    task_backoff: TaskBackoff = DEFAULT_TASK_BACKOFF
    """How long to wait before a task after failed ones (``--task-backoff``)."""
    link: LinkProfile | None = None
    """The network link to emulate (``--link``/``--links``; its name belongs in
    ``tags.link``); ``None`` or ``direct``: none."""
    stream: StreamPolicy = DEFAULT_STREAM_POLICY
    """What to do when a connection breaks under a turn (``--stream-idle-timeout``,
    ``--stream-retries``, ``--ws-fallback``)."""
    context: TransportContext | None = None
    """The run's shared transport state and per-transport option values (one per run,
    made by whoever runs the sessions); ``None``: each session's transport on its own,
    with its options' defaults."""
    trace: Trace | None = None
    """Replay these traced sessions instead of the scenario's tasks (``--workload
    trace:NAME``): a session's task ``n`` is traced session ``index + n`` (round robin)."""
    run_started: float | None = None
    """With ``--arrivals recorded``: when the run started, a ``time.monotonic()`` value of
    this process. A replaying session's first task then waits until its traced session's
    ``start_s`` times ``time_scale`` after it. ``None`` (``--arrivals spawn``), or a traced
    session without ``start_s``: the first task starts at once."""


class AgentSession:
    """One agent: a transport, a tool simulator, and the task loop."""

    def __init__(
        self,
        config: SessionConfig,
        sink: RecordSink,
        *,
        session_index: int = 0,
        corpus: Corpus | None = None,
        sleep: Callable[[float], None] = gevent.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.sink = sink
        self.session_index = session_index
        self.counter = WireCounter()
        seed = config.seed * 1_000_003 + session_index
        self.link: Link | None = None
        """The session's emulated link, shared by all its connections."""
        if config.link is not None and config.link.shapes:
            self.link = Link(config.link, seed=seed + 2)
        self.transport: Transport = make_transport(
            config.transport,
            config.target,
            self.counter,
            instructions=INSTRUCTIONS,
            tools=TOOLS,
            timeout=config.timeout_s,
            retry=config.retry,
            seed=seed,
            context=config.context,
            link=self.link,
            stream=config.stream,
        )
        self._corpus = corpus or Corpus.load(config.scenario.corpus)
        self._filler: Filler | None = None
        """Corpus text for a trace replay's requests (made on its first task)."""
        self._sleep = sleep
        self._clock = clock
        self.tasks_done = 0
        self.failed_in_a_row = 0
        """Tasks failed since the last one that succeeded (sets the back-off)."""
        self._backoff_rng = random.Random(seed + 1)
        self._held: list[TurnRecord | TaskRecord] = []
        """The last task's final turn and task records, held while the transport's
        connection stays open: :meth:`close` charges the closing handshake to them."""

    def next_task_delay(self) -> float:
        """Seconds to wait before the next task: 0 after a success, else the task back-off
        for the failures in a row. The driver waits it (a Locust user's ``wait_time``,
        where a stop interrupts it; :meth:`run_tasks` in a plain script)."""
        return self.config.task_backoff.delay(self.failed_in_a_row, self._backoff_rng)

    def arrival_delay(self) -> float:
        """Seconds to wait before the first task with recorded arrivals
        (:attr:`SessionConfig.run_started` set): until the traced session it replays first
        began, its ``start_s`` times ``time_scale`` after the run started. 0 once a task
        ran, when that moment is past, for a traced session without ``start_s``, and for
        the scenarios' tasks."""
        config = self.config
        if config.run_started is None or self.tasks_done:
            return 0.0
        if config.trace is None or not config.trace.sessions:
            return 0.0
        start = self._traced(config.trace, 0).info.start_s
        if start is None:
            return 0.0
        return max(0.0, config.run_started + start * config.time_scale - self._clock())

    def run_tasks(self, until: float) -> int:
        """Run tasks, each after its back-off, until the session's clock
        (``time.monotonic()``) passes ``until`` (a task under way is finished); the number
        of tasks run."""
        count = 0
        while True:
            delay = self.next_task_delay()
            if self._clock() + delay >= until:
                return count
            if delay:
                self._sleep(delay)
            self.run_task()
            count += 1

    def run_task(self) -> TaskRecord:
        """Run one task from the first prompt to the final answer (or a failure).

        The first task of a session with recorded arrivals first waits
        :meth:`arrival_delay` (a stop then ends it before it began: nothing recorded).
        Killed while it runs (``GreenletExit``: the run is over, e.g. Locust's stop
        timeout), it still records the turn in flight (status ``error``, cause
        :data:`~rig.loadgen.transports.base.STOPPED`) and the task, then re-raises.
        """
        config = self.config
        arrival = self.arrival_delay()
        if arrival > 0:
            self._sleep(arrival)
        self._release()  # the connection lives on: the last task's records are final
        task_number = self.tasks_done
        self.tasks_done += 1
        if config.trace is not None and config.trace.sessions:
            return self._replay_task(config.trace, task_number)
        task = make_task(config.scenario, self.session_index * 100_003 + task_number, config.seed)
        session_id = f"{config.transport}-{config.tags.worker}-{self.session_index}-{task_number}"
        simulator = ToolSimulator(self._corpus.copy(), seed=config.seed + self.session_index)
        prompt = {"role": "user", "content": task.prompt}
        transcript: list[dict[str, Any]] = [prompt]
        new_items: list[dict[str, Any]] = [prompt]
        previous: str | None = None
        metadata = {"scenario": config.scenario.name} if config.send_scenario else {}
        started_wall = time.time()
        started = time.perf_counter()
        sent = received = calls = 0
        error = ""
        ok = stopped = False
        turns = 0
        last: TurnRecord | None = None
        for index in range(config.max_turns):
            turn_wall = time.time()
            outcome = self.transport.turn(TurnInput(transcript, new_items, previous, metadata))
            turns += 1
            sent += outcome.bytes_sent
            received += outcome.bytes_recv
            calls += len(outcome.tool_calls)
            self._rejections(outcome)
            last = self._turn_record(session_id, index, turn_wall, outcome)
            final = outcome.stopped or outcome.status in _FAILED or not outcome.tool_calls
            if not final and index < config.max_turns - 1:
                self.sink(last)  # the task goes on: a later turn is the last
                last = None
            if outcome.stopped:
                stopped = True
                error = outcome.error
                break
            if outcome.status in _FAILED:
                error = outcome.error
                break
            previous = outcome.response_id
            transcript.extend(outcome.output)
            if not outcome.tool_calls:
                ok = True
                break
            new_items = []
            tool_seconds = 0.0
            for call in outcome.tool_calls:
                result = simulator.run(call.get("name", ""), call.get("arguments", ""))
                tool_seconds += result.duration_s
                new_items.append(
                    {
                        "type": "function_call_output",
                        "call_id": call["call_id"],
                        "output": result.output,
                    }
                )
            transcript.extend(new_items)
            if config.time_scale > 0 and tool_seconds > 0:
                try:
                    self._sleep(tool_seconds * config.time_scale)
                except gevent.GreenletExit:
                    stopped, error = True, STOPPED_TASK
                    break
        else:
            error = f"no final answer after {config.max_turns} turns"
        return self._end_task(session_id, started_wall, started, turns, sent, received, calls,
                              ok, error, last, stopped)  # fmt: skip

    def _replay_task(self, trace: Trace, task_number: int) -> TaskRecord:
        """Replay one traced session as a task: its turns as this transport sends them,
        the mock answering with the traced output, the traced gaps (scaled by
        ``time_scale``) between them."""
        config = self.config
        traced = self._traced(trace, task_number)
        session_id = f"{config.transport}-{config.tags.worker}-{self.session_index}-{task_number}"
        if self._filler is None:
            self._filler = Filler(self._corpus)
        builder = TurnBuilder(self._filler, seed=config.seed * 1_000_003 + self.session_index)
        replay = TraceReplay(traced, self.transport, builder)
        started_wall = time.time()
        started = time.perf_counter()
        sent = received = calls = turns = 0
        error = ""
        ok = stopped = False
        last: TurnRecord | None = None
        while (step := replay.next_turn()) is not None:
            if last is not None:
                self.sink(last)
            turn_wall = time.time()
            outcome = self.transport.turn(step.input)
            turns += 1
            sent += outcome.bytes_sent
            received += outcome.bytes_recv
            calls += len(outcome.tool_calls)
            self._rejections(outcome)
            last = self._turn_record(
                session_id, turns - 1, turn_wall, outcome, step.traced_body_bytes or 0
            )
            if outcome.stopped or outcome.status in _FAILED:
                stopped, error = outcome.stopped, outcome.error
                break
            replay.answered(outcome.output, outcome.response_id)
            gap = (step.traced.gap_s or 0.0) * config.time_scale
            if gap > 0 and replay.position < len(traced.turns):
                try:
                    self._sleep(gap)
                except gevent.GreenletExit:
                    stopped, error = True, STOPPED_TASK
                    break
        else:
            ok = True
        return self._end_task(session_id, started_wall, started, turns, sent, received, calls,
                              ok, error, last, stopped)  # fmt: skip

    def _traced(self, trace: Trace, task_number: int) -> Session:
        """The traced session task ``task_number`` replays (round robin from the session's
        index)."""
        return trace.sessions[(self.session_index + task_number) % len(trace.sessions)]

    def _rejections(self, outcome: TurnOutcome) -> None:
        for rejection in outcome.rejections:
            self.sink(
                RateLimitRecord(
                    tags=self.config.tags,
                    ts=rejection.ts,
                    limit=rejection.limit,
                    retry_after_ms=round(rejection.retry_after_ms, 3),
                    remaining=rejection.remaining,
                    waited_ms=round(rejection.waited_ms, 3),
                )
            )

    def _end_task(
        self,
        session_id: str,
        started_wall: float,
        started: float,
        turns: int,
        sent: int,
        received: int,
        calls: int,
        ok: bool,
        error: str,
        last: TurnRecord | None,
        stopped: bool,
    ) -> TaskRecord:
        """The task's record; the last turn's and the task's records emitted, or held
        while the connection stays open; re-raises a stop once recorded."""
        record = TaskRecord(
            tags=self.config.tags,
            session=session_id,
            ts=started_wall,
            task_ms=(time.perf_counter() - started) * 1000,
            turns=turns,
            bytes_sent=sent,
            bytes_recv=received,
            tool_calls=calls,
            ok=ok,
            error=error,
        )
        self.failed_in_a_row = 0 if ok else self.failed_in_a_row + 1
        if last is not None and self.transport.close_has_bytes:
            self._held = [last, record]  # until the next task, or close()
        else:
            if last is not None:
                self.sink(last)
            self.sink(record)
        if stopped:
            raise gevent.GreenletExit  # recorded; now stop as the caller asked
        return record

    def _turn_record(
        self,
        session_id: str,
        index: int,
        wall: float,
        outcome: TurnOutcome,
        traced_body_bytes: int = 0,
    ) -> TurnRecord:
        return TurnRecord(
            tags=self.config.tags,
            session=session_id,
            turn=index,
            ts=wall,
            bytes_sent=outcome.bytes_sent,
            bytes_recv=outcome.bytes_recv,
            body_bytes_sent=outcome.body_bytes_sent,
            body_bytes_recv=outcome.body_bytes_recv,
            ttfb_ms=round(outcome.ttfb_ms, 3),
            ttft_ms=round(outcome.ttft_ms, 3),
            turn_ms=round(outcome.turn_ms, 3),
            input_tokens=outcome.input_tokens,
            cached_tokens=outcome.cached_tokens,
            output_tokens=outcome.output_tokens,
            tool_calls=len(outcome.tool_calls),
            status=outcome.status,
            retries=outcome.retries + outcome.rate_limit_retries + outcome.stream_retries,
            error=outcome.error[:500],
            connect_ms=round(outcome.connect_ms, 3),
            upload_ms=round(outcome.upload_ms, 3),
            breaks=outcome.breaks,
            resent_bytes=outcome.resent_bytes,
            recover_ms=round(outcome.recover_ms, 3),
            fallback=outcome.fallback,
            traced_body_bytes=traced_body_bytes,
        )

    def _release(self, sent: int = 0, received: int = 0) -> None:
        """Emit the held records, charging them ``sent`` and ``received`` more bytes."""
        held, self._held = self._held, []
        for record in held:
            if sent or received:
                record = dataclasses.replace(
                    record,
                    bytes_sent=record.bytes_sent + sent,
                    bytes_recv=record.bytes_recv + received,
                )
            self.sink(record)

    def close(self) -> None:
        """Close the session's connections. After a whole task, what closing writes and
        reads (a WebSocket's closing handshake) is charged to its last turn and the task;
        a session stopped in the middle of a task (running a tool) drops its connection
        without a closing handshake, as a killed agent would, so every byte is in a turn."""
        sent0, received0 = self.counter.snapshot()
        try:
            if self._held:
                self.transport.close()
            else:
                self.transport.abort()
        finally:
            sent1, received1 = self.counter.snapshot()
            self._release(sent1 - sent0, received1 - received0)
