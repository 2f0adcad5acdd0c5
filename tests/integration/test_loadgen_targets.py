"""A target of several base URLs: sessions' connections spread over them in turn, and a
connect that fails moves on to the next URL within the turn (real mocks on loopback)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from rig.loadgen.dial import TargetUnreachableError, dial
from rig.loadgen.registry import TransportContext
from rig.loadgen.session import AgentSession
from rig.loadgen.target import EndpointRotation, Target
from rig.loadgen.transports import TRANSPORT_NAMES
from rig.loadgen.wire import WireCounter, WireSocket
from rig.metrics.records import TaskRecord, TurnRecord
from rig.workload.scenarios import builtin_scenarios
from tests.kernel import counting_closes
from tests.servers import free_port, require_binary, settled_stats, start_mock
from tests.sessions import make_sessions

SCENARIO = builtin_scenarios()["fix_failing_test"]


@pytest.fixture
def two_mocks() -> Iterator[tuple[str, str]]:
    first, url1 = start_mock("--preset", "instant")
    second, url2 = start_mock("--preset", "instant")
    yield url1, url2
    first.stop()
    second.stop()


def _dead_url() -> str:
    """A base URL whose port refuses connections."""
    return f"http://127.0.0.1:{free_port()}/v1"


def _sessions(url: str, transports: list[str], context: TransportContext) -> tuple:
    return make_sessions(url, transports, context, SCENARIO)


def _peer_port(session: AgentSession) -> int:
    """The port of the mock the session's (one) connection went to."""
    info = session.transport
    connection = info.connection  # type: ignore[attr-defined]
    wire = connection.wire if info.name == "ws" else connection._wire
    return int(wire.sock.getpeername()[1])


def _connects(session: AgentSession) -> int:
    transport = session.transport
    if transport.name == "ws":
        return int(transport.connects)  # type: ignore[attr-defined]
    return int(transport.connection.connects)  # type: ignore[attr-defined]


def _run(sessions: list[AgentSession]) -> None:
    gevent.joinall([gevent.spawn(s.run_task) for s in sessions], raise_error=True)


def test_sessions_spread_over_two_mocks_and_each_mocks_stats_reconcile(
    two_mocks: tuple[str, str],
) -> None:
    url1, url2 = two_mocks
    context = TransportContext()
    sessions, records = _sessions(f"{url1},{url2}", ["http", "ws"] * 4, context)
    try:
        _run(sessions)
        ports = [_peer_port(s) for s in sessions]
        connects = [_connects(s) for s in sessions]
    finally:
        for session in sessions:
            session.close()
        context.close()
    assert connects == [1] * 8  # one connection per session, none reopened
    turns = [[r for r in rs if isinstance(r, TurnRecord)] for rs in records]
    tasks = [r for rs in records for r in rs if isinstance(r, TaskRecord)]
    assert len(tasks) == 8 and all(t.ok for t in tasks), [t.error for t in tasks]
    assert {t.status for ts in turns for t in ts} == {"ok"}
    for url in (url1, url2):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        mine = [i for i, p in enumerate(ports) if p == port]
        assert len(mine) == 4  # eight connections in turn over two URLs: four each
        my_turns = [t for i in mine for t in turns[i]]
        stats = settled_stats(url, len(my_turns))
        ws = [i for i in mine if sessions[i].transport.name == "ws"]
        http = [i for i in mine if sessions[i].transport.name == "http"]
        assert stats["connections_total"] == len(ws)
        assert stats["http_requests"] == sum(len(turns[i]) for i in http)
        assert stats["responses_completed"] == len(my_turns)
        assert stats["bytes_in"] == sum(t.body_bytes_sent for t in my_turns)
        assert stats["bytes_out"] == sum(t.body_bytes_recv for t in my_turns)


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
def test_a_dead_url_first_in_the_list_costs_no_session_and_no_turn(
    mock_url: str, transport: str
) -> None:
    context = TransportContext()
    # Three connections in turn: the first and third start at the dead URL.
    sessions, records = _sessions(f"{_dead_url()},{mock_url}", [transport] * 3, context)
    try:
        _run(sessions)
    finally:
        for session in sessions:
            session.close()
        context.close()
    tasks = [r for rs in records for r in rs if isinstance(r, TaskRecord)]
    turns = [r for rs in records for r in rs if isinstance(r, TurnRecord)]
    assert len(tasks) == 3 and all(t.ok for t in tasks), [t.error for t in tasks]
    assert turns and {(t.status, t.retries) for t in turns} == {("ok", 0)}


def test_dial_moves_past_a_refused_url_and_says_since_when(mock_url: str) -> None:
    dead = _dead_url()
    target = Target.from_url(f"{dead},{mock_url}")
    rotation = EndpointRotation(target.endpoints)
    counter = WireCounter()
    first = dial(rotation, counter, timeout=5, tls=None)  # starts at the dead URL
    second = dial(rotation, counter, timeout=5, tls=None)  # starts at the live one
    try:
        assert first.endpoint.base_url == second.endpoint.base_url == mock_url
        assert first.failed_since is not None and first.failed_since <= time.perf_counter()
        assert second.failed_since is None
    finally:
        first.wire.close()
        second.wire.close()


def test_dial_names_every_url_when_none_accepts() -> None:
    dead1, dead2 = _dead_url(), _dead_url()
    rotation = EndpointRotation(Target.from_url(f"{dead1},{dead2}").endpoints)
    with pytest.raises(TargetUnreachableError) as caught:
        dial(rotation, WireCounter(), timeout=5, tls=None)
    assert dead1 in str(caught.value) and dead2 in str(caught.value)


def test_one_refused_url_raises_what_it_always_did() -> None:
    rotation = EndpointRotation(Target.from_url(_dead_url()).endpoints)
    with pytest.raises(ConnectionRefusedError):
        dial(rotation, WireCounter(), timeout=5, tls=None)


class _HandshakeRefuser:
    """Accepts TCP connections, reads the client's first flight (a TLS ClientHello),
    holds it ``hold_s`` seconds and closes: a TLS handshake refused."""

    def __init__(self, hold_s: float):
        self.hold_s = hold_s
        self.received = 0
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.accepted += 1
                self.received += len(conn.recv(65536))
                time.sleep(self.hold_s)  # the server's behaviour, not a test's wait

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def tls_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    openssl = require_binary("openssl")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    process, url = start_mock("--preset", "instant", "--tls-cert", str(cert), "--tls-key", str(key))
    yield url.replace("http://", "https://"), cert
    process.stop()


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_a_refused_tls_handshake_is_charged_to_the_turn_that_made_it(
    tls_mock: tuple[str, Path], transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_mock
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    hold_s = 0.4
    refuser = _HandshakeRefuser(hold_s)
    context = TransportContext()
    # Three connections in turn: the first and third start at the refusing URL.
    refusing = f"https://127.0.0.1:{refuser.port}/v1"
    sessions, records = _sessions(f"{refusing},{url}", [transport] * 3, context)
    live: list[tuple[int, int]] = []  # the live connections' counts, closing included

    def to_the_target(wire: WireSocket) -> bool:
        try:
            return bool(wire.sock.getpeername()[1] != refuser.port)
        except OSError:
            return False

    monkeypatch.setattr(WireSocket, "close", counting_closes(live, to_the_target))
    try:
        _run(sessions)
    finally:
        for session in sessions:
            session.close()
        context.close()
        refuser.close()
    turns = [r for rs in records for r in rs if isinstance(r, TurnRecord)]
    assert {t.status for t in turns} == {"ok"}
    assert refuser.accepted == 2 and refuser.received > 200  # two ClientHellos
    # Every byte the failed handshakes wrote is in a turn, besides what the live
    # connections carried (the kernel's count).
    assert len(live) == 3
    live_sent, live_recv = sum(sent for sent, _ in live), sum(recv for _, recv in live)
    assert sum(t.bytes_sent for t in turns) == live_sent + refuser.received
    assert sum(t.bytes_recv for t in turns) == live_recv
    # ... and their time, in the first turn of the two sessions whose connects failed over.
    firsts = sorted(next(r for r in rs if isinstance(r, TurnRecord)).turn_ms for rs in records)
    assert firsts[0] < hold_s * 1000 <= firsts[1]
