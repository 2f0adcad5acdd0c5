"""Sessions against a rate-limited mock: every rejected attempt is recorded, the policy
decides what follows, and the waiting is part of the turn's time.

The mock's quota is small (``--rpm 60 --burst 0.05``: a bucket of 3 requests refilled one a
second), so a session running its tools instantly meets it within a task.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rig.loadgen.backoff import parse_retry_policy
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.records import RateLimitRecord, RecordTags, TaskRecord, TurnRecord
from rig.workload.scenarios import builtin_scenarios
from tests.servers import start_mock

SCENARIO = builtin_scenarios()["fix_failing_test"]
TRANSPORTS = ("http", "ws", "chat")


@pytest.fixture(scope="module")
def limited_url() -> Iterator[str]:
    process, url = start_mock("--rpm", "60", "--burst", "0.05")
    yield url
    process.stop()


def _task(url: str, transport: str, policy: str) -> tuple[TaskRecord, list, list]:
    records: list = []
    config = SessionConfig(
        transport=transport,
        scenario=SCENARIO,
        target=Target.from_url(url),
        tags=RecordTags("test", SCENARIO.name, transport, "mock"),
        time_scale=0.0,
        retry=parse_retry_policy(policy),
    )
    session = AgentSession(config, records.append)
    try:
        task = session.run_task()
    finally:
        session.close()
    turns = [r for r in records if isinstance(r, TurnRecord)]
    hits = [r for r in records if isinstance(r, RateLimitRecord)]
    return task, turns, hits


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_backoff_rides_out_the_limit_and_records_every_rejection(
    limited_url: str, transport: str
) -> None:
    task, turns, hits = _task(limited_url, transport, "backoff:base=0.2,cap=5,attempts=20")
    assert task.ok, task.error
    assert hits, "the quota is small enough that the task meets it"
    assert {h.limit for h in hits} == {"requests"}
    assert all(h.tags.transport == transport for h in hits)
    # The mock says when a request fits again; the records keep it.
    assert all(0 < h.retry_after_ms <= 60_000 for h in hits)
    assert all(h.remaining == 0 for h in hits)
    retried = [t for t in turns if t.retries]
    assert sum(t.retries for t in turns) == len(hits)
    assert {t.status for t in turns} == {"ok"}
    # Waiting is part of the turn: each retried turn lasted at least the waits it was told.
    for turn in retried:
        told = [h.retry_after_ms for h in hits if turn.ts <= h.ts <= turn.ts + turn.turn_ms / 1000]
        assert turn.turn_ms >= sum(told) * 0.99, (turn.turn_ms, told)


def test_fail_fast_ends_the_task_at_the_first_rejection(limited_url: str) -> None:
    # Use the bucket up first, so the next task's early turn is refused.
    _task(limited_url, "http", "backoff:base=0.2,cap=5,attempts=20")
    task, turns, hits = _task(limited_url, "http", "fail-fast")
    if not hits:  # the bucket refilled in between: run again, still nothing retried
        task, turns, hits = _task(limited_url, "http", "fail-fast")
    assert len(hits) == 1
    assert turns[-1].status == "rate_limited"
    assert turns[-1].retries == 0
    assert not task.ok and "Rate limit reached" in task.error


def test_a_refused_websocket_handshake_is_a_connections_rate_limit() -> None:
    process, url = start_mock("--max-connections", "1")
    try:
        holder_records: list = []
        holder = AgentSession(
            SessionConfig(
                transport="ws",
                scenario=SCENARIO,
                target=Target.from_url(url),
                tags=RecordTags("test", SCENARIO.name, "ws", "mock"),
                time_scale=0.0,
            ),
            holder_records.append,
        )
        holder.run_task()  # keeps its WebSocket open across tasks
        task, turns, hits = _task(url, "ws", "fail-fast")
        holder.close()
    finally:
        process.stop()
    assert [h.limit for h in hits] == ["connections"]
    assert turns[0].status == "rate_limited"
    assert not task.ok
