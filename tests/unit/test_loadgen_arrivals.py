"""Recorded arrivals (``--arrivals recorded``): a replaying session's first task waits
until its traced session's ``start_s`` times ``--time-scale`` after the run started; on a
fake clock, with the wait taken by a fake sleep."""

from __future__ import annotations

import dataclasses

import gevent
import pytest

from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.records import RecordTags
from rig.traces import load_trace
from rig.traces.format import Session, Trace
from rig.workload.scenarios import builtin_scenarios

CODEX = load_trace("codex")
STARTS = (0.0, 4.0, None, 10.0)
"""The traced sessions' starts: the third has none (an old trace, a lone import)."""
TRACE = Trace(
    CODEX.headers,
    tuple(
        Session(dataclasses.replace(s.info, start_s=start), s.turns)
        for s, start in zip(CODEX.sessions, STARTS, strict=False)
    ),
)
RUN_STARTED = 1000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _session(
    index: int,
    now: float = RUN_STARTED,
    *,
    run_started: float | None = RUN_STARTED,
    time_scale: float = 0.5,
    trace: Trace | None = TRACE,
    sleep=lambda seconds: None,
    records: list | None = None,
) -> AgentSession:
    config = SessionConfig(
        transport="http",
        scenario=builtin_scenarios()["fix_failing_test"],
        target=Target.from_url("http://127.0.0.1:9/v1"),  # never reached in these tests
        tags=RecordTags("test", "trace:codex", "http", "mock"),
        time_scale=time_scale,
        trace=trace,
        run_started=run_started,
    )
    sink = records.append if records is not None else lambda record: None
    return AgentSession(config, sink, session_index=index, sleep=sleep, clock=Clock(now))


def test_a_session_waits_for_its_traced_start_scaled_from_the_runs_start() -> None:
    # Traced session 1 began 4 s after the first; at half speed, 2 s into the run.
    assert _session(1).arrival_delay() == 2.0
    assert _session(1, now=RUN_STARTED + 0.5).arrival_delay() == 1.5
    assert _session(3, time_scale=2.0).arrival_delay() == 20.0
    # Round robin: session 5 replays traced session 1 first, and arrives with it.
    assert _session(5).arrival_delay() == 2.0


def test_a_session_starts_at_once_when_its_moment_is_past_or_unknown() -> None:
    assert _session(1, now=RUN_STARTED + 3).arrival_delay() == 0.0  # spawned late
    assert _session(0).arrival_delay() == 0.0  # the first traced session
    assert _session(2).arrival_delay() == 0.0  # no start_s
    assert _session(3, time_scale=0.0).arrival_delay() == 0.0  # no waiting at all


def test_spawn_arrivals_and_the_scenarios_never_wait() -> None:
    assert _session(1, run_started=None).arrival_delay() == 0.0
    assert _session(1, trace=None).arrival_delay() == 0.0


def test_only_the_first_task_waits() -> None:
    session = _session(3)
    assert session.arrival_delay() == 5.0
    session.tasks_done = 1
    assert session.arrival_delay() == 0.0


def test_the_first_task_waits_before_its_first_request_and_a_stop_then_records_nothing() -> None:
    waits: list[float] = []
    records: list = []

    def stop_while_waiting(seconds: float) -> None:
        waits.append(seconds)
        raise gevent.GreenletExit  # the run ended before the session arrived

    session = _session(3, sleep=stop_while_waiting, records=records)
    with pytest.raises(gevent.GreenletExit):
        session.run_task()
    assert waits == [5.0]
    assert records == []  # no request was made, no task began
    assert session.tasks_done == 0
