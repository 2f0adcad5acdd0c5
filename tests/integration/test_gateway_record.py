"""``rig gateway --record``: the gateway writes its sessions' traces with the mock's
recorder. The official openai SDK over HTTP (JSON and SSE) and WebSocket through a
recording gateway in front of the mock: the trace holds each session's turns as the
gateway received them, and its request sizes are the bytes the clients sent (the
gateway's ``/stats`` ``client_bytes_in``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai

from rig.traces import read_trace
from tests.integration.test_mock_record import (
    _chained_http,
    _stateless_http,
    _websocket,
    sessions_by_shape,
)
from tests.servers import start_gateway, start_mock


def test_the_gateway_records_every_session_with_the_bytes_it_received(tmp_path: Path) -> None:
    record = tmp_path / "trace"
    mock, upstream = start_mock("--preset", "instant")
    try:
        gateway, url = start_gateway(upstream, "--record", str(record))
        try:
            with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
                _chained_http(client)
                _stateless_http(client)
                _websocket(client)
            stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
        finally:
            gateway.stop()  # SIGTERM: drained, then each session's last turn is written
    finally:
        mock.stop()
    (trace_file,) = record.glob("*.jsonl")
    text = trace_file.read_text()
    assert "sk-test" not in text and "Paris" not in text  # no key, no content

    trace = read_trace(record)
    by_shape = sessions_by_shape(trace)
    assert [t.transport for t in by_shape[("http", ("full", "continuation"))].turns] == [
        "http",
        "sse",
    ]
    ws = by_shape[("ws", ("warmup", "continuation", "continuation"))]
    assert ws.info.handshake_bytes and ws.info.handshake_bytes > 100
    assert ws.info.agent == "OpenAI/Python"  # read at the handshake, kept past it
    turns = [t for s in trace.sessions for t in s.turns]
    assert sum(t.body_bytes or 0 for t in turns) == stats["client_bytes_in"]
    assert len(turns) == stats["responses_completed"] + stats["warmups"]
    assert all(
        t.usage and t.usage.output_tokens > 0 and t.output for t in turns if t.kind != "warmup"
    )
    for session in trace.sessions:
        for call in session.turns[-2].tool_calls if len(session.turns) > 1 else ():
            assert call.name == "get_weather" and call.output_bytes == len('{"temp": 21}')
