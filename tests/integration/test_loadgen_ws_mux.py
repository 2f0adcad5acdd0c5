"""``ws_mux`` against a real mock: agent sessions share WebSocket connections by
``stream_id``, and every turn and every byte reconciles with the sockets and the mock."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import gevent
import pytest

from rig.loadgen.registry import TransportContext
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.loadgen.transports import TurnInput
from rig.loadgen.transports.ws_mux import SHARED_KEY, MuxPool, MuxTransport
from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
from rig.workload.scenarios import builtin_scenarios
from tests.servers import server_stats, start_mock

SCENARIO = builtin_scenarios()["fix_failing_test"]


@pytest.fixture
def fresh_mock() -> Iterator[str]:
    process, url = start_mock()
    yield url
    process.stop()


def _settled_stats(url: str, responses: int) -> dict[str, int]:
    """The mock's counters once it has counted ``responses`` (it counts a response's
    bytes just after writing its last event)."""
    deadline = time.monotonic() + 10
    while True:
        stats = server_stats(url)
        if stats["responses_completed"] >= responses or time.monotonic() > deadline:
            return stats
        gevent.sleep(0.05)


def _sessions(url: str, context: TransportContext, count: int, records: list) -> list:
    return [
        AgentSession(
            SessionConfig(
                transport="ws_mux",
                scenario=SCENARIO,
                target=Target.from_url(url),
                tags=RecordTags("test", SCENARIO.name, "ws_mux", "mock"),
                time_scale=0.0,
                context=context,
            ),
            records.append,
            session_index=index,
        )
        for index in range(count)
    ]


def test_twenty_sessions_share_three_connections_and_every_byte_reconciles(
    fresh_mock: str,
) -> None:
    context = TransportContext({"ws_mux": {"sessions_per_connection": 8}})
    records: list = []
    sessions = _sessions(fresh_mock, context, 20, records)
    try:
        runs = [gevent.spawn(session.run_task) for session in sessions]
        gevent.joinall(runs, raise_error=True)
        pool: MuxPool = context.shared(SHARED_KEY, lambda: None)
        opened = list(pool.opened)
        kernel = [connection.tcp_info() for connection in opened]
        counted = [connection.counter.snapshot() for connection in opened]
        for session in sessions:
            session.close()
    finally:
        context.close()
    tasks = [r for r in records if isinstance(r, TaskRecord)]
    turns = [r for r in records if isinstance(r, TurnRecord)]
    assert len(tasks) == 20 and all(t.ok for t in tasks), [t.error for t in tasks]
    assert {t.status for t in turns} == {"ok"}
    assert len(opened) == 3
    # Per-turn wire bytes add up to the shared sockets' counters (before the closes, which
    # come after the last turn), and those are what the kernel carried.
    assert sum(t.bytes_sent for t in turns) == sum(sent for sent, _ in counted)
    assert sum(t.bytes_recv for t in turns) == sum(received for _, received in counted)
    for (sent, received), info in zip(counted, kernel, strict=True):
        assert info is not None
        assert (info.payload_acked, info.bytes_received) == (sent, received)
    stats = _settled_stats(fresh_mock, len(turns))
    assert stats["connections_total"] == 3  # fewer sockets than sessions
    assert stats["responses_completed"] == len(turns)
    assert stats["bytes_in"] == sum(t.body_bytes_sent for t in turns)
    assert stats["bytes_out"] == sum(t.body_bytes_recv for t in turns)
    # The handshakes went to the first turn on each connection: three turns carry ~200 B more.
    overheads = sorted(t.bytes_sent - t.body_bytes_sent for t in turns)
    assert overheads[-3] > 150 and overheads[-4] <= 14


def test_the_kernel_agrees_with_the_shared_counters_between_turns(fresh_mock: str) -> None:
    context = TransportContext({"ws_mux": {"sessions_per_connection": 4}})
    records: list = []
    sessions = _sessions(fresh_mock, context, 4, records)
    prompt = {"role": "user", "content": "Fix the failing formatDate test, please."}
    try:

        def one_turn(session: AgentSession) -> None:
            outcome = session.transport.turn(TurnInput([prompt], [prompt], None, {}))
            assert outcome.status == "ok", outcome.error

        gevent.joinall([gevent.spawn(one_turn, s) for s in sessions], raise_error=True)
        pool: MuxPool = context.shared(SHARED_KEY, lambda: None)
        (connection,) = pool.opened
        info = connection.tcp_info()
        assert info is not None
        assert (connection.counter.sent, connection.counter.received) == (
            info.payload_acked,
            info.bytes_received,
        )
        assert sum(s.counter.sent for s in sessions) == connection.counter.sent
        assert sum(s.counter.received for s in sessions) == connection.counter.received
    finally:
        context.close()


def test_a_closed_connection_fails_every_session_over_with_the_full_context(
    fresh_mock: str,
) -> None:
    context = TransportContext({"ws_mux": {"sessions_per_connection": 8}})
    records: list = []
    sessions = _sessions(fresh_mock, context, 3, records)
    prompt = {"role": "user", "content": "Fix the failing formatDate test, please."}
    try:
        firsts = [s.transport.turn(TurnInput([prompt], [prompt], None, {})) for s in sessions]
        assert {f.status for f in firsts} == {"ok"}
        transport = sessions[0].transport
        assert isinstance(transport, MuxTransport) and transport.lane is not None
        shared = transport.lane.connection
        assert shared.ws is not None
        shared.ws.wire.sock.shutdown(socket.SHUT_RDWR)  # the link drops under all three

        def second(index: int) -> object:
            first = firsts[index]
            outputs = [
                {"type": "function_call_output", "call_id": c["call_id"], "output": "ok"}
                for c in first.tool_calls
            ]
            transcript = [prompt, *first.output, *outputs]
            return sessions[index].transport.turn(
                TurnInput(transcript, outputs, first.response_id, {})
            )

        seconds = [g.get() for g in [gevent.spawn(second, i) for i in range(3)]]
        pool: MuxPool = context.shared(SHARED_KEY, lambda: None)
        assert len(pool.opened) == 2 and pool.opened[0].dead
    finally:
        context.close()
    assert [(s.status, s.retries) for s in seconds] == [("reconnected", 1)] * 3
