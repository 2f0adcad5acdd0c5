"""Connections that break under a turn, against real loopback servers: a target that
stalls mid-stream (the stream idle timeout, then repeats with back-off), one whose
WebSocket upgrade fails while HTTP works (the fallback to HTTP with the full context), and
the mock dropping every WebSocket at once (sessions reconnect and go on).

No timing is asserted: the stalls are real silences, waited out by the idle timeout;
what is checked is what the records and the servers counted.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import gevent
import httpx
import orjson
import pytest

from rig.loadgen.backoff import StreamPolicy
from rig.loadgen.registry import TransportContext
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.metrics.records import RateLimitRecord, RecordTags, TaskRecord, TurnRecord
from rig.report.summary import summarize
from rig.workload.scenarios import builtin_scenarios
from tests.misbehaving import MisbehavingServer, Request, websocket_accept
from tests.servers import start_mock

SCENARIO = builtin_scenarios()["fix_failing_test"]
IDLE_S = 0.3
"""The stream idle timeout of these sessions: a stall outlasts it (the target says
nothing more); an answer does not need it."""
QUICK = StreamPolicy(idle_timeout_s=IDLE_S, retries=2, base_s=0.01)

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
CREATED = b'{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}'
COMPLETED = orjson.dumps(
    {
        "type": "response.completed",
        "response": {
            "id": "resp_2",
            "object": "response",
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "done", "annotations": []}],
                }
            ],
            "usage": {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11},
        },
    }
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _sse(event: bytes) -> bytes:
    name = orjson.loads(event)["type"].encode()
    return _chunk(b"event: " + name + b"\ndata: " + event + b"\n\n")


def _upgrade(request: Request) -> bytes:
    key = request.header("sec-websocket-key")
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {websocket_accept(key)}\r\n\r\n"
    ).encode()


def _frame(data: bytes) -> bytes:
    """An unmasked text frame (a server's)."""
    if len(data) < 126:
        return bytes([0x81, len(data)]) + data
    assert len(data) < 1 << 16
    return bytes([0x81, 126]) + len(data).to_bytes(2, "big") + data


def _stalls(request: Request) -> bytes:
    """The response begins (the upgrade and one event; the status line and headers),
    then nothing more: a stalled stream."""
    if request.is_upgrade:
        return _upgrade(request) + _frame(CREATED)
    return SSE_HEAD


ANSWERED = SSE_HEAD + _sse(CREATED) + _sse(COMPLETED) + b"0\r\n\r\n"


def _session(url: str, transport: str, records: list, stream: StreamPolicy) -> AgentSession:
    config = SessionConfig(
        transport=transport,
        scenario=SCENARIO,
        target=Target.from_url(url),
        tags=RecordTags("test", SCENARIO.name, transport, "breaks"),
        time_scale=0.0,
        timeout_s=30.0,  # far beyond the idle timeout: only that ends a stalled attempt
        stream=stream,
    )
    return AgentSession(config, records.append)


def _run_one_task(session: AgentSession) -> TaskRecord:
    try:
        return session.run_task()
    finally:
        session.close()


def _turns(records: list) -> list[TurnRecord]:
    return [r for r in records if isinstance(r, TurnRecord)]


@pytest.mark.parametrize("transport", ["http", "chat", "ws", "ws_stored"])
def test_a_stream_that_stalls_ends_at_the_idle_timeout_and_is_retried_then_given_up(
    transport: str,
) -> None:
    records: list = []
    with MisbehavingServer(_stalls) as server:
        task = _run_one_task(_session(server.url, transport, records, QUICK))
        attempts = [r for r in server.requests if r.is_upgrade or b"POST" in r.head[:5]]
    (turn,) = _turns(records)
    assert turn.status == "timeout"
    assert "stream idle" in turn.error and f"{IDLE_S:g} s" in turn.error
    assert turn.breaks == QUICK.retries + 1  # the first attempt and each repeat broke
    assert turn.retries >= QUICK.retries
    assert len(attempts) == QUICK.retries + 1  # each attempt on a new connection
    assert server.connections == QUICK.retries + 1
    assert turn.recover_ms == 0  # never recovered
    assert turn.resent_bytes > 0  # the request went again after the first break
    assert not task.ok


def test_without_an_idle_timeout_a_stall_lasts_until_the_request_timeout() -> None:
    records: list = []
    with MisbehavingServer(_stalls) as server:
        config = SessionConfig(
            transport="http",
            scenario=SCENARIO,
            target=Target.from_url(server.url),
            tags=RecordTags("test", SCENARIO.name, "http", "breaks"),
            time_scale=0.0,
            timeout_s=IDLE_S,
            stream=StreamPolicy(idle_timeout_s=0, retries=2),
        )
        _run_one_task(AgentSession(config, records.append))
    (turn,) = _turns(records)
    assert turn.status == "timeout" and "longer than" in turn.error
    assert turn.breaks == 0 and server.connections == 1  # the request timeout is final


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_a_stream_that_stalls_once_is_repeated_and_the_turn_reconnected(transport: str) -> None:
    def stall_then_answer(request: Request) -> bytes:
        """The first connection stalls, the next answers (a WebSocket's answer follows
        its upgrade at once: no request needs reading for it)."""
        if request.connection == 0:
            return _stalls(request)
        if request.is_upgrade:
            return _upgrade(request) + _frame(CREATED) + _frame(COMPLETED)
        return ANSWERED

    records: list = []
    with MisbehavingServer(stall_then_answer) as server:
        task = _run_one_task(_session(server.url, transport, records, QUICK))
    (turn,) = _turns(records)
    assert turn.status == "reconnected", turn.error
    assert turn.breaks == 1
    assert turn.recover_ms > 0
    assert task.ok
    # The second attempt sent the request again: what was resent is what it sent.
    assert 0 < turn.resent_bytes < turn.body_bytes_sent
    assert turn.body_bytes_sent == 2 * turn.resent_bytes


def _refused_upgrade(status: str) -> Callable[[Request], bytes]:
    def answer(request: Request) -> bytes:
        if request.is_upgrade:
            return f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode()
        return ANSWERED

    return answer


@pytest.mark.parametrize(
    ("status", "fallback_after"), [("503 Service Unavailable", 2), ("426 Upgrade Required", 1)]
)
def test_a_ws_session_falls_back_to_http_after_n_failed_upgrades(
    status: str, fallback_after: int
) -> None:
    records: list = []
    stream = StreamPolicy(idle_timeout_s=IDLE_S, retries=5, base_s=0.01, ws_fallback=fallback_after)
    with MisbehavingServer(_refused_upgrade(status)) as server:
        session = _session(server.url, "ws", records, stream)
        try:
            tasks = [session.run_task(), session.run_task()]
        finally:
            session.close()
        upgrades = sum(r.is_upgrade for r in server.requests)
        posts = [r for r in server.requests if not r.is_upgrade]
    first, second = _turns(records)
    assert [t.ok for t in tasks] == [True, True]
    assert upgrades == fallback_after  # never tried again once it fell back
    assert len(posts) == 2 and all(b"/v1/responses" in r.head for r in posts)
    assert first.tags.transport == second.tags.transport == "ws"  # as configured
    assert first.fallback and second.fallback
    assert first.status == ("reconnected" if fallback_after > 1 else "ok")
    assert first.breaks == (fallback_after if status.startswith("5") else 0)
    assert second.status == "ok" and second.breaks == 0
    summary = summarize({"run_id": "t"}, _turns(records), tasks)
    recovery = summary["transports"]["ws"]["recovery"]
    assert recovery["fallback_sessions"] == 1
    assert recovery["fallback_turns"] == 2
    assert recovery["lost_turns"] == 0


def test_without_fallback_a_refused_upgrade_fails_the_turn_after_the_retries() -> None:
    records: list = []
    stream = StreamPolicy(idle_timeout_s=IDLE_S, retries=3, base_s=0.01)
    with MisbehavingServer(_refused_upgrade("503 Service Unavailable")) as server:
        task = _run_one_task(_session(server.url, "ws", records, stream))
        upgrades = sum(r.is_upgrade for r in server.requests)
    (turn,) = _turns(records)
    assert turn.status == "error" and "503" in turn.error
    assert upgrades == 4 and turn.breaks == 4
    assert not turn.fallback and not task.ok
    summary = summarize({"run_id": "t"}, _turns(records), [task])
    assert summary["transports"]["ws"]["recovery"]["lost_turns"] == 1


# -- the mock drops every WebSocket at once ---------------------------------------------


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Let the sessions run until ``condition`` (their records, the mock's answers) holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        gevent.sleep(0.01)


class _LoopingSessions:
    """``count`` sessions of ``transport`` against ``url``, each running tasks in a loop
    in its own greenlet until :meth:`stop`; their records, per session."""

    def __init__(self, url: str, transport: str, count: int):
        context = TransportContext()
        target = Target.from_url(url)
        self.records: list[list] = [[] for _ in range(count)]
        self.sessions = [
            AgentSession(
                SessionConfig(
                    transport=transport,
                    scenario=SCENARIO,
                    target=target,
                    tags=RecordTags("test", SCENARIO.name, transport, "mock"),
                    time_scale=0.0,
                    context=context,
                ),
                self.records[i].append,
                session_index=i,
            )
            for i in range(count)
        ]
        self.stopping = False
        self.greenlets = [gevent.spawn(self._loop, session) for session in self.sessions]

    def _loop(self, session: AgentSession) -> None:
        while not self.stopping:
            session.run_task()

    def counts(self) -> list[int]:
        """How many records each session has made so far."""
        return [len(r) for r in self.records]

    def each_reconnected_since(self, counts: list[int]) -> bool:
        """Whether every session has had a ``reconnected`` turn since ``counts``."""
        return all(
            any(isinstance(r, TurnRecord) and r.status == "reconnected" for r in rs[done:])
            for rs, done in zip(self.records, counts, strict=True)
        )

    def storm(self, base_url: str, drop: Callable[[httpx.Client], None]) -> dict[str, int]:
        """Once every session holds its WebSocket, ``drop`` them all (through the mock's
        admin client), wait for every session to reconnect, stop the sessions, and return
        the mock's ``/stats``."""
        count = len(self.sessions)
        with httpx.Client(base_url=base_url) as admin:
            _until(
                lambda: admin.get("/stats").json()["connections_open"] == count,
                "every session's WebSocket",
            )
            done_before = self.counts()
            drop(admin)
            _until(lambda: self.each_reconnected_since(done_before), "every reconnect")
            self.stop()
            stats: dict[str, int] = admin.get("/stats").json()
            return stats

    def stop(self) -> None:
        """Let each session finish its task, then stop (raising what a greenlet raised)."""
        self.stopping = True
        gevent.joinall(self.greenlets, raise_error=True, timeout=60)

    def close(self) -> None:
        self.stopping = True
        gevent.killall(self.greenlets)
        for session in self.sessions:
            session.close()

    def of(self, kind: type) -> list:
        return [r for rs in self.records for r in rs if isinstance(r, kind)]


@pytest.mark.parametrize("trigger", ["admin", "signal"])
@pytest.mark.parametrize("transport", ["ws", "ws_stored"])
def test_the_mock_drops_every_websocket_and_the_sessions_reconnect(
    trigger: str, transport: str
) -> None:
    process, url = start_mock("--preset", "instant", "--admin")
    base = url.removesuffix("/v1")
    sessions_n = 3
    looping = _LoopingSessions(url, transport, sessions_n)

    def drop(admin: httpx.Client) -> None:
        if trigger == "admin":
            answer = admin.post("/admin/drop-websockets")
            assert answer.status_code == 200
            assert answer.json() == {"dropped": sessions_n}
        else:
            os.kill(process.process.pid, signal.SIGUSR1)
        _until(lambda: admin.get("/stats").json()["ws_dropped"] == sessions_n, "the drop")

    try:
        stats = looping.storm(base, drop)
    finally:
        looping.close()
        process.stop()
    turns, tasks = looping.of(TurnRecord), looping.of(TaskRecord)
    assert not [t.error for t in turns if t.status not in ("ok", "reconnected")]
    reconnected = [t for t in turns if t.status == "reconnected"]
    assert len(reconnected) >= sessions_n
    assert all(t.breaks >= 1 for t in reconnected)
    assert stats["connections_total"] >= 2 * sessions_n  # each session opened a new one
    recovery = summarize({"run_id": "t"}, turns, tasks)["transports"][transport]["recovery"]
    assert recovery["reconnected_turns"] == len(reconnected)
    assert recovery["breaks"] == sum(t.breaks for t in turns) >= sessions_n
    assert recovery["reconnect_rate"] == pytest.approx(len(reconnected) / len(turns), abs=1e-4)
    assert recovery["lost_turns"] == 0
    assert recovery["fallback_sessions"] == 0


def test_the_admin_route_is_absent_without_the_admin_flag(mock_url: str) -> None:
    answer = httpx.post(mock_url.removesuffix("/v1") + "/admin/drop-websockets")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_url"


def test_a_storm_under_a_connection_quota_recovers_and_counts_what_the_quota_refused() -> None:
    """Every WebSocket dropped at once while the mock allows exactly as many connections
    as there are sessions: the reconnects race the quota's release of the dropped
    connections. Whatever the quota refused in the race is a rate-limit record of kind
    ``connections`` (retried with back-off, never a lost turn), and every session goes on."""
    sessions_n = 4
    process, url = start_mock(
        "--preset", "instant", "--admin", "--max-connections", str(sessions_n)
    )
    looping = _LoopingSessions(url, "ws", sessions_n)

    def drop(admin: httpx.Client) -> None:
        assert admin.post("/admin/drop-websockets").json() == {"dropped": sessions_n}

    try:
        stats = looping.storm(url.removesuffix("/v1"), drop)
    finally:
        looping.close()
        process.stop()
    turns, tasks = looping.of(TurnRecord), looping.of(TaskRecord)
    limited = looping.of(RateLimitRecord)
    assert not [t.error for t in turns if t.status not in ("ok", "reconnected")]
    assert {r.limit for r in limited} <= {"connections"}, {r.limit for r in limited}
    assert stats["connections_open"] == sessions_n  # one each again, none left behind
    summary = summarize({"run_id": "t"}, turns, tasks, limited)
    recovery = summary["transports"]["ws"]["recovery"]
    assert recovery["lost_turns"] == 0 and recovery["reconnected_turns"] >= sessions_n
    hits = summary["rate_limits"]["transports"]["ws"]
    assert hits["hits"] == len(limited)
    assert hits["by_kind"] == ({"connections": len(limited)} if limited else {})
