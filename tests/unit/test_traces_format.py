"""The trace format: records round-trip, a bad file is refused naming its line and field,
and no garbage makes the reader raise anything but TraceError."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.traces.format import (
    Item,
    Session,
    SessionInfo,
    ToolCall,
    TraceError,
    TraceHeader,
    TraceWriter,
    TurnTrace,
    Usage,
    builtin_traces,
    encode_record,
    load_trace,
    parse_lines,
    read_trace,
    write_trace,
)

HEADER = TraceHeader(source="mock", created="2026-12-02T12:00:00+00:00")


def _turn(session: str = "s-1", index: int = 0, **changes: object) -> TurnTrace:
    fields: dict[str, object] = dict(
        session=session,
        index=index,
        kind="full",
        transport="sse",
        at_s=1.5 * index,
        took_s=0.25,
        gap_s=1.25,
        header_bytes=1492,
        body_bytes=38816,
        model="gpt-5.5",
        instructions_bytes=0,
        tools_bytes=8897,
        tool_count=10,
        previous_response_id=False,
        store=False,
        carried_items=0,
        carried_bytes=0,
        input=(Item("message", 5504, role="developer"), Item("message", 164, role="user")),
        output=(
            Item("message", 279, role="assistant", tokens=32),
            Item("function_call", 333, name="exec_command", tokens=54),
        ),
        usage=Usage(9113, 0, 86, 0),
        tool_calls=(ToolCall("exec_command", "function_call", 142, 169),),
    )
    fields.update(changes)
    return TurnTrace(**fields)  # type: ignore[arg-type]


def _session(key: str = "s-1", turns: int = 2) -> Session:
    info = SessionInfo(key, "codex_exec/0.171.0", "gpt-5.5", "sse", origin="process 1")
    return Session(info, tuple(_turn(key, i) for i in range(turns)))


def _lines(*records: dict) -> list[bytes]:
    return [orjson.dumps(r) for r in records]


def _header_line() -> dict:
    return orjson.loads(encode_record(HEADER))


def _session_line(key: str = "s-1") -> dict:
    return orjson.loads(encode_record(_session(key).info))


def _turn_line(**changes: object) -> dict:
    line = orjson.loads(encode_record(_turn()))
    line.update(changes)
    return line


def test_a_written_trace_reads_back_equal(tmp_path: Path) -> None:
    sessions = [_session("a", 3), _session("b", 1)]
    path = tmp_path / "t.jsonl"
    write_trace(path, HEADER, sessions)
    trace = read_trace(path)
    assert trace.headers == (HEADER,)
    assert list(trace.sessions) == sessions
    assert trace.session("b").turns[0].tool_calls[0].output_bytes == 169


def test_content_is_written_only_when_present(tmp_path: Path) -> None:
    plain = encode_record(_turn())
    assert b'"content"' not in plain
    kept = _turn(content={"instructions": "be brief", "input": [], "output": []})
    path = tmp_path / "c.jsonl"
    write_trace(path, HEADER, [Session(_session().info, (kept,))])
    assert read_trace(path).sessions[0].turns[0].content == kept.content


def test_a_directory_reads_as_one_trace_of_every_file(tmp_path: Path) -> None:
    write_trace(tmp_path / "one.jsonl", HEADER, [_session("a")])
    write_trace(tmp_path / "two.jsonl", HEADER, [_session("b")])
    trace = read_trace(tmp_path)
    assert sorted(s.key for s in trace.sessions) == ["a", "b"]
    assert len(trace.headers) == 2


def test_the_writer_appends_whole_lines_and_writes_the_header_once(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    first = TraceWriter(path, HEADER)
    first.write(_session("a").info)
    first.write(_turn("a"))
    # Every record is on disk as written, before any close.
    assert len(path.read_bytes().splitlines()) == 3
    first.close()
    again = TraceWriter(path, HEADER)  # reopened: appends, no second header
    again.write(_session("b").info)
    again.close()
    again.write(_turn("b"))  # after close: nothing
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line)["record"] for line in lines] == [
        "header",
        "session",
        "turn",
        "session",
    ]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"at_s": -1}, "turn.at_s", "non-negative number"),
        ({"kind": "stream"}, "turn.kind", "one of full, continuation, warmup"),
        ({"transport": "grpc"}, "turn.transport", "one of http, sse, ws"),
        ({"body_bytes": True}, "turn.body_bytes", "non-negative integer"),
        ({"input": {}}, "turn.input", "expected an array"),
        ({"input": [{"type": "message"}]}, "turn.input[0].bytes", "missing"),
        ({"tool_calls": [7]}, "turn.tool_calls[0]", "expected an object"),
        ({"usage": {"input_tokens": 1}}, "turn.usage.cached_tokens", "missing"),
        ({"index": 3}, "turn.index", "expected turn 0"),
        ({"session": "nobody"}, "turn.session", "no session record"),
    ],
)
def test_a_bad_turn_names_its_line_and_field(change: dict, field: str, problem: str) -> None:
    lines = _lines(_header_line(), _session_line(), _turn_line(**change))
    with pytest.raises(TraceError) as caught:
        parse_lines(lines, "t.jsonl")
    error = caught.value
    assert (error.path, error.line, error.field) == ("t.jsonl", 3, field)
    assert problem in error.problem
    assert str(error).startswith(f"t.jsonl:3: {field}: ")


def test_a_session_start_is_optional_and_reads_back(tmp_path: Path) -> None:
    later = Session(dataclasses.replace(_session("b").info, start_s=12.25), _session("b").turns)
    path = tmp_path / "t.jsonl"
    write_trace(path, HEADER, [_session("a"), later])
    trace = read_trace(path)
    assert [s.info.start_s for s in trace.sessions] == [None, 12.25]
    assert list(trace.sessions) == [_session("a"), later]
    old = _session_line()
    del old["start_s"]  # a trace written before the field: unknown, not an error
    assert parse_lines(_lines(_header_line(), old)).sessions[0].info.start_s is None


@pytest.mark.parametrize("value", [-1, "3.5", True, [], {}])
def test_a_bad_session_start_names_its_line_and_field(value: object) -> None:
    with pytest.raises(TraceError, match="non-negative number of seconds") as caught:
        parse_lines(_lines(_header_line(), _session_line() | {"start_s": value}), "t.jsonl")
    assert (caught.value.line, caught.value.field) == (2, "session.start_s")
    assert str(caught.value).startswith("t.jsonl:2: session.start_s: ")


def test_an_infinite_time_is_refused() -> None:
    line = orjson.dumps(_turn_line(gap_s=12345)).replace(b"12345", b"1e400")
    with pytest.raises(TraceError, match="infinity") as caught:
        parse_lines([*_lines(_header_line(), _session_line()), line])
    assert caught.value.line == 3


def test_a_missing_field_is_named() -> None:
    line = _turn_line()
    del line["gap_s"]
    with pytest.raises(TraceError, match=r"^t:3: turn\.gap_s: missing$"):
        parse_lines(_lines(_header_line(), _session_line(), line), "t")


def test_a_file_without_a_header_is_not_a_trace() -> None:
    with pytest.raises(TraceError, match="first record must be the header") as caught:
        parse_lines(_lines(_session_line()), "x.jsonl")
    assert caught.value.line == 1


def test_a_newer_version_is_refused_with_what_to_do() -> None:
    header = _header_line() | {"version": 2}
    with pytest.raises(TraceError, match="upgrade the rig") as caught:
        parse_lines(_lines(header))
    assert caught.value.field == "header.version"


def test_a_session_twice_and_an_unknown_record_are_refused() -> None:
    with pytest.raises(TraceError, match="appears twice"):
        parse_lines(_lines(_header_line(), _session_line(), _session_line()))
    with pytest.raises(TraceError, match="unknown record 'span'") as caught:
        parse_lines(_lines(_header_line(), {"record": "span"}))
    assert caught.value.line == 2


def test_not_json_names_the_line() -> None:
    with pytest.raises(TraceError, match="not JSON") as caught:
        parse_lines([encode_record(HEADER), b"", b"{nope"], "f")
    assert caught.value.line == 3


def test_missing_paths_and_empty_files_are_trace_errors(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        read_trace(tmp_path / "absent.jsonl")
    with pytest.raises(TraceError, match=r"no \*\.jsonl"):
        read_trace(tmp_path)
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(TraceError, match="empty"):
        read_trace(tmp_path / "empty.jsonl")


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_field_names = st.sampled_from(sorted(orjson.loads(encode_record(_turn())).keys()))


@settings(max_examples=300, deadline=None)
@given(garbage=st.lists(st.binary(max_size=64), max_size=4))
def test_garbage_bytes_raise_only_trace_errors(garbage: list[bytes]) -> None:
    for lines in (garbage, [encode_record(HEADER), *garbage]):
        with contextlib.suppress(TraceError):
            parse_lines(lines)


@settings(max_examples=300, deadline=None)
@given(name=_field_names, value=_json, nested=st.booleans())
def test_any_wrong_value_in_any_field_raises_only_trace_errors(
    name: str, value: object, nested: bool
) -> None:
    line = _turn_line()
    if nested and isinstance(line.get(name), list) and line[name]:
        line[name][0] = value
    else:
        line[name] = value
    try:
        trace = parse_lines(_lines(_header_line(), _session_line(), line))
    except TraceError:
        return
    assert len(trace.sessions[0].turns) == 1  # read: then it is a valid turn


def test_the_shipped_trace_sets_are_valid_and_hold_no_content() -> None:
    shipped = builtin_traces()
    assert {"codex", "fix_failing_test", "add_search_feature", "refactor_api_layer"} <= set(shipped)
    for name in shipped:
        trace = load_trace(name)
        assert trace.sessions and not any(h.content for h in trace.headers)
        assert all(t.content is None for s in trace.sessions for t in s.turns)
    codex = load_trace("codex")
    assert {s.info.transport for s in codex.sessions} == {"sse", "ws"}
    assert all(s.info.agent.startswith("codex_exec/") for s in codex.sessions)
    ws = [s for s in codex.sessions if s.info.transport == "ws"]
    assert all(s.turns[0].kind == "warmup" for s in ws)  # Codex opens with generate: false
