"""The load generator against targets that misbehave: real loopback servers
(:mod:`tests.misbehaving`) answering garbage, a truncated or invalid status line, a bad
WebSocket upgrade or an invalid frame.

Every transport must turn each into an ``error`` turn record naming what the target sent
wrong (no exception out of the session, no timeout waited out), and must not reuse the
broken connection.
"""

from __future__ import annotations

import time

import gevent
import pytest

from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.loadgen.transports import TRANSPORT_NAMES
from rig.loadgen.transports.base import STOPPED
from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
from rig.workload.scenarios import builtin_scenarios
from tests.misbehaving import NEVER, MisbehavingServer, Request, websocket_accept

SCENARIO = builtin_scenarios()["fix_failing_test"]
TIMEOUT_S = 20.0
"""The turn timeout: a turn that ended by it did not see the failure."""

GARBAGE = b"\x00\x01\x02 this is not HTTP at all\r\n\r\n"
SSE_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _text_frame(data: bytes) -> bytes:
    assert len(data) < 126
    return bytes([0x81, len(data)]) + data


BROKEN_TERMINAL = b'{"type":"response.completed","response":{"id":"resp_1","output":['
END = b"0\r\n\r\n"


def _broken_terminal(request: Request) -> bytes:
    if request.is_upgrade:  # ws_mux's first lane on a connection is s1
        return _upgrade(request) + _text_frame(BROKEN_TERMINAL + b',"stream_id":"s1"}')
    if b"/chat/completions" in request.head:
        return SSE_200 + _chunk(b"data: {not json\n\n") + END
    event = b"event: response.completed\ndata: " + BROKEN_TERMINAL + b"\n\n"
    return SSE_200 + _chunk(event) + END


def _upgrade(request: Request, accept: str | None = None) -> bytes:
    key = request.header("sec-websocket-key")
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept if accept is not None else websocket_accept(key)}\r\n\r\n"
    ).encode()


ANSWERS = {
    "garbage": (lambda request: GARBAGE, False, "not HTTP", "not a valid HTTP response"),
    "truncated status line": (
        lambda request: b"HTTP/1.1 2",
        True,
        "closed the connection in the middle",
        "closed the connection during the WebSocket handshake",
    ),
    "invalid status code": (
        lambda request: b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        False,
        "invalid HTTP response (Invalid status code)",
        "invalid status code",
    ),
    "invalid chunk size": (
        lambda request: SSE_200 + b"zz\r\nhello\r\n",
        False,
        "Invalid character in chunk size",
        "not a valid HTTP response",
    ),
    "bad upgrade (wrong accept key)": (
        lambda request: _upgrade(request, accept="d3JvbmcK"),
        False,
        "invalid HTTP response",
        "invalid Sec-WebSocket-Accept",
    ),
    "invalid WebSocket frame (masked by the server)": (
        lambda request: (
            _upgrade(request) + b"\x81\x82abcd\x00\x00" if request.is_upgrade else GARBAGE
        ),
        False,
        "not HTTP",
        "invalid WebSocket frame",
    ),
    # Closes after answering: ws_mux keeps a shared connection that delivered one lane a
    # bad event (the WebSocket itself is sound), so a second lane would wait on it.
    "a terminal event that is not JSON": (_broken_terminal, True, "not JSON", "not JSON"),
}


def _session(url: str, transport: str, records: list) -> AgentSession:
    config = SessionConfig(
        transport=transport,
        scenario=SCENARIO,
        target=Target.from_url(url),
        tags=RecordTags("test", SCENARIO.name, transport, "misbehaving"),
        time_scale=0.0,
        timeout_s=TIMEOUT_S,
    )
    return AgentSession(config, records.append)


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
@pytest.mark.parametrize("fault", list(ANSWERS))
def test_a_target_that_breaks_the_protocol_gives_error_records_naming_it(
    fault: str, transport: str
) -> None:
    answer, close_after, http_cause, ws_cause = ANSWERS[fault]
    records: list = []
    with MisbehavingServer(answer, close_after=close_after) as server:
        session = _session(server.url, transport, records)
        try:
            tasks = [session.run_task(), session.run_task()]  # raises nothing
        finally:
            session.close()
    turns = [r for r in records if isinstance(r, TurnRecord)]
    assert [t.status for t in turns] == ["error", "error"], [t.error for t in turns]
    cause = ws_cause if transport.startswith("ws") else http_cause
    for turn in turns:
        assert cause in turn.error, turn.error
        assert turn.turn_ms < TIMEOUT_S * 1000 / 2  # failed at once, no timeout waited out
    assert [t.ok for t in tasks] == [False, False]
    assert all(isinstance(r, TaskRecord) for r in records if not isinstance(r, TurnRecord))
    # The broken connection was not reused: each task's turn came on a new connection.
    assert server.connections == 2
    assert {request.connection for request in server.requests} == {0, 1}


@pytest.mark.parametrize("transport", ["http", "chat", "ws", "ws_mux"])
def test_a_target_that_never_answers_ends_each_turn_at_the_request_timeout(
    transport: str,
) -> None:
    records: list = []
    with MisbehavingServer(lambda request: NEVER) as server:
        config = SessionConfig(
            transport=transport,
            scenario=SCENARIO,
            target=Target.from_url(server.url),
            tags=RecordTags("test", SCENARIO.name, transport, "silent"),
            time_scale=0.0,
            timeout_s=0.5,
        )
        session = AgentSession(config, records.append)
        try:
            task = session.run_task()
        finally:
            session.close()
    turns = [r for r in records if isinstance(r, TurnRecord)]
    assert [t.status for t in turns] == ["timeout"]
    assert "longer than 0.5 s" in turns[0].error
    assert not task.ok and task.error == turns[0].error


@pytest.mark.parametrize("transport", ["http", "chat"])
def test_an_sse_event_over_the_bound_fails_the_turn_and_drops_the_connection(
    transport: str,
) -> None:
    # 17 MiB of one event with no blank line, then the server waits: the client gives up
    # at the decoder's bound (16 MiB), not at the turn timeout, and hangs up.
    endless = SSE_200 + _chunk(b"data: " + b"x" * (17 * 1024 * 1024))
    records: list = []
    with MisbehavingServer(lambda request: endless) as server:
        session = _session(server.url, transport, records)
        try:
            task = session.run_task()
        finally:
            session.close()
    turns = [r for r in records if isinstance(r, TurnRecord)]
    assert [t.status for t in turns] == ["error"]
    assert "SSEEventTooLarge" in turns[0].error
    assert "more than 16,777,216 bytes" in turns[0].error
    assert turns[0].turn_ms < TIMEOUT_S * 1000 / 2
    assert 16 * 1024 * 1024 < turns[0].bytes_recv < 18 * 1024 * 1024
    assert not task.ok
    assert session.transport.tcp_info() is None  # the connection was dropped


@pytest.mark.parametrize("transport", ["http", "ws", "ws_mux"])
def test_a_session_stopped_while_its_turn_waits_records_the_turn_and_the_task(
    transport: str,
) -> None:
    records: list = []
    with MisbehavingServer(lambda request: NEVER) as server:
        session = _session(server.url, transport, records)
        greenlet = gevent.spawn(session.run_task)
        deadline = time.monotonic() + 30
        while not server.requests:  # the request (or the upgrade) reached the target
            assert time.monotonic() < deadline, "the turn never reached the server"
            gevent.sleep(0.01)
        greenlet.kill(block=True, timeout=5)  # what Locust does at its stop timeout
        session.close()
    assert greenlet.dead
    assert isinstance(greenlet.value, gevent.GreenletExit)  # it still stopped
    (turn,) = [r for r in records if isinstance(r, TurnRecord)]
    (task,) = [r for r in records if isinstance(r, TaskRecord)]
    assert (turn.status, turn.error) == ("error", STOPPED)
    assert turn.turn_ms < TIMEOUT_S * 1000
    assert not task.ok and task.error == STOPPED and task.turns == 1
