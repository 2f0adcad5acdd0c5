"""Two gateway replicas, one killed mid-run: with Redis checkpoints every session continues
on the other with no lost turn and no full resend; without them, the documented recovery
(a full resend, status ``reconnected``). Real processes on loopback: a redis-server, the
mock as the stateless upstream, two ``rig gateway`` replicas, the load generator's own
sessions over both URLs."""

from __future__ import annotations

import signal
import tempfile
import time
from collections.abc import Iterator

import gevent
import pytest

from rig.loadgen.registry import TransportContext
from rig.loadgen.session import AgentSession
from rig.metrics.records import TaskRecord, TurnRecord
from rig.workload.scenarios import builtin_scenarios
from tests.servers import (
    ManagedProcess,
    free_port,
    require_binary,
    server_stats,
    start_gateway,
    start_mock,
)
from tests.sessions import make_sessions

SCENARIO = builtin_scenarios()["refactor_api_layer"]


def _redis(port: int, directory: str) -> ManagedProcess:
    binary = require_binary("redis-server")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", directory]  # fmt: skip
    process = ManagedProcess(argv, "Ready to accept connections")
    process.wait_ready()
    return process


@pytest.fixture
def upstream() -> Iterator[str]:
    process, url = start_mock("--preset", "fast")
    yield url
    process.stop()


def _sessions(
    urls: str, transports: list[str]
) -> tuple[list[AgentSession], list[list], TransportContext]:
    context = TransportContext({"ws": {"resume": True}})
    sessions, records = make_sessions(urls, transports, context, SCENARIO, "gateway")
    return sessions, records, context


def _kill_when_busy(victim: ManagedProcess, url: str, responses: int) -> None:
    """SIGKILL ``victim`` once it has finished ``responses`` responses (mid-run)."""
    deadline = time.monotonic() + 60
    while server_stats(url)["responses_completed"] < responses:
        assert time.monotonic() < deadline, "the replica never got busy"
        gevent.sleep(0.02)
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait()


def _run_and_kill(
    urls: tuple[str, str], victim: ManagedProcess, transports: list[str]
) -> tuple[list[list[TurnRecord]], list[TaskRecord]]:
    sessions, records, context = _sessions(",".join(urls), transports)
    try:
        workers = [gevent.spawn(s.run_task) for s in sessions]
        _kill_when_busy(victim, urls[0], responses=3)
        gevent.joinall(workers, raise_error=True)
    finally:
        for session in sessions:
            session.close()
        context.close()
    turns = [[r for r in rs if isinstance(r, TurnRecord)] for rs in records]
    tasks = [r for rs in records for r in rs if isinstance(r, TaskRecord)]
    return turns, tasks


def test_with_redis_checkpoints_every_session_continues_on_the_other_replica(
    upstream: str,
) -> None:
    with tempfile.TemporaryDirectory(prefix="rig-redis-") as directory:
        port = free_port()
        redis = _redis(port, directory)
        store = f"redis://127.0.0.1:{port}/0"
        first, url1 = start_gateway(upstream, "--store", store)
        second, url2 = start_gateway(upstream, "--store", store)
        try:
            turns, tasks = _run_and_kill((url1, url2), first, ["ws", "ws_stored"] * 3)
            survivor = server_stats(url2)
        finally:
            first.stop()
            second.stop()
            redis.stop()
    assert len(tasks) == 6 and all(t.ok for t in tasks), [t.error for t in tasks]
    statuses = {t.status for ts in turns for t in ts}
    assert statuses <= {"ok", "reconnected"}
    assert "reconnected" in statuses  # sessions did move
    # Every turn continued with previous_response_id: no full resend anywhere (a resend
    # follows only a previous_response_not_found, which only the survivor could answer).
    assert survivor["misses_not_found"] == 0
    moved = sum(1 for ts in turns if any(t.status == "reconnected" for t in ts))
    assert survivor["resumes"] >= moved > 0
    assert survivor["hits_checkpoint"] >= moved
    # No lost turn: every session recorded each of its task's turns once, in order.
    for session_turns in turns:
        assert [t.turn for t in session_turns] == list(range(len(session_turns)))
    assert sum(t.turns for t in tasks) == sum(len(ts) for ts in turns)


def test_without_redis_the_moved_sessions_resend_in_full_and_say_reconnected(
    upstream: str,
) -> None:
    first, url1 = start_gateway(upstream)
    second, url2 = start_gateway(upstream)
    try:
        turns, tasks = _run_and_kill((url1, url2), first, ["ws", "ws_stored"] * 3)
        survivor = server_stats(url2)
    finally:
        first.stop()
        second.stop()
    assert len(tasks) == 6 and all(t.ok for t in tasks), [t.error for t in tasks]
    moved = [ts for ts in turns if any(t.status == "reconnected" for t in ts)]
    assert moved, "no session was on the killed replica"
    # The killed replica's memory is gone: the survivor answers previous_response_not_found
    # and each moved session resends its whole context once (retries: reconnect + resend).
    assert survivor["misses_not_found"] == len(moved)
    assert survivor["misses_unknown"] == len(moved)
    assert survivor["resumes"] == 0
    for session_turns in moved:
        (recovered,) = [t for t in session_turns if t.status == "reconnected"]
        assert recovered.retries == 2
