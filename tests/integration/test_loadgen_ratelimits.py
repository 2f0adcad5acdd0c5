"""Sessions against a rate-limited mock: every rejected attempt is recorded, the policy
decides what follows, and the waiting is part of the turn's time.

The mock's quota is small (``--rpm 60 --burst 0.05``: a bucket of 3 requests refilled one a
second), so a session running its tools instantly meets it within a task.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from rig.loadgen.backoff import parse_retry_policy
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.loadgen.transports import TurnInput, make_transport
from rig.loadgen.wire import WireCounter
from rig.metrics.records import RateLimitRecord, RecordTags, TaskRecord, TurnRecord
from rig.protocol.client import chat_body
from rig.protocol.transcript import chat_tools
from rig.protocol.ws import encode_client_event
from rig.workload.scenarios import builtin_scenarios
from rig.workload.tools import INSTRUCTIONS, TOOLS
from tests.servers import settled_stats, start_mock

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


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_turn_that_succeeds_after_a_429_is_clean_and_counts_every_attempt(
    limited_url: str, transport: str
) -> None:
    transport_ = make_transport(
        transport,
        Target.from_url(limited_url),
        WireCounter(),
        instructions=INSTRUCTIONS,
        tools=TOOLS,
        retry=parse_retry_policy("backoff:base=0.2,cap=5,attempts=20"),
    )
    prompt = {"role": "user", "content": "Fix the failing formatDate test, please."}
    try:
        for _ in range(10):  # the bucket holds 3: one of the first few turns is refused
            outcome = transport_.turn(TurnInput([prompt], [prompt], None, {}))
            if outcome.rate_limit_retries:
                break
        else:
            pytest.fail("no turn met the rate limit")
    finally:
        transport_.close()
    assert outcome.status == "ok"
    assert (outcome.error, outcome.error_code, outcome.limit, outcome.retry_after_s) == (
        "",
        None,
        "",
        None,
    )
    if transport == "chat":
        body = chat_body(
            model="mock-agent",
            instructions=INSTRUCTIONS,
            tools=chat_tools(TOOLS),
            transcript=[prompt],
        )
        one_attempt = len(orjson.dumps(body))
    elif transport == "http":
        one_attempt = len(
            orjson.dumps(
                {**transport_._body(TurnInput([prompt], [prompt], None, {}), False), "stream": True}
            )
        )
    else:
        one_attempt = len(
            encode_client_event(transport_._body(TurnInput([prompt], [prompt], None, {}), True))
        )
    # Every attempt's body crossed the wire: bytes add up over attempts.
    assert outcome.body_bytes_sent == (outcome.rate_limit_retries + 1) * one_attempt


def test_body_bytes_reconcile_with_the_mock_under_rate_limits() -> None:
    # A fresh mock, so that its counters are this test's: every 429 body it sends is in
    # its bytes_out and in the client's body_bytes_recv.
    process, url = start_mock("--rpm", "600", "--burst", "0.005")  # 3 requests, 10 a second
    try:
        turns: list[TurnRecord] = []
        hits: list[RateLimitRecord] = []
        for transport in ("http", "chat", "http"):
            task, task_turns, task_hits = _task(url, transport, "backoff:base=0.2,cap=5")
            assert task.ok, task.error
            turns += task_turns
            hits += task_hits
        stats = settled_stats(url, sum(t.status == "ok" for t in turns))
    finally:
        process.stop()
    assert hits, "the quota is small enough that the tasks meet it"
    assert stats["rate_limited_requests"] == len(hits)
    assert stats["bytes_in"] == sum(t.body_bytes_sent for t in turns)
    assert stats["bytes_out"] == sum(t.body_bytes_recv for t in turns)
