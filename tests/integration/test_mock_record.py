"""``rig mock --record``: the official openai SDK over HTTP (JSON and SSE) and WebSocket
against a recording mock; the trace holds each session's turns, and its request sizes
are the bytes the clients sent (the mock's ``/stats`` ``bytes_in``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai

from rig.traces import Session, Trace, read_trace
from tests.integration.test_mock_warmup import _events_until_done, _stats
from tests.servers import start_mock
from tests.tool_catalog import WEATHER


def _call_outputs(response: Any) -> list[dict[str, str]]:
    return [
        {"type": "function_call_output", "call_id": item.call_id, "output": '{"temp": 21}'}
        for item in response.output
        if item.type == "function_call"
    ]


def _chained_http(client: openai.OpenAI) -> None:
    """A JSON turn, then an SSE continuation by previous_response_id."""
    first = client.responses.create(model="mock-agent", input="Weather in Paris?",
                                    tools=[WEATHER])  # fmt: skip
    outputs = _call_outputs(first)
    assert outputs
    events = list(
        client.responses.create(
            model="mock-agent",
            previous_response_id=first.id,
            input=outputs,
            tools=[WEATHER],
            stream=True,
        )
    )
    assert events[-1].type == "response.completed"


def _stateless_http(client: openai.OpenAI) -> None:
    """Two full-context turns, store=false, the model's output echoed back."""
    transcript: list[Any] = [{"role": "user", "content": "Weather in Oslo, please?"}]
    first = client.responses.create(model="mock-agent", input=transcript, tools=[WEATHER],
                                    store=False)  # fmt: skip
    transcript += [item.model_dump(exclude_none=True) for item in first.output]
    transcript += _call_outputs(first)
    client.responses.create(model="mock-agent", input=transcript, tools=[WEATHER], store=False)


def _websocket(client: openai.OpenAI) -> None:
    """A warm-up, a turn continuing it, a continuation with the call's output."""
    with client.responses.connect() as connection:
        connection.response.create(model="mock-agent", input="Weather in Rome?",
                                   tools=[WEATHER], store=False, generate=False)  # fmt: skip
        warm = _events_until_done(connection)[-1].response
        connection.response.create(model="mock-agent", previous_response_id=warm.id,
                                   input=[], tools=[WEATHER], store=False)  # fmt: skip
        first = _events_until_done(connection)[-1].response
        connection.response.create(model="mock-agent", previous_response_id=first.id,
                                   input=_call_outputs(first), tools=[WEATHER],
                                   store=False)  # fmt: skip
        assert _events_until_done(connection)[-1].type == "response.completed"


def sessions_by_shape(trace: Trace) -> dict[tuple[str | None, tuple[str, ...]], Session]:
    """The three sessions the clients above played, by transport and request kinds: the
    trace has exactly those."""
    by_shape = {(s.info.transport, tuple(t.kind for t in s.turns)): s for s in trace.sessions}
    assert sorted(by_shape) == [
        ("http", ("full", "continuation")),
        ("http", ("full", "full")),
        ("ws", ("warmup", "continuation", "continuation")),
    ]
    return by_shape


def test_every_session_is_recorded_with_the_bytes_it_sent(tmp_path: Path) -> None:
    record = tmp_path / "trace"
    process, url = start_mock("--preset", "instant", "--record", str(record))
    try:
        with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
            _chained_http(client)
            _stateless_http(client)
            _websocket(client)
        stats = _stats(url)
    finally:
        process.stop()  # SIGTERM: the mock shuts down and writes each session's last turn
    files = list(record.glob("*.jsonl"))
    assert len(files) == 1
    text = files[0].read_text()
    assert "sk-test" not in text and "Paris" not in text  # no key, no content

    trace = read_trace(record)
    by_shape = sessions_by_shape(trace)
    chained = by_shape[("http", ("full", "continuation"))]
    assert [t.transport for t in chained.turns] == ["http", "sse"]
    stateless = by_shape[("http", ("full", "full"))]
    echoed = stateless.turns[1]
    assert echoed.carried_items >= 2 and [i.type for i in echoed.input] == ["function_call_output"]
    ws = by_shape[("ws", ("warmup", "continuation", "continuation"))]
    assert ws.info.handshake_bytes and ws.info.handshake_bytes > 100
    assert ws.info.agent == "OpenAI/Python"  # read at the handshake, kept past it

    turns = [t for s in trace.sessions for t in s.turns]
    assert sum(t.body_bytes or 0 for t in turns) == stats["bytes_in"]
    assert len(turns) == stats["responses_completed"] + stats["warmups"]
    for session in trace.sessions:
        calls = session.turns[-2].tool_calls if len(session.turns) > 1 else ()
        for call in calls:  # each answered call's output size, from the next request
            assert call.name == "get_weather"
            assert call.output_bytes == len('{"temp": 21}')
            assert call.argument_bytes > len('{"location":""}')
    for turn in turns:
        assert turn.tool_count == 1 and turn.tools_bytes == len(
            json.dumps([WEATHER], separators=(",", ":"))
        )
        if turn.transport == "ws":
            assert turn.header_bytes in (6, 8, 14)  # a masked frame's header
        else:
            assert turn.header_bytes and turn.header_bytes > 100  # request line and headers


def test_each_worker_process_writes_its_own_file_and_none_is_lost(tmp_path: Path) -> None:
    record = tmp_path / "trace"
    process, url = start_mock("--preset", "instant", "--workers", "2", "--record", str(record))
    try:
        for n in range(6):  # a connection each: the kernel spreads them over the workers
            with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
                client.responses.create(model="mock-agent", input=f"Say hello {n}")
        stats = _stats(url)
    finally:
        process.stop()
    # One file per worker process (a worker still starting when the test ends may not have
    # written its header yet: how far a loaded machine gets is not this test's subject).
    files = list(record.glob("*.jsonl"))
    assert 1 <= len(files) <= 2
    trace = read_trace(record)
    assert len(trace.sessions) == 6 and len(trace.headers) == len(files)
    assert sum(s.turns[0].body_bytes or 0 for s in trace.sessions) == stats["bytes_in"]
