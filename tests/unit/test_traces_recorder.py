"""The recorder groups requests into sessions (previous_response_id chains, conversation
prefixes, WebSocket connections and lanes) and writes each turn with its gap and its tool
calls' outputs; timing runs on a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from rig.traces.format import Trace, read_trace
from rig.traces.recorder import TraceRecorder

TOOLS = [{"type": "function", "name": "read_file", "parameters": {"type": "object"}}]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _recorder(tmp_path: Path, **kwargs: Any) -> tuple[TraceRecorder, Clock]:
    clock = Clock()
    return TraceRecorder(tmp_path, clock=clock, **kwargs), clock


def _body(input_items: Any, **fields: Any) -> bytes:
    return orjson.dumps({"model": "m", "tools": TOOLS, "input": input_items, **fields})


def _user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": text}


def _call(call_id: str, arguments: str = '{"path":"a.ts"}') -> dict:
    return {"type": "function_call", "call_id": call_id, "name": "read_file",
            "arguments": arguments, "id": f"fc_{call_id}", "status": "completed"}  # fmt: skip


def _output(call_id: str, text: str) -> dict:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def _response(rid: str, *output: dict, reasoning: int = 0) -> dict:
    return {
        "id": rid,
        "status": "completed",
        "output": list(output),
        "usage": {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 64},
            "output_tokens": 20 + reasoning,
            "output_tokens_details": {"reasoning_tokens": reasoning},
        },
    }


def _read(recorder: TraceRecorder) -> Trace:
    recorder.close()
    return read_trace(recorder.path)


def test_a_previous_response_id_chain_is_one_session_with_gaps_and_tool_outputs(
    tmp_path: Path,
) -> None:
    recorder, clock = _recorder(tmp_path)
    first = recorder.begin(_body("fix it"), transport="sse", header_bytes=300,
                           user_agent="OpenAI/Python 1.2.3 linux")  # fmt: skip
    clock.now += 0.5
    recorder.end(first, _response("resp_1", _call("c1")))
    clock.now += 2.0  # the tool ran
    second = recorder.begin(
        _body([_output("c1", "x" * 40)], previous_response_id="resp_1", store=False),
        transport="sse",
        header_bytes=300,
    )
    clock.now += 0.25
    recorder.end(second, _response("resp_2", {"type": "message", "role": "assistant",
                 "content": [{"type": "output_text", "text": "done"}]}))  # fmt: skip
    (session,) = _read(recorder).sessions
    assert session.info.agent == "OpenAI/Python"
    one, two = session.turns
    assert (one.kind, two.kind) == ("full", "continuation")
    assert (one.at_s, one.took_s, one.gap_s) == (0.0, 0.5, 2.0)
    assert (two.at_s, two.took_s, two.gap_s) == (2.5, 0.25, None)
    assert one.tool_calls[0].name == "read_file"
    assert one.tool_calls[0].argument_bytes == len('{"path":"a.ts"}')
    assert one.tool_calls[0].output_bytes == 40
    assert two.previous_response_id and two.store is False
    assert [i.type for i in two.input] == ["function_call_output"]
    assert one.tool_count == 1 and one.tools_bytes == len(orjson.dumps(TOOLS))
    assert one.usage is not None and one.usage.cached_tokens == 64


def test_stateless_full_context_requests_are_joined_by_their_prefix(tmp_path: Path) -> None:
    recorder, _clock = _recorder(tmp_path)
    a1 = recorder.begin(_body([_user("task A")]), transport="http", header_bytes=200)
    b1 = recorder.begin(_body([_user("task Bee")]), transport="http", header_bytes=200)
    recorder.end(a1, _response("ra1", _call("a")))
    recorder.end(b1, _response("rb1", _call("b")))
    # The client echoes the call without its id and status, as clients do.
    echoed = {"type": "function_call", "call_id": "b", "name": "read_file",
              "arguments": '{"path":"a.ts"}'}  # fmt: skip
    b2 = recorder.begin(
        _body([_user("task Bee"), echoed, _output("b", "yy")]), transport="http", header_bytes=200
    )
    recorder.end(b2, _response("rb2"))
    trace = _read(recorder)
    by_first_input = {s.turns[0].input[0].bytes: s for s in trace.sessions}
    assert len(trace.sessions) == 2
    session_b = by_first_input[len(orjson.dumps(_user("task Bee")))]
    assert len(session_b.turns) == 2
    second = session_b.turns[1]
    assert (second.kind, second.carried_items) == ("full", 2)
    assert second.carried_bytes == len(orjson.dumps(_user("task Bee"))) + len(orjson.dumps(echoed))
    assert [i.type for i in second.input] == ["function_call_output"]
    assert session_b.turns[0].tool_calls[0].output_bytes == 2


def test_reasoning_items_a_client_drops_do_not_break_the_prefix(tmp_path: Path) -> None:
    recorder, _ = _recorder(tmp_path)
    first = recorder.begin(_body([_user("think")]), transport="http", header_bytes=1)
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    recorder.end(first, _response("r1", reasoning, _call("c"), reasoning=30))
    second = recorder.begin(
        _body([_user("think"), _call("c"), _output("c", "z")]), transport="http", header_bytes=1
    )
    recorder.end(second, _response("r2"))
    (session,) = _read(recorder).sessions
    assert len(session.turns) == 2
    first_turn = session.turns[0]
    assert [(i.type, i.tokens) for i in first_turn.output] == [
        ("reasoning", 30),
        ("function_call", 20),
    ]
    assert first_turn.reasoning_tokens == 30


def test_identical_sessions_in_flight_take_one_idle_session_each(tmp_path: Path) -> None:
    recorder, _ = _recorder(tmp_path)
    starts = [recorder.begin(_body([_user("same")]), transport="http", header_bytes=1)
              for _ in range(2)]  # fmt: skip
    for turn in starts:
        recorder.end(turn, _response("r", _call("c")))
    follow = [_user("same"), _call("c"), _output("c", "o")]
    nexts = [recorder.begin(_body(follow), transport="http", header_bytes=1) for _ in range(2)]
    for turn in nexts:
        recorder.end(turn, _response("r2"))
    trace = _read(recorder)
    assert sorted(len(s.turns) for s in trace.sessions) == [2, 2]


def test_a_websocket_connection_and_its_lanes_are_sessions(tmp_path: Path) -> None:
    recorder, clock = _recorder(tmp_path)
    connection = object()
    kw: dict[str, Any] = dict(transport="ws", header_bytes=8, connection=connection,
                              handshake_bytes=1336, user_agent="codex_exec/0.171.0")  # fmt: skip
    warm = recorder.begin(_body([_user("go")], generate=False), **kw)
    recorder.end(warm, _response("w"))
    lane = recorder.begin(_body([_user("other")]), **kw | {"lane": "s2"})
    turn = recorder.begin(_body([], previous_response_id="w"), **kw)
    recorder.end(turn, _response("t1", _call("c")))
    recorder.end(lane, _response("l1"))
    clock.now += 1
    recorder.connection_closed(connection)
    later = recorder.begin(_body([_user("later")]), **kw)
    recorder.end(later, _response("l2"))  # the same connection object: a new session
    trace = _read(recorder)
    sizes = sorted(len(s.turns) for s in trace.sessions)
    assert sizes == [1, 1, 2]
    main = next(s for s in trace.sessions if len(s.turns) == 2)
    assert main.info.transport == "ws" and main.info.handshake_bytes == 1336
    assert [t.kind for t in main.turns] == ["warmup", "continuation"]
    assert main.turns[1].gap_s is None  # the connection closed after it
    assert main.turns[1].tool_calls[0].output_bytes is None  # never answered


def test_a_refused_request_is_not_a_turn(tmp_path: Path) -> None:
    recorder, _ = _recorder(tmp_path)
    turn = recorder.begin(_body("hello"), transport="http", header_bytes=1)
    recorder.abandon(turn)
    recorder.end(turn, _response("late"))  # ignored: it was abandoned
    assert recorder.begin(b"[1, 2]", transport="http", header_bytes=1) is None
    assert _read(recorder).sessions == ()


def test_close_writes_every_pending_turn_once(tmp_path: Path) -> None:
    recorder, _ = _recorder(tmp_path)
    for n in range(3):
        turn = recorder.begin(_body(f"task {n}"), transport="http", header_bytes=1)
        recorder.end(turn, _response(f"r{n}"))
    assert read_trace(recorder.path).sessions == ()  # nothing final yet: gaps unknown
    trace = _read(recorder)
    recorder.close()  # twice: nothing more
    assert len(trace.sessions) == 3
    assert all(len(s.turns) == 1 and s.turns[0].gap_s is None for s in trace.sessions)
    assert len(read_trace(recorder.path).sessions) == 3


def test_sessions_beyond_the_cap_are_written_and_forgotten(tmp_path: Path) -> None:
    recorder, _ = _recorder(tmp_path, max_sessions=2)
    for n in range(4):
        turn = recorder.begin(_body(f"t{n}"), transport="http", header_bytes=1)
        recorder.end(turn, _response(f"r{n}"))
    # The two oldest were evicted: written already, before close.
    assert len(read_trace(recorder.path).sessions) == 2
    late = recorder.begin(_body([], previous_response_id="r0"), transport="http", header_bytes=1)
    recorder.end(late, _response("r0b"))
    assert len(_read(recorder).sessions) == 5  # the evicted chain's continuation: a new one


def test_content_is_kept_only_when_asked(tmp_path: Path) -> None:
    plain, _ = _recorder(tmp_path / "plain")
    kept, _ = _recorder(tmp_path / "kept", keep_content=True)
    for recorder in (plain, kept):
        turn = recorder.begin(_body("secret plan", instructions="be brief"),
                              transport="http", header_bytes=1)  # fmt: skip
        recorder.end(turn, _response("r", _call("c")))
    assert _read(plain).sessions[0].turns[0].content is None
    written = plain.path.read_bytes()
    assert b"secret plan" not in written and b"be brief" not in written
    content = _read(kept).sessions[0].turns[0].content
    assert content is not None and content["instructions"] == "be brief"
    assert content["input"][0]["content"] == "secret plan"
    assert content["output"][0]["call_id"] == "c"


def test_each_session_starts_when_its_first_request_arrived_after_the_first_sessions(
    tmp_path: Path,
) -> None:
    recorder, clock = _recorder(tmp_path)
    first = recorder.begin(_body("one"), transport="sse", header_bytes=1)
    clock.now += 0.5
    recorder.end(first, _response("r1", _call("c1")))
    clock.now += 2.0
    connection = object()
    ws = recorder.begin(_body("two"), transport="ws", header_bytes=8, connection=connection)
    recorder.end(ws, _response("w1"))
    clock.now += 1.25  # the first session's next request: no new start
    again = recorder.begin(_body([_output("c1", "ok")], previous_response_id="r1"),
                           transport="sse", header_bytes=1)  # fmt: skip
    recorder.end(again, _response("r2"))
    third = recorder.begin(_body("three"), transport="http", header_bytes=1)
    recorder.end(third, _response("r3"))
    trace = _read(recorder)
    sessions = sorted(trace.sessions, key=lambda s: s.info.start_s or 0.0)
    described = [(s.info.start_s, s.info.transport, len(s.turns)) for s in sessions]
    assert described == [(0.0, "sse", 2), (2.5, "ws", 1), (3.75, "http", 1)]
