"""A trace replay in the run's summary, table and options: which trace, and how close the
request bodies sent were to the traced ones (replay fidelity)."""

from __future__ import annotations

import asyncio

import pytest

from rig.conversation import MemoryStore
from rig.loadgen.options import parse_workload
from rig.metrics.records import RecordTags, TurnRecord
from rig.mock.engine import TurnEngine
from rig.mock.latency import LatencyModel
from rig.protocol.errors import InvalidRequestError
from rig.protocol.requests import parse_create_request
from rig.report.summary import summarize
from rig.report.table import render_table
from rig.traces import TraceError
from rig.workload.policy import ModelPolicy

WORKLOAD = {"trace": "codex", "sessions": 8, "turns": 64}


def _turn(transport: str, sent: int, traced: int, status: str = "ok") -> TurnRecord:
    return TurnRecord(
        tags=RecordTags("r1", "trace:codex", transport, "mock"),
        session=f"{transport}-local-0-0",
        turn=0,
        ts=0.0,
        bytes_sent=sent + 200,
        bytes_recv=1000,
        body_bytes_sent=sent,
        body_bytes_recv=900,
        ttfb_ms=1.0,
        ttft_ms=1.0,
        turn_ms=2.0,
        input_tokens=10,
        cached_tokens=0,
        output_tokens=5,
        tool_calls=1,
        status=status,  # type: ignore[arg-type]
        traced_body_bytes=traced,
    )


def test_the_summary_names_the_trace_and_the_fidelity_per_transport() -> None:
    turns = [
        _turn("http", 10_100, 10_000),
        _turn("http", 9_950, 10_000),
        _turn("http", 5_000, 0),  # no traced size over this transport: not compared
        _turn("ws", 2_000, 2_000),
        _turn("ws", 9_000, 2_000, status="error"),  # failed: its body is not the question
    ]
    summary = summarize({"run_id": "r1", "workload": WORKLOAD}, turns, [])
    assert summary["workload"] == {
        **WORKLOAD,
        "fidelity": {
            "http": {"turns": 2, "mean_rel_diff": 0.0075, "max_rel_diff": 0.01},
            "ws": {"turns": 1, "mean_rel_diff": 0.0, "max_rel_diff": 0.0},
        },
    }
    assert not [w for w in summary["warnings"] if "traced sizes" in w]
    table = render_table(summary)
    assert "workload: trace codex (8 sessions, 64 turns)" in table
    assert "HTTP 0.75% / 1.00% (2 turns); WebSocket 0.00% / 0.00% (1 turns)" in table
    # The ingress per request: 25,650 bytes in 3 over HTTP, 11,400 in 2 over WebSocket.
    assert "bytes sent / request (a WebSocket warm-up is one): HTTP 8.55 KB; " in table
    assert "WebSocket 5.70 KB (-33%)" in table


def test_a_replay_beyond_2_percent_gets_a_warning() -> None:
    summary = summarize({"workload": WORKLOAD}, [_turn("ws", 2_100, 2_000)], [])
    assert summary["workload"]["fidelity"]["ws"]["max_rel_diff"] == 0.05
    assert any("up to 5.0% from the traced sizes" in w for w in summary["warnings"])


def test_a_scenario_run_has_no_workload_section() -> None:
    summary = summarize({"run_id": "r1"}, [_turn("http", 100, 0)], [])
    assert "workload" not in summary
    assert "workload:" not in render_table(summary)


def test_the_workload_option_reads_a_shipped_trace_by_name() -> None:
    workload = parse_workload("trace:codex")
    assert workload is not None
    assert workload.describe() == {"trace": "codex", "sessions": 8, "turns": 64}
    assert parse_workload("scenarios") is None


def test_the_workload_option_refuses_other_values() -> None:
    with pytest.raises(ValueError, match="expected 'scenarios' or 'trace:NAME"):
        parse_workload("codex")
    with pytest.raises(TraceError, match="no such file"):
        parse_workload("trace:/nonexistent/trace.jsonl")


def test_the_mock_refuses_an_unreadable_trace_output() -> None:
    engine = TurnEngine(ModelPolicy(), LatencyModel(), MemoryStore())
    request = parse_create_request(
        {"model": "m", "input": "hi", "metadata": {"rig_trace_output": "message:x"}}
    )
    with pytest.raises(InvalidRequestError) as caught:
        asyncio.run(engine.prepare(request, body_bytes=100))
    assert caught.value.param == "metadata.rig_trace_output"
