"""Agent sessions over every transport against a real mock process.

The wire accounting is checked against the kernel's own per-socket counters (Linux
TCP_INFO): every byte the rig says it sent or received must be a byte TCP carried.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from itertools import pairwise

import pytest

from rig.loadgen.registry import TransportContext
from rig.loadgen.session import AgentSession, SessionConfig
from rig.loadgen.target import Target
from rig.loadgen.transports import TRANSPORT_NAMES, TurnInput
from rig.loadgen.wire import WireSocket
from rig.metrics.records import RecordTags, TaskRecord, TurnRecord
from rig.protocol.ws import encode_client_event
from rig.workload.scenarios import builtin_scenarios
from rig.workload.tools import INSTRUCTIONS, TOOLS
from tests.kernel import counting_closes
from tests.servers import start_mock

SCENARIO = builtin_scenarios()["fix_failing_test"]


def _session(url: str, transport: str, records: list, **overrides) -> AgentSession:
    config = SessionConfig(
        transport=transport,
        scenario=overrides.pop("scenario", SCENARIO),
        target=Target.from_url(url),
        tags=RecordTags("test", SCENARIO.name, transport, "mock"),
        time_scale=overrides.pop("time_scale", 0.0),
        **overrides,
    )
    return AgentSession(config, records.append)


def _run(url: str, transport: str, **overrides) -> tuple[TaskRecord, list[TurnRecord]]:
    records: list = []
    session = _session(url, transport, records, **overrides)
    try:
        session.run_task()
    finally:
        session.close()
    (task,) = [r for r in records if isinstance(r, TaskRecord)]  # as emitted: close included
    return task, [r for r in records if isinstance(r, TurnRecord)]


@pytest.fixture(scope="module")
def runs(mock_url: str) -> dict[str, tuple[TaskRecord, list[TurnRecord]]]:
    return {name: _run(mock_url, name) for name in TRANSPORT_NAMES}


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
def test_every_transport_completes_the_task(runs: dict, transport: str) -> None:
    task, turns = runs[transport]
    assert task.ok, task.error
    assert [t.turn for t in turns] == list(range(task.turns))
    assert {t.status for t in turns} == {"ok"}
    assert task.bytes_sent == sum(t.bytes_sent for t in turns)
    assert task.tool_calls == sum(t.tool_calls for t in turns)
    low, high = SCENARIO.turns
    assert low <= task.turns <= high
    assert all(t.bytes_sent > t.body_bytes_sent > 0 for t in turns)  # framing is on the wire too
    assert all(0 < t.ttfb_ms <= t.ttft_ms <= t.turn_ms for t in turns)


def test_all_transports_play_the_same_conversation(runs: dict) -> None:
    shapes = {name: [t.tool_calls for t in turns] for name, (_, turns) in runs.items()}
    assert len({tuple(shape) for shape in shapes.values()}) == 1, shapes


def test_stateless_transports_grow_and_continuations_stay_flat(runs: dict) -> None:
    for name in ("http", "chat"):
        sizes = [t.bytes_sent for t in runs[name][1]]
        assert all(b > a for a, b in pairwise(sizes)), (name, sizes)
    http_total = runs["http"][0].bytes_sent
    for name in ("http_chained", "ws", "ws_stored"):
        sizes = [t.bytes_sent for t in runs[name][1]]
        assert max(sizes) < runs["http"][1][-1].bytes_sent / 2, (name, sizes)
        assert runs[name][0].bytes_sent < 0.4 * http_total


def test_websocket_handshake_is_charged_to_the_first_turn(runs: dict) -> None:
    first, second = runs["ws"][1][:2]
    # Each turn sends one masked frame (a few bytes beyond the body); the first turn
    # also carries the HTTP upgrade request, and receives the 101 response.
    overhead_first = first.bytes_sent - first.body_bytes_sent
    overhead_second = second.bytes_sent - second.body_bytes_sent
    assert overhead_second <= 14
    assert overhead_first - overhead_second > 150


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
def test_wire_counts_agree_exactly_with_the_kernel(mock_url: str, transport: str) -> None:
    records: list = []
    session = _session(mock_url, transport, records)
    transcript = [{"role": "user", "content": "Fix the failing formatDate test, please."}]
    previous = None
    new_items = list(transcript)
    try:
        for _ in range(4):
            outcome = session.transport.turn(
                TurnInput(transcript, new_items, previous, {"scenario": SCENARIO.name})
            )
            assert outcome.status == "ok", outcome.error
            info = session.transport.tcp_info()
            assert info is not None
            # One connection so far: the session's totals are this socket's totals.
            assert (session.counter.sent, session.counter.received) == (
                info.payload_acked,
                info.bytes_received,
            )
            previous = outcome.response_id
            transcript.extend(outcome.output)
            new_items = [
                {"type": "function_call_output", "call_id": c["call_id"], "output": "ok"}
                for c in outcome.tool_calls
            ]
            transcript.extend(new_items)
    finally:
        session.close()


# ws_mux shares its connection among sessions: its close belongs to the run's pool.
ONE_CONNECTION = [name for name in TRANSPORT_NAMES if name != "ws_mux"]


@pytest.mark.parametrize("transport", ONE_CONNECTION)
def test_record_totals_equal_the_kernel_counts_closing_handshake_included(
    mock_url: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel: list[tuple[int, int]] = []
    monkeypatch.setattr(WireSocket, "close", counting_closes(kernel))
    records: list = []
    session = _session(mock_url, transport, records)
    session.run_task()
    session.run_task()  # the connection lives across tasks
    session.close()
    turns = [r for r in records if isinstance(r, TurnRecord)]
    tasks = [r for r in records if isinstance(r, TaskRecord)]
    assert len(kernel) == 1 and len(tasks) == 2
    sent, received = sum(t.bytes_sent for t in turns), sum(t.bytes_recv for t in turns)
    assert (sent, received) == kernel[0]
    assert [sum(t.bytes_sent for t in turns if t.session == task.session) for task in tasks] == [
        task.bytes_sent for task in tasks
    ]


@pytest.mark.parametrize("transport", ["ws", "ws_stored"])
def test_the_websocket_close_is_charged_to_the_last_turn(mock_url: str, transport: str) -> None:
    records: list = []
    session = _session(mock_url, transport, records)
    session.run_task()
    before_close = list(records)
    session.close()
    last_turn, task = records[-2:]
    assert isinstance(last_turn, TurnRecord) and isinstance(task, TaskRecord)
    assert last_turn not in before_close and task not in before_close  # held until close
    # The request's frame header (2 + 2-byte length + 4 mask) and a close frame with code
    # 1000 (2 + 4 mask + 2); the server's answer (2 + 2) is in the kernel test above.
    assert last_turn.bytes_sent - last_turn.body_bytes_sent == 8 + 8
    assert task.bytes_sent == sum(r.bytes_sent for r in records if isinstance(r, TurnRecord))


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
def test_connection_set_up_belongs_to_the_turn_that_opens_the_connection(
    runs: dict, transport: str
) -> None:
    _, turns = runs[transport]
    first, *later = turns
    assert 0 < first.connect_ms <= first.ttfb_ms <= first.ttft_ms <= first.turn_ms
    assert first.connect_ms + first.upload_ms <= first.ttfb_ms
    assert all(t.connect_ms == 0 for t in later)  # the connection was reused
    assert all(0 <= t.upload_ms <= t.ttfb_ms for t in turns)
    assert sum(t.upload_ms for t in turns) > 0  # writes take microseconds on loopback


@pytest.fixture(scope="module")
def short_lived_ws_mock() -> Iterator[str]:
    process, url = start_mock("--ws-max-age", "0.5")
    yield url
    process.stop()


@pytest.mark.parametrize("transport", ["ws", "ws_stored"])
def test_websocket_reconnects_after_the_age_limit(short_lived_ws_mock: str, transport: str) -> None:
    task, turns = _run(short_lived_ws_mock, transport, time_scale=0.3)
    assert task.ok, task.error
    reconnected = [t for t in turns if t.status == "reconnected"]
    assert reconnected, [t.status for t in turns]
    assert all(t.retries >= 1 for t in reconnected)


@pytest.mark.parametrize("transport", ["ws", "ws_stored"])
def test_after_a_dropped_connection_the_context_is_resent_or_continued_from_the_store(
    mock_url: str, transport: str
) -> None:
    records: list = []
    session = _session(mock_url, transport, records)
    prompt = {"role": "user", "content": "Fix the failing formatDate test, please."}
    try:
        first = session.transport.turn(
            TurnInput([prompt], [prompt], None, {"scenario": SCENARIO.name})
        )
        assert first.status == "ok"
        outputs = [
            {"type": "function_call_output", "call_id": c["call_id"], "output": "ok"}
            for c in first.tool_calls
        ]
        transcript = [prompt, *first.output, *outputs]
        # The link drops (as when the server restarts): the socket is shut under the transport.
        session.transport.connection.wire.sock.shutdown(socket.SHUT_RDWR)
        second = session.transport.turn(
            TurnInput(transcript, outputs, first.response_id, {"scenario": SCENARIO.name})
        )
    finally:
        session.close()
    assert second.status == "reconnected" and second.retries == 1
    base = {
        "model": "mock-agent",
        "instructions": INSTRUCTIONS,
        "tools": TOOLS,
        "store": transport == "ws_stored",
    }
    if transport == "ws":
        base["include"] = ["reasoning.encrypted_content"]
    full = encode_client_event(
        {**base, "input": transcript, "metadata": {"scenario": SCENARIO.name}}
    )
    incremental = encode_client_event(
        {
            **base,
            "previous_response_id": first.response_id,
            "input": outputs,
            "metadata": {"scenario": SCENARIO.name},
        }
    )
    # Nothing could be written on the dead socket; the one body sent is the retry's.
    assert second.body_bytes_sent == len(full if transport == "ws" else incremental)


def test_http_chained_recovers_when_the_store_forgot(redis_url: str) -> None:
    process, url = start_mock("--store", redis_url, "--store-ttl", "1")
    try:
        task, turns = _run(url, "http_chained", time_scale=1.0)
    finally:
        process.stop()
    assert task.ok, task.error
    recovered = [t for t in turns if t.status == "reconnected"]
    assert recovered, [(t.status, t.error) for t in turns]
    assert all(t.retries == 1 for t in recovered)


def test_a_refused_key_is_an_error_not_a_crash() -> None:
    process, url = start_mock("--api-key", "sk-the-right-one")
    try:
        for transport in ("http", "ws"):
            task, turns = _run(url, transport)
            assert not task.ok
            assert turns[-1].status == "error"
            assert "401" in turns[-1].error
            assert "sk-the-right-one" not in turns[-1].error
    finally:
        process.stop()


def test_an_unreachable_target_is_an_error_status() -> None:
    from tests.servers import free_port

    task, turns = _run(f"http://127.0.0.1:{free_port()}/v1", "ws")
    assert not task.ok and turns[0].status == "error"
    assert "refused" in turns[0].error.lower()


def test_an_idle_connection_closed_by_the_server_is_not_written_into() -> None:
    process, url = start_mock("--keep-alive", "1")
    records: list = []
    session = _session(url, "http", records)
    prompt = {"role": "user", "content": "Fix the failing formatDate test, please."}
    try:
        first = session.transport.turn(
            TurnInput([prompt], [prompt], None, {"scenario": SCENARIO.name})
        )
        assert first.status == "ok"
        # Wait, without polling, until the server's keep-alive timeout closes the socket.
        session.transport.connection._wire.sock.settimeout(10)
        assert session.transport.connection._wire.sock.recv(1, socket.MSG_PEEK) == b""
        again = session.transport.turn(
            TurnInput([prompt], [prompt], None, {"scenario": SCENARIO.name})
        )
    finally:
        session.close()
        process.stop()
    assert again.status == "ok" and again.retries == 0
    assert session.transport.connection.connects == 2
    # One request on the wire, not a lost one plus a resent one.
    assert again.bytes_sent == first.bytes_sent


@pytest.fixture(scope="module")
def trickling_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A mock that answers at once but streams one token every 200 ms."""
    preset = tmp_path_factory.mktemp("preset") / "trickle.yaml"
    preset.write_text("name: trickle\ntokens_per_s: 5\n")
    process, url = start_mock("--preset", str(preset))
    yield url
    process.stop()


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_a_turn_longer_than_the_request_timeout_ends_as_timeout(
    trickling_mock: str, transport: str
) -> None:
    # Every event arrives well within the timeout; the turn as a whole does not.
    task, turns = _run(trickling_mock, transport, timeout_s=0.5)
    assert not task.ok
    assert [turn.status for turn in turns] == ["timeout"]
    assert "longer than 0.5 s" in turns[0].error
    assert turns[0].bytes_recv > 0  # events did arrive before the deadline


@pytest.mark.parametrize("transport", ["ws", "ws_stored"])
def test_deflate_is_offered_and_the_compressed_bytes_are_the_ones_counted(
    mock_url: str, runs: dict, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--ws-deflate yes``: the mock (uvicorn) accepts permessage-deflate, the session plays
    the same conversation, and the wire counts are the kernel's to the byte, well under the
    uncompressed run's while the bodies are the same size."""
    kernel: list[tuple[int, int]] = []
    monkeypatch.setattr(WireSocket, "close", counting_closes(kernel))
    context = TransportContext({transport: {"deflate": True}})
    records: list = []
    session = _session(mock_url, transport, records, context=context)
    try:
        session.run_task()
        connection = session.transport.connection
        assert connection is not None
        assert [e.name for e in connection.protocol.extensions] == ["permessage-deflate"]
    finally:
        session.close()
    (task,) = [r for r in records if isinstance(r, TaskRecord)]
    turns = [r for r in records if isinstance(r, TurnRecord)]
    assert task.ok, task.error
    plain_task, plain_turns = runs[transport]
    assert [t.tool_calls for t in turns] == [t.tool_calls for t in plain_turns]
    assert [t.body_bytes_sent for t in turns] == [t.body_bytes_sent for t in plain_turns]
    assert len(kernel) == 1
    assert (sum(t.bytes_sent for t in turns), sum(t.bytes_recv for t in turns)) == kernel[0]
    assert task.bytes_sent < plain_task.bytes_sent / 2
    assert task.bytes_recv < plain_task.bytes_recv / 2
    # The body the rig records is the message, uncompressed: more than the wire carried.
    assert sum(t.body_bytes_sent for t in turns) > task.bytes_sent
