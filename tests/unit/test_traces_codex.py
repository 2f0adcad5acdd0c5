"""Codex CLI rollouts into traces: turns from runs of output items and usage records, sizes
without Codex's own fields, unknown lines counted, a file that is not a rollout refused.
(tests/e2e/test_traces_codex.py imports the rollouts a real Codex wrote.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from rig.run.traces import import_codex
from rig.traces.codex import RequestShape, find_rollouts, import_rollout, import_rollouts
from rig.traces.format import (
    Item,
    Session,
    SessionInfo,
    Trace,
    TraceError,
    TraceHeader,
    TurnTrace,
    read_trace,
    write_trace,
)

INTERNAL = {"internal_chat_message_metadata_passthrough": {"turn_id": "t1"}}


def _line(second: float, kind: str, payload: Any) -> dict:
    return {"timestamp": f"2026-12-02T12:40:{second:06.3f}Z", "type": kind, "payload": payload}


def _item(second: float, payload: dict) -> dict:
    return _line(second, "response_item", {**payload, **INTERNAL})


def _usage(second: float, output: int, reasoning: int = 0) -> dict:
    usage = {"input_tokens": 900, "cached_input_tokens": 512, "output_tokens": output,
             "reasoning_output_tokens": reasoning, "total_tokens": 900 + output}  # fmt: skip
    return _line(second, "token_usage_record", {"response_id": "resp_x", "usage": usage})


USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix"}]}
SAY = {"type": "message", "role": "assistant",
       "content": [{"type": "output_text", "text": "Looking."}]}  # fmt: skip
CALL = {"type": "function_call", "name": "exec_command", "arguments": '{"cmd":"ls"}',
        "call_id": "call_1"}  # fmt: skip
OUT = {"type": "function_call_output", "call_id": "call_1", "output": "a.py\nb.py\n"}
PATCH = {"type": "custom_tool_call", "name": "apply_patch", "input": "*** Begin Patch",
         "call_id": "call_2"}  # fmt: skip
PATCH_OUT = {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Success."}
DONE = {"type": "message", "role": "assistant",
        "content": [{"type": "output_text", "text": "Fixed."}]}  # fmt: skip
INSTRUCTIONS = {"type": "message", "id": "msg_" + "0" * 36, "role": "developer",
                "content": [{"type": "input_text", "text": "You are Codex."}]}  # fmt: skip
"""The base instructions as Codex 0.171.0 sends them (its message id is a UUID)."""


def _rollout(path: Path, lines: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def _session_lines() -> list[dict]:
    meta = {"id": "0199-abc", "originator": "codex_exec", "cli_version": "0.171.0",
            "base_instructions": {"text": "You are Codex."}, "cwd": "/home/someone/repo"}  # fmt: skip
    return [
        _line(0, "session_meta", meta),
        _line(0.1, "event_msg", {"type": "task_started"}),
        _line(0.2, "turn_context", {"model": "gpt-5.5", "cwd": "/home/someone/repo"}),
        _item(1.0, USER),
        _item(1.5, SAY),
        _item(1.6, CALL),
        _usage(1.7, 40),
        _item(3.7, OUT),
        _line(3.8, "world_state", {"full": True}),
        _item(4.0, {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"}),
        _item(4.2, PATCH),
        _usage(4.3, 60, reasoning=20),
        _item(5.3, PATCH_OUT),
        _item(5.8, DONE),
        _usage(5.9, 10),
        _line(6.0, "event_msg", {"type": "task_complete"}),
    ]


def test_a_rollout_becomes_one_session_of_turns(tmp_path: Path) -> None:
    result = import_rollout(_rollout(tmp_path / "rollout-1.jsonl", _session_lines()))
    session = result.session
    assert session.info.agent == "codex_exec/0.171.0"
    assert session.info.model == "gpt-5.5" and session.info.transport is None
    assert "/home/someone" not in repr(session)  # no paths, no content
    one, two, three = session.turns
    assert [t.kind for t in session.turns] == ["full"] * 3
    # The base instructions go first, as the developer message Codex sends them in.
    assert [(i.type, i.role) for i in one.input] == [("message", "developer"), ("message", "user")]
    assert one.input[0].bytes == len(orjson.dumps(INSTRUCTIONS))
    assert one.input[1].bytes == len(orjson.dumps(USER))  # without Codex's own field
    assert one.instructions_bytes == 0
    assert one.tools_bytes is None and one.tool_count is None  # a rollout has no schemas
    assert one.body_bytes is None
    assert [(i.type, i.tokens) for i in one.output] == [("message", 16), ("function_call", 24)]
    assert one.tool_calls[0].name == "exec_command"
    assert one.tool_calls[0].output_bytes == len("a.py\nb.py\n")
    assert (two.carried_items, [i.type for i in two.input]) == (4, ["function_call_output"])
    assert two.carried_bytes == sum(len(orjson.dumps(i)) for i in (INSTRUCTIONS, USER, SAY, CALL))
    assert two.reasoning_tokens == 20 and two.output[0].tokens == 20
    assert two.tool_calls[0].name == "apply_patch" and two.tool_calls[0].output_bytes == 8
    assert (one.at_s, one.took_s, one.gap_s) == (0.0, 0.7, 2.0)
    assert three.gap_s is None and three.tool_calls == ()
    assert result.skipped == {
        "event_msg:task_started": 1,
        "world_state": 1,
        "event_msg:task_complete": 1,
    }


def test_without_usage_records_the_token_count_event_ends_a_response(tmp_path: Path) -> None:
    lines = [line for line in _session_lines() if line["type"] != "token_usage_record"]
    count = {"type": "token_count", "info": {"last_token_usage": {"output_tokens": 7}}}
    lines.insert(6, _line(1.7, "event_msg", count))
    session = import_rollout(_rollout(tmp_path / "rollout-2.jsonl", lines)).session
    assert len(session.turns) == 3  # the later responses end at the next input item
    assert session.turns[0].usage is not None and session.turns[0].usage.output_tokens == 7
    assert session.turns[1].usage is None


def test_keep_content_keeps_the_items(tmp_path: Path) -> None:
    path = _rollout(tmp_path / "rollout-3.jsonl", _session_lines())
    content = import_rollout(path, keep_content=True).session.turns[0].content
    assert content is not None and content["instructions"] is None
    assert content["input"] == [INSTRUCTIONS, USER] and content["output"] == [SAY, CALL]


def test_a_file_that_is_not_a_rollout_is_refused(tmp_path: Path) -> None:
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello\n")
    with pytest.raises(TraceError, match="not a Codex rollout") as caught:
        import_rollout(not_json)
    assert caught.value.line == 1
    other = _rollout(tmp_path / "other.jsonl", [{"record": "header", "format": "rig-trace"}])
    with pytest.raises(TraceError, match="first line must be a session_meta"):
        import_rollout(other)
    bad_time = _session_lines()
    bad_time[3]["timestamp"] = "yesterday"
    with pytest.raises(TraceError, match="timestamp") as caught:
        import_rollout(_rollout(tmp_path / "rollout-4.jsonl", bad_time))
    assert caught.value.line == 4


def test_a_truncated_last_line_and_unknown_types_are_skipped(tmp_path: Path) -> None:
    path = _rollout(tmp_path / "rollout-5.jsonl",
                    [*_session_lines(), _line(7, "hologram", {"x": 1})])  # fmt: skip
    with path.open("ab") as file:
        file.write(b'{"timestamp": "2026-12-02T12:40:08Z", "type": "resp')
    result = import_rollout(path)
    assert len(result.session.turns) == 3
    assert result.skipped["hologram"] == 1 and result.skipped["invalid_json"] == 1


def test_the_command_finds_rollouts_under_a_home_and_writes_one_trace(tmp_path: Path) -> None:
    day = tmp_path / "home" / "sessions" / "2026" / "12" / "02"
    day.mkdir(parents=True)
    _rollout(day / "rollout-a.jsonl", _session_lines())
    second = _session_lines()
    second[0]["payload"]["id"] = "0199-def"
    _rollout(day / "rollout-b.jsonl", second)
    assert len(find_rollouts([tmp_path / "home"])) == 2
    out = tmp_path / "codex.jsonl"
    sessions, skipped = import_codex([str(tmp_path / "home")], str(out))
    trace = read_trace(out)
    assert [s.key for s in trace.sessions] == ["codex-0199-abc", "codex-0199-def"]
    assert trace.headers[0].source == "codex" and not trace.headers[0].content
    assert skipped["world_state"] == 2 and len(sessions) == 2
    with pytest.raises(TraceError, match="no such file"):
        find_rollouts([tmp_path / "nowhere"])


def _shifted(lines: list[dict], seconds: float, session_id: str) -> list[dict]:
    """The rollout's lines ``seconds`` later (within the minute), as another session."""
    moved = []
    for line in lines:
        second = float(line["timestamp"][17:-1]) + seconds
        moved.append(line | {"timestamp": f"2026-12-02T12:40:{second:06.3f}Z"})
    moved[0] = moved[0] | {"payload": moved[0]["payload"] | {"id": session_id}}
    return moved


def test_sessions_imported_together_start_after_the_earliest_by_their_timestamps(
    tmp_path: Path,
) -> None:
    later = _rollout(tmp_path / "rollout-a.jsonl", _shifted(_session_lines(), 7.25, "late"))
    first = _rollout(tmp_path / "rollout-b.jsonl", _session_lines())
    idle = _rollout(tmp_path / "rollout-c.jsonl", _shifted(_session_lines()[:3], 0, "idle"))
    # Alone, a rollout's start is unknown; together, the earliest first request is 0.
    assert import_rollout(first).session.info.start_s is None
    imported = import_rollouts([later, first, idle])  # the last made no request
    assert [i.session.info.start_s for i in imported] == [7.25, 0.0, None]
    # The first request: the user's message at 12:40:01, not the session_meta at 12:40:00.
    assert imported[1].started == datetime(2026, 12, 2, 12, 40, 1, tzinfo=UTC).timestamp()
    out = tmp_path / "codex.jsonl"
    import_codex([str(tmp_path)], str(out))
    starts = {s.key: s.info.start_s for s in read_trace(out).sessions}
    assert starts == {"codex-late": 7.25, "codex-0199-abc": 0.0, "codex-idle": None}


def _recorded(agent: str, transport: str, body: int, tools: int = 900) -> Session:
    """A recorded session of one request: 2 items of 100 bytes, 10 tools of ``tools``."""
    turn = TurnTrace(session="rec", index=0, kind="full", transport=transport, at_s=0.0,
                     took_s=0.1, gap_s=None, header_bytes=1500, body_bytes=body,
                     model="gpt-5.5", instructions_bytes=0, tools_bytes=tools, tool_count=10,
                     previous_response_id=False, store=False, carried_items=1,
                     carried_bytes=100, input=(Item("message", 100, role="user"),),
                     output=(), usage=None, tool_calls=(), status="completed")  # fmt: skip
    info = SessionInfo(session="rec", agent=agent, model="gpt-5.5", transport=transport,
                       origin="mock")  # fmt: skip
    return Session(info, (turn,))


def test_a_request_shape_from_a_recording_sizes_the_imported_requests(tmp_path: Path) -> None:
    # A recorded HTTP request of 2,000 bytes: 900 of tools, 200 of items, 3 of brackets
    # and commas, so 897 of other fields; a WebSocket session's tools count as well.
    trace = Trace((), (_recorded("codex_exec/0.171.0", "sse", 2000),
                       _recorded("codex_exec/0.171.0", "ws", 1500)))  # fmt: skip
    shape = RequestShape.of(trace, "0.171.0")
    assert (shape.tool_count, shape.tools_bytes, shape.other_bytes) == (10, 900, 897)
    session = import_rollout(_rollout(tmp_path / "rollout-6.jsonl", _session_lines())).session
    shaped = shape.apply(session)
    for turn in shaped.turns:
        items = turn.carried_bytes + turn.input_bytes + turn.carried_items + len(turn.input) + 1
        assert (turn.tool_count, turn.tools_bytes) == (10, 900)
        assert turn.body_bytes == 897 + 900 + items
    # Only WebSocket recorded: the tools, but no HTTP body to size.
    ws_only = RequestShape.of(Trace((), (_recorded("codex_exec/0.171.0", "ws", 1500),)), "0.171.0")
    assert ws_only.other_bytes is None
    assert ws_only.apply(session).turns[0].body_bytes is None
    with pytest.raises(TraceError, match=r"Codex 0\.170\.0.*codex_exec/0\.171\.0"):
        RequestShape.of(trace, "0.170.0")


def test_the_command_takes_the_shape_from_a_recording(tmp_path: Path) -> None:
    recording = tmp_path / "recording.jsonl"
    write_trace(recording, TraceHeader(source="mock", created="2026-12-02T12:00:00+00:00"),
                [_recorded("codex_exec/0.171.0", "sse", 2000)])  # fmt: skip
    rollout = _rollout(tmp_path / "rollout-7.jsonl", _session_lines())
    out = tmp_path / "codex.jsonl"
    import_codex([str(rollout)], str(out), shape_from=str(recording))
    trace = read_trace(out)
    assert all(t.tools_bytes == 900 and t.body_bytes for t in trace.sessions[0].turns)
    assert "recording.jsonl" in trace.headers[0].note
